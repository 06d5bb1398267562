"""The joint search space: every scope builds, runs, freezes; predictions ignore the batch."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_SPACE
from nni.nas.strategy import DARTS

from emodarts_nni import build_space
from emodarts_nni.common.errors import ConfigError
from emodarts_nni.space.architecture import (
    choice_domains,
    count_parameters,
    freeze,
    sample_architecture,
)
from emodarts_nni.space.model import reduction_positions, resolve_space_args
from emodarts_nni.space.ops import CNN_OPS
from emodarts_nni.space.scopes import available_scopes, load_scope

SCOPES = ["emodarts", "lstm_only", "lstm_att_only", "rnn_only", "rnn_att_only", "cnn_only"]


def nni_sample(space) -> dict:
    """A random architecture drawn by NNI from the space's own mutables."""
    return {label: mutable.random() for label, mutable in space.simplify().items()}


def test_shipped_scopes():
    assert set(SCOPES) <= set(available_scopes())
    assert load_scope("lstm_only").seq_ops == (
        "lstm_1",
        "lstm_2",
        "lstm_3",
        "lstm_4",
        "skip_connect",
        "none",
    )
    assert load_scope("cnn_only").settings["seq_cells"] == 0
    for name in SCOPES:
        assert set(load_scope(name).cnn_ops) == set(CNN_OPS)  # CNN ops stay complete


@pytest.mark.parametrize("scope", SCOPES)
def test_space_choices_match_the_documented_labels(scope):
    space = build_space(scope, **SMALL_SPACE)
    args = resolve_space_args(scope, **SMALL_SPACE)
    mutables = space.simplify()
    domains = choice_domains(args)
    assert set(mutables) == set(domains)
    for label, mutable in mutables.items():
        assert list(mutable.values) == domains[label]
        assert "none" not in mutable.values
    assert any(k.startswith("seq/") for k in domains) == (scope != "cnn_only")


@pytest.mark.parametrize("scope", SCOPES)
def test_supernet_forward_backward(scope):
    supernet = DARTS().mutate_model(build_space(scope, **SMALL_SPACE))
    x = torch.randn(3, 16, 16)
    logits = supernet(x)
    assert logits.shape == (3, 4)
    logits.sum().backward()
    alphas = [p for n, p in supernet.named_parameters() if "_arch_alpha" in n]
    assert alphas and all(a.grad is not None for a in alphas)


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frozen_random_architecture_runs(scope, seed):
    space = build_space(scope, **SMALL_SPACE)
    torch.manual_seed(seed)
    model = freeze(resolve_space_args(scope, **SMALL_SPACE), nni_sample(space))
    from nni.nas.nn.pytorch import InputChoice, LayerChoice

    assert model.simplify() == {}  # nothing left to choose
    assert not [m for m in model.modules() if isinstance(m, (LayerChoice, InputChoice))]
    y = model(torch.randn(2, 1, 16, 16))
    assert y.shape == (2, 4)
    y.sum().backward()


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_any_batch_size_and_width(batch):
    model = freeze(
        resolve_space_args(
            "emodarts", n_mfcc=20, frames=37, hidden=6, init_channels=3, cnn_cells=4, cnn_nodes=2
        ),
        sample_architecture(
            resolve_space_args(
                "emodarts",
                n_mfcc=20,
                frames=37,
                hidden=6,
                init_channels=3,
                cnn_cells=4,
                cnn_nodes=2,
            ),
            seed=3,
        ),
    )
    assert model(torch.randn(batch, 20, 37)).shape == (batch, 4)


def _assert_batch_independent(model):
    model.eval()
    torch.manual_seed(1)
    x = torch.randn(6, 16, 16)
    with torch.no_grad():
        alone = torch.cat([model(x[i : i + 1]) for i in range(6)])
        together = model(x)
        perm = torch.tensor([5, 3, 0, 1, 4, 2])
        shuffled = model(x[perm])
        other = model(torch.cat([x[:2], torch.randn(9, 16, 16)]))[:2]
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(shuffled, alone[perm], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(other, alone[:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scope", SCOPES)
def test_predictions_do_not_depend_on_the_batch(scope):
    # The authors' code fed the batch to the LSTM as its time axis (paper-notes defect 1).
    args = resolve_space_args(scope, **SMALL_SPACE)
    for seed in range(3):
        model = freeze(args, sample_architecture(args, seed=seed))
        model.train()
        model(torch.randn(8, 16, 16))  # move BN running stats away from their init
        _assert_batch_independent(model)


def test_supernet_predictions_do_not_depend_on_the_batch():
    _assert_batch_independent(DARTS().mutate_model(build_space("emodarts", **SMALL_SPACE)))


def test_reduction_cells_at_thirds():
    assert reduction_positions(4) == {1, 2}
    assert reduction_positions(8) == {2, 5}
    assert reduction_positions(3) == {1, 2}
    assert reduction_positions(1) == {0}


def test_parameters_count_only_the_chosen_ops():
    args = resolve_space_args("cnn_only", **{**SMALL_SPACE, "seq_cells": 0})
    arch = sample_architecture(args, seed=7)
    all_skip = {k: ("skip_connect" if "/op_" in k else [0]) for k in arch}
    arch_skip_inputs = {k: (v if "/op_" in k else [0]) for k, v in arch.items()}
    chosen, base = freeze(args, arch_skip_inputs), freeze(args, all_skip)
    expected = 0
    reductions = reduction_positions(args["cnn_cells"])
    channels = args["init_channels"]
    for cell in range(args["cnn_cells"]):
        reduction = cell in reductions
        channels *= 2 if reduction else 1
        kind = "reduce" if reduction else "normal"
        for label, op in arch_skip_inputs.items():
            if label.startswith(f"{kind}/op_"):
                stride = 2 if reduction else 1  # input [0] is a cell input
                expected += count_parameters(CNN_OPS[op](channels, stride))
                expected -= count_parameters(CNN_OPS["skip_connect"](channels, stride))
    assert count_parameters(chosen) - count_parameters(base) == expected


def test_paper_sized_space_parameters():
    args = resolve_space_args("emodarts")
    assert (args["n_mfcc"], args["frames"], args["cnn_cells"], args["seq_cells"]) == (
        128,
        128,
        4,
        2,
    )
    supernet = count_parameters(build_space("emodarts"))
    frozen = count_parameters(freeze(args, sample_architecture(args, seed=0)))
    assert frozen < supernet / 5


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"cnn_celss": 3}, "cnn_celss"),
        ({"hidden": 7}, "hidden"),
        ({"dropout": 1.5}, "dropout"),
        ({"cnn_cells": 0}, "cnn_cells"),
        ({"n_mfcc": "128"}, "n_mfcc"),
    ],
)
def test_bad_space_arguments_name_the_culprit(overrides, culprit):
    with pytest.raises(ConfigError, match=culprit):
        build_space("emodarts", **overrides)


def test_unknown_scope_and_op_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'lstm_only'"):
        build_space("lstm_onyl")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cnn_ops: [sep_conv_3x3, sep_conv_9x9]\nseq_ops: [lstm_1]\n")
    with pytest.raises(ConfigError, match="sep_conv_9x9.*valid:"):
        build_space(str(bad))
    bad.write_text("cnn_ops: [sep_conv_3x3]\nseq_ops: [lstm_7]\n")
    with pytest.raises(ConfigError, match="lstm_7"):
        build_space(str(bad))
    bad.write_text("cnn_ops: [sep_conv_3x3]\nseq_opps: [lstm_1]\n")
    with pytest.raises(ConfigError, match="seq_opps.*did you mean 'seq_ops'"):
        build_space(str(bad))
    bad.write_text("cnn_ops: [none]\nseq_ops: [lstm_1]\n")
    with pytest.raises(ConfigError, match="cnn_ops needs at least one op"):
        build_space(str(bad))


def test_scope_without_seq_ops_is_cnn_only():
    space = build_space("cnn_only", **SMALL_SPACE)  # seq_cells=1 in SMALL_SPACE is ignored
    assert len(space.seq_cells) == 0
