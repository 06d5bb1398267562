"""PC-DARTS (``pc-darts``) and DARTS- (``darts-minus``): the mixed cells, their schedule, their
export, and a search through the real pipeline that retrains at full width."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import toyspace
from conftest import SMALL_SPACE
from test_pipeline import cache, tiny_config  # noqa: F401 (cache is a fixture)

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import ConfigError
from emodarts_nni.config.experiment import config_from_dict
from emodarts_nni.nni_runtime import run_search
from emodarts_nni.space.architecture import load_architecture, read_architecture
from emodarts_nni.space.model import build_space
from emodarts_nni.space.ops import FactorizedReduce
from emodarts_nni.space.sizing import estimate
from emodarts_nni.strategy.darts.minus import DartsMinus
from emodarts_nni.strategy.darts.pc import PCDARTS
from emodarts_nni.strategy.derivation import derive_node
from emodarts_nni.strategy.registry import check_strategy_config, make_strategy
from emodarts_nni.strategy.supermodule.auxiliary_skip import (
    AuxiliarySkipCell,
    auxiliary_skip_weight,
)
from emodarts_nni.strategy.supermodule.partial_channel import PartialChannelCell, channel_shuffle
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell

# SMALL_SPACE: init_channels 2 (normal cells 2 channels, reduction cells 4 and 8), hidden 8.
K = 2


def _cells(net: torch.nn.Module, cls: type) -> dict[str, torch.nn.Module]:
    """The first mixed cell of each label."""
    out: dict[str, torch.nn.Module] = {}
    for module in net.modules():
        if isinstance(module, cls):
            out.setdefault(module.label, module)
    return out


@pytest.fixture(scope="module")
def pc_supernet() -> torch.nn.Module:
    return PCDARTS(partial_channels=K).mutate_model(build_space("emodarts", **SMALL_SPACE))


# ------------------------------------------------------------------- PC-DARTS: one edge


def test_channel_shuffle_interleaves_the_groups_and_k_groups_undo_c_over_k() -> None:
    x = torch.arange(8.0).view(1, 8, 1, 1)
    assert channel_shuffle(x, 4).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    seq = torch.randn(2, 3, 12)
    assert torch.equal(channel_shuffle(channel_shuffle(seq, 3, dim=2), 4, dim=2), seq)


def test_pc_edge_ops_are_built_at_one_kth_of_the_width(pc_supernet) -> None:
    cells = _cells(pc_supernet, PartialChannelCell)
    assert set(cells) == {"normal", "reduce", "seq"}
    widths = {"normal": 2, "reduce": 4, "seq": 8}  # the first cell of each label
    for label, cell in cells.items():
        ops = cell.ops[0][0]  # node 2's edge from input 0
        if label == "seq":
            assert ops["lstm_1"].rnn.input_size == widths[label] // K
        else:
            assert ops["sep_conv_3x3"][0][1].in_channels == widths[label] // K


@pytest.mark.parametrize(
    ("label", "source", "shape", "stride"),
    [
        ("normal", 0, (3, 2, 9, 7), 1),
        ("reduce", 0, (3, 4, 9, 7), 2),  # odd sizes: the bypass pools like the ops (ceil)
        ("reduce", 2, (3, 4, 5, 4), 1),  # an intermediate node of a reduction cell: stride 1
        ("seq", 1, (3, 5, 8), 1),
    ],
)
def test_pc_edge_bypasses_the_other_channels_and_shuffles(
    pc_supernet, label, source, shape, stride
) -> None:
    cell = _cells(pc_supernet, PartialChannelCell)[label]
    dim = cell.concat_dim
    x = torch.randn(shape)
    node = max(2, source + 1)
    out = cell.edge(node, source, x)
    width = x.size(dim)
    expected = list(shape)
    if stride == 2:
        expected[2:] = [(n + 1) // 2 for n in shape[2:]]
    assert list(out.shape) == expected
    # Undo the K-group shuffle (a shuffle in C/K groups): [mixed part | bypassed part].
    unshuffled = channel_shuffle(out, width // K, dim)
    bypassed = x.narrow(dim, width // K, width - width // K)
    if stride == 2:
        bypassed = F.max_pool2d(bypassed, 2, 2, ceil_mode=True)
    assert torch.equal(unshuffled.narrow(dim, width // K, width - width // K), bypassed)


def test_with_k_1_an_edge_is_the_plain_darts_mixture() -> None:
    net = PCDARTS(partial_channels=1).mutate_model(build_space("emodarts", **SMALL_SPACE))
    cell = _cells(net, PartialChannelCell)["reduce"]
    cell.eval()
    x = torch.randn(2, 4, 5, 5)
    ops = cell.ops[0][0]
    weights = torch.softmax(cell._arch_alpha["reduce/2_0"], -1)
    expected = sum(w * op(x) for w, op in zip(weights, ops.values(), strict=False))
    assert torch.allclose(cell.edge(2, 0, x), expected, atol=1e-6)


# ---------------------------------------------------- PC-DARTS: edge normalisation, export


def test_edge_normalisation_weighs_a_nodes_incoming_edges(pc_supernet) -> None:
    cell = _cells(pc_supernet, PartialChannelCell)["normal"]
    with torch.no_grad():
        cell._arch_beta["normal/3"].copy_(torch.tensor([0.0, 0.0, 50.0]))
    states = [torch.randn(2, 2, 6, 6) for _ in range(3)]
    cell.eval()  # BatchNorm in eval mode: the same input gives the same edge output
    assert torch.allclose(cell.node(3, states), cell.edge(3, 2, states[2]), atol=1e-5)
    cell.train()


def test_edge_normalisation_changes_which_edges_are_exported() -> None:
    net = PCDARTS(partial_channels=K).mutate_model(build_space("emodarts", **SMALL_SPACE))
    cell = _cells(net, PartialChannelCell)["normal"]
    sep = cell.op_names.index("sep_conv_3x3")
    with torch.no_grad():
        for j, strength in ((0, 3.0), (1, 2.0), (2, 1.0)):  # α alone: edges 0 and 1 win
            alpha = cell._arch_alpha[f"normal/3_{j}"]
            alpha.zero_()
            alpha[sep] = strength
        cell._arch_beta["normal/3"].copy_(torch.tensor([0.0, -2.0, 2.0]))  # β prefers edge 2
    plain = SummedMixedCell.derivation_weights(cell, 3)  # None: DARTS's, every edge weighs 1
    alone = derive_node({j: cell.edge_probabilities(3, j) for j in range(3)}, 2, plain)
    assert sorted(edge.source for edge in alone) == [0, 1]
    exported = cell.export({})
    # softmax(α)·softmax(β): edge 2 0.25·0.87 > edge 0 0.72·0.12 > edge 1 0.48·0.016
    assert exported["normal/input_3_0"] == [2] and exported["normal/input_3_1"] == [0]
    assert exported["normal/op_3_0"] == exported["normal/op_3_1"] == "sep_conv_3x3"
    # every cell of the label shares α and β: a second cell exports nothing new
    assert cell.export(dict(exported)) == {}


def test_beta_is_an_architecture_parameter_shared_by_the_cells_of_a_label(pc_supernet) -> None:
    cells = [m for m in pc_supernet.modules() if isinstance(m, PartialChannelCell)]
    for cell in cells:
        arch = {id(p) for p in cell.arch_parameters()}
        assert all(id(beta) in arch for beta in cell._arch_beta.values())
    reduces = [cell for cell in cells if cell.label == "reduce"]  # cnn_cells 3: cells 1 and 2
    assert len(reduces) == 2
    assert reduces[0]._arch_beta["reduce/3"] is reduces[1]._arch_beta["reduce/3"]
    assert reduces[0]._arch_beta["reduce/3"].shape == (3,)  # node 3 has 3 incoming edges


# ------------------------------------------------------------ PC-DARTS: K against the space


@pytest.mark.parametrize(
    ("space", "k", "culprit"),
    [
        ({"init_channels": 2}, 4, "'normal' cells' width 2 does not split into 4"),
        ({"init_channels": 8, "hidden": 12}, 4, "hidden 12 / 4 = 3 is odd"),
        ({"init_channels": 8}, 0, "expected a positive integer"),
    ],
)
def test_a_k_that_does_not_split_the_space_is_one_config_error_naming_the_key(
    space, k, culprit
) -> None:
    raw = {"space": space, "search": {"strategy": "pc-darts", "params": {"partial_channels": k}}}
    with pytest.raises(ConfigError) as caught:  # when the config loads, before any data work
        config_from_dict(raw)
    message = str(caught.value)
    assert "search.params.partial_channels" in message and culprit in message
    assert "\n" not in message


def test_the_default_k_fits_the_shipped_quickstart() -> None:
    from emodarts_nni.config.experiment import load_config

    cfg = load_config("quickstart", {"search.strategy": "pc-darts"})
    assert make_strategy("pc-darts").partial_channels == 4
    check_strategy_config(cfg)  # init_channels 4, hidden 32: K = 4 fits


# --------------------------------------------------------------------------- DARTS-


def test_auxiliary_skip_weight_decays_linearly_from_one_to_zero() -> None:
    weights = [auxiliary_skip_weight(epoch, 4) for epoch in range(6)]
    assert weights == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    assert auxiliary_skip_weight(1, 4, initial=2.0) == 1.5
    with pytest.raises(ValueError):
        auxiliary_skip_weight(0, 0)


def test_auxiliary_skip_is_factorized_reduce_on_stride_2_edges_and_identity_elsewhere() -> None:
    net = DartsMinus().mutate_model(build_space("emodarts", **SMALL_SPACE))
    cells = _cells(net, AuxiliarySkipCell)
    reduce = cells["reduce"].auxiliary_skip
    assert isinstance(reduce[0][0], FactorizedReduce) and isinstance(reduce[0][1], FactorizedReduce)
    assert isinstance(reduce[1][2], torch.nn.Identity)  # node 3 ← node 2 (already reduced)
    assert all(isinstance(m, torch.nn.Identity) for m in cells["seq"].auxiliary_skip.modules()
               if not isinstance(m, torch.nn.ModuleList))  # fmt: skip
    cell = cells["normal"]
    cell.eval()
    x = torch.randn(2, 2, 6, 6)
    cell.skip_weight = 0.0
    mixed = cell.edge(2, 1, x)
    cell.skip_weight = 0.25
    assert torch.allclose(cell.edge(2, 1, x), mixed + 0.25 * x, atol=1e-6)


class RecordSkipWeight(pl.Callback):
    """Records the auxiliary skips' weight at the end of every search epoch."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def on_train_epoch_end(self, trainer, module) -> None:
        weights = {m.skip_weight for m in module.modules() if isinstance(m, AuxiliarySkipCell)}
        assert len(weights) == 1
        self.seen.append(weights.pop())


def test_darts_minus_sets_the_epochs_skip_weight_while_searching(tmp_path: Path) -> None:
    spy = RecordSkipWeight()
    architecture = run_search(
        toyspace.ToySpace(),
        toyspace.make_evaluator(3, callbacks=[spy]),
        DartsMinus(decay_epochs=4),
        experiment_dir=tmp_path,
    )
    toyspace.assert_valid_architecture(architecture, reduction=True)
    assert spy.seen == [1.0, 0.75, 0.5]


# ------------------------------------------------------------ the real pipeline, one epoch


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("strategy", "params"),
    [("pc-darts", {"partial_channels": K}), ("darts-minus", {})],
)
def test_search_exports_an_architecture_that_builds_at_full_width(
    tmp_path,
    cache,  # noqa: F811 (the fixture imported above)
    strategy,
    params,
) -> None:
    config = tiny_config(
        tmp_path, cache, search={"strategy": strategy, "epochs": 1, "params": params}
    )
    out = tmp_path / "run"
    assert main(["search", str(config), "--out", str(out), "--no-webui"]) == 0
    doc = json.loads((out / "architecture.json").read_text())
    assert doc["provenance"]["strategy"] == strategy
    assert "partial_channels" not in doc["space"]  # a search parameter, not a space argument
    model = load_architecture(out / "architecture.json")
    arch = read_architecture(out / "architecture.json")
    exact = estimate(arch.space, "frozen", architecture=arch.architecture).parameters
    assert model.num_parameters == exact  # the full-width model, whatever K was
    assert model(torch.randn(2, 16, 16)).shape == (2, doc["space"]["n_classes"])


@pytest.mark.e2e
def test_a_bad_k_stops_the_run_before_any_data_work(
    tmp_path,
    cache,  # noqa: F811 (the fixture imported above)
    capsys,
) -> None:
    config = tiny_config(
        tmp_path, cache, search={"strategy": "pc-darts", "params": {"partial_channels": 3}}
    )
    out = tmp_path / "bad"
    assert main(["search", str(config), "--out", str(out), "--no-webui"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "search.params.partial_channels = 3" in err[0]
    assert not out.exists()
