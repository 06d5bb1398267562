"""The retraining recipe: speaker normalisation, masking, class balance, label smoothing,
training data, their validation, and the espeak-ng corpus generator of benchmarks/."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.config.experiment import (
    AugmentConfig,
    RetrainConfig,
    TrainerConfig,
    config_from_dict,
)
from emodarts_nni.data.features import fit_normalisation, speaker_normalise

ROOT = Path(__file__).resolve().parents[1]


def error_of(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, source="exp.yaml")
    return str(caught.value)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("data", "culprit"),
    [
        ({"features": {"normalisation": "speakers"}}, "features.normalisation = 'speakers'"),
        ({"retrain": {"balance": "weights"}}, "retrain.balance = 'weights'"),
        ({"retrain": {"label_smoothing": 1.0}}, "retrain.label_smoothing = 1.0"),
        ({"retrain": {"label_smoothing": -0.1}}, "retrain.label_smoothing = -0.1"),
        ({"retrain": {"train_parts": "all"}}, "retrain.train_parts = 'all'"),
        ({"retrain": {"augment": {"time_masks": -1}}}, "retrain.augment.time_masks = -1"),
        ({"retrain": {"augment": {"freq_width": 0}}}, "retrain.augment.freq_width = 0"),
        ({"retrain": {"augment": 3}}, "retrain.augment = 3"),
    ],
)
def test_a_bad_recipe_value_is_one_line_naming_the_key(data: dict, culprit: str) -> None:
    message = error_of(data)
    assert message.startswith(f"exp.yaml: {culprit}: expected"), message
    assert "\n" not in message


def test_recipe_keys_load_and_default_to_the_plain_recipe() -> None:
    default = config_from_dict({}, source="exp.yaml").retrain
    assert (default.train_parts, default.balance, default.label_smoothing) == ("train", "none", 0)
    assert not default.augment.enabled
    cfg = config_from_dict(
        {
            "features": {"normalisation": "speaker"},
            "retrain": {
                "train_parts": "search+train",
                "balance": "sampler",
                "label_smoothing": 0.1,
                "augment": {"time_masks": 2, "freq_masks": 1, "freq_width": 3},
            },
        },
        source="exp.yaml",
    )
    assert cfg.features.normalisation == "speaker"
    assert cfg.retrain.augment == AugmentConfig(2, 8, 1, 3) and cfg.retrain.augment.enabled
    assert (cfg.retrain.train_parts, cfg.retrain.balance) == ("search+train", "sampler")


# ------------------------------------------------------------------ speaker normalisation
def _two_speakers() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 2.0, size=(6, 3, 10))  # speaker a: offset 5, scale 2
    b = rng.normal(-3.0, 0.5, size=(4, 3, 10))  # speaker b: offset -3, scale 0.5
    x = np.concatenate([a, b])[[0, 6, 1, 7, 2, 8, 3, 9, 4, 5]]  # interleaved rows
    speakers = ["a", "b", "a", "b", "a", "b", "a", "b", "a", "a"]
    return x.astype(np.float32), speakers


def test_speaker_normalisation_uses_each_speakers_own_statistics() -> None:
    x, speakers = _two_speakers()
    out = speaker_normalise(x, speakers, np.arange(len(x)))
    for speaker in ("a", "b"):
        rows = [i for i, s in enumerate(speakers) if s == speaker]
        own = out[rows]
        np.testing.assert_allclose(own.mean(axis=(0, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(own.std(axis=(0, 2)), 1.0, atol=1e-4)
        stats = fit_normalisation(x, rows)
        expected = (x[rows] - stats.mean[:, None]) / stats.std[:, None]
        np.testing.assert_allclose(own, expected, rtol=1e-5, atol=1e-5)


def test_speaker_statistics_come_from_all_of_the_speakers_rows_whatever_is_asked() -> None:
    x, speakers = _two_speakers()
    rows = np.array([7, 0, 3])  # a subset, unsorted: b, a, b
    subset = speaker_normalise(x, speakers, rows)
    full = speaker_normalise(x, speakers, np.arange(len(x)))
    np.testing.assert_allclose(subset, full[rows], rtol=1e-6)
    with pytest.raises(ValueError, match="speakers for"):
        speaker_normalise(x, speakers[:-1], rows)


def test_speaker_normalisation_takes_no_labels() -> None:
    import inspect

    assert list(inspect.signature(speaker_normalise).parameters) == ["features", "speakers", "rows"]


def test_prepare_fold_normalises_test_speakers_with_their_own_statistics(tmp_path: Path) -> None:
    from emodarts_nni.pipeline.data import prepare_fold

    cfg = config_from_dict(
        {
            "corpus": {
                "kind": "synth",
                "synth": {"n_speakers": 4, "n_sessions": 2, "utterances_per_class_per_speaker": 2},
            },
            "features": {
                "n_mfcc": 8,
                "n_mels": 16,
                "frames": 64,
                "pooled_frames": 8,
                "hop_length": 2000,
                "normalisation": "speaker",
                "cache_dir": str(tmp_path / "cache"),
                "workers": 1,
            },
            "splits": {"protocol": "session", "fold": 0, "validation_fraction": 0.0},
        },
        source="exp.yaml",
    )
    data = prepare_fold(cfg, progress=False)
    test_speakers = {u.speaker for u in data.part_utterances("test")}
    train_speakers = {u.speaker for p in ("search", "train") for u in data.part_utterances(p)}
    assert test_speakers and not test_speakers & train_speakers
    speakers = [u.speaker for u in data.part_utterances("test")]
    for speaker in test_speakers:  # every test speaker's maps: zero mean, unit std
        own = data.x["test"][[i for i, s in enumerate(speakers) if s == speaker]]
        np.testing.assert_allclose(own.mean(axis=(0, 2)), 0.0, atol=1e-4)
    # the fallback statistics for the checkpoint: the non-test rows' (raw features)
    assert data.normalisation is not None and len(data.normalisation["mean"]) == 8
    both = data.training_arrays("search+train")
    assert len(both[0]) == len(data.x["search"]) + len(data.x["train"]) == len(both[1])
    assert data.training_arrays()[0] is data.x["train"]


def test_checkpoint_normalises_with_a_speakers_statistics_when_given() -> None:
    from emodarts_nni.inference.checkpoint import Checkpoint

    stored = {"mean": [1.0, 1.0], "std": [2.0, 2.0]}
    own = {"mean": [0.0, 0.0], "std": [1.0, 1.0]}
    x = torch.full((1, 2, 3), 3.0)
    speaker = Checkpoint(torch.nn.Identity(), None, ["a"], {"normalisation": "speaker"}, stored)
    assert torch.allclose(speaker.normalise(x), torch.ones_like(x))  # the fallback
    assert torch.allclose(speaker.normalise(x, own), x)
    train = Checkpoint(torch.nn.Identity(), None, ["a"], {"normalisation": "train"}, stored)
    assert torch.allclose(train.normalise(x, own), torch.ones_like(x))  # ignored: not speaker


# ------------------------------------------------------------------------ training
def test_masks_cover_the_asked_spans_with_the_maps_mean() -> None:
    from emodarts_nni.training.module import mask_batch

    x = torch.arange(2 * 6 * 20, dtype=torch.float32).view(2, 6, 20)
    gen = torch.Generator().manual_seed(0)
    out = mask_batch(x, AugmentConfig(time_masks=1, time_width=5), gen)
    assert torch.equal(x, torch.arange(2 * 6 * 20, dtype=torch.float32).view(2, 6, 20))
    for b in range(2):
        changed = (out[b] != x[b]).any(dim=0)  # masked time steps
        assert 1 <= int(changed.sum()) <= 5
        idx = torch.nonzero(changed).flatten()
        assert int(idx[-1] - idx[0]) + 1 == len(idx)  # one contiguous span
        assert torch.allclose(out[b][:, changed], x[b].mean().expand(6, len(idx)))
    out = mask_batch(x, AugmentConfig(freq_masks=2, freq_width=2), gen)
    rows = (out != x).any(dim=2)
    assert (rows.sum(dim=1) >= 1).all() and (rows.sum(dim=1) <= 4).all()
    assert torch.equal(mask_batch(x, AugmentConfig()), x)  # no masks asked: unchanged


def test_a_balanced_loader_draws_classes_equally_often() -> None:
    from emodarts_nni.training.module import make_loader

    y = np.array([0] * 90 + [1] * 10)
    x = np.zeros((100, 2, 2), dtype=np.float32)
    drawn: Counter[int] = Counter()
    for _ in range(20):
        for _, yb in make_loader(x, y, batch_size=50, shuffle=True, seed=1, balanced=True):
            drawn.update(yb.tolist())
    assert 0.4 < drawn[1] / sum(drawn.values()) < 0.6
    plain = Counter(
        int(v) for _, yb in make_loader(x, y, batch_size=50, shuffle=True, seed=1) for v in yb
    )
    assert plain == Counter(y.tolist())


def test_make_training_applies_the_retrain_recipe() -> None:
    from emodarts_nni.training.module import make_training

    y = np.array([0, 0, 0, 1])
    x = np.zeros((4, 2, 2), dtype=np.float32)
    recipe = RetrainConfig(
        epochs=1, balance="loss", label_smoothing=0.2, augment=AugmentConfig(time_masks=1)
    )
    hardware = TrainerConfig(accelerator="cpu", progress=False)
    training = make_training(recipe, hardware, (x, y), (x, y), seed=0, callbacks=[], root_dir=".")
    module = training.module
    assert module.class_counts == [3, 1] and module.label_smoothing == 0.2
    assert module.augment == recipe.augment
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 1])
    weight = torch.tensor([4 / (2 * 3), 4 / (2 * 1)])
    expected = torch.nn.functional.cross_entropy(logits, target, weight=weight, label_smoothing=0.2)
    assert torch.allclose(module.training_loss(logits, target), expected)
    # a class absent from training gets weight 0 rather than a division by zero
    module.class_counts = [3, 0]
    assert torch.isfinite(module.training_loss(logits, target))
    plain = make_training(
        RetrainConfig(epochs=1), hardware, (x, y), (x, y), seed=0, callbacks=[], root_dir="."
    ).module
    assert plain.class_counts is None and plain.label_smoothing == 0 and plain.augment is None


# ------------------------------------------------------------------------ espeak corpus
def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_espeak_corpus", ROOT / "benchmarks" / "make_espeak_corpus.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_espeak_corpus", module)
    spec.loader.exec_module(module)
    return module


def test_the_espeak_plan_is_deterministic_and_balanced(tmp_path: Path) -> None:
    gen = _generator()
    first, again = gen.plan(tmp_path, seed=3, actors=3), gen.plan(tmp_path, seed=3, actors=3)
    assert first == again and first != gen.plan(tmp_path, seed=4, actors=3)
    assert len(first) == 3 * 4 * 8
    assert Counter(p.path.name.split("-")[2] for p in first) == {
        c: 24 for c in ["01", "03", "04", "05"]
    }
    with pytest.raises(ValueError, match="actors"):
        gen.plan(tmp_path, actors=1)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_the_espeak_corpus_is_a_readable_ravdess_layout(tmp_path: Path) -> None:
    from emodarts_nni.data.audio import load_audio
    from emodarts_nni.data.corpora import build_manifest

    gen = _generator()
    paths = gen.make_corpus(tmp_path / "corpus", seed=0, actors=2)
    result = build_manifest("ravdess", tmp_path / "corpus")
    assert len(result.utterances) == len(paths) == 64
    assert {u.speaker for u in result.utterances} == {"Actor_01", "Actor_02"}
    assert Counter(u.label for u in result.utterances) == {
        "neutral": 16,
        "happy": 16,
        "sad": 16,
        "angry": 16,
    }
    signal = load_audio(result.utterances[0].path, 16000)
    assert signal.ndim == 1 and len(signal) > 8000 and np.abs(signal).max() > 0.01
