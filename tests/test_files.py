"""Atomic writes keep results whole and, like any file the user creates, respect the
umask (mkstemp/mkdtemp would make every result 0600 and the corpus folder 0700)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.files import (
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    ensure_folder,
    make_temp_dir,
)

UMASKS = [0o022, 0o077, 0o002]


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", UMASKS)
def test_atomic_writes_respect_the_umask(tmp_path, mask):
    with umask(mask):
        text = atomic_write_text(tmp_path / "log.txt", "hello\n")
        metrics = atomic_write_json(tmp_path / "metrics.json", {"ua": 0.5})
        with atomic_path(tmp_path / "x.npy") as tmp, tmp.open("wb") as fh:
            np.save(fh, np.zeros(3))
        with atomic_path(tmp_path / "y.npy", suffix=".npy") as tmp:
            np.save(tmp, np.zeros(3))  # writers that reopen the path by name
    for path in (text, metrics, tmp_path / "x.npy", tmp_path / "y.npy"):
        assert mode(path) == 0o666 & ~mask, path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "log.txt",
        "metrics.json",
        "x.npy",
        "y.npy",
    ]


def test_a_png_written_through_the_helper_is_world_readable(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with umask(0o022):
        figure = plt.figure(figsize=(1, 1))
        with atomic_path(tmp_path / "alpha.png", suffix=".png") as tmp:
            figure.savefig(tmp)
        plt.close(figure)
    assert mode(tmp_path / "alpha.png") == 0o644


@pytest.mark.parametrize("mask", UMASKS)
def test_temporary_folders_respect_the_umask(tmp_path, mask):
    with umask(mask):
        folder = make_temp_dir(tmp_path, ".corpus.partial-")
    assert folder.parent == tmp_path and folder.name.startswith(".corpus.partial-")
    assert folder.is_dir() and not any(folder.iterdir())
    assert mode(folder) == 0o777 & ~mask
    assert make_temp_dir(tmp_path, ".corpus.partial-") != folder


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_the_synthetic_corpus_folder_and_files_respect_the_umask(tmp_path, mask):
    from emodarts_nni.data.synth import synthesize_corpus

    with umask(mask):
        manifest = synthesize_corpus(
            tmp_path / "corpus",
            n_speakers=2,
            n_sessions=1,
            utterances_per_class_per_speaker=1,
            workers=1,
            progress=False,
        )
    assert mode(manifest.parent) == 0o777 & ~mask
    assert mode(manifest) == 0o666 & ~mask


def test_an_interrupted_write_leaves_neither_file_nor_temporary(tmp_path):
    (tmp_path / "keep.json").write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "keep.json") as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]
    assert (tmp_path / "keep.json").read_text() == "old"


def test_ensure_folder_names_the_culprit_in_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert ensure_folder(tmp_path / "a" / "b", "run folder") == tmp_path / "a" / "b"
    with pytest.raises(DataError, match=f"^run folder {blocker}: exists and is not a folder$"):
        ensure_folder(blocker, "run folder")
    with pytest.raises(DataError, match=f"{blocker} is a file, not a folder$"):
        ensure_folder(blocker / "below", "run folder")


def test_a_run_folder_that_cannot_be_created_is_one_line_error(tmp_path):
    from emodarts_nni.config.experiment import ExperimentConfig
    from emodarts_nni.pipeline.runfolder import RunFolder

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match=f"^run folder {blocker}/run: {blocker} is a file"):
        RunFolder(blocker / "run").start(ExperimentConfig())


def test_out_naming_a_file_is_one_line_error(tmp_path):
    from emodarts_nni.config.experiment import ExperimentConfig
    from emodarts_nni.pipeline.runfolder import RunFolder

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DataError, match=f"^run folder {blocker}: exists and is not a folder$"):
        RunFolder.for_run(ExperimentConfig(), blocker)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_folder_is_one_line_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(DataError, match=f"^run folder {folder}/run: {folder} is not writable$"):
        ensure_folder(folder / "run", "run folder")
