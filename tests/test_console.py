"""What a user's console shows during ``emodarts run``: progress lines, and no third-party chatter.

The run is a real ``emodarts`` process at tiny size (its stdout and stderr as a terminal
would get them), in-process (``--no-webui``) and as the trial of NNI's web UI: every stage
(corpus, features, search, retrain) prints a progress line and every epoch of both training
stages a line when it ends; the lines the issue listed (Gym's banner, Lightning's GPU/TPU
lines, NNI's WARNING lines, "Sorted weights", ``FutureWarning``) are in ``log.txt``, not on
the console, unless ``--verbose``. The longest silence of a real quickstart is measured,
not timed here (docs/getting-started.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from test_pipeline import tiny_config
from test_webui import free_port

from emodarts_nni.common import progress

pytestmark = pytest.mark.e2e

#: Third-party lines that must not reach the console (issue "Users 2", item 1); NNI's own
#: log lines start with a date stamp (``[2026-12-08 00:22:34] WARNING: …``).
CHATTER = (
    r"Gym has been unmaintained",
    r"GPU available",
    r"TPU available",
    r"(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]",
    r"Sorted weights",
    r"FutureWarning",
    r"max_epochs=",
)
LINE = re.compile(r"^\[\d+:\d\d(:\d\d)?\] (?P<stage>\S+)\s+(?P<text>.*)$")
SEARCH_EPOCHS, RETRAIN_EPOCHS = 2, 2


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _run(tmp_path, cache, *extra: str, webui: bool) -> tuple[str, str]:
    config = tiny_config(
        tmp_path,
        cache,
        webui={"enabled": webui},
        search={"epochs": SEARCH_EPOCHS},
        retrain={"epochs": RETRAIN_EPOCHS, "patience": RETRAIN_EPOCHS},
        trainer={"accelerator": "cpu", "num_threads": 1, "progress": True},
    )
    out = tmp_path / "run"
    command = [sys.executable, "-m", "emodarts_nni.cli.main", "run", str(config), "--out", str(out)]
    command += ["--port", str(free_port())] if webui else ["--no-webui"]
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [*command, *extra], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr, (out / "log.txt").read_text(encoding="utf-8")


def _progress(console: str) -> list[tuple[str, str]]:
    found = []
    for line in console.splitlines():
        match = LINE.match(line)
        if match:
            found.append((match["stage"], match["text"]))
    return found


@pytest.mark.parametrize("webui", [False, True], ids=["no-webui", "webui"])
def test_every_stage_and_epoch_prints_a_line_and_no_chatter_reaches_the_console(
    tmp_path, cache, webui
):
    console, log = _run(tmp_path, cache, webui=webui)
    lines = _progress(console)
    stages = {stage for stage, _ in lines}
    assert {"corpus", "features", "search", "retrain"} <= stages, console
    for stage, epochs in (("search", SEARCH_EPOCHS), ("retrain", RETRAIN_EPOCHS)):
        ends = [t for s, t in lines if s == stage and re.match(r"epoch \d+/\d+ done", t)]
        assert [t.split()[1] for t in ends] == [f"{e}/{epochs}" for e in range(1, epochs + 1)]
    shown = [c for c in CHATTER if re.search(c, console)]
    assert not shown, f"third-party lines on the console: {shown}\n{console}"
    assert "GPU available" in log  # ... they went to log.txt instead


def test_verbose_keeps_the_third_party_lines(tmp_path, cache):
    console, _ = _run(tmp_path, cache, "--verbose", webui=False)
    assert "GPU available" in console


def test_a_heartbeat_says_a_slow_step_still_runs():
    lines: list[str] = []
    with progress.reporting_to(lines.append) as shown:
        shown.line("search", "epoch 1/2  batch 1/9")
        shown.last -= progress.HEARTBEAT_SECONDS  # as if the batch had run that long
        deadline = time.monotonic() + 5
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert lines[0] == "search   epoch 1/2  batch 1/9"
    assert lines[1].startswith("search   still working (")
    assert lines[1].endswith(" since the last line)")
    assert progress.current() is None  # the sink is gone after the block


def test_follow_returns_only_complete_lines(tmp_path):
    path = tmp_path / "progress.log"
    path.write_text("search   a\nsearch   b\nsearch   c")
    lines, offset = progress.follow(path, 0)
    assert lines == ["search   a", "search   b"]
    with path.open("a") as handle:
        handle.write(" done\n")
    assert progress.follow(path, offset) == (["search   c done"], path.stat().st_size)
    assert progress.follow(tmp_path / "missing.log", 0) == ([], 0)
