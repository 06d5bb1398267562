"""One study cell, as the NNI trial ``python -m emodarts_nni.study.trial STUDY_DIR``.

The trial takes NNI's trial channel first (:class:`~emodarts_nni.nni_runtime.TrialReporter`), reads
its cell from the trial's parameters (flat: ``{"cell": ID, "arm": ..., "fold": ...}``,
what the web UI shows), and runs it in the cell's run folder ``STUDY_DIR/ID``, reporting
validation UA per epoch and the final test UA. :func:`run_cell` is the same thing without
NNI (``emodarts study --no-webui``). A cell whose folder already has ``metrics.json`` is
finished and is never run again.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.study.arms import BASELINE_KIND, CLASSICAL_KIND, RANDOM_KIND, SEARCH_KIND

#: The study folder's index of cells (written by the runner before any trial starts).
CELLS_FILE = "study.json"


def read_cells(study_dir: Path) -> dict[str, dict[str, Any]]:
    """The cells recorded in ``STUDY_DIR/study.json``, by id."""
    path = Path(study_dir) / CELLS_FILE
    if not path.is_file():
        raise EmodartsError(f"{study_dir}: not a study folder ({CELLS_FILE} missing)")
    return {cell["id"]: cell for cell in json.loads(path.read_text())["cells"]}


def cell_finished(study_dir: Path, cell_id: str) -> bool:
    """Whether cell ``cell_id`` has finished: its run folder has ``metrics.json``.

    Our own record, not NNI's (whose experiment resume is broken, nni-notes #4).
    """
    return RunFolder(Path(study_dir) / cell_id).metrics.is_file()


def run_cell(study_dir: Path, cell_id: str, reporter: Any = None) -> dict[str, Any]:
    """Run cell ``cell_id`` of the study in ``study_dir``; returns its metrics."""
    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.run import run_pipeline

    cells = read_cells(study_dir)
    if cell_id not in cells:
        raise EmodartsError(f"{study_dir}: no cell {cell_id!r} in {CELLS_FILE}")
    cell = cells[cell_id]
    run_dir = Path(study_dir) / cell_id
    folder = RunFolder(run_dir)
    if cell_finished(study_dir, cell_id):  # finished: report what it has, never run it again
        metrics = json.loads(folder.metrics.read_text())
        if reporter is not None:
            reporter.report_final(float(metrics["ua"]), wa=metrics["wa"])
        return metrics
    cfg = load_config(folder.config)
    kind = cell["kind"]
    if kind == CLASSICAL_KIND:
        from emodarts_nni.training.classical import run_classical

        return run_classical(cfg, run_dir, reporter=reporter)
    if kind == SEARCH_KIND:
        return run_pipeline(cfg, run_dir, resume=True, reporter=reporter)
    retrain_only = ("retrain", "evaluate")
    if kind == RANDOM_KIND:
        return run_pipeline(
            cfg,
            run_dir,
            stages=retrain_only,
            resume=True,
            reporter=reporter,
            architecture_path=folder.architecture,
        )
    if kind == BASELINE_KIND:
        return run_pipeline(
            cfg,
            run_dir,
            stages=retrain_only,
            resume=True,
            reporter=reporter,
            baseline=cell["baseline"],
        )
    raise EmodartsError(f"{study_dir}: cell {cell_id!r} has unknown kind {kind!r}")


def job_parameters(trial_id: str | None, port: int | None, host: str) -> dict[str, Any] | None:
    """The parameters NNI's manager (and so the web UI) records for trial job ``trial_id``.

    With ``trial_concurrency`` > 1, NNI 3.0's local training service hands the queued
    parameters to whichever trial asks first, while the manager has already paired each
    job with its own parameters: two trials started together can run each other's
    parameters, and the web UI would list a cell beside another cell's curves. The trial
    therefore runs the cell its job is recorded with. ``None`` when the manager cannot be
    asked (no port, a remote machine that cannot reach it).
    """
    if not trial_id or port is None:
        return None
    from emodarts_nni.nni_runtime.rest import rest

    try:
        job = rest(port, f"/trial-jobs/{trial_id}", host=host)
        (record,) = [json.loads(text) for text in job.get("hyperParameters") or []]
    except (OSError, ValueError):
        return None
    return dict(record.get("parameters") or {})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cell named by this NNI trial's parameters."""
    parser = argparse.ArgumentParser(prog="python -m emodarts_nni.study.trial")
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("--port", type=int, default=None, help="the study's NNI manager")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from emodarts_nni.nni_runtime import TrialReporter

    reporter = TrialReporter()  # before any NasExperiment replaces the channel
    recorded = job_parameters(reporter.trial_id, args.port, args.host)
    cell = (recorded or reporter.parameters).get("cell")
    if isinstance(cell, dict):  # a study laid out before the cells' parameters were flat
        cell = cell.get("cell")
    if not isinstance(cell, str) or not cell:
        print(
            f"emodarts: error: trial parameters name no cell: {reporter.parameters}",
            file=sys.stderr,
        )
        return 2
    try:
        run_cell(args.study_dir, cell, reporter)
    except EmodartsError as exc:
        print(f"emodarts: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
