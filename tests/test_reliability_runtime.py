"""Nothing NNI starts outlives the command that started it, however that command ends.

NNI's manager (Node.js) runs in its own process group with its dispatcher and trials, so a
signal to our process group never reaches it, and a SIGKILL of our process gives it no
chance to stop it. Each test here starts ``emodarts`` as a real subprocess at tiny sizes,
waits until a trial runs under the manager, ends the command one way, and then checks,
within a bounded wait, that the web UI's port is closed (``ss -ltn``) and that no manager,
dispatcher or trial is left in the process table.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml
from test_nni_runtime import _poll
from test_pipeline import tiny_config
from test_webui import free_port, listening_addresses

REPO = Path(__file__).resolve().parents[1]
#: Upper bound for anything a test waits for (polled, never slept through).
DEADLINE = 90.0
#: How long what NNI started may take to go away once the command has ended.
CLEAN_UP_SECONDS = 20.0


def _port_open(port: int) -> bool:
    """Whether something listens on ``port`` (``ss -ltn`` where it exists, else psutil)."""
    if shutil.which("ss"):
        listing = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        return any(
            line.split()[3].rsplit(":", 1)[-1] == str(port)
            for line in listing.splitlines()
            if len(line.split()) > 3
        )
    return bool(listening_addresses(port))


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _processes_under(folder: Path) -> list[psutil.Process]:
    """Living processes whose command line or working directory is inside ``folder``."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            where = " ".join(process.info["cmdline"] or []) + " " + (process.info["cwd"] or "")
        except (psutil.Error, TypeError):
            continue
        if str(folder) in where and process.pid != os.getpid() and _alive(process):
            found.append(process)
    return found


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _is_trial(process: psutil.Process) -> bool:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "emodarts_nni" in command and "trial" in command


def _start(args: list[str], home: Path, *, own_group: bool) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "emodarts_nni.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
        start_new_session=own_group,
    )


def _end_and_check(
    cli: subprocess.Popen, port: int, end: Callable[[subprocess.Popen], None], folder: Path
) -> str:
    """Once a trial runs under ``cli``'s manager, ``end(cli)``; check nothing is left."""
    try:
        _poll(lambda: cli.poll() is not None or any(map(_is_trial, _descendants(cli.pid))))
        assert cli.poll() is None, cli.communicate()[1][-3000:]
        assert _port_open(port), f"the web UI does not listen on {port}"
        started = _descendants(cli.pid)
        assert any("node" in p.name() for p in started), "no NNI manager was started"
        end(cli)
        _, stderr = cli.communicate(timeout=DEADLINE)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()
    _poll(lambda: not _port_open(port), timeout=CLEAN_UP_SECONDS)
    _poll(lambda: not any(_alive(p) for p in started), timeout=CLEAN_UP_SECONDS)
    _poll(lambda: not _processes_under(folder), timeout=CLEAN_UP_SECONDS)
    # and nothing new appears afterwards (a manager left alone would start the next trial)
    time.sleep(2)
    assert not _processes_under(folder), _processes_under(folder)
    assert not _port_open(port)
    return stderr


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _study(tmp_path: Path, cache: Path) -> Path:
    base = tiny_config(tmp_path, cache, search={"epochs": 3})
    data = {
        "name": "orphans",
        "base": base.name,
        "grid": {"splits.fold": [0, 1], "search.strategy": ["darts"]},
        "overrides": {"space.scope": "cnn_only", "space.seq_cells": 0},
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _killpg(signum: int) -> Callable[[subprocess.Popen], None]:
    return lambda cli: os.killpg(cli.pid, signum)


@pytest.mark.e2e
def test_sighup_to_the_group_of_a_run_with_the_web_ui_leaves_nothing(
    tmp_path: Path, cache: Path
) -> None:
    config = tiny_config(tmp_path, cache, webui={"enabled": True}, search={"epochs": 3})
    port = free_port()
    args = ["run", str(config), "--out", str(tmp_path / "run"), "--port", str(port)]
    cli = _start(args, tmp_path / "home", own_group=True)
    stderr = _end_and_check(cli, port, _killpg(signal.SIGHUP), tmp_path)
    assert cli.returncode == 130, stderr
    assert "Traceback" not in stderr


@pytest.mark.e2e
def test_sighup_to_the_group_of_a_study_leaves_nothing(tmp_path: Path, cache: Path) -> None:
    port = free_port()
    args = ["study", str(_study(tmp_path, cache)), "--out", str(tmp_path / "study")]
    cli = _start([*args, "--port", str(port)], tmp_path / "home", own_group=True)
    stderr = _end_and_check(cli, port, _killpg(signal.SIGHUP), tmp_path)
    assert cli.returncode == 130, stderr
    assert "Traceback" not in stderr


@pytest.mark.e2e
def test_sigkill_of_a_study_takes_its_manager_dispatcher_and_trials_with_it(
    tmp_path: Path, cache: Path
) -> None:
    port = free_port()
    args = ["study", str(_study(tmp_path, cache)), "--out", str(tmp_path / "study")]
    cli = _start([*args, "--port", str(port)], tmp_path / "home", own_group=False)
    _end_and_check(cli, port, lambda process: process.kill(), tmp_path)
    assert cli.returncode == -signal.SIGKILL


# ------------------------------------------- configs that used to fail after the work began

TINY = [
    "search.epochs=1",
    "retrain.epochs=1",
    "corpus.synth.n_speakers=4",
    "corpus.synth.n_sessions=2",
    "corpus.synth.utterances_per_class_per_speaker=3",
    "splits.n_folds=2",
    "features.n_mfcc=20",
    "features.n_mels=20",
    "features.frames=32",
    "features.pooled_frames=32",
    "space.init_channels=2",
    "space.cnn_nodes=1",
    "space.seq_nodes=1",
    "space.hidden=8",
    "search.warmup_epochs=0",
    "trainer.progress=false",
]


def _tiny_args(tmp_path: Path, *extra: str) -> list[str]:
    sets = [f"--set={value}" for value in [*TINY, *extra]]
    sets.append(f"--set=features.cache_dir={tmp_path / 'cache'}")
    return ["run", "quickstart", "--no-webui", "--out", str(tmp_path / "out"), *sets]


def test_a_gpu_run_without_a_gpu_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "emodarts_nni.cli.main"]
        + _tiny_args(tmp_path, "trainer.accelerator=gpu"),
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "trainer.accelerator = 'gpu': no GPU is visible" in last
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.e2e
def test_a_run_without_a_validation_part_keeps_the_last_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from emodarts_nni.cli.main import main

    monkeypatch.chdir(tmp_path)
    args = _tiny_args(tmp_path, "splits.validation_fraction=0", "retrain.patience=null")
    assert main(args) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["best_epoch"] == 0 and metrics["val_ua"] is None
