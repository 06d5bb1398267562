"""The run folder and the stages in order: search → export → retrain → evaluate.

A run folder holds everything needed to reproduce and audit a run (``docs/interface.md``):
``config.yaml`` (resolved), ``environment.json`` (seed, versions, command),
``manifest.csv``, ``splits.csv``, ``architecture.json``, ``history.csv`` (losses, UA and α
per epoch), ``checkpoint.pt`` (state_dict + architecture, ``weights_only`` loadable),
``predictions.csv``, ``metrics.json``, ``log.txt`` and NNI's experiment folder ``nni/``.

Stages write their outputs atomically and are skipped on ``resume`` when their output
exists, so an interrupted run continues without losing finished work.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emodarts_nni.architecture import read_architecture, save_architecture
from emodarts_nni.checkpoint import save_checkpoint
from emodarts_nni.config import ExperimentConfig, dump_config
from emodarts_nni.errors import EmodartsError
from emodarts_nni.files import atomic_write_json, atomic_write_text, ensure_folder
from emodarts_nni.pipeline.data import FoldData, prepare_fold

log = logging.getLogger("emodarts")

STAGES = ("search", "retrain", "evaluate")


class Reporter(Protocol):
    """Where per-epoch and final metrics go besides the run folder (NNI's web UI)."""

    def report_intermediate(self, value: float, **extra: Any) -> None: ...

    def report_final(self, value: float, **extra: Any) -> None: ...


# --------------------------------------------------------------------------- files
def write_history(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """``history.csv``: one row per epoch and stage; columns are the union of the keys."""
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    first = [c for c in ("stage", "epoch") if c in columns]
    columns = first + sorted(c for c in columns if c not in first)
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def read_history(path: Path) -> list[dict[str, Any]]:
    """Rows of ``history.csv`` (numbers parsed)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key, value in row.items():
            if key != "stage" and value not in ("", None):
                row[key] = float(value)
    return rows


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in (
        "emodarts-nni",
        "nni",
        "torch",
        "pytorch-lightning",
        "librosa",
        "numpy",
        "scikit-learn",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def default_run_dir(cfg: ExperimentConfig) -> Path:
    """``<output.dir>/<name>-<strategy>-<scope>-fold<k>``."""
    scope = Path(cfg.space.scope).stem
    return Path(cfg.output.dir) / f"{cfg.name}-{cfg.search.strategy}-{scope}-fold{cfg.splits.fold}"


def resolve_run_dir(
    cfg: ExperimentConfig, out: str | os.PathLike | None = None, resume: bool = False
) -> Path:
    """The run folder: ``out`` or the default; a finished folder is never overwritten.

    With ``resume`` the folder is reused (it must exist); otherwise an existing non-empty
    folder gets a numbered sibling (``...-2``, ``...-3``).
    """
    base = Path(out) if out is not None else default_run_dir(cfg)
    if resume:
        if not (base / "config.yaml").is_file():
            raise EmodartsError(f"--resume: no run to resume in {base} (config.yaml missing)")
        return base
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


class _RunLog:
    """Send our and NNI's log records to ``log.txt`` while a run is active."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(
            logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
        )
        self.loggers = [logging.getLogger(n) for n in ("emodarts", "nni", "pytorch_lightning")]

    def __enter__(self) -> _RunLog:
        for logger in self.loggers:
            logger.addHandler(self.handler)
        logging.getLogger("emodarts").setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self.loggers:
            logger.removeHandler(self.handler)
        self.handler.close()


# --------------------------------------------------------------------------- stages
def start_run(cfg: ExperimentConfig, run_dir: Path) -> None:
    """Create the folder and write ``config.yaml`` and ``environment.json`` (once)."""
    ensure_folder(run_dir, "run folder")  # a file in the way or no permission: one line
    if not (run_dir / "config.yaml").is_file():
        dump_config(cfg, run_dir / "config.yaml")
    if not (run_dir / "environment.json").is_file():
        atomic_write_json(
            run_dir / "environment.json",
            {"seed": cfg.seed, "versions": versions(), "command": sys.argv, "cwd": os.getcwd()},
        )


def _predictions_csv(path: Path, data: FoldData, probs: np.ndarray) -> Path:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["path", "speaker", "session", "label", "predicted", *[f"p_{c}" for c in data.class_names]]
    )
    for utt, row in zip(data.part_utterances("test"), probs, strict=False):
        writer.writerow(
            [
                utt.path,
                utt.speaker,
                utt.session,
                utt.label,
                data.class_names[int(row.argmax())],
                *[f"{p:.6f}" for p in row],
            ]
        )
    return atomic_write_text(path, buffer.getvalue())


def run_pipeline(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    stages: Iterable[str] = STAGES,
    resume: bool = False,
    reporter: Reporter | None = None,
    architecture_path: Path | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Run ``stages`` of one fold in ``run_dir``; returns the metrics (or the search summary).

    ``architecture_path`` (retrain without search) uses a given architecture JSON;
    ``baseline`` trains a hand-designed model (``cnn``, ``cnn_lstm``, ``cnn_lstm_att``) under
    the same protocol instead of a searched one.
    """
    stages = tuple(stages)
    for stage in stages:
        if stage not in STAGES:
            raise EmodartsError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    start_run(cfg, run_dir)
    if cfg.trainer.num_threads:
        import torch

        torch.set_num_threads(cfg.trainer.num_threads)
    with _RunLog(run_dir / "log.txt"):
        return _run_stages(cfg, run_dir, stages, resume, reporter, architecture_path, baseline)


def _run_stages(
    cfg, run_dir, stages, resume, reporter, architecture_path, baseline
) -> dict[str, Any]:
    from emodarts_nni.pipeline.retrain import evaluate, retrain
    from emodarts_nni.pipeline.search import run_search

    history_path = run_dir / "history.csv"
    history = read_history(history_path) if resume else []
    epoch_counter = {"n": 0}

    def on_epoch(row: dict[str, Any]) -> None:
        history.append(row)
        write_history(history_path, history)
        if reporter is not None and "val_ua" in row:
            epoch_counter["n"] += 1
            reporter.report_intermediate(
                float(row["val_ua"]),
                stage=row.get("stage"),
                epoch=int(row.get("epoch", 0)),
                val_loss=row.get("val_loss"),
            )

    log.info("run folder: %s", run_dir)
    data = prepare_fold(cfg, run_dir, progress=cfg.trainer.progress)
    log.info(
        "fold %d: test groups %s; %s",
        data.fold.fold,
        ", ".join(data.fold.test_groups),
        ", ".join(f"{p} {len(data.y[p])}" for p in ("search", "train", "validation", "test")),
    )

    arch_path = architecture_path or run_dir / "architecture.json"
    if "search" in stages and not (resume and arch_path.is_file()):
        result = run_search(cfg, data, run_dir, on_epoch=on_epoch)
        last = next((r for r in reversed(result.history) if "val_ua" in r), {})
        save_architecture(
            arch_path,
            result.space,
            result.architecture,
            {
                "strategy": cfg.search.strategy,
                "scope": result.space["scope"],
                "seed": cfg.seed,
                "corpus": cfg.corpus.kind,
                "fold": data.fold.fold,
                "test_groups": list(data.fold.test_groups),
                "search_seconds": round(result.seconds, 3),
                "search_val_ua": last.get("val_ua"),
                "versions": versions(),
            },
        )
        log.info("architecture written to %s", arch_path)
    if "retrain" not in stages and "evaluate" not in stages:
        return {"architecture": str(arch_path)}

    model = baseline_spec = architecture = None
    if baseline is not None:
        from emodarts_nni.baselines import build_baseline

        n_mfcc, frames = data.input_shape
        baseline_spec = {
            "name": baseline,
            "n_mfcc": n_mfcc,
            "frames": frames,
            "n_classes": len(data.class_names),
        }
        model = build_baseline(**baseline_spec)
    else:
        architecture = read_architecture(
            arch_path, n_classes=len(data.class_names), input_shape=data.input_shape
        )
    checkpoint_path = run_dir / "checkpoint.pt"
    metrics_path = run_dir / "metrics.json"
    if resume and metrics_path.is_file() and checkpoint_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        if reporter is not None:
            reporter.report_final(float(metrics["ua"]), wa=metrics["wa"])
        return metrics
    result = retrain(cfg, architecture, data, on_epoch=on_epoch, root_dir=str(run_dir), model=model)
    save_checkpoint(
        checkpoint_path,
        result.model,
        architecture,
        baseline=baseline_spec,
        class_names=list(data.class_names),
        features=data.feature_config,
        normalisation=data.normalisation,
        extra={
            "best_epoch": result.best_epoch,
            "val_ua": result.best_val_ua,
            "fold": data.fold.fold,
        },
    )
    report, probs = evaluate(result.model, data, "test")
    _predictions_csv(run_dir / "predictions.csv", data, probs)
    metrics = {
        **report,
        "parameters": result.parameters,
        "search_seconds": architecture.provenance.get("search_seconds") if architecture else 0.0,
        "retrain_seconds": round(result.seconds, 3),
        "best_epoch": result.best_epoch,
        "val_ua": result.best_val_ua,
        "fold": data.fold.fold,
        "test_groups": list(data.fold.test_groups),
        "strategy": architecture.provenance.get("strategy", cfg.search.strategy)
        if architecture
        else "baseline",
        "scope": architecture.space.get("scope") if architecture else baseline,
        "corpus": cfg.corpus.kind,
        "seed": cfg.seed,
    }
    atomic_write_json(metrics_path, metrics)
    if reporter is not None:
        reporter.report_final(float(metrics["ua"]), wa=metrics["wa"], macro_f1=metrics["macro_f1"])
    log.info(
        "test UA %.4f  WA %.4f  macro-F1 %.4f  params %d",
        metrics["ua"],
        metrics["wa"],
        metrics["macro_f1"],
        metrics["parameters"],
    )
    return metrics
