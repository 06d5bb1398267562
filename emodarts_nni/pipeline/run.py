"""The stages of one fold in its run folder, in order: search → retrain → evaluate.

Each stage is a function that writes its output atomically into the
:class:`~emodarts_nni.pipeline.runfolder.RunFolder` (``architecture.json``, ``checkpoint.pt``,
``metrics.json``) and is skipped on ``resume`` when that output exists, so an interrupted
run continues without losing finished work. The model to retrain is a
:class:`~emodarts_nni.pipeline.models.ModelSource`: a searched architecture or a baseline.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch import nn

from emodarts_nni.common import progress as progress_lines
from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.files import atomic_write_text
from emodarts_nni.common.progress import file_sink, reporting_to
from emodarts_nni.config.experiment import ExperimentConfig
from emodarts_nni.inference.checkpoint import load_checkpoint, save_checkpoint
from emodarts_nni.pipeline import search
from emodarts_nni.pipeline.data import FoldData, prepare_fold
from emodarts_nni.pipeline.models import BaselineModel, ModelSource, SearchedModel
from emodarts_nni.pipeline.retrain import evaluate, retrain
from emodarts_nni.pipeline.runfolder import STAGES, RunFolder, versions
from emodarts_nni.space.architecture import count_parameters, read_architecture, save_architecture
from emodarts_nni.strategy.collapse import collapse_summary, web_fields

log = logging.getLogger("emodarts")


class Reporter(Protocol):
    """Where per-epoch and final metrics go besides the run folder (NNI's web UI)."""

    def report_intermediate(self, value: float, **extra: Any) -> None: ...

    def report_final(self, value: float, **extra: Any) -> None: ...


@dataclass
class RunContext:
    """What every stage shares: config, folder, resume flag, reporter and the history."""

    cfg: ExperimentConfig
    folder: RunFolder
    resume: bool = False
    reporter: Reporter | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def skip(self, stage: str, output: Path | None = None) -> bool:
        """Whether ``stage`` is skipped: resuming and its output exists."""
        done = output.is_file() if output is not None else self.folder.done(stage)
        if self.resume and done:
            log.info("%s: done already, skipped", stage)
            return True
        return False

    def begin(self, stage: str, what: str = "") -> None:
        """Forget the history rows of an earlier, interrupted attempt at ``stage``, and say
        on the progress lines that it starts (``what``: how)."""
        self.history = [row for row in self.history if row.get("stage") != stage]
        shown = progress_lines.current()
        if shown is not None:
            shown.line(stage, f"starting{': ' + what if what else ''}")

    def on_epoch(self, row: dict[str, Any]) -> None:
        """Record one epoch in ``history.csv`` and report its validation UA."""
        self.history.append(row)
        self.folder.write_history(self.history)
        if self.reporter is not None and "val_ua" in row:
            self.reporter.report_intermediate(
                float(row["val_ua"]),
                stage=row.get("stage"),
                epoch=int(row.get("epoch", 0)),
                val_loss=row.get("val_loss"),
                **web_fields(row),  # collapse metrics of a search epoch (none without α)
            )


@dataclass
class Retrained:
    """The retrain stage's result, as the evaluate stage needs it."""

    model: nn.Module
    best_epoch: int
    val_ua: float
    seconds: float | None  # None for a checkpoint written before it recorded the time
    val_single_class: str | None = None


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
    the same protocol instead of a searched one. ``resume`` refuses a config that differs
    from the folder's in a key that changes results, before anything is written.
    """
    stages = tuple(stages)
    for stage in stages:
        if stage not in STAGES:
            raise EmodartsError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    folder = RunFolder(run_dir)
    if resume:
        folder.check_resumable(cfg)
    folder.start(cfg)
    if cfg.trainer.num_threads:
        import torch

        torch.set_num_threads(cfg.trainer.num_threads)
    # Progress lines: on the console in-process; into progress.log as an NNI trial, where
    # the `emodarts` process that launched the trial prints them (cli/experiment.py).
    sink = None
    if cfg.trainer.progress:
        sink = file_sink(folder.progress) if reporter is not None else "console"
    with folder.logging_to_log(), reporting_to(sink):
        run = RunContext(cfg, folder, resume, reporter)
        if resume:
            run.history = folder.read_history()
        log.info("run folder: %s", folder.path)
        data = prepare_fold(cfg, folder.path, progress=cfg.trainer.progress)
        log.info(
            "fold %d: test groups %s; %s",
            data.fold.fold,
            ", ".join(data.fold.test_groups),
            ", ".join(f"{p} {len(data.y[p])}" for p in ("search", "train", "validation", "test")),
        )
        arch_path = architecture_path or folder.architecture
        if "search" in stages:
            search_stage(run, data, arch_path)
        if "retrain" not in stages and "evaluate" not in stages:
            return {"architecture": str(arch_path)}
        source: ModelSource = (
            BaselineModel(baseline)
            if baseline is not None
            else SearchedModel(
                read_architecture(
                    arch_path, n_classes=len(data.class_names), input_shape=data.input_shape
                ),
                cfg.search.strategy,
            )
        )
        retrained = retrain_stage(run, data, source) if "retrain" in stages else None
        if "evaluate" not in stages:
            return {"checkpoint": str(folder.checkpoint)}
        return evaluate_stage(run, data, source, retrained)


def search_stage(run: RunContext, data: FoldData, arch_path: Path) -> Path:
    """Search an architecture on the fold's search part and write it to ``arch_path``."""
    if run.skip("search", arch_path):
        return arch_path
    cfg = run.cfg
    run.begin("search", f"{cfg.search.strategy} on scope {Path(cfg.space.scope).stem}")
    result = search.run_search(cfg, data, run.folder.path, on_epoch=run.on_epoch)
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
    return arch_path


def retrain_stage(run: RunContext, data: FoldData, source: ModelSource) -> Retrained | None:
    """Retrain ``source``'s model on the train part and write ``checkpoint.pt``.

    Returns ``None`` when skipped (the evaluate stage then reads the checkpoint).
    """
    folder = run.folder
    if run.skip("retrain"):
        return None
    what = source.provenance()
    run.begin(
        "retrain", f"{what['strategy']} model ({what['scope']}), {run.cfg.retrain.epochs} epochs"
    )
    result = retrain(
        run.cfg,
        lambda: source.build(data),
        data,
        on_epoch=run.on_epoch,
        root_dir=str(folder.path),
    )
    seconds = round(result.seconds, 3)
    save_checkpoint(
        folder.checkpoint,
        result.model,
        **source.checkpoint_description(data),
        class_names=list(data.class_names),
        features=data.feature_config,
        normalisation=data.normalisation,
        extra={
            "best_epoch": result.best_epoch,
            "val_ua": result.best_val_ua,
            "fold": data.fold.fold,
            "retrain_seconds": seconds,  # so an interrupted run's metrics need no retraining
            "val_single_class": result.val_single_class,
        },
    )
    return Retrained(
        result.model, result.best_epoch, result.best_val_ua, seconds, result.val_single_class
    )


def evaluate_stage(
    run: RunContext, data: FoldData, source: ModelSource, retrained: Retrained | None
) -> dict[str, Any]:
    """Score the retrained model on the test part; write ``predictions.csv`` and ``metrics.json``.

    Without ``retrained`` (its stage was skipped) the model is read from ``checkpoint.pt``.
    """
    cfg, folder, reporter = run.cfg, run.folder, run.reporter
    if run.skip("evaluate"):
        metrics = folder.read_metrics()
        if reporter is not None:
            reporter.report_final(float(metrics["ua"]), **final_fields(metrics, source))
        return metrics
    if retrained is None:
        if not folder.checkpoint.is_file():
            raise EmodartsError(f"evaluate: no {folder.checkpoint}; run the retrain stage first")
        checkpoint = load_checkpoint(folder.checkpoint)
        retrained = Retrained(
            checkpoint.model,
            checkpoint.extra.get("best_epoch"),
            checkpoint.extra.get("val_ua"),
            checkpoint.extra.get("retrain_seconds"),
            checkpoint.extra.get("val_single_class"),
        )
    report, probs = evaluate(retrained.model, data, "test")
    write_predictions(folder.predictions, data, probs)
    provenance = source.provenance()
    metrics = {
        **report,
        "parameters": count_parameters(retrained.model),
        "search_seconds": provenance["search_seconds"],
        "retrain_seconds": retrained.seconds,
        "best_epoch": retrained.best_epoch,
        "val_ua": retrained.val_ua,
        "val_single_class": retrained.val_single_class,
        **collapse_summary(run.history),
        "fold": data.fold.fold,
        "test_groups": list(data.fold.test_groups),
        "strategy": provenance["strategy"],
        "scope": provenance["scope"],
        "corpus": cfg.corpus.kind,
        "seed": cfg.seed,
    }
    folder.write_metrics(metrics)
    if reporter is not None:
        reporter.report_final(float(metrics["ua"]), **final_fields(metrics, source))
    log.info(
        "test UA %.4f  WA %.4f  macro-F1 %.4f  params %d",
        metrics["ua"],
        metrics["wa"],
        metrics["macro_f1"],
        metrics["parameters"],
    )
    return metrics


def final_fields(metrics: dict[str, Any], source: ModelSource) -> dict[str, Any]:
    """The extras of the web UI's final result: WA, macro-F1, parameters, the searched
    architecture as text, and ``single_class`` / ``collapse`` when something degenerated."""
    from emodarts_nni.nni_runtime.reporter import architecture_fields

    fields: dict[str, Any] = {
        "wa": metrics["wa"],
        "macro_f1": metrics.get("macro_f1"),
        "parameters": metrics.get("parameters"),
        "stage": "evaluate",
    }
    if isinstance(source, SearchedModel):
        fields.update(architecture_fields(source.architecture.to_dict(), metrics.get("parameters")))
    degenerate = metrics.get("single_class") or metrics.get("val_single_class")
    if degenerate:
        fields["single_class"] = degenerate
    collapsed = [cell for cell, flag in (metrics.get("collapsed") or {}).items() if flag]
    if collapsed:
        fields["collapse"] = ", ".join(collapsed)
    return fields


def write_predictions(path: Path, data: FoldData, probs: np.ndarray) -> Path:
    """``predictions.csv``: each test utterance, its label, prediction and probabilities."""
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
