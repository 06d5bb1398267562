"""Training pieces shared by search and retraining: the Lightning module, loaders, trainer.

:class:`SerModule` is an NNI ``LightningModule`` so the same class is the evaluator of a
one-shot search (NNI wraps it in its DARTS/ENAS/... module) and the trainer of the frozen
model. Its optimiser is the paper's: SGD with cosine-annealed lr (0.025 → 0.001).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from emodarts_nni.metrics import unweighted_accuracy, weighted_accuracy
from emodarts_nni.nni_runtime.patches import quiet_nni_import

with quiet_nni_import():
    from nni.nas.evaluator.pytorch import LightningModule


class SerModule(LightningModule):
    """Cross-entropy classification of MFCC maps; logs ``train_loss``, ``val_loss``, ``val_ua``, ``val_wa``."""

    def __init__(
        self,
        *,
        lr: float = 0.025,
        lr_min: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 3e-4,
        max_epochs: int = 300,
    ) -> None:
        super().__init__()
        self.lr, self.lr_min, self.momentum = lr, lr_min, momentum
        self.weight_decay, self.max_epochs = weight_decay, max_epochs
        self.criterion = nn.CrossEntropyLoss()
        self._val_preds: list[torch.Tensor] = []
        self._val_true: list[torch.Tensor] = []
        self._val_loss: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        preds = logits.argmax(dim=1).detach().cpu()
        self._val_loss.append(self.criterion(logits, y).detach() * len(y))
        self._val_preds.append(preds)
        self._val_true.append(y.detach().cpu())
        # Per-batch UA: the reward ENAS reads right after each validation step.
        self.log(
            "val_batch_ua",
            unweighted_accuracy(y.cpu().numpy(), preds.numpy()),
            on_step=True,
            on_epoch=False,
            batch_size=len(y),
        )

    def on_validation_epoch_end(self) -> None:
        if not self._val_true:
            return
        y_true = torch.cat(self._val_true).numpy()
        y_pred = torch.cat(self._val_preds).numpy()
        loss = torch.stack(self._val_loss).sum().item() / max(len(y_true), 1)
        self.log("val_loss", loss, prog_bar=False)
        self.log("val_ua", unweighted_accuracy(y_true, y_pred), prog_bar=True)
        self.log("val_wa", weighted_accuracy(y_true, y_pred), prog_bar=False)
        self._val_preds.clear(), self._val_true.clear(), self._val_loss.clear()

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(
            self.parameters(), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(self.max_epochs, 1), eta_min=self.lr_min
        )
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> torch.utils.data.TensorDataset:
    """A dataset of float32 MFCC maps and int64 labels (copied out of any memmap)."""
    return torch.utils.data.TensorDataset(
        torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
        torch.as_tensor(np.asarray(y), dtype=torch.long),
    )


def make_loader(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool, seed: int, traced: bool = False
) -> torch.utils.data.DataLoader:
    """A seeded DataLoader; ``traced`` gives NNI's serialisable ``DataLoader`` (evaluators need it)."""
    if traced:
        from nni.nas.evaluator.pytorch import DataLoader
    else:
        from torch.utils.data import DataLoader
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        tensor_dataset(x, y),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
    )


class EpochRecorder(pl.Callback):
    """Collect per-epoch metrics (and a model's α, when it has them) and forward them.

    ``on_epoch(record)`` is called after every validation epoch with a dict of plain
    numbers: ``epoch``, the logged metrics, and ``alpha/<edge>/<op>`` probabilities for
    differentiable strategies. Used for ``history.csv``, the web UI and α-evolution plots.
    """

    def __init__(
        self,
        on_epoch: Callable[[dict[str, float]], None],
        stage: str,
        val_data: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.on_epoch = on_epoch
        self.stage = stage
        # One-shot strategies (DARTS, ENAS) run no validation loop: their validation data
        # drives the architecture step. ``val_data`` is then scored at each epoch's end.
        self.val_data = val_data

    def _emit(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, extra: dict[str, float]
    ) -> None:
        record: dict[str, float] = {"stage": self.stage, "epoch": trainer.current_epoch}
        for key, value in trainer.callback_metrics.items():
            if key == "val_batch_ua" or value.numel() != 1:
                continue
            value = float(value)
            if math.isfinite(value):
                record[key] = value
        record.update(extra)
        record.update(alpha_probabilities(pl_module))
        self.on_epoch(record)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Not on_validation_epoch_end: Lightning calls callbacks' hooks *before* the module's,
        # so the epoch's validation UA is only logged by the time the training epoch ends.
        if self.val_data is None:
            self._emit(trainer, pl_module, {})
            return
        x, y = self.val_data
        y_pred = predict_proba(pl_module, x).argmax(axis=1) if len(x) else np.zeros(0, np.int64)
        self._emit(
            trainer,
            pl_module,
            {"val_ua": unweighted_accuracy(y, y_pred), "val_wa": weighted_accuracy(y, y_pred)},
        )


@torch.no_grad()
def predict_proba(model: nn.Module, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` of feature maps ``x``, in eval mode on the
    model's device; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        for start in range(0, len(x), batch_size):
            batch = torch.as_tensor(
                np.ascontiguousarray(x[start : start + batch_size]), dtype=torch.float32
            )
            out.append(torch.softmax(model(batch.to(device)), dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def alpha_probabilities(module: nn.Module) -> dict[str, float]:
    """Softmaxed α of every differentiable edge found in ``module`` (empty for others)."""
    out: dict[str, float] = {}
    seen: set[int] = set()
    for sub in module.modules():
        alphas = getattr(sub, "_arch_alpha", None)
        op_names = getattr(sub, "op_names", None)
        if not isinstance(alphas, nn.ParameterDict) or op_names is None:
            continue
        for edge, alpha in alphas.items():
            if id(alpha) in seen:
                continue
            seen.add(id(alpha))
            probs = torch.softmax(alpha.detach().float(), dim=-1).cpu().tolist()
            names = list(op_names) + ["none"] * (len(probs) - len(op_names))
            for name, p in zip(names, probs, strict=False):
                out[f"alpha/{edge}/{name}"] = p
    return out


def make_trainer(
    *,
    max_epochs: int,
    accelerator: str,
    devices: int,
    precision: str,
    progress: bool,
    callbacks: list[pl.Callback],
    root_dir: str,
    grad_clip: float | None = None,
    traced: bool = False,
) -> pl.Trainer:
    """A quiet Lightning trainer (no logger, no checkpoint files: we write our own)."""
    trainer_cls: Any = pl.Trainer
    if traced:
        from nni.nas.evaluator.pytorch import Trainer as trainer_cls
    return trainer_cls(
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=devices,
        precision=precision,
        enable_progress_bar=progress,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=callbacks,
        default_root_dir=root_dir,
        gradient_clip_val=grad_clip,
        num_sanity_val_steps=0,
        deterministic=False,
    )
