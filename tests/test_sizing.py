"""Size estimates from the space arguments: exact parameter counts, activations within a
factor of two, and a guard that refuses what cannot fit before anything is built.

Tolerances: parameters must equal the built module's count exactly; activation memory must
lie within [0.5, 2] × what autograd really saves for backward (fp32, CPU, train mode).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from emodarts_nni.common.errors import ArchitectureError, ConfigError
from emodarts_nni.space import sizing
from emodarts_nni.space.architecture import freeze, read_architecture, sample_architecture
from emodarts_nni.space.model import build_space, resolve_space_args

SIZES = [
    (
        "emodarts",
        dict(n_mfcc=16, frames=16, init_channels=2, stem_multiplier=2, cnn_cells=3,
             cnn_nodes=2, seq_cells=1, seq_nodes=2, hidden=8),
    ),
    (
        "emodarts",
        dict(n_mfcc=12, frames=20, init_channels=3, stem_multiplier=3, cnn_cells=5,
             cnn_nodes=3, seq_cells=3, seq_nodes=2, hidden=6, n_classes=5),
    ),
    (
        "cnn_only",
        dict(n_mfcc=9, frames=11, init_channels=4, stem_multiplier=1, cnn_cells=7,
             cnn_nodes=2),
    ),
]  # fmt: skip
ACTIVATION_SIZES = [
    SIZES[0],
    (
        "emodarts",
        dict(n_mfcc=32, frames=40, init_channels=4, stem_multiplier=3, cnn_cells=5,
             cnn_nodes=3, seq_cells=2, seq_nodes=2, hidden=16),
    ),
]  # fmt: skip


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def darts_supernet(scope: str, sizes: dict) -> torch.nn.Module:
    from emodarts_nni.strategy.darts.first_order import DARTS

    return DARTS().mutate_model(build_space(scope, **sizes))


def saved_activation_bytes(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd keeps for backward in one training forward pass (weights excluded)."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = max(kept.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(kept.values())


@pytest.mark.parametrize(("scope", "sizes"), SIZES)
def test_parameter_counts_are_exact(scope, sizes):
    args = resolve_space_args(scope, **sizes)
    assert sizing.estimate(args, "space").parameters == trainable(build_space(scope, **sizes))
    supernet = darts_supernet(scope, sizes)
    assert sizing.estimate(args, "supernet").parameters == trainable(supernet)
    upper = sizing.estimate(args, "frozen").parameters
    for seed in range(3):
        arch = sample_architecture(args, seed)
        exact = sizing.estimate(args, "frozen", architecture=arch).parameters
        assert exact == trainable(freeze(args, arch)) <= upper


@pytest.mark.parametrize(("scope", "sizes"), ACTIVATION_SIZES)
def test_activation_memory_is_within_a_factor_of_two(scope, sizes):
    args = resolve_space_args(scope, **sizes)
    x = torch.randn(4, sizes["n_mfcc"], sizes["frames"])
    arch = sample_architecture(args, 0)
    frozen = sizing.estimate(args, "frozen", architecture=arch, batch_size=4)
    assert 0.5 <= frozen.activation_bytes / saved_activation_bytes(freeze(args, arch), x) <= 2
    supernet = sizing.estimate(args, "supernet", batch_size=4)
    real = saved_activation_bytes(darts_supernet(scope, sizes), x)
    assert 0.5 <= supernet.activation_bytes / real <= 2
    assert supernet.peak_bytes == (
        supernet.parameters * sizing.BYTES_PER_VALUE * sizing.TRAINING_COPIES
        + supernet.activation_bytes
    )


def test_estimates_grow_with_batch_and_do_not_depend_on_cell_count_for_their_cost():
    args = resolve_space_args("emodarts")
    one, many = sizing.estimate(args, "supernet"), sizing.estimate(args, "supernet", batch_size=8)
    assert many.parameters == one.parameters and many.activation_bytes > 7 * one.activation_bytes
    # Absurd sizes are estimated at once (runs of identical cells are multiplied out).
    # (beyond the arguments' caps, which refuse them first: the estimate itself stays exact)
    huge = {**args, "cnn_cells": 10**15, "cnn_nodes": 10**9, "seq_cells": 10**12}
    size = sizing.estimate(huge, "supernet")
    assert size.parameters > 10**30 and "~10^" in size.describe()


def test_guard_refuses_with_one_line_giving_the_estimate():
    args = resolve_space_args("emodarts", n_mfcc=16, frames=16)
    size = sizing.estimate(args, "frozen")
    assert sizing.check_fits(size, "model", memory_bytes=size.peak_bytes) is size
    with pytest.raises(ConfigError, match=r"^model is too large .*parameters, about .*memory"):
        sizing.check_fits(size, "model", memory_bytes=size.peak_bytes - 1)


@pytest.mark.parametrize(
    "sizes", [dict(init_channels=1_000_000), dict(cnn_cells=64, init_channels=20_000)]
)
def test_build_space_refuses_what_cannot_fit_before_building(sizes, monkeypatch):
    import emodarts_nni.space.model as space_module

    def never(*args, **kwargs):
        raise AssertionError("the space was built")

    monkeypatch.setattr(space_module.EmoDartsSpace, "__init__", never)
    with pytest.raises(ConfigError, match="too large for this machine") as info:
        build_space("emodarts", **sizes)
    assert "\n" not in str(info.value)


def test_architecture_json_of_an_impossible_size_is_refused(tmp_path):
    args = resolve_space_args("emodarts", n_mfcc=16, frames=16, cnn_nodes=2)
    doc = {
        "format": "emodarts-architecture/1",
        "space": {**args, "init_channels": 10**7},
        "architecture": sample_architecture(args, 0),
    }
    with pytest.raises(ArchitectureError, match="too large for this machine"):
        read_architecture(doc)
    doc["space"] = {**args, "cnn_nodes": 10**12}  # no million-choice enumeration first
    with pytest.raises(ArchitectureError, match=r"'cnn_nodes' = 1000000000000: .* <= 32"):
        read_architecture(doc)


def test_sizing_module_does_not_import_torch():
    code = "import sys, emodarts_nni.space.sizing; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
