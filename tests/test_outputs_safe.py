"""An output never replaces an input, and what a command prints is what happened.

Group A of "Reliability 2": every command that writes a file refuses (one line, status 2,
before any work) an output that is one of its inputs, lies inside a run or study folder,
or is not a regular file; two runs never share one folder; a study resumes only with the
study file that started it. Group D: wrong or unclear output turned into one clear line.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import LOCK_FILE, RESULT_FOLDER_MARKERS, lock_folder
from emodarts_nni.pipeline.runfolder import RunFolder, take_folder
from emodarts_nni.study.trial import CELLS_FILE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The session's tiny quickstart checkpoint (shared with the predict/export tests)."""
    from quickstart_run import quickstart_checkpoint

    return quickstart_checkpoint(tmp_path_factory.getbasetemp())


@pytest.fixture()
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "speech.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(16000)).astype("float32"), 16000)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(capsys, argv: list[str], culprit: str) -> str:
    """Run ``emodarts argv``: status 2 and one error line naming ``culprit``; the line."""
    assert main([str(a) for a in argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emodarts: error: "), lines
    assert culprit in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------- A1 onto an input
def test_the_result_folder_markers_are_their_owners_names():
    assert RESULT_FOLDER_MARKERS == (
        ((RunFolder.CONFIG, RunFolder.ENVIRONMENT), "run folder"),
        ((CELLS_FILE,), "study folder"),
    )


def test_predict_never_writes_over_its_checkpoint(capsys, checkpoint: Path, wav: Path):
    before = _digest(checkpoint)
    _refused(capsys, ["predict", checkpoint, wav, "-o", checkpoint], "is an input")
    assert _digest(checkpoint) == before


def test_export_never_writes_over_its_checkpoint(capsys, checkpoint: Path, tmp_path: Path):
    before = _digest(checkpoint)
    _refused(capsys, ["export", checkpoint, "--format", "torchscript", "-o", checkpoint], "input")
    link = tmp_path / "hard.pt"  # another name for the same inode
    os.link(checkpoint, link)
    _refused(capsys, ["export", link, "--format", "torchscript", "-o", checkpoint], "input")
    assert _digest(checkpoint) == before


def test_export_sidecar_never_lands_in_a_run_folder(capsys, checkpoint: Path):
    run = checkpoint.parent
    before = _digest(run / "architecture.json")
    argv = ["export", checkpoint, "--format", "onnx", "-o", run / "architecture"]
    _refused(capsys, argv, f"inside the run folder {run}")
    assert _digest(run / "architecture.json") == before
    assert not (run / "architecture").exists()


def test_export_sidecar_onto_an_input_is_refused(capsys, checkpoint: Path, tmp_path: Path):
    named = tmp_path / "model.pt.json"  # a checkpoint that is -o model.pt's sidecar
    named.write_bytes(checkpoint.read_bytes())
    argv = ["export", named, "--format", "torchscript", "-o", tmp_path / "model.pt"]
    _refused(capsys, argv, "its sidecar")
    assert named.read_bytes() == checkpoint.read_bytes()
    assert not (tmp_path / "model.pt").exists()


def test_corpus_manifest_never_rewrites_its_source_csv(capsys, tmp_path: Path, wav: Path):
    source = tmp_path / "X.csv"
    source.write_text(f"path,label,speaker\n{wav},angry,s1\n{wav},sad,s2\nmissing.wav,sad,s3\n")
    before = _digest(source)
    _refused(capsys, ["corpus", "manifest", "csv", source, "-o", source], "is an input")
    assert _digest(source) == before


def test_corpus_splits_never_rewrites_its_manifest(capsys, tmp_path: Path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker,session,duration\n")
    _refused(capsys, ["corpus", "splits", manifest, "-o", manifest], "is an input")
    assert manifest.read_text() == "path,label,speaker,session,duration\n"


def test_predict_output_inside_a_run_or_study_folder_is_refused(
    capsys, checkpoint: Path, wav: Path, tmp_path: Path
):
    _refused(capsys, ["predict", checkpoint, wav, "-o", checkpoint.parent / "p.csv"], "run folder")
    study = tmp_path / "study"
    (study / "cell" / "deep").mkdir(parents=True)
    (study / CELLS_FILE).write_text("{}")
    _refused(capsys, ["predict", checkpoint, wav, "-o", study / "cell/deep/p.csv"], "study folder")
    assert not (checkpoint.parent / "p.csv").exists()


# --------------------------------------------------------------------- A2 non-regular targets
def test_predict_refuses_a_fifo_and_a_symlink(capsys, checkpoint: Path, wav: Path, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused(capsys, ["predict", checkpoint, wav, "-o", fifo], "not a regular file")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    link = tmp_path / "out"
    link.symlink_to("/proc/self/fd/1")
    _refused(capsys, ["predict", checkpoint, wav, "-o", link], "symbolic link")
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_export_refuses_a_character_device(capsys, checkpoint: Path, tmp_path: Path):
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    _refused(capsys, ["export", checkpoint, "--format", "torchscript", "-o", device], "regular")
    assert stat.S_ISCHR(device.lstat().st_mode)


# --------------------------------------------------------------------- A3 one folder, one run
_CLAIM = textwrap.dedent(
    """
    import sys, time
    from emodarts_nni.config.experiment import ExperimentConfig
    from emodarts_nni.pipeline.runfolder import RunFolder
    sys.stdin.readline()  # start together
    try:
        folder = RunFolder.for_run(ExperimentConfig(), sys.argv[1], resume=sys.argv[2] == "1")
    except Exception as exc:
        print("refused:", exc, flush=True)
        raise SystemExit(2)
    print(folder.path, flush=True)
    time.sleep(1.5)  # hold the folder while the other one tries
    """
)


def _racers(out: Path, n: int, resume: bool = False) -> list[str]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIM, str(out), "1" if resume else "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(n)
    ]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return [proc.communicate(timeout=60)[0].strip() for proc in procs]


def test_two_runs_started_together_never_share_a_folder(tmp_path: Path):
    out = tmp_path / "same"
    claimed = _racers(out, 3)
    assert sorted(claimed) == sorted(str(out) + s for s in ("", "-2", "-3")), claimed


def test_a_folder_in_use_refuses_a_resume_naming_the_process(tmp_path: Path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", _CLAIM, str(folder), "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == str(folder)
    with pytest.raises(
        EmodartsError, match=f"run folder {folder} is in use by process {holder.pid}"
    ):
        take_folder(folder, "run folder")
    holder.wait(timeout=30)
    assert lock_folder(folder) is None  # released when the holder ended
    assert (folder / LOCK_FILE).is_file()


# --------------------------------------------------------------------- A4 study --resume
def test_study_resume_refuses_another_study_file(capsys, tmp_path: Path):
    base = ROOT / "experiments" / "quickstart.yaml"
    study_a = f"name: s\nbase: {base}\noverrides:\n  search.epochs: 1\ngrid:\n  splits.fold: [0]\n"
    study_b = study_a.replace("search.epochs: 1", "search.epochs: 2")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "study.yaml").write_text(study_a)
    (folder / CELLS_FILE).write_text('{"cells": []}\n')
    (tmp_path / "B.yaml").write_text(study_b)
    argv = ["study", tmp_path / "B.yaml", "--out", folder, "--resume", "--no-webui"]
    line = _refused(capsys, argv, "overrides.search.epochs (1 -> 2)")
    assert "study.yaml" in line
    assert (folder / CELLS_FILE).read_text() == '{"cells": []}\n'
    assert sorted(p.name for p in folder.iterdir()) == [CELLS_FILE, "study.yaml"]


# --------------------------------------------------------------------- D wrong or unclear output
def test_a_checkpoint_with_nan_weights_is_refused_at_load(capsys, checkpoint: Path, wav, tmp_path):
    import torch

    payload = torch.load(checkpoint, weights_only=True)
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name] = torch.full_like(payload["state_dict"][name], float("nan"))
    broken = tmp_path / "nan.pt"
    torch.save(payload, broken)
    line = _refused(capsys, ["predict", broken, wav], f"non-finite weights in {name}")
    assert str(broken) in line


def test_a_huge_n_fft_is_named_not_max_seconds():
    from emodarts_nni.common.errors import ConfigError
    from emodarts_nni.config.experiment import config_from_dict

    with pytest.raises(ConfigError, match=r"features\.n_fft = 1099511627776") as caught:
        config_from_dict({"features": {"n_fft": 2**40}})
    assert "features.max_seconds =" not in str(caught.value)


def test_a_single_class_manifest_is_refused_before_any_work(capsys, tmp_path: Path, wav: Path):
    manifest = tmp_path / "one.csv"
    for i in range(6):
        (tmp_path / f"{i}.wav").write_bytes(wav.read_bytes())
    rows = "".join(f"{tmp_path / f'{i}.wav'},angry,s{i},S{i},1.0\n" for i in range(6))
    manifest.write_text("path,label,speaker,session,duration\n" + rows)
    argv = ["run", "quickstart", "--no-webui", "--out", tmp_path / "run"]
    argv += ["--set=corpus.kind=manifest", "--set=corpus.synth=null"]
    argv += [f"--set=corpus.manifest={manifest}"]
    argv += [f"--set=features.cache_dir={tmp_path / 'cache'}", "--set=trainer.progress=false"]
    _refused(capsys, argv, f"{manifest}: every utterance is labelled 'angry'")
    assert not (tmp_path / "run" / RunFolder.ARCHITECTURE).exists()


def test_a_synth_corpus_with_a_root_is_refused(capsys, tmp_path: Path):
    argv = ["plan", "quickstart", f"--set=corpus.root={tmp_path}"]
    _refused(capsys, argv, "corpus.root")


def test_labels_with_invisible_characters_are_shown_with_repr():
    from emodarts_nni.common.errors import DataError
    from emodarts_nni.data.manifest import Utterance, require_classes

    hidden = "an\u200bgry"
    utterances = [Utterance(f"{i}.wav", hidden, "s", "S", 1.0) for i in range(2)]
    with pytest.raises(DataError, match=r"labelled 'an\\u200bgry'"):
        require_classes(utterances, "m.csv")


# --------------------------------------------------------------------- fuzzing -o
def test_random_output_paths_never_change_an_input(tmp_path_factory):
    """``corpus splits MANIFEST -o PATH`` for PATH among inputs, run-folder files, folders,
    links, devices and missing parents: status 0 or 2, and no input or run file changes."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    root = tmp_path_factory.mktemp("fuzz-outputs")
    manifest = root / "manifest.csv"
    rows = "".join(
        f"{root}/{i}.wav,{['angry', 'sad'][i % 2]},s{i % 4},S{i % 2},1\n" for i in range(16)
    )
    manifest.write_text("path,label,speaker,session,duration\n" + rows)
    run = root / "run"
    run.mkdir()
    for name in (RunFolder.CONFIG, RunFolder.ENVIRONMENT, RunFolder.ARCHITECTURE):
        (run / name).write_text(name)
    (root / "folder").mkdir()
    (root / "link").symlink_to(manifest)
    (root / "dangling").symlink_to(root / "nowhere")
    os.mkfifo(root / "fifo")
    guarded = [
        manifest,
        *(run / n for n in (RunFolder.CONFIG, RunFolder.ENVIRONMENT, RunFolder.ARCHITECTURE)),
    ]
    candidates = [
        manifest, root / "link", root / "dangling", root / "fifo", root / "folder", run,
        run / RunFolder.ARCHITECTURE, run / "new.csv", run / "nni" / "deep.csv",
        root / "missing" / "parent" / "s.csv", root / "folder" / "s.csv", root / "s.csv",
        root / "manifest.csv" / "under_a_file.csv", Path("/dev/null"), Path("/proc/self/fd/1"),
    ]  # fmt: skip

    @settings(max_examples=30, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(st.sampled_from(candidates), st.sampled_from(["", "/", "/.", "/../manifest.csv"]))
    def check(target: Path, tail: str) -> None:
        before = {p: p.read_bytes() for p in guarded}
        kinds = {p: p.lstat().st_mode for p in (root / "link", root / "fifo", root / "dangling")}
        status = main(
            ["corpus", "splits", str(manifest), "--protocol", "speaker", "-o", f"{target}{tail}"]
        )
        assert status in (0, 2)
        assert {p: p.read_bytes() for p in guarded} == before
        assert {p: p.lstat().st_mode for p in kinds} == kinds
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)

    check()


# --------------------------------------------------------------------- report --out
def _files_below(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture()
def reported_runs(tmp_path: Path) -> Path:
    """A folder holding one tiny finished baseline run (two cheap pictures)."""
    from test_report import make_run

    make_run(tmp_path / "runs", "baseline-cnn-fold0", ua=0.5, wa=0.5, fold=0,
             strategy="baseline", scope="cnn")  # fmt: skip
    return tmp_path / "runs"


def test_report_out_refuses_a_file_another_result_folder_and_an_unwritable_place(
    capsys, monkeypatch, reported_runs: Path, tmp_path: Path
):
    before = _files_below(reported_runs)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    _refused(capsys, ["report", reported_runs, "--out", a_file], "exists and is not a folder")
    _refused(capsys, ["report", reported_runs, "--out", a_file / "sub"], "is a file, not a folder")
    other_run = tmp_path / "other-run"
    (other_run / "deep").mkdir(parents=True)
    for name in (RunFolder.CONFIG, RunFolder.ENVIRONMENT):
        (other_run / name).write_text(name)
    line = _refused(capsys, ["report", reported_runs, "--out", other_run / "deep"], "run folder")
    assert f"--out {other_run / 'deep'}: is inside the run folder {other_run}" in line
    study = tmp_path / "study"
    study.mkdir()
    (study / CELLS_FILE).write_text("{}")
    _refused(capsys, ["report", reported_runs, "--out", study / "new"], "study folder")
    monkeypatch.setattr("emodarts_nni.common.files.os.access", lambda *a, **k: False)
    _refused(capsys, ["report", reported_runs, "--out", tmp_path / "new"], "is not writable")
    monkeypatch.undo()
    assert _files_below(reported_runs) == before and a_file.read_text() == "mine"
    assert not (other_run / "deep" / "report.md").exists() and not (study / "new").exists()
    assert not (tmp_path / "new").exists()


def test_report_out_takes_every_run_file_and_leaves_the_run_folders_alone(
    capsys, reported_runs: Path, tmp_path: Path
):
    before = _files_below(reported_runs)
    out = tmp_path / "out"
    assert main(["report", str(reported_runs), "--out", str(out)]) == 0
    assert _files_below(reported_runs) == before  # no picture added to the run folder
    written = set(_files_below(out))
    assert {"report.md", "summary.csv", "runs.csv"} <= written
    assert "baseline-cnn-fold0/confusion_matrix.png" in written
    assert f"written into {out}" in capsys.readouterr().out


def test_report_out_may_be_the_run_folder_it_reports(capsys, reported_runs: Path):
    run = reported_runs / "baseline-cnn-fold0"
    (run / RunFolder.ENVIRONMENT).write_text("{}")  # a run folder by its markers
    assert main(["report", str(run), "--out", str(run)]) == 0
    assert (run / "report.md").is_file()


def test_study_report_out_goes_to_out_not_the_study_folder(capsys, tmp_path: Path):
    from test_study import fake_study

    study = fake_study(
        tmp_path,
        grid={"splits.fold": [0, 1], "search.strategy": ["darts"]},
        controls={"random_architectures": 1},
    )
    before = _files_below(study)
    out = tmp_path / "elsewhere" / "study-report"
    assert main(["report", str(study), "--out", str(out)]) == 0
    assert _files_below(study) == before
    assert {"report.md", "folds.csv", "report.csv"} <= set(_files_below(out))
    assert f"study report: {out / 'report.md'}" in capsys.readouterr().out
