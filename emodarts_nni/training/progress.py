"""A Lightning callback that writes the run's progress lines (:mod:`emodarts_nni.common.progress`)
for one training stage: a line at most :data:`~emodarts_nni.common.progress.INTERVAL_SECONDS`
apart during an epoch (batch, the epoch's running loss, ETA) and one when an epoch's
row is recorded (:meth:`ProgressLines.epoch_done`: loss, validation UA, ETA). Lightning's own progress bar is off: these lines replace it."""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl

from emodarts_nni.common import progress as progress_lines
from emodarts_nni.common.units import format_seconds


class ProgressLines(pl.Callback):
    """Progress lines of ``stage`` (``search`` or ``retrain``) over ``epochs`` epochs; silent
    when no run has set a progress sink (:func:`emodarts_nni.common.progress.current`)."""

    def __init__(self, stage: str, epochs: int) -> None:
        super().__init__()
        self.stage = stage
        self.epochs = max(1, int(epochs))
        self.started = 0.0
        self.epoch_started = 0.0
        self.loss_sum, self.loss_count = 0.0, 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.monotonic()
        progress = progress_lines.current()
        if progress is not None:
            progress.line(self.stage, f"{self.epochs} epochs of {self._batches(trainer)} batches")

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_started = time.monotonic()
        self.loss_sum, self.loss_count = 0.0, 0

    def _batches(self, trainer: pl.Trainer) -> int | None:
        total = trainer.num_training_batches
        return int(total) if isinstance(total, (int, float)) and math.isfinite(total) else None

    def _eta(self, trainer: pl.Trainer, batch: int) -> str:
        """Time left for the stage from the pace so far (the stage may stop early)."""
        total = self._batches(trainer)
        done = trainer.current_epoch * (total or 0) + batch
        if not total or done <= 0:
            return ""
        elapsed = time.monotonic() - self.started
        left = elapsed / done * (self.epochs * total - done)
        return f"ETA {format_seconds(left)}"

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None and getattr(loss, "numel", lambda: 0)() == 1:
            self.loss_sum += float(loss)
            self.loss_count += 1
        progress = progress_lines.current()
        if progress is None or not progress.due():
            return
        parts = [f"epoch {trainer.current_epoch + 1}/{self.epochs}"]
        total = self._batches(trainer)
        parts.append(f"batch {batch_idx + 1}/{total}" if total else f"batch {batch_idx + 1}")
        if self.loss_count:
            parts.append(f"loss {self.loss_sum / self.loss_count:.3f}")
        parts.append(self._eta(trainer, batch_idx + 1))
        progress.line(self.stage, "  ".join(p for p in parts if p))

    def epoch_done(self, row: dict[str, Any]) -> None:
        """The line of a finished epoch, from the row the stage records in ``history.csv``
        (its loss and validation UA, which one-shot strategies compute after the epoch)."""
        progress = progress_lines.current()
        if progress is None:
            return
        epoch = int(row.get("epoch", 0)) + 1
        parts = [f"epoch {epoch}/{self.epochs} done"]
        for key, label in (("train_loss", "loss"), ("val_ua", "val UA")):
            value = row.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                parts.append(f"{label} {value:.3f}")
        parts.append(f"({format_seconds(time.monotonic() - self.epoch_started)})")
        if epoch < self.epochs and self.started:
            elapsed = time.monotonic() - self.started
            parts.append(f"ETA {format_seconds(elapsed / epoch * (self.epochs - epoch))}")
        progress.line(self.stage, "  ".join(parts))


__all__ = ["ProgressLines"]
