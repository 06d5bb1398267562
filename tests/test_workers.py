"""Extraction workers die with their parent: ``kill -9`` of ``emodarts features
--workers 2`` must not leave processes extracting afterwards (a real subprocess, a tiny
corpus, bounded polling instead of fixed sleeps)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emodarts_nni.data.manifest import Utterance, write_manifest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def children(pid: int) -> set[int]:
    """Live (non-zombie) processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped running; only its exit status is left


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def test_kill_9_of_features_leaves_no_worker_running(tmp_path):
    # One 8 s clip, hard-linked many times: each link is its own utterance to extract.
    rng = np.random.default_rng(0)
    source = tmp_path / "clip.wav"
    sf.write(source, (0.1 * rng.standard_normal(8 * 16000)).astype(np.float32), 16000)
    utterances = []
    for i in range(600):
        link = tmp_path / f"u{i:03d}.wav"
        os.link(source, link)
        utterances.append(Utterance(str(link), "sad", f"s{i % 4}", "", 8.0))
    manifest = write_manifest(utterances, tmp_path / "m.csv")
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "emodarts_nni.cli.main", "features", str(manifest)]
    command += ["--workers", "2", "--cache-dir", str(cache), "--no-progress"]
    parent = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    workers: set[int] = set()
    try:
        wait_for(
            lambda: any(cache.rglob("*.npy")) or parent.poll() is not None,
            120,
            "the first extracted utterance",
        )
        assert parent.poll() is None, "extraction finished before it could be killed"
        workers = children(parent.pid)
        assert workers, "no worker processes found"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not any(alive(w) for w in workers), 10, f"workers {workers} to end")
        done = len(list(cache.rglob("*.npy")))
        time.sleep(0.5)  # nobody is left to write more
        assert len(list(cache.rglob("*.npy"))) == done < len(utterances)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in workers:  # only if the test failed: do not leave them running
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_parallel_map_reports_every_result_with_its_index():
    import math

    from emodarts_nni.data.workers import parallel_map

    found: dict[int, float] = {}
    parallel_map(math.sqrt, [(float(i * i),) for i in range(20)], 2, found.__setitem__)
    assert found == {i: float(i) for i in range(20)}


def test_parallel_map_raises_the_first_error_of_a_call():
    import math

    from emodarts_nni.data.workers import parallel_map

    with pytest.raises(ValueError, match="math domain error"):
        parallel_map(math.sqrt, [(1.0,), (-1.0,), (4.0,)], 2, lambda i, r: None)
