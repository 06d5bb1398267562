"""``emodarts study`` end to end at tiny sizes: killed and resumed; in NNI's web UI.

A study of 2 folds x 2 strategies + 1 random architecture + 1 baseline + the classical
control (10 cells) is killed (SIGKILL, a real subprocess) after some cells finished and
resumed; the finished cells are never run again and the report's numbers are the run
folders' ``metrics.json``. A smaller study runs through NNI and its REST API (the web UI's
own data source) lists every cell with its parameters.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_pipeline import tiny_config
from test_webui import free_port

from emodarts_nni.cli.main import main
from emodarts_nni.study.statistics import exact_ua

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def write_study(tmp_path: Path, cache: Path, **study) -> Path:
    base = tiny_config(tmp_path, cache)
    data = {
        "name": "tiny_study",
        "base": base.name,
        "grid": {"splits.fold": [0, 1], "search.strategy": ["darts", "random-oneshot"]},
        "controls": {"random_architectures": 1, "baselines": ["cnn"], "classical": True},
        # the CNN-only scope: the SeqNN candidates dominate a CPU search step
        "overrides": {"space.scope": "cnn_only", "space.seq_cells": 0},
        **study,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def finished(out: Path) -> dict[str, float]:
    """``{cell: mtime of its metrics.json}``."""
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/metrics.json")}


def test_killed_study_resumes_only_unfinished_cells_and_reports_the_run_folders(
    tmp_path, cache, capsys
):
    study = write_study(tmp_path, cache, primary={"arm": "darts", "against": "random-arch"})
    out = tmp_path / "study"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable,
        "-m",
        "emodarts_nni.cli.main",
        "study",
        str(study),
        "--out",
        str(out),
        "--no-webui",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 400
    try:
        while len(finished(out)) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate()
    assert process.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    before = finished(out)
    cells = json.loads((out / "study.json").read_text())["cells"]
    assert len(cells) == 10 and 3 <= len(before) < 10

    assert main(["study", str(study), "--out", str(out), "--resume", "--no-webui"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(before)} cell(s) finished already; running {10 - len(before)}" in printed
    after = finished(out)
    assert set(after) == {cell["id"] for cell in cells}
    for cell_id, mtime in before.items():  # never run again
        assert after[cell_id] == mtime, cell_id

    metrics = {c["id"]: json.loads((out / c["id"] / "metrics.json").read_text()) for c in cells}
    arms = {c["id"]: c["arm"] for c in cells}
    assert set(arms.values()) == {
        "darts",
        "random-oneshot",
        "random-arch",
        "baseline:cnn",
        "classical",
    }
    for cell_id, m in metrics.items():
        for key in ("ua", "wa", "macro_f1", "per_class_recall", "confusion_matrix", "parameters"):
            assert key in m, (cell_id, key)
        assert (out / cell_id / "config.yaml").is_file() and (
            out / cell_id / "predictions.csv"
        ).is_file()
    assert (
        json.loads((out / "random-arch-0_fold-0" / "architecture.json").read_text())["architecture"]
        == json.loads((out / "random-arch-0_fold-1" / "architecture.json").read_text())[
            "architecture"
        ]
    )

    with (out / "folds.csv").open() as fh:
        folds = list(csv.DictReader(fh))
    assert len(folds) == 10
    for row in folds:
        m = metrics[row["run_dir"]]
        assert row["arm"] == arms[row["run_dir"]]
        assert int(row["fold"]) == m["fold"] and int(row["seed"]) == m["seed"]
        assert float(row["ua"]) == m["ua"] and float(row["wa"]) == m["wa"]
        assert float(row["macro_f1"]) == m["macro_f1"] and int(row["params"]) == m["parameters"]

    with (out / "report.csv").open() as fh:
        report = {(r["scope"], r["arm"]): r for r in csv.DictReader(fh)}
    assert set(report) == {
        ("cnn_only", "darts"),
        ("cnn_only", "random-oneshot"),
        ("cnn_only", "random-arch"),
        ("-", "baseline:cnn"),
        ("-", "classical"),
    }
    for (_, arm), r in report.items():
        mine = [metrics[c] for c in metrics if arms[c] == arm]
        ua = [m["ua"] for m in sorted(mine, key=lambda m: m["fold"])]
        assert int(r["n_folds"]) == 2
        assert float(r["ua_mean"]) == pytest.approx(np.mean(ua), abs=1e-12)
        assert float(r["ua_std"]) == pytest.approx(np.std(ua, ddof=1), abs=1e-12)
        assert float(r["wa_mean"]) == pytest.approx(np.mean([m["wa"] for m in mine]), abs=1e-12)
        assert float(r["params_mean"]) == pytest.approx(np.mean([m["parameters"] for m in mine]))

    text = (out / "report.md").read_text()
    darts = report[("cnn_only", "darts")]
    assert f"{100 * float(darts['ua_mean']):.2f} ± {100 * float(darts['ua_std']):.2f}" in text
    for title in (
        "Primary comparison",
        "Table 3",
        "Table 4",
        "Table 7",
        "Exploratory comparisons",
        "NAS best-practices checklist",
    ):
        assert f"## {title}" in text
    assert text.rfind("## ") == text.index("## NAS best-practices checklist")  # it ends the report

    def exact(arm: str) -> dict[int, Fraction]:
        """Each fold's exact UA of ``arm`` from its confusion matrices (one seed here)."""
        found: dict[int, list[Fraction]] = {}
        for cell_id, m in metrics.items():
            if arms[cell_id] == arm:
                found.setdefault(m["fold"], []).append(exact_ua(m["confusion_matrix"]))
        return {f: sum(v, Fraction(0)) / len(v) for f, v in found.items()}

    for reference in ("random-arch", "classical"):
        d, c = exact("darts"), exact(reference)
        signs = [(d[f] > c[f]) - (d[f] < c[f]) for f in (0, 1)]
        wtl = f"{signs.count(1)} / {signs.count(0)} / {signs.count(-1)}"
        diffs = ", ".join(
            f"{f}: {'tie' if d[f] == c[f] else f'{100 * float(d[f] - c[f]):+.2f}'}" for f in (0, 1)
        )
        if reference == "random-arch":  # the study file's primary comparison, given first
            primary = text.split("## Primary comparison")[1].split("## Table 3")[0]
            assert "**darts against the random-arch mean** (synth, scope cnn_only)" in primary
            assert f"wins / ties / losses: {wtl}" in primary and diffs in primary
        else:
            assert f"| synth | darts | cnn_only | classical | 2 | {wtl} |" in text
            assert diffs in text
    assert "† p < 0.05 is impossible" in text  # 2 folds: every p >= 0.5
    for picture in (
        "accuracy_scatter.png",
        "ua_boxes.png",
        "chosen_ops.png",
        "alpha_darts-cnn_only.png",
    ):
        assert (out / picture).stat().st_size > 1000, picture

    # `emodarts report STUDY_DIR` rewrites the same report
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == text

    # a finished study resumed again runs nothing
    assert main(["study", str(study), "--out", str(out), "--resume", "--no-webui"]) == 0
    assert finished(out) == after


@pytest.fixture
def nni_home(tmp_path, monkeypatch):
    """Keep NNI's experiment registry out of the real home folder."""
    from nni.tools.nnictl import constants

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(constants, "NNI_HOME_DIR", str(tmp_path / "home" / "nni-experiments"))


def test_web_ui_of_a_study_lists_every_cell_with_its_parameters(tmp_path, cache, nni_home):
    from emodarts_nni.nni_runtime import (
        fetch_metrics,
        fetch_trial_jobs,
        stop_experiment,
        view_experiment,
    )
    from emodarts_nni.nni_runtime.rest import rest

    study = write_study(
        tmp_path,
        cache,
        grid={"splits.fold": [0], "search.strategy": ["darts"]},
        controls={"baselines": ["cnn"], "classical": True},
        training_service={"platform": "local", "trial_concurrency": 2},
    )
    out = tmp_path / "study"
    assert main(["study", str(study), "--out", str(out), "--port", str(free_port())]) == 0
    cells = json.loads((out / "study.json").read_text())["cells"]
    assert [c["id"] for c in cells] == ["darts", "baseline-cnn", "classical"]

    port = free_port()
    view_experiment(out, port)
    try:
        jobs = fetch_trial_jobs(port)
        metrics = fetch_metrics(port)
        profile = rest(port, "/experiment")
    finally:
        stop_experiment(port)
    assert profile["params"]["trialConcurrency"] == 2
    assert len(jobs) == 3 and {job["status"] for job in jobs} == {"SUCCEEDED"}
    shown = {}
    for job in jobs:
        (record,) = [json.loads(p) for p in job["hyperParameters"]]
        parameters = record["parameters"]  # flat scalars: one web-UI column each (issue 22)
        assert all(
            v is None or isinstance(v, (str, int, float, bool)) for v in parameters.values()
        ), parameters
        shown[parameters["cell"]] = (job["trialJobId"], parameters)
    assert set(shown) == {c["id"] for c in cells}
    space = profile["params"]["searchSpace"]  # the table's columns
    space = json.loads(space) if isinstance(space, str) else space
    assert {"cell", "arm", "corpus", "fold", "scope", "strategy", "seed"} <= set(space)
    assert space["cell"]["_value"] == [c["id"] for c in cells]
    for cell in cells:
        trial, parameters = shown[cell["id"]]
        assert parameters == cell["parameters"]
        assert {"arm", "fold", "scope", "strategy", "seed", "corpus"} <= set(parameters)
        final = [m for m in metrics if m["trial_id"] == trial and m["type"] == "FINAL"]
        ua = json.loads((out / cell["id"] / "metrics.json").read_text())["ua"]
        assert len(final) == 1 and final[0]["default"] == pytest.approx(ua)
        epochs = [m for m in metrics if m["trial_id"] == trial and m["type"] == "PERIODICAL"]
        assert epochs, cell["id"]  # per-epoch validation UA (classical: per C candidate)
        # the trial listed with a cell ran that cell (NNI 3.0 may hand concurrent trials
        # each other's parameters; only the searched cell has a search stage)
        stages = {m["value"].get("stage") for m in epochs}
        assert ("search" in stages) == (cell["kind"] == "search"), (cell["id"], stages)
    assert shown["darts"][1]["fold"] == 0 and shown["baseline-cnn"][1]["arm"] == "baseline:cnn"


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _trial_processes(pid: int) -> list:
    import psutil

    found = []
    for process in _descendants(pid):
        try:
            if process.cmdline()[1:3] == ["-m", "emodarts_nni.study.trial"]:
                found.append(process)  # a trial itself, not NNI's dispatcher (its config
                # holds the trial command)
        except psutil.NoSuchProcess:
            pass
    return found


def test_sigterm_stops_the_studys_manager_and_its_running_trials(tmp_path, cache):
    from test_nni_runtime import _alive
    from test_webui import listening_addresses

    study = write_study(
        tmp_path,
        cache,
        grid={"splits.fold": [0], "search.strategy": ["darts"]},
        controls={"baselines": ["cnn"]},
        # long enough that both trials are still training when the signal comes
        overrides={"space.scope": "cnn_only", "space.seq_cells": 0, "retrain.epochs": 500},
        training_service={"platform": "local", "trial_concurrency": 2},
    )
    out, port = tmp_path / "study", free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HOME": str(tmp_path / "home"),
    }
    command = [sys.executable, "-m", "emodarts_nni.cli.main", "study", str(study)]
    command += ["--out", str(out), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while not _trial_processes(process.pid) and process.poll() is None:
            assert time.monotonic() < deadline, "no trial started"
            time.sleep(0.2)
        time.sleep(2.0)  # the trial is past its start-up, inside its cell
        everything = _descendants(process.pid)
        assert process.poll() is None and _trial_processes(process.pid)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    text = stderr.decode()
    assert process.returncode == 130, text[-2000:]
    assert f"--out {out} --resume" in text
    stop = time.monotonic() + 30
    while (listening_addresses(port) or any(map(_alive, everything))) and time.monotonic() < stop:
        time.sleep(0.2)
    assert not listening_addresses(port)
    assert not [p.pid for p in everything if _alive(p)], "a child outlived the study"
    assert not list(out.glob("*/metrics.json"))  # nothing cut short was marked finished


def _exact_wilcoxon_two_sided(differences: list[Fraction]) -> float | None:
    """By hand: enumerate every sign pattern of the ranks of the non-zero |differences|."""
    values = [d for d in differences if d != 0]
    if not values:
        return None
    order = sorted(abs(v) for v in values)
    ranks = [  # mid-ranks for equal magnitudes
        Fraction(sum(i + 1 for i, o in enumerate(order) if o == abs(v)), order.count(abs(v)))
        for v in values
    ]
    w_plus = sum((r for r, v in zip(ranks, values, strict=True) if v > 0), Fraction(0))
    centre = sum(ranks, Fraction(0)) / 2
    extreme = 0
    for pattern in range(2 ** len(ranks)):
        w = sum((r for i, r in enumerate(ranks) if pattern >> i & 1), Fraction(0))
        extreme += abs(w - centre) >= abs(w_plus - centre)
    return min(1.0, extreme / 2 ** len(ranks))


def test_two_seed_study_report_matches_a_hand_computation_from_its_folds_csv(tmp_path, cache):
    """Issue 23's acceptance: ``seed: [0, 1]`` and a ``primary:`` key; the primary line,
    wins / ties / losses, the CI and the checklist recomputed by hand from ``folds.csv``."""
    study = write_study(
        tmp_path,
        cache,
        grid={"splits.fold": [0, 1], "search.strategy": ["darts"], "seed": [0, 1]},
        controls={"random_architectures": 1, "baselines": [], "classical": True},
        primary={"arm": "darts", "against": "random-arch"},
    )
    out = tmp_path / "study"
    assert main(["study", str(study), "--out", str(out), "--no-webui"]) == 0
    with (out / "folds.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2 * 3  # folds x seeds x (darts, random-arch, classical)
    assert {r["seed"] for r in rows} == {"0", "1"}

    def per_fold(arm: str) -> dict[int, Fraction]:
        """A fold's value: the exact mean over its seeds (and random architectures)."""
        found: dict[int, list[Fraction]] = {}
        for r in rows:
            if r["arm"] == arm:
                found.setdefault(int(r["fold"]), []).append(Fraction(r["ua_exact"]))
        return {f: sum(v, Fraction(0)) / len(v) for f, v in found.items()}

    darts, random = per_fold("darts"), per_fold("random-arch")
    diffs = [darts[f] - random[f] for f in (0, 1)]
    wtl = (sum(d > 0 for d in diffs), sum(d == 0 for d in diffs), sum(d < 0 for d in diffs))
    mean = float(sum(diffs, Fraction(0)) / 2)
    # 2 folds resampled with replacement: both draws are the smaller one with probability
    # 1/4 > 2.5 %, so the 95 % percentile interval is [min, max] of the per-fold differences
    low, high = float(min(diffs)), float(max(diffs))
    p = _exact_wilcoxon_two_sided(diffs)

    text = (out / "report.md").read_text()
    primary = text.split("## Primary comparison")[1].split("## Table 3")[0]
    assert "**darts against the random-arch mean**" in primary
    assert f"wins / ties / losses: {wtl[0]} / {wtl[1]} / {wtl[2]}" in primary
    assert f"mean paired difference: {100 * mean:+.2f} points" in primary
    assert f"95 % bootstrap CI [{100 * low:+.2f}, {100 * high:+.2f}]" in primary
    shown_p = "— (every fold tied)" if p is None else f"{p:.4f}"
    assert f"exact two-sided Wilcoxon signed-rank p = {shown_p}" in primary
    per_fold_text = ", ".join(
        f"{f}: {'tie' if d == 0 else f'{100 * float(d):+.2f}'}"
        for f, d in zip((0, 1), diffs, strict=True)
    )
    assert f"per fold: {per_fold_text}" in primary

    checklist = text.split("## NAS best-practices checklist")[1]
    assert "| repeated runs: seeds per fold | 2 (seed 0, 1) on each of the 2 folds" in checklist
    assert "| random-search control | yes: 1 random architecture" in checklist
    recorded = json.loads((out / "study.json").read_text())["code"][-1]
    if recorded["git_commit"]:  # the package ran from a git checkout: that commit is named
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert recorded["git_commit"] == head
        assert f"git commit `{head}`" in checklist
    else:
        assert "no git commit" in checklist
