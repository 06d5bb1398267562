"""Checkpoints: a malformed payload fails with one line naming the field, before any build."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from conftest import SMALL_SPACE

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.inference.checkpoint import load_checkpoint, save_checkpoint
from emodarts_nni.space.architecture import ArchitectureFile, freeze, sample_architecture
from emodarts_nni.space.model import resolve_space_args

CLASSES = ["neutral", "happy", "sad", "angry"]


def small_architecture(**overrides) -> ArchitectureFile:
    space = resolve_space_args("emodarts", **{**SMALL_SPACE, **overrides})
    return ArchitectureFile(space, sample_architecture(space, seed=0), {"strategy": "test"})


def saved_payload(tmp_path: Path) -> dict:
    """A valid checkpoint payload of a small searched model, as written by save_checkpoint."""
    arch = small_architecture()
    model = freeze(arch.space, arch.architecture)
    path = save_checkpoint(
        tmp_path / "good.pt",
        model,
        arch,
        class_names=CLASSES,
        features={"n_mfcc": 16},
        normalisation={"mean": [0.0] * 16, "std": [1.0] * 16},
    )
    return torch.load(path, weights_only=True)


def test_a_saved_checkpoint_round_trips(tmp_path):
    payload = saved_payload(tmp_path)
    ckpt = load_checkpoint(tmp_path / "good.pt")
    assert ckpt.class_names == CLASSES and ckpt.features == {"n_mfcc": 16}
    assert ckpt.model(torch.randn(2, 16, 16)).shape == (2, 4)
    assert set(ckpt.model.state_dict()) == set(payload["state_dict"])


@pytest.mark.parametrize(
    ("mutate", "culprit"),
    [
        (lambda p: p.pop("class_names"), "'class_names'"),
        (lambda p: p.update(class_names="neutral"), "'class_names'"),
        (lambda p: p.update(class_names=["a", "a", "b", "c"]), "'class_names'"),
        (lambda p: p.update(state_dict=[1, 2]), "'state_dict'"),
        (lambda p: p.update(state_dict={"stem.0.weight": 3}), "'state_dict'"),
        (lambda p: p.update(features=3), "'features'"),
        (lambda p: p.update(normalisation={"mean": [0.0]}), "'normalisation'"),
        (lambda p: p.update(extra=[1]), "'extra'"),
        (lambda p: p.update(architecture=[1]), "'architecture'"),
        (lambda p: p["architecture"]["space"].update(cnn_ops=[["sep_conv_3x3"]]), "cnn_ops"),
        (lambda p: p["architecture"]["space"].update(init_channels=10**6), "too large"),
        (lambda p: p.update(class_names=CLASSES[:3]), "n_classes 4.*3 classes"),
        (lambda p: p.update(architecture=None), "neither"),
        (lambda p: p.update(architecture=None, baseline={"name": 3}), "'baseline'"),
        (
            lambda p: p.update(architecture=None, baseline={"name": "cnn", "rm -rf": 1}),
            "unknown key.*rm -rf",
        ),
        (
            lambda p: p.update(
                architecture=None,
                baseline={"name": "cnn", "n_mfcc": 16, "frames": 16, "n_classes": "4"},
            ),
            "n_classes",
        ),
        (lambda p: p["state_dict"].pop("classifier.weight"), "do not match"),
    ],
)
def test_malformed_checkpoint_fails_with_one_line(tmp_path, mutate, culprit):
    payload = saved_payload(tmp_path)
    bad = copy.deepcopy(payload)
    mutate(bad)
    path = tmp_path / "bad.pt"
    torch.save(bad, path)
    with pytest.raises(EmodartsError, match=culprit) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_cli_evaluate_of_a_bad_checkpoint_exits_2_with_one_line(tmp_path, capsys):
    from emodarts_nni.cli.main import main

    payload = saved_payload(tmp_path)
    payload["features"] = 7
    torch.save(payload, tmp_path / "bad.pt")
    assert main(["evaluate", str(tmp_path / "bad.pt")]) == 2
    err = capsys.readouterr().err
    assert "'features'" in err and len(err.strip().splitlines()) == 1
