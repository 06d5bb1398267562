"""DARTS's derivation: the one rule every differentiable strategy exports a cell with, and the
cell the collapse diagnostics describe (Liu et al. 2019; PC-DARTS's β, Xu et al. 2020)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import SMALL_SPACE
from test_pipeline import cache, tiny_config  # noqa: F401 (cache is a fixture)

from emodarts_nni.space.genotype import (
    alpha_column,
    beta_column,
    cell_edges,
    edge_name,
    parse_beta_column,
)
from emodarts_nni.strategy.derivation import (
    by_node,
    derive_architecture,
    derive_cell,
    derive_node,
    strongest_op,
)


def softmax(logits: dict[str, float]) -> dict[str, float]:
    z = sum(math.exp(v) for v in logits.values())
    return {op: math.exp(v) / z for op, v in logits.items()}


def raw_alpha_rule(alphas: dict[int, dict[str, float]], k: int) -> list[int]:
    """NNI's ``DifferentiableMixedCell.export`` for one node, reduced to the kept inputs:
    edges ranked by their largest raw α (``none`` left out), across edges."""
    best = {j: max(v for op, v in a.items() if op != "none") for j, a in alphas.items()}
    return sorted(best, key=lambda j: -best[j])[:k]


# Raw α of node 3's three incoming edges. Edge 0 has the largest raw α but spreads its
# weight; edge 1 has small raw α but puts nearly all of its softmax on one op.
NODE_3 = {
    0: {"sep_conv_3x3": 1.0, "skip_connect": 0.9, "max_pool_3x3": 0.9, "none": 0.9},
    1: {"sep_conv_3x3": 0.5, "skip_connect": -3.0, "max_pool_3x3": -3.0, "none": -3.0},
    2: {"sep_conv_3x3": -0.2, "skip_connect": 0.8, "max_pool_3x3": 0.0, "none": 0.0},
}


# ------------------------------------------------------------------ the rule on tables


def test_an_edge_is_weighed_by_its_strongest_op_other_than_none_in_its_own_softmax():
    probs = softmax({"sep_conv_3x3": 0.0, "skip_connect": 1.0, "none": 3.0})
    assert strongest_op(probs) == ("skip_connect", probs["skip_connect"])
    with pytest.raises(ValueError, match="none"):
        strongest_op({"none": 1.0})


def test_darts_keeps_the_edges_strongest_in_their_own_softmax_where_nni_ranks_raw_alpha():
    tables = {j: softmax(a) for j, a in NODE_3.items()}
    kept = derive_node(tables, 2)
    # softmax: edge 1 0.92 (sep_conv_3x3), edge 2 0.44 (skip_connect), edge 0 0.27
    assert [(e.source, e.op) for e in kept] == [(1, "sep_conv_3x3"), (2, "skip_connect")]
    assert kept[0].strength == pytest.approx(tables[1]["sep_conv_3x3"])
    assert raw_alpha_rule(NODE_3, 2) == [0, 2]  # NNI's rule keeps another cell


def test_pc_darts_weighs_each_edge_by_its_normalised_beta():
    tables = {j: softmax(a) for j, a in NODE_3.items()}
    beta = {0: 0.7, 1: 0.1, 2: 0.2}
    # softmax(α)·β: edge 0 0.27·0.7 = 0.19, edge 1 0.92·0.1 = 0.092, edge 2 0.44·0.2 = 0.088
    kept = derive_node(tables, 2, beta)
    assert [e.source for e in kept] == [0, 1]
    assert kept[1].strength == pytest.approx(tables[1]["sep_conv_3x3"] * 0.1)


def test_ties_do_not_depend_on_the_order_the_ops_or_edges_come_in():
    uniform = dict.fromkeys(["skip_connect", "max_pool_3x3", "sep_conv_5x5", "dil_conv_3x3"], 0.25)
    backwards = dict(reversed(list(uniform.items())))
    # a learnable op before a parameter-free one, then by name
    assert strongest_op(uniform)[0] == strongest_op(backwards)[0] == "dil_conv_3x3"
    kept = derive_node({2: uniform, 0: backwards, 1: uniform}, 2)
    assert [e.source for e in kept] == [0, 1]  # equal edges: the earlier input first


def test_a_node_with_fewer_inputs_than_k_reuses_them_in_rank_order():
    kept = derive_node({0: {"skip_connect": 0.4}, 1: {"skip_connect": 0.6}}, 3)
    assert [e.source for e in kept] == [1, 0, 1]


def test_derive_cell_answers_with_nni_choice_labels():
    edges = {"2_0": softmax(NODE_3[0]), "2_1": softmax(NODE_3[1])}
    edges |= {"3_0": {"a": 1.0}, "3_1": {"b": 0.2}, "3_2": {"c": 0.9}, "not an edge": {}}
    tables = by_node(edges)
    assert sorted(tables) == [2, 3] and sorted(tables[3]) == [0, 1, 2]
    assert derive_cell("normal", tables, 2) == {
        "normal/op_2_0": "sep_conv_3x3",
        "normal/input_2_0": [1],
        "normal/op_2_1": "sep_conv_3x3",
        "normal/input_2_1": [0],
        "normal/op_3_0": "a",
        "normal/input_3_0": [0],
        "normal/op_3_1": "c",
        "normal/input_3_1": [2],
    }


def test_a_history_row_derives_the_architecture_with_its_beta_columns():
    row: dict[str, object] = {"stage": "search", "epoch": 3, "val_ua": 0.5}
    for cell in ("normal", "seq"):
        for source, logits in NODE_3.items():
            for op, p in softmax(logits).items():
                row[alpha_column(edge_name(cell, 3, source), op)] = p
        for source in (0, 1):
            row[alpha_column(edge_name(cell, 2, source), "skip_connect")] = 0.5
    for source, weight in {0: 0.7, 1: 0.1, 2: 0.2}.items():
        row[beta_column(edge_name("normal", 3, source))] = weight
    for source in (0, 1):
        row[beta_column(edge_name("normal", 2, source))] = 0.5
    assert parse_beta_column(beta_column("normal/3_1")) == ("normal", "3_1")
    assert parse_beta_column("alpha/normal/3_1/skip_connect") is None
    architecture = derive_architecture(row)
    assert [architecture[f"normal/input_3_{k}"] for k in (0, 1)] == [[0], [1]]  # β
    assert [architecture[f"seq/input_3_{k}"] for k in (0, 1)] == [[1], [2]]  # α alone
    assert derive_architecture({"stage": "search", "val_ua": 0.5}) == {}


# ----------------------------------------------------- every differentiable strategy's cells

DIFFERENTIABLE = [
    ("darts", {}),
    ("darts", {"memory": "lean"}),
    ("darts-2nd", {}),
    ("beta-darts", {}),
    ("pc-darts", {"params": {"partial_channels": 2}}),
    ("darts-minus", {}),
    ("gumbel", {}),
]


@pytest.mark.parametrize(("name", "search"), DIFFERENTIABLE, ids=lambda v: str(v))
def test_every_differentiable_strategy_exports_darts_derivation_of_its_recorded_alpha(name, search):
    """Each strategy's supernet has only our cells (NNI's raw-α export is unreachable), and
    what it exports is the derivation of the α (and β) columns its history would record."""
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell

    from emodarts_nni.config.experiment import config_from_dict
    from emodarts_nni.space.model import build_space
    from emodarts_nni.strategy.registry import strategy_from_config
    from emodarts_nni.strategy.supermodule.summed import SummedMixedCell
    from emodarts_nni.training.module import SerModule, alpha_probabilities

    strategy = strategy_from_config(config_from_dict({"search": {"strategy": name, **search}}))
    net = strategy.mutate_model(build_space("emodarts", **{**SMALL_SPACE, "cnn_nodes": 3}))
    cells = [m for m in net.modules() if isinstance(m, DifferentiableMixedCell)]
    assert cells and all(isinstance(cell, SummedMixedCell) for cell in cells)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter_name, p in net.named_parameters():
            if "_arch_" in parameter_name:
                p.copy_(torch.randn(p.shape, generator=generator))
    training = SerModule()
    training.set_model(net)
    exported = strategy.configure_oneshot_module(training).export()
    recorded = alpha_probabilities(net)
    assert any(column.startswith("beta/") for column in recorded) == (name == "pc-darts")
    assert exported == derive_architecture(recorded)
    nni = {}
    for cell in cells:
        nni.update(DifferentiableMixedCell.export(cell, nni))
    assert nni != exported  # random α: NNI's rule would have exported another cell


def test_nni_rule_and_ours_disagree_on_a_real_cell_and_ours_is_exported():
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell

    from emodarts_nni.space.model import build_space
    from emodarts_nni.strategy.darts.first_order import DARTS

    net = DARTS().mutate_model(build_space("emodarts", **SMALL_SPACE))
    cell = next(m for m in net.modules() if getattr(m, "label", None) == "normal")
    with torch.no_grad():
        for source, logits in NODE_3.items():
            alpha = cell.edge_alpha(3, source)
            alpha.fill_(-3.0)
            for op, value in logits.items():
                alpha[-1 if op == "none" else cell.op_names.index(op)] = value
    ours = cell.export({})
    theirs = DifferentiableMixedCell.export(cell, {})
    assert [ours[f"normal/input_3_{k}"] for k in (0, 1)] == [[1], [2]]
    assert sorted(theirs[f"normal/input_3_{k}"][0] for k in (0, 1)) == [0, 2]
    assert cell.export(dict(ours)) == {}  # memo: a cell sharing the label exports nothing new


# ------------------------------------------------------------- a real search, end to end


@pytest.mark.parametrize(
    ("strategy", "params"), [("darts", {}), ("pc-darts", {"partial_channels": 2})]
)
def test_a_search_exports_the_derivation_of_its_last_history_row(
    strategy,
    params,
    tmp_path,
    cache,  # noqa: F811 (the fixture imported above)
):
    """architecture.json is DARTS's derivation of the last search epoch's α (and β) in
    history.csv, and the collapse metrics describe exactly its cells."""
    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.run import run_pipeline
    from emodarts_nni.pipeline.runfolder import RunFolder
    from emodarts_nni.strategy.collapse import collapse_metrics

    config = tiny_config(
        tmp_path,
        cache,
        space={"cnn_nodes": 3, "seq_nodes": 3},
        search={"strategy": strategy, "epochs": 2, "arch_lr": 0.5, "params": params},
    )
    folder = RunFolder(tmp_path / "run")
    run_pipeline(load_config(config), folder.path, stages=("search",))
    architecture = json.loads(folder.architecture.read_text())["architecture"]
    last = [row for row in folder.read_history() if row["stage"] == "search"][-1]
    assert any(str(c).startswith("beta/") for c in last) == (strategy == "pc-darts")
    assert derive_architecture(last) == architecture
    metrics = collapse_metrics(last)
    assert set(metrics) == {"normal", "reduce", "seq"}
    for cell, m in metrics.items():
        assert m.exported == tuple(edge.op for edge in cell_edges(architecture, cell))
        assert len(m.exported) == 2 * 3
