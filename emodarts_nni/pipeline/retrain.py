"""Stage 3 — retrain the frozen architecture on the *train* part (or search + train,
``retrain.train_parts``); pick the best epoch on
*validation* (never on test — the authors' code selected on the test fold); evaluate on test.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from emodarts_nni.config.experiment import ExperimentConfig
from emodarts_nni.pipeline.data import FoldData
from emodarts_nni.space.architecture import count_parameters
from emodarts_nni.training.metrics import SINGLE_CLASS_SHARE, classification_report, single_class
from emodarts_nni.training.module import EpochRecorder, make_training, predict_proba
from emodarts_nni.training.progress import ProgressLines

log = logging.getLogger("emodarts")


class BestState(pl.Callback):
    """Keep the weights of the epoch with the best validation UA (ties: the earlier epoch)."""

    def __init__(self, monitor: str = "val_ua") -> None:
        super().__init__()
        self.monitor = monitor
        self.best_score = -float("inf")
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the epoch's validation (callbacks' on_validation_epoch_end would run before
        # the module logs the epoch's UA and see the previous epoch's).
        if self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score > self.best_score:
            self.best_score, self.best_epoch = score, trainer.current_epoch
            self.state = copy.deepcopy(pl_module.model.state_dict())


@dataclass
class RetrainResult:
    """The retrained model (best validation epoch) and its training record."""

    model: nn.Module
    best_epoch: int
    best_val_ua: float | None  # None without a validation part
    seconds: float
    parameters: int
    history: list[dict[str, Any]] = field(default_factory=list)
    #: The class the kept model predicts for nearly every validation utterance, or None.
    val_single_class: str | None = None


def retrain(
    cfg: ExperimentConfig,
    build_model: Callable[[], nn.Module],
    data: FoldData,
    *,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    root_dir: str = ".",
) -> RetrainResult:
    """Train a fresh model from ``build_model()`` on the fold's train part.

    The model is built after seeding with ``cfg.seed``, so its initial weights are the
    seed's whatever built it (a searched architecture or a baseline).
    """
    torch.manual_seed(cfg.seed)
    model = build_model()
    history: list[dict[str, Any]] = []

    lines = ProgressLines("retrain", cfg.retrain.epochs)

    def record(row: dict[str, Any]) -> None:
        history.append(row)
        lines.epoch_done(row)
        if on_epoch is not None:
            on_epoch(row)

    best = BestState("val_ua")
    callbacks: list[pl.Callback] = [EpochRecorder(record, "retrain"), best, lines]
    if cfg.retrain.patience:
        callbacks.append(
            pl.callbacks.EarlyStopping("val_ua", mode="max", patience=cfg.retrain.patience)
        )
    training = make_training(
        cfg.retrain,
        cfg.trainer,
        data.training_arrays(cfg.retrain.train_parts),
        (data.x["validation"], data.y["validation"]),
        seed=cfg.seed,
        callbacks=callbacks,
        root_dir=root_dir,
    )
    training.module.set_model(model)
    started = time.perf_counter()
    training.fit()
    seconds = time.perf_counter() - started
    if best.state is not None:
        model.load_state_dict(best.state)
    elif best.best_epoch < 0:  # no validation part (splits.validation_fraction 0): the last
        best.best_epoch = max(training.trainer.current_epoch - 1, 0)  # epoch's weights stay
    model.eval()
    x_val = data.x["validation"]
    val_pred = predict_proba(model, x_val).argmax(axis=1) if len(x_val) else np.zeros(0, int)
    return RetrainResult(
        model=model,
        best_epoch=best.best_epoch,
        best_val_ua=best.best_score if best.best_score > -float("inf") else None,
        seconds=seconds,
        parameters=count_parameters(model),
        history=history,
        val_single_class=warn_single_class(single_class(val_pred, data.class_names), "validation"),
    )


def warn_single_class(label: str | None, part: str) -> str | None:
    """Log a WARNING when a model predicts ``label`` for nearly every ``part`` utterance."""
    if label is not None:
        log.warning(
            "the model predicts %r for >= %.0f%% of the %s utterances: a single-class "
            "(degenerate) model; its UA is chance level",
            label,
            100 * SINGLE_CLASS_SHARE,
            part,
        )
    return label


def evaluate(
    model: nn.Module, data: FoldData, part: str = "test"
) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics of ``model`` on ``part`` and the predicted probabilities (a WARNING when
    it predicts one class for nearly every utterance: ``report["single_class"]``)."""
    probs = predict_proba(model, data.x[part])
    report = classification_report(data.y[part], probs.argmax(axis=1), data.class_names)
    warn_single_class(report["single_class"], part)
    return report, probs
