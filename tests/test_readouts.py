"""The readout over time: ``mean`` (the paper's), ``stats`` and ``attentive-stats``.

Each readout's shape, values and gradients; fixed and searched readouts freeze, count their
parameters exactly and export with ONNX/TorchScript parity; an architecture JSON written
before readouts were a choice loads as ``mean`` with the same state_dict names; every
one-shot strategy searches the readout choice and exports it; the choice shows in the
genotype text the web UI's final result and the study report's most-chosen cells print.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import toyspace

from emodarts_nni.common.errors import ArchitectureError, ConfigError
from emodarts_nni.inference.export import export_model, load_exported, max_difference
from emodarts_nni.nni_runtime import run_search
from emodarts_nni.nni_runtime.reporter import architecture_fields
from emodarts_nni.space import sizing
from emodarts_nni.space.architecture import (
    describe,
    freeze,
    load_architecture,
    read_architecture,
    readout_input_cell,
    readout_of,
    sample_architecture,
    save_architecture,
)
from emodarts_nni.space.genotype import READOUT_LABEL, choice_tables
from emodarts_nni.space.model import build_space, resolve_space_args
from emodarts_nni.space.op_names import READOUT_NAMES
from emodarts_nni.space.readouts import (
    VARIANCE_FLOOR,
    AttentiveStatsPooling,
    ReadoutHead,
    StatsPooling,
)
from emodarts_nni.space.scopes import load_scope, scope_from_dict
from emodarts_nni.strategy.registry import make_strategy
from emodarts_nni.training.module import alpha_probabilities

EMODARTS = load_scope("emodarts")
SIZES = dict(
    n_mfcc=8, frames=8, n_classes=3, init_channels=4, stem_multiplier=1, cnn_cells=3,
    cnn_nodes=2, seq_cells=1, seq_nodes=2, hidden=8, dropout=0.0,
)  # fmt: skip


def scope(readouts: list[str], *, seq: bool = True):
    """The emoDARTS scope with ``readouts`` (CNN-only when ``seq`` is False)."""
    return scope_from_dict(
        {
            "name": "readout_test",
            "cnn_ops": list(EMODARTS.cnn_ops),
            "seq_ops": list(EMODARTS.seq_ops) if seq else [],
            "readouts": readouts,
        }
    )


@pytest.mark.parametrize("readout", READOUT_NAMES)
def test_each_readout_maps_frames_to_logits_with_gradients_everywhere(readout):
    torch.manual_seed(0)
    head = ReadoutHead(readout, features=6, n_classes=4, dropout=0.0)
    x = torch.randn(3, 7, 6, requires_grad=True)
    logits = head(x)
    assert logits.shape == (3, 4)
    logits.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_stats_pooling_is_the_mean_and_population_std_over_time():
    x = torch.randn(2, 9, 5)
    pooled = StatsPooling()(x)
    assert torch.allclose(pooled[:, :5], x.mean(1), atol=1e-6)
    assert torch.allclose(pooled[:, 5:], x.std(1, unbiased=False), atol=1e-5)


def test_attentive_stats_pooling_with_equal_scores_is_stats_pooling():
    pool = AttentiveStatsPooling(features=5, units=3)
    torch.nn.init.zeros_(pool.attention[-1].weight)  # every frame scores 0: uniform weights
    x = torch.randn(2, 9, 5)
    assert torch.allclose(pool(x), StatsPooling()(x), atol=1e-5)


def test_a_constant_sequence_keeps_a_finite_std_gradient():
    x = torch.ones(1, 4, 3, requires_grad=True)
    pooled = StatsPooling()(x)
    assert torch.allclose(pooled[:, 3:], torch.full((1, 3), VARIANCE_FLOOR**0.5))
    pooled.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("seq", [True, False], ids=["joint", "cnn_only"])
@pytest.mark.parametrize(
    "readouts", [["mean"], ["stats"], ["attentive-stats"], list(READOUT_NAMES)]
)
def test_fixed_and_searched_readouts_build_freeze_and_count_exactly(readouts, seq):
    args = resolve_space_args(scope(readouts, seq=seq), **SIZES)
    space = build_space(scope(readouts, seq=seq), **SIZES)
    trainable = sum(p.numel() for p in space.parameters())
    assert sizing.estimate(args, "space").parameters == trainable
    assert space(torch.randn(2, 8, 8)).shape == (2, 3)
    choices = space.simplify()
    assert (READOUT_LABEL in choices) == (len(readouts) > 1)
    for seed in range(3):
        arch = sample_architecture(args, seed)
        model = freeze(args, arch)
        assert sizing.estimate(args, "frozen", architecture=arch).parameters == sum(
            p.numel() for p in model.parameters()
        )
        assert model(torch.randn(2, 8, 8)).shape == (2, 3)
        expected = arch.get(READOUT_LABEL, readouts[0])
        assert readout_of({"space": args, "architecture": arch}) == expected
    assert readout_input_cell(args) == ("seq" if seq else "reduce")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("readout", READOUT_NAMES)
def test_each_readout_exports_with_parity(readout, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    args = resolve_space_args(scope(list(READOUT_NAMES)), **SIZES)
    arch = {**sample_architecture(args, 0), READOUT_LABEL: readout}
    torch.manual_seed(0)
    model = freeze(args, arch).eval()
    for p in model.parameters():  # logits of a few units, not ~0.1
        p.data.mul_(3)
    path = export_model(model, (8, 8), fmt, tmp_path / f"model.{fmt}")
    exported = load_exported(path, fmt)
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        x = rng.standard_normal((batch, 8, 8)).astype("f4")
        assert max_difference(model, exported, x) < 1e-4


def test_an_architecture_json_without_readouts_loads_as_mean(tmp_path):
    args = resolve_space_args("emodarts", **SIZES)
    path = save_architecture(tmp_path / "new.json", args, sample_architecture(args, 1))
    doc = json.loads(path.read_text())
    assert doc["space"]["readouts"] == ["mean"]
    del doc["space"]["readouts"]  # as written before readouts were a choice
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    assert read_architecture(old).space["readouts"] == ["mean"]
    model = load_architecture(old)
    assert "classifier.weight" in model.state_dict()  # a mean checkpoint's names, unchanged
    assert set(model.state_dict()) == set(load_architecture(path).state_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": {"readouts": ["max"]}}, "unknown readout 'max'"),
        ({"space": {"readouts": []}}, "space.readouts must be a non-empty list"),
        ({"architecture": {READOUT_LABEL: "stats"}}, "unexpected choice 'readout'"),
    ],
)
def test_a_bad_readout_in_an_architecture_json_is_named(change, message, tmp_path):
    args = resolve_space_args("emodarts", **SIZES)
    doc = json.loads(
        save_architecture(tmp_path / "a.json", args, sample_architecture(args, 1)).read_text()
    )
    for key, value in change.items():
        doc[key].update(value)
    with pytest.raises(ArchitectureError, match=message):
        read_architecture(doc)


def test_a_searched_readout_must_be_chosen_and_valid(tmp_path):
    args = resolve_space_args(scope(list(READOUT_NAMES)), **SIZES)
    arch = sample_architecture(args, 0)
    with pytest.raises(ArchitectureError, match="missing choice"):
        read_architecture({"format": "emodarts-architecture/1", "space": args,
                           "architecture": {k: v for k, v in arch.items() if k != READOUT_LABEL}})  # fmt: skip
    with pytest.raises(ArchitectureError, match="'mean_pool' is not in this space"):
        read_architecture({"format": "emodarts-architecture/1", "space": args,
                           "architecture": {**arch, READOUT_LABEL: "mean_pool"}})  # fmt: skip


def test_a_scope_with_an_unknown_readout_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown readout 'attentive'.*attentive-stats"):
        scope(["mean", "attentive"])
    with pytest.raises(ConfigError, match="readouts needs at least one"):
        scope([])


@pytest.mark.parametrize(
    "name", ["darts", "darts-2nd", "pc-darts", "gumbel", "enas", "random-oneshot"]
)
def test_every_one_shot_strategy_searches_and_exports_the_readout(name, tmp_path):
    readouts = list(READOUT_NAMES)
    args = resolve_space_args(scope(readouts), **SIZES)
    params = {"enas": {"batches_per_update": 2, "update_kwargs": {"batch_size": 4, "repeat": 1}}}
    strategy = make_strategy(name, **params.get(name, {}))
    architecture = run_search(
        build_space(scope(readouts), **SIZES),
        toyspace.make_evaluator(1),
        strategy,
        experiment_dir=tmp_path,
    )
    assert architecture[READOUT_LABEL] in readouts
    model = freeze(args, architecture)  # the export is a valid architecture of the space
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_the_history_records_the_readouts_softmax_and_the_genotype_names_it(tmp_path):
    from emodarts_nni.strategy.darts.first_order import DARTS

    readouts = list(READOUT_NAMES)
    supernet = DARTS().mutate_model(build_space(scope(readouts), **SIZES))
    probabilities = choice_tables(alpha_probabilities(supernet))
    assert probabilities == {READOUT_LABEL: pytest.approx(dict.fromkeys(readouts, 1 / 3), abs=0.01)}

    args = resolve_space_args(scope(readouts), **SIZES)
    arch = {**sample_architecture(args, 0), READOUT_LABEL: "attentive-stats"}
    assert describe(arch).splitlines()[-1] == "readout: attentive-stats"
    path = save_architecture(tmp_path / "architecture.json", args, arch)
    shown = architecture_fields(path)["architecture"]  # the web UI's final result
    assert shown.endswith("| readout: attentive-stats")

    fixed = resolve_space_args(scope(["stats"]), **SIZES)
    assert describe(sample_architecture(fixed, 0), ["stats"]).endswith("readout: stats (fixed)")
    assert "readout" not in describe(sample_architecture(fixed, 0), ["mean"])


def test_the_study_report_counts_the_chosen_readouts(tmp_path: Path):
    from emodarts_nni.study.report import chosen_cells

    args = resolve_space_args(scope(list(READOUT_NAMES)), **SIZES)
    rows = []
    for seed in range(3):
        run = tmp_path / f"darts_seed-{seed}"
        run.mkdir()
        arch = {**sample_architecture(args, seed), READOUT_LABEL: "stats"}
        save_architecture(run / "architecture.json", args, arch)
        rows.append({"arm": "darts", "scope": "readout_test", "run_dir": run.name})
    top = chosen_cells(tmp_path, rows)
    assert ["darts", "readout_test", "`readout: stats`", 3, 3] in top
