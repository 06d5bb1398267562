"""The main job in-process (no web UI): run folder, metrics, leakage, resume, evaluate, retrain."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import SMALL_SPACE

from emodarts_nni.cli.main import main
from emodarts_nni.config.experiment import load_config
from emodarts_nni.training.metrics import unweighted_accuracy, weighted_accuracy

pytestmark = pytest.mark.e2e


def tiny_config(tmp_path: Path, cache: Path, **sections) -> Path:
    """A config small enough to search + retrain in seconds on 2 cores."""
    data = {
        "name": "tiny",
        "seed": 0,
        "corpus": {
            "kind": "synth",
            "synth": {"n_speakers": 6, "n_sessions": 3, "utterances_per_class_per_speaker": 4},
        },
        "features": {
            "n_mfcc": 16,
            "n_mels": 24,
            "frames": 128,
            "pooled_frames": 16,
            "hop_length": 1000,
            "cache_dir": str(cache),
            "workers": 1,
        },
        "splits": {"protocol": "session", "fold": 0},
        "space": {
            "scope": "emodarts",
            **{k: v for k, v in SMALL_SPACE.items() if k not in ("n_mfcc", "frames")},
        },
        "search": {"epochs": 1, "batch_size": 16, "max_trials": 2, "trial_epochs": 1},
        "retrain": {"epochs": 2, "batch_size": 16},
        "trainer": {"accelerator": "cpu", "num_threads": 2, "progress": False},
        "webui": {"enabled": False},
        "output": {"dir": str(tmp_path / "runs")},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


RUN_FILES = (
    "config.yaml",
    "environment.json",
    "manifest.csv",
    "splits.csv",
    "architecture.json",
    "history.csv",
    "checkpoint.pt",
    "predictions.csv",
    "metrics.json",
    "log.txt",
)


def test_run_writes_a_complete_reproducible_run_folder(tmp_path, cache):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "ua",
        "wa",
        "macro_f1",
        "per_class_recall",
        "confusion_matrix",
        "parameters",
        "search_seconds",
        "retrain_seconds",
    ):
        assert key in metrics
    # metrics agree with the saved predictions
    with (out / "predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    names = metrics["class_names"]
    y_true = [names.index(r["label"]) for r in rows]
    y_pred = [names.index(r["predicted"]) for r in rows]
    assert metrics["ua"] == pytest.approx(unweighted_accuracy(y_true, y_pred))
    assert metrics["wa"] == pytest.approx(weighted_accuracy(y_true, y_pred))
    assert sum(map(sum, metrics["confusion_matrix"])) == len(rows)
    # the checkpoint loads safely and reproduces the predictions
    from emodarts_nni.inference.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert metrics["parameters"] == sum(p.numel() for p in ckpt.model.parameters())
    loaded = load_config(out / "config.yaml")
    assert loaded.seed == 0 and loaded.search.strategy == "darts"
    env = json.loads((out / "environment.json").read_text())
    assert {"nni", "torch", "pytorch-lightning"} <= set(env["versions"])
    arch = json.loads((out / "architecture.json").read_text())
    assert arch["provenance"]["strategy"] == "darts" and arch["provenance"]["fold"] == 0
    history = (out / "history.csv").read_text()
    assert "alpha/normal/2_0/" in history and "retrain" in history


def _hashes(x: np.ndarray) -> set[str]:
    return {
        hashlib.sha1(np.ascontiguousarray(row, dtype=np.float32).tobytes()).hexdigest() for row in x
    }


def test_no_test_speaker_reaches_search_retraining_or_model_selection(tmp_path, cache, monkeypatch):
    import emodarts_nni.training.module as training_mod
    from emodarts_nni.pipeline import data as data_mod
    from emodarts_nni.pipeline.run import run_pipeline

    seen: list[np.ndarray] = []
    prepared = {}
    real_loader, real_prepare = training_mod.make_loader, data_mod.prepare_fold

    def spy_loader(x, y, **kwargs):
        seen.append(np.array(x))
        return real_loader(x, y, **kwargs)

    def spy_prepare(*args, **kwargs):
        prepared["data"] = real_prepare(*args, **kwargs)
        return prepared["data"]

    # every loader of search, trials and retraining comes from training.make_training
    monkeypatch.setattr(training_mod, "make_loader", spy_loader)
    import emodarts_nni.pipeline.run as run_mod

    monkeypatch.setattr(run_mod, "prepare_fold", spy_prepare)
    cfg = load_config(tiny_config(tmp_path, cache))
    run_pipeline(cfg, tmp_path / "leak")
    data = prepared["data"]
    test_speakers = {u.speaker for u in data.part_utterances("test")}
    for part in ("search", "train", "validation"):
        assert not test_speakers & {u.speaker for u in data.part_utterances(part)}
    test_rows = _hashes(data.x["test"])
    assert len(seen) >= 4  # search weights, search α, retrain train, retrain validation
    for x in seen:
        assert not _hashes(x) & test_rows


def test_resume_skips_finished_stages(tmp_path, cache, monkeypatch):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "run"
    assert main(["search", str(config), "--out", str(out)]) == 0
    arch = (out / "architecture.json").read_text()
    import emodarts_nni.pipeline.search as search_mod

    def no_search(*a, **k):
        raise AssertionError("search ran again")

    monkeypatch.setattr(search_mod, "run_search", no_search)
    assert main(["run", str(config), "--out", str(out), "--resume"]) == 0
    assert (out / "architecture.json").read_text() == arch
    assert (out / "metrics.json").is_file()


def test_retrain_and_evaluate_commands(tmp_path, cache, capsys):
    config = tiny_config(tmp_path, cache)
    from emodarts_nni.space.architecture import sample_architecture, save_architecture
    from emodarts_nni.space.model import resolve_space_args

    space = resolve_space_args("emodarts", **SMALL_SPACE)  # the space tiny_config sets
    arch = save_architecture(tmp_path / "random.json", space, sample_architecture(space, seed=5))
    out = tmp_path / "retrained"
    assert main(["retrain", str(arch), str(config), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.pt"), "--json"]) == 0
    printed = capsys.readouterr().out
    rescored = json.loads(printed[printed.index("{") :])
    assert rescored["ua"] == pytest.approx(metrics["ua"])
    assert rescored["confusion_matrix"] == metrics["confusion_matrix"]


def test_a_second_run_never_overwrites_the_first(tmp_path, cache):
    config = tiny_config(tmp_path, cache)
    assert main(["search", str(config)]) == 0
    assert main(["search", str(config)]) == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["tiny-darts-emodarts-fold0", "tiny-darts-emodarts-fold0-2"]


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--set", "search.epoch=3"], "search.epoch"),
        (["--strategy", "tpe"], "tpe"),
        (["--scope", "lstm_onyl"], "lstm_onyl"),
        (["--fold", "7"], "fold"),
    ],
)
def test_bad_input_fails_with_one_line_naming_the_culprit(tmp_path, cache, capsys, args, culprit):
    config = tiny_config(tmp_path, cache)
    assert main(["run", str(config), "--out", str(tmp_path / "bad"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and culprit in err[0] and "Traceback" not in err[0]


def test_checkpoint_is_weights_only(tmp_path, cache):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    payload = torch.load(out / "checkpoint.pt", weights_only=True)
    assert payload["format"] == "emodarts-checkpoint/1"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "emodarts-checkpoint/1", "obj": Path("x")}, evil)
    from emodarts_nni.common.errors import EmodartsError
    from emodarts_nni.inference.checkpoint import load_checkpoint

    with pytest.raises(EmodartsError, match="evil.pt"):
        load_checkpoint(evil)


def test_baseline_runs_under_the_same_protocol(tmp_path, cache):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "base"
    assert main(["baseline", "cnn_lstm_att", str(config), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "baseline" and metrics["scope"] == "cnn_lstm_att"
    from emodarts_nni.inference.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt.architecture is None
    assert metrics["parameters"] == sum(p.numel() for p in ckpt.model.parameters())
    assert main(["baseline", "cnn_lstm_atn", str(config), "--out", str(tmp_path / "x")]) == 2


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(
    ("change", "culprit"),
    [(["--set", "seed=5"], "seed"), (["--fold", "1"], "splits.fold")],
)
def test_resume_refuses_a_changed_config_and_leaves_the_folder_untouched(
    tmp_path, cache, capsys, change, culprit
):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "base"
    assert main(["baseline", "cnn", str(config), "--out", str(out)]) == 0
    before = _folder_bytes(out)
    capsys.readouterr()
    assert main(["baseline", "cnn", str(config), "--out", str(out), "--resume", *change]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and culprit in err[0] and "Traceback" not in err[0]
    assert _folder_bytes(out) == before


def test_a_baseline_run_is_reproducible_in_one_process(tmp_path, cache):
    """The baseline's initial weights follow ``seed``, not whatever ran before it."""
    config = tiny_config(tmp_path, cache)
    for out in ("first", "second"):
        assert main(["baseline", "cnn", str(config), "--out", str(tmp_path / out)]) == 0
    first, second = (tmp_path / "first", tmp_path / "second")
    assert (first / "predictions.csv").read_bytes() == (second / "predictions.csv").read_bytes()
    assert (first / "history.csv").read_bytes() == (second / "history.csv").read_bytes()


def test_resume_after_retraining_only_evaluates_from_the_checkpoint(tmp_path, cache, monkeypatch):
    config = tiny_config(tmp_path, cache)
    out = tmp_path / "base"
    assert main(["baseline", "cnn", str(config), "--out", str(out)]) == 0
    predictions = (out / "predictions.csv").read_bytes()
    metrics = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").unlink()  # as if killed between checkpoint.pt and metrics.json
    (out / "predictions.csv").unlink()
    import emodarts_nni.pipeline.run as run_mod

    def no_retrain(*a, **k):
        raise AssertionError("retrained again")

    monkeypatch.setattr(run_mod, "retrain", no_retrain)
    assert main(["baseline", "cnn", str(config), "--out", str(out), "--resume"]) == 0
    assert (out / "predictions.csv").read_bytes() == predictions
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_kill_during_retraining_then_resume_keeps_one_history_row_per_epoch(tmp_path, cache):
    import os
    import subprocess
    import sys
    import time

    from emodarts_nni.pipeline.runfolder import RunFolder

    epochs = 12
    config = tiny_config(tmp_path, cache, retrain={"epochs": epochs})
    reference = tmp_path / "reference"
    assert main(["baseline", "cnn", str(config), "--out", str(reference)]) == 0

    out = RunFolder(tmp_path / "killed")
    command = [sys.executable, "-m", "emodarts_nni.cli.main", "baseline", "cnn", str(config)]
    process = subprocess.Popen(
        [*command, "--out", str(out.path)],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            if len(out.read_history()) >= 2:  # written atomically: never half a file
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.kill()
    finally:
        process.kill()
        process.wait()
    killed_rows = len(out.read_history())
    assert 2 <= killed_rows < epochs and not out.done("retrain")

    assert main([*command[3:], "--out", str(out.path), "--resume"]) == 0
    epochs_seen = [(r["stage"], r["epoch"]) for r in out.read_history()]
    assert epochs_seen == [("retrain", epoch) for epoch in range(epochs)]
    assert out.predictions.read_bytes() == (reference / "predictions.csv").read_bytes()


def test_a_random_oneshot_search_is_reproducible_in_one_process(tmp_path, cache):
    """NNI's RandomOneShot samples (and exports) with Python's global ``random``; the search
    seeds it from ``seed``, so two identical searches export the same architecture."""
    config = tiny_config(tmp_path, cache)
    chosen = []
    for out in ("first", "second"):
        argv = ["search", str(config), "--strategy", "random-oneshot", "--no-webui"]
        assert main([*argv, "--out", str(tmp_path / out)]) == 0
        chosen.append(
            json.loads((tmp_path / out / "architecture.json").read_text())["architecture"]
        )
    assert chosen[0] == chosen[1]
