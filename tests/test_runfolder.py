"""The run folder type: file names, naming, stage state, history, metrics, resume check."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.config.experiment import config_from_dict, dump_config
from emodarts_nni.pipeline.runfolder import STAGES, RunFolder


def _cfg(tmp_path: Path, **overrides):
    data = {"name": "tiny", "corpus": {"kind": "synth"}, "output": {"dir": str(tmp_path / "runs")}}
    return config_from_dict(data, overrides=overrides)


def test_every_file_of_a_run_folder_is_named_by_the_folder(tmp_path: Path):
    folder = RunFolder(tmp_path / "run")
    expected = {
        "config": "config.yaml",
        "environment": "environment.json",
        "manifest": "manifest.csv",
        "splits": "splits.csv",
        "architecture": "architecture.json",
        "history": "history.csv",
        "checkpoint": "checkpoint.pt",
        "predictions": "predictions.csv",
        "metrics": "metrics.json",
        "log": "log.txt",
        "nni": "nni",
        "fold_arrays": "data/fold.npz",
    }
    for attribute, name in expected.items():
        assert getattr(folder, attribute) == tmp_path / "run" / name, attribute
    assert folder.picture(RunFolder.CELL_PNG, kind="seq") == tmp_path / "run" / "cell_seq.png"
    assert folder.picture(RunFolder.CONFUSION_PNG).name == "confusion_matrix.png"


def test_folder_names_and_numbered_siblings(tmp_path: Path):
    cfg = _cfg(tmp_path, **{"splits.fold": 1, "search.strategy": "enas"})
    first = RunFolder.for_run(cfg)
    assert first.path == tmp_path / "runs" / "tiny-enas-emodarts-fold1"
    baseline = RunFolder.for_run(cfg, baseline="cnn")
    assert baseline.path.name == "tiny-baseline-cnn-fold1"
    first.start(cfg)  # now non-empty: the next run gets a sibling, never this folder
    assert RunFolder.for_run(cfg).path.name == "tiny-enas-emodarts-fold1-2"
    assert RunFolder.for_run(cfg, tmp_path / "elsewhere").path == tmp_path / "elsewhere"


def test_start_writes_config_and_environment_once(tmp_path: Path):
    cfg = _cfg(tmp_path)
    folder = RunFolder(tmp_path / "run")
    folder.start(cfg)
    environment = json.loads(folder.environment.read_text())
    assert environment["seed"] == 0 and {"torch", "nni"} <= set(environment["versions"])
    before = folder.config.read_text(), folder.environment.read_text()
    folder.start(_cfg(tmp_path, seed=3))
    assert (folder.config.read_text(), folder.environment.read_text()) == before


def test_a_stage_is_done_when_its_output_exists(tmp_path: Path):
    folder = RunFolder(tmp_path)
    assert not any(folder.done(stage) for stage in STAGES)
    folder.architecture.write_text("{}")
    folder.checkpoint.write_bytes(b"x")
    assert [folder.done(stage) for stage in STAGES] == [True, True, False]
    folder.metrics.write_text("{}")
    assert not folder.done("evaluate")  # metrics without predictions: not finished
    folder.predictions.write_text("path\n")
    assert all(folder.done(stage) for stage in STAGES)
    with pytest.raises(EmodartsError, match="unknown stage 'export'"):
        folder.done("export")


def test_history_round_trips_with_numbers_parsed_and_text_kept(tmp_path: Path):
    folder = RunFolder(tmp_path)
    rows = [
        {"stage": "search", "epoch": 0, "val_ua": 0.25, "alpha/normal/2_0/conv": 0.5},
        {"stage": "search", "epoch": 1, "trial": "01234", "val_ua": 0.5},
        {"stage": "retrain", "epoch": 0, "train_loss": 1.5},
    ]
    folder.write_history(rows)
    text = folder.history.read_text()
    assert text.splitlines()[0] == "stage,epoch,alpha/normal/2_0/conv,train_loss,trial,val_ua"
    read = folder.read_history()
    assert read[0]["epoch"] == 0 and isinstance(read[0]["epoch"], int)
    assert read[1]["trial"] == "01234" and read[1]["val_ua"] == 0.5
    assert read[2]["train_loss"] == 1.5 and read[2]["val_ua"] == ""
    folder.write_history(read)  # a resumed run rewrites the file it read: unchanged
    assert folder.history.read_text() == text


def test_missing_history_is_empty_and_unreadable_history_names_the_file(tmp_path: Path):
    folder = RunFolder(tmp_path)
    assert folder.read_history() == []
    folder.history.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EmodartsError, match="history.csv"):
        folder.read_history()


def test_metrics_round_trip_and_refuse_a_non_object(tmp_path: Path):
    folder = RunFolder(tmp_path)
    folder.write_metrics({"ua": 0.5, "wa": 0.25})
    assert folder.read_metrics() == {"ua": 0.5, "wa": 0.25}
    folder.metrics.write_text("[1, 2]")
    with pytest.raises(EmodartsError, match="metrics.json: not a JSON object"):
        folder.read_metrics()


def test_resume_needs_a_started_folder(tmp_path: Path):
    with pytest.raises(EmodartsError, match="config.yaml missing"):
        RunFolder.for_run(_cfg(tmp_path), tmp_path / "empty", resume=True)


def test_resume_accepts_changes_that_do_not_change_results(tmp_path: Path):
    folder = RunFolder(tmp_path / "run")
    dump_config(_cfg(tmp_path), folder.config)
    neutral = {
        "webui.port": 9999,
        "webui.enabled": False,
        "trainer.progress": False,
        "trainer.num_threads": 1,
        "features.workers": 3,
        "features.cache_dir": str(tmp_path / "cache2"),
        "output.dir": str(tmp_path / "other"),
    }
    resumed = RunFolder.for_run(_cfg(tmp_path, **neutral), folder.path, resume=True)
    assert resumed.path == folder.path


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"seed": 5}, ["seed"]),
        ({"splits.fold": 1}, ["splits.fold"]),
        ({"search.strategy": "enas", "retrain.epochs": 3}, ["retrain.epochs", "search.strategy"]),
        ({"search.params": {"gradient_clip_val": 1.0}}, ["search.params"]),
    ],
)
def test_resume_refuses_a_config_that_changes_results_naming_the_keys(
    tmp_path: Path, overrides, keys
):
    folder = RunFolder(tmp_path / "run")
    dump_config(_cfg(tmp_path), folder.config)
    before = folder.config.read_bytes()
    with pytest.raises(EmodartsError) as excinfo:
        RunFolder.for_run(_cfg(tmp_path, **overrides), folder.path, resume=True)
    message = str(excinfo.value)
    assert "\n" not in message and "config.yaml" in message
    for key in keys:
        assert key in message
    assert message.index(keys[0]) <= message.index(keys[-1])  # sorted, stable order
    assert folder.config.read_bytes() == before


def test_run_folder_module_needs_neither_torch_nor_nni():
    code = (
        "import sys, emodarts_nni.pipeline.runfolder, emodarts_nni.reporting.runs; "
        "print(sorted(m for m in ('torch', 'nni') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_import_cycle_between_the_search_modules():
    code = (
        "import sys, emodarts_nni.pipeline.multitrial; "
        "print('emodarts_nni.pipeline.search' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
