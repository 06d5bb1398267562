"""Reliability cases that are more than one plain CLI call (``tests/hostile/`` holds those).

A full disk, an audio header with an absurd sample rate, an unreachable remote machine and
labels with invisible characters: each ends in one line naming the culprit (exit 2), or a
skipped file listed while the rest is done, and never in a traceback or lost work.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakecorpora import make_iemocap
from quickstart_run import quickstart_checkpoint

from emodarts_nni.cli.main import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The shrunken quickstart run's checkpoint (shared with the predict and export tests)."""
    return quickstart_checkpoint(tmp_path_factory.getbasetemp())


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MiB tmpfs filled up to its last block, holding ``earlier.txt`` (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mount)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("mount is not available")
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        (mount / "earlier.txt").write_text("written earlier\n")
        with open(mount / "filler", "wb", buffering=0) as fh, contextlib.suppress(OSError):
            while True:  # every last block: a tmpfs still makes files and folders
                fh.write(b"\0" * 4096)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _one_line_no_space(capsys, disk: Path) -> None:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("emodarts: error: no space left on "), err[-2000:]
    assert str(disk) in lines[-1]
    assert (disk / "earlier.txt").read_text() == "written earlier\n"
    assert not [p.name for p in disk.iterdir() if p.name.startswith(".")], "temporary left"


def test_predict_onto_a_full_disk_is_one_line(full_disk, checkpoint, tmp_path, capsys):
    wav = tmp_path / "speech.wav"
    sf.write(wav, (0.1 * np.random.default_rng(0).standard_normal(32000)).astype("float32"), 16000)
    out = full_disk / "predictions.csv"
    # a long file name per row makes the CSV larger than what is left
    many = [str(wav)] * 200
    assert main(["predict", str(checkpoint), *many, "-o", str(out), "--no-progress"]) == 2
    _one_line_no_space(capsys, full_disk)
    assert not out.exists()


def test_export_onto_a_full_disk_is_one_line(full_disk, checkpoint, capsys):
    out = full_disk / "model.pt"
    assert main(["export", str(checkpoint), "--format", "torchscript", "-o", str(out)]) == 2
    _one_line_no_space(capsys, full_disk)


def test_corpus_manifest_onto_a_full_disk_is_one_line(full_disk, tmp_path, capsys):
    root = make_iemocap(tmp_path / "iemocap")
    out = full_disk / "manifest.csv"
    assert main(["corpus", "manifest", "iemocap", str(root), "-o", str(out)]) == 2
    _one_line_no_space(capsys, full_disk)


def test_a_run_onto_a_full_disk_is_one_line(full_disk, checkpoint, capsys):
    from quickstart_run import OVERRIDES

    from emodarts_nni.common.shipped import EXPERIMENTS, shipped_folder

    base = checkpoint.parent.parent
    sets = [f"--set={key}={value}" for key, value in OVERRIDES.items()]
    sets += [f"--set=features.cache_dir={base / 'cache'}"]
    config = shipped_folder(EXPERIMENTS) / "quickstart.yaml"
    argv = ["run", str(config), "--out", str(full_disk / "run"), "--no-webui", *sets]
    assert main(argv) == 2
    _one_line_no_space(capsys, full_disk)


def test_a_wav_header_of_1_hz_is_skipped_and_the_rest_predicted(checkpoint, tmp_path, capsys):
    # resampled whole, 32 KB at 1 Hz would take ~2 GB (960 KB: ~30 GB and a MemoryError)
    good = tmp_path / "good.wav"
    sf.write(good, (0.1 * np.random.default_rng(0).standard_normal(32000)).astype("float32"), 16000)
    bad = tmp_path / "one_hertz.wav"
    sf.write(bad, (0.1 * np.random.default_rng(1).standard_normal(16000)).astype("float32"), 1)
    out = tmp_path / "predictions.csv"
    status = main(
        ["predict", str(checkpoint), str(good), str(bad), "-o", str(out), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert status == 1, err[-2000:]
    assert "implausible sample rate 1 Hz" in err and str(bad) in err
    rows = out.read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(str(good))


@pytest.mark.parametrize("command", ["plan", "run"])
def test_a_fifo_as_the_config_is_refused_at_once_not_waited_on(tmp_path: Path, command: str):
    """A FIFO given as the config used to block forever (nothing writes into it)."""
    import os
    import sys

    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    argv = [sys.executable, "-m", "emodarts_nni.cli.main", command, str(fifo)]
    if command == "run":
        argv += ["--no-webui", "--out", str(tmp_path / "out")]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, cwd=tmp_path, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "config.yaml" in last and "not a regular file" in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
