"""Run a study: validate every cell, extract features once, one NNI experiment, the report.

:func:`run_study` is what ``emodarts study STUDY.yaml`` does:

1. validate the study file and every cell's experiment config (nothing runs on bad input);
2. lay out the study folder: ``study.yaml`` (the file as given), ``study.json`` (the cells,
   their kinds and NNI parameters, the primary comparison, the code's git commit and
   version at each launch), one run folder per cell with its resolved ``config.yaml``, and
   for each random-architecture cell its sampled ``architecture.json``;
3. extract (and cache) the features once per corpus, before any trial starts;
4. run the unfinished cells — a cell is finished when its run folder has ``metrics.json``
   (our own record; NNI's experiment resume is broken, nni-notes #4): as the trials of one
   NNI experiment in ``<study>/nni`` (GridSearch over one ``cell`` choice whose values are
   the cells' parameters, so the web UI lists fold, scope, arm, strategy and seed per
   trial), or in-process one after another with ``webui=False``;
5. write the report (:func:`emodarts_nni.study.report.make_study_report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import atomic_write_json
from emodarts_nni.common.units import format_percent, format_seconds, number
from emodarts_nni.pipeline.runfolder import RunFolder, claim_new_folder, differences, take_folder
from emodarts_nni.study.arms import RANDOM_KIND, SEARCH_KIND
from emodarts_nni.study.cells import Cell, expand_cells, resolve_primary
from emodarts_nni.study.config import StudyConfig, load_study
from emodarts_nni.study.service import launch_arguments
from emodarts_nni.study.trial import CELLS_FILE, cell_finished, run_cell

log = logging.getLogger("emodarts")


@dataclass
class StudyResult:
    """What :func:`run_study` did."""

    study_dir: Path
    cells: list[Cell]
    ran: list[str]
    unfinished: list[str]
    report: dict[str, Path]


def resolve_study_dir(
    study: StudyConfig, cells: Sequence[Cell], out: str | os.PathLike | None, resume: bool
) -> Path:
    """``out`` or ``<output.dir of the base config>/<study name>``; never overwrites a study.

    With ``resume`` the folder must hold a study started with the same study file
    (:func:`check_same_study`); otherwise a non-empty folder gets a numbered sibling
    (``...-2``), like a run folder. Either way the folder is locked for this process's
    lifetime, so two studies never share one folder.
    """
    base = Path(out) if out is not None else Path(cells[0].config.output.dir) / study.name
    base = base.resolve()
    if resume:
        if not (base / CELLS_FILE).is_file():
            raise EmodartsError(f"--resume: no study to resume in {base} ({CELLS_FILE} missing)")
        check_same_study(study, base)
        take_folder(base, "study folder")
        return base
    return claim_new_folder(base, "study folder")


def check_same_study(study: StudyConfig, study_dir: Path) -> None:
    """Refuse to resume ``study_dir`` with a study file other than the one it was started
    with (its copy ``study.yaml``), naming the first differences; only
    ``training_service`` (where the trials run) may change."""
    from emodarts_nni.common.yaml_loader import parse_yaml

    kept = study_dir / "study.yaml"
    if not kept.is_file() or not Path(study.source).is_file():
        return
    try:
        stored = parse_yaml(kept.read_text(encoding="utf-8"), str(kept))
    except (OSError, UnicodeDecodeError, EmodartsError) as exc:
        raise EmodartsError(f"--resume: cannot read {kept} ({exc})") from None
    wanted = parse_yaml(Path(study.source).read_text(encoding="utf-8"), study.source)
    mapping = [doc if isinstance(doc, dict) else {} for doc in (stored, wanted)]
    shown = differences(*mapping, ("training_service.",))
    if shown:
        raise EmodartsError(
            f"--resume: {study.source} differs from {kept} in {shown}; resume with the "
            "study file that started it or start a new study without --resume"
        )


def is_finished(study_dir: Path, cell: Cell) -> bool:
    """Whether ``cell`` has finished (its run folder has ``metrics.json``)."""
    return cell_finished(study_dir, cell.id)


def finished_line(study_dir: Path, cell: Cell, n: int, total: int) -> str:
    """The console's line for a finished cell: ``[n/total] cell  UA 70.00 %  2 min 23 s
    (search 1 min 36 s + retrain 47.5 s)``; what its ``metrics.json`` lacks is left out."""
    try:
        metrics = json.loads((study_dir / cell.id / RunFolder.METRICS).read_text())
    except (OSError, ValueError):
        return f"[{n}/{total}] {cell.id}  finished"
    ua = number(metrics.get("ua"))
    search = number(metrics.get("search_seconds")) or 0.0
    retrain = number(metrics.get("retrain_seconds"))
    parts = [f"[{n}/{total}] {cell.id}", f"UA {format_percent(ua)} %"]
    if retrain is not None:
        parts.append(
            f"{format_seconds(search + retrain)} (search {format_seconds(search)} + retrain "
            f"{format_seconds(retrain)})"
            if search > 0
            else format_seconds(retrain)
        )
    return "  ".join(parts)


def _with_port(cell: Cell, port: int) -> Cell:
    """A multi-trial search runs its own NNI manager: give it a port of its own."""
    cfg = cell.config
    webui = dataclasses.replace(cfg.webui, port=port)
    return dataclasses.replace(cell, config=dataclasses.replace(cfg, webui=webui))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """The code that runs the study: the package version and, when the package runs from a
    git checkout of its own, the commit and whether tracked files had uncommitted changes
    (``git_commit`` ``None`` otherwise, e.g. an installed wheel)."""
    from emodarts_nni import __version__

    root = Path(__file__).resolve().parents[2]
    record: dict[str, Any] = {"package_version": __version__, "git_commit": None, "git_dirty": None}
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root:  # not a checkout of this package
        return record
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if commit:
        record |= {"git_commit": commit, "git_dirty": None if status is None else bool(status)}
    return record


def _launches(study_dir: Path) -> list[dict[str, Any]]:
    """The code versions recorded so far, plus this launch's when it differs from the last."""
    path = study_dir / CELLS_FILE
    try:
        recorded = list(json.loads(path.read_text()).get("code") or []) if path.is_file() else []
    except (OSError, ValueError, AttributeError):
        recorded = []
    current = code_version()
    return recorded if recorded and recorded[-1] == current else [*recorded, current]


def layout_study(
    study: StudyConfig, cells: list[Cell], study_dir: Path, port: int = 8080
) -> list[Cell]:
    """Write ``study.yaml``, ``study.json`` and every cell's ``config.yaml`` and
    ``environment.json``; returns the cells as placed (a multi-trial search gets a port of
    its own above ``port``)."""
    from emodarts_nni.strategy.registry import is_oneshot

    study_dir.mkdir(parents=True, exist_ok=True)
    if Path(study.source).is_file() and not (study_dir / "study.yaml").is_file():
        shutil.copyfile(study.source, study_dir / "study.yaml")
    placed, extra_port = [], port
    for cell in cells:
        if cell.kind == SEARCH_KIND and not is_oneshot(cell.config.search.strategy):
            extra_port += 1
            cell = _with_port(cell, extra_port)
        RunFolder(study_dir / cell.id).start(cell.config)  # writes config.yaml once
        placed.append(cell)
    primary = resolve_primary(study, cells)
    atomic_write_json(
        study_dir / CELLS_FILE,
        {
            "name": study.name,
            "source": study.source,
            "base": str(study.base),
            "primary": None if primary is None else dataclasses.asdict(primary),
            "code": _launches(study_dir),
            "cells": [
                {
                    "id": cell.id,
                    "kind": cell.kind,
                    "arm": cell.arm,
                    "baseline": cell.baseline,
                    "index": cell.index,
                    "parameters": cell.parameters(),
                }
                for cell in placed
            ],
        },
    )
    return placed


def _corpus_key(cell: Cell) -> str:
    """Cells with equal keys read the same corpus and features (folds do not matter)."""
    from emodarts_nni.config.experiment import config_to_dict

    cfg = cell.config
    return json.dumps([config_to_dict(cfg.corpus), config_to_dict(cfg.features)], default=str)


def prepare_features(cells: Sequence[Cell]) -> dict[str, Any]:
    """Extract and cache the features of every corpus the cells use, once each.

    Returns one fold's data per corpus key (what random architectures are sized from).
    """
    from emodarts_nni.pipeline.data import prepare_fold

    data: dict[str, Any] = {}
    for cell in cells:
        key = _corpus_key(cell)
        if key not in data:
            print(f"features: {cell.config.corpus.kind} (cached for every cell)", flush=True)
            data[key] = prepare_fold(cell.config, None, progress=cell.config.trainer.progress)
    return data


def _sample_architectures(study_dir: Path, cells: Sequence[Cell], data: dict[str, Any]) -> None:
    """Write each random-architecture cell's ``architecture.json`` (once)."""
    from emodarts_nni.pipeline.search import space_arguments
    from emodarts_nni.space.architecture import sample_architecture, save_architecture

    for cell in cells:
        path = RunFolder(study_dir / cell.id).architecture
        if cell.kind != RANDOM_KIND or path.is_file():
            continue
        space = space_arguments(cell.config, data[_corpus_key(cell)])
        architecture = sample_architecture(space, cell.sample_seed)
        save_architecture(
            path,
            space,
            architecture,
            {
                "strategy": cell.arm,
                "scope": space["scope"],
                "seed": cell.config.seed,
                "sample_seed": cell.sample_seed,
                "corpus": cell.config.corpus.kind,
                "fold": cell.config.splits.fold,
                "search_seconds": 0.0,
            },
        )


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the study in ``study_dir`` (its finished cells are kept)."""

    def __init__(self, study_dir: Path) -> None:
        super().__init__(str(study_dir))
        self.study_dir = study_dir


def run_study(
    study_path: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    port: int = 8080,
    host: str = "127.0.0.1",
    webui: bool = True,
) -> StudyResult:
    """Run (or, with ``resume``, continue) the study in ``study_path``; see the module docstring."""
    study = load_study(study_path)
    cells = expand_cells(study)  # every cell validated before any work
    service = launch_arguments(study.training_service, source=study.source) if webui else {}
    study_dir = resolve_study_dir(study, cells, out, resume)
    print(f"study folder: {study_dir} ({len(cells)} cells)", flush=True)
    cells = layout_study(study, cells, study_dir, port)
    pending = [cell for cell in cells if not is_finished(study_dir, cell)]
    if len(pending) < len(cells):
        print(f"{len(cells) - len(pending)} cell(s) finished already; running {len(pending)}")
    try:
        if pending:
            _run_pending(study, study_dir, pending, port, host, service, webui)
    except KeyboardInterrupt as stop:  # the manager and its trials are stopped by now
        raise StudyInterrupted(study_dir) from stop
    from emodarts_nni.study.report import make_study_report

    report = make_study_report(study_dir)
    unfinished = [cell.id for cell in cells if not is_finished(study_dir, cell)]
    return StudyResult(study_dir, cells, [c.id for c in pending], unfinished, report)


def _run_pending(
    study: StudyConfig,
    study_dir: Path,
    pending: Sequence[Cell],
    port: int,
    host: str,
    service: dict[str, Any],
    webui: bool,
) -> None:
    data = prepare_features(pending)
    _sample_architectures(study_dir, pending, data)
    if webui:
        _run_in_nni(study, study_dir, pending, port, host, service)
        return
    if study.training_service.trial_concurrency > 1:
        print("--no-webui: cells run one after another (trial_concurrency is NNI's)")
    for n, cell in enumerate(pending, 1):
        print(f"[{n}/{len(pending)}] {cell.id} ...", flush=True)
        run_cell(study_dir, cell.id)
        print(finished_line(study_dir, cell, n, len(pending)), flush=True)


def _run_in_nni(
    study: StudyConfig,
    study_dir: Path,
    pending: Sequence[Cell],
    port: int,
    host: str,
    service: dict[str, Any],
) -> None:
    """One NNI experiment whose trials are the pending cells; returns when all have ended."""
    from emodarts_nni.nni_runtime import launch_trial_experiment

    command = [sys.executable, "-m", "emodarts_nni.study.trial", str(study_dir)]
    command += ["--port", str(port), "--host", host]
    handle = launch_trial_experiment(
        command,
        experiment_dir=study_dir / "nni",
        port=port,
        name=study.name,
        trials=[cell.parameters() for cell in pending],
        host=host,
        **service,
    )
    shown: set[str] = set()

    def show_progress() -> None:
        for cell in pending:  # one line per newly finished cell, in the order they finish
            if cell.id not in shown and is_finished(study_dir, cell):
                shown.add(cell.id)
                print(finished_line(study_dir, cell, len(shown), len(pending)), flush=True)

    with handle:
        status = handle.watch(show_progress, every=5.0)
    if status != "SUCCEEDED":
        print(f"warning: the study's NNI experiment ended {status}", file=sys.stderr)


__all__ = [
    "StudyInterrupted",
    "code_version",
    "finished_line",
    "layout_study",
    "StudyResult",
    "is_finished",
    "prepare_features",
    "resolve_study_dir",
    "run_study",
]
