"""Training pieces shared by search and retraining: the Lightning module, loaders, trainer.

:class:`SerModule` is an NNI ``LightningModule`` so the same class is the evaluator of a
one-shot search (NNI wraps it in its DARTS/ENAS/... module) and the trainer of the frozen
model. Its optimiser is the paper's: SGD with cosine-annealed lr, configured by one
:class:`~emodarts_nni.config.experiment.OptimiserConfig`. :func:`make_training` is the one place that
puts module, trainer and loaders together, for the one-shot search, a multi-trial trial
and retraining alike; given a :class:`~emodarts_nni.config.experiment.RetrainConfig` it also applies
the retraining recipe (class balance by sampler or loss, label smoothing, SpecAugment-style
masking: :func:`mask_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.training.metrics import unweighted_accuracy, weighted_accuracy

with quiet_nni_import():
    from nni.nas.evaluator.pytorch import LightningModule

from emodarts_nni.config.experiment import (
    AugmentConfig,
    OptimiserConfig,
    RetrainConfig,
    TrainerConfig,
)


class SerModule(LightningModule):
    """Cross-entropy classification of MFCC maps; logs ``train_loss``, ``val_loss``, ``val_ua``, ``val_wa``.

    The training loss may be class-weighted (``class_counts``: weights ``N / (K * n_c)``)
    and label-smoothed, and training batches may be masked (``augment``); the validation
    loss is always the plain cross-entropy, so it reads the same under every recipe.
    """

    def __init__(
        self,
        optimiser: OptimiserConfig | None = None,
        *,
        class_counts: list[int] | None = None,
        label_smoothing: float = 0.0,
        augment: AugmentConfig | None = None,
    ) -> None:
        """``optimiser``: lr, lr_min, momentum, weight_decay and the cosine period ``epochs``
        (the defaults of :class:`OptimiserConfig` when ``None``). ``class_counts``: training
        examples per class, for a class-balanced loss (``None``: unweighted).
        ``label_smoothing``: the training loss's smoothing. ``augment``: masks drawn on
        each training batch (``None`` or no masks: none)."""
        super().__init__()
        optimiser = optimiser if optimiser is not None else OptimiserConfig()
        self.lr, self.lr_min, self.momentum = optimiser.lr, optimiser.lr_min, optimiser.momentum
        self.weight_decay, self.max_epochs = optimiser.weight_decay, optimiser.epochs
        self.criterion = nn.CrossEntropyLoss()
        self.class_counts = list(class_counts) if class_counts is not None else None
        self.label_smoothing = float(label_smoothing)
        self.augment = augment if augment is not None and augment.enabled else None
        self._val_preds: list[torch.Tensor] = []
        self._val_true: list[torch.Tensor] = []
        self._val_loss: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss: cross-entropy, class-weighted and label-smoothed if asked."""
        weight = None
        if self.class_counts is not None:
            counts = torch.zeros(logits.shape[1], dtype=logits.dtype, device=logits.device)
            known = torch.tensor(self.class_counts[: logits.shape[1]], dtype=logits.dtype)
            counts[: len(known)] = known.to(logits.device)
            present = counts > 0
            weight = torch.where(
                present, counts.sum() / (present.sum() * counts.clamp(min=1)), counts
            )
        return nn.functional.cross_entropy(
            logits, y, weight=weight, label_smoothing=self.label_smoothing
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.augment is not None:
            x = mask_batch(x, self.augment)
        loss = self.training_loss(self(x), y)
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


def mask_batch(
    x: torch.Tensor, augment: AugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """SpecAugment-style masking of ``(B, n_mfcc, frames)`` maps (a new tensor).

    Per map: ``time_masks`` spans of 1..``time_width`` frames and ``freq_masks`` spans of
    1..``freq_width`` coefficients, each at a uniform position, are set to the map's mean
    (widths are capped at the map's size). Draws from ``generator`` (torch's global
    generator when ``None``: seeded by the retraining's seed).
    """
    out = x.clone()
    n_freq, n_time = x.shape[-2], x.shape[-1]
    means = x.mean(dim=(-2, -1))

    def spans(count: int, width: int, size: int) -> torch.Tensor:
        width = min(width, size)
        widths = torch.randint(1, width + 1, (x.shape[0], count), generator=generator)
        starts = (torch.rand(x.shape[0], count, generator=generator) * (size - widths + 1)).long()
        index = torch.arange(size)
        inside = (index >= starts[..., None]) & (index < (starts + widths)[..., None])
        return inside.any(dim=1)  # (B, size)

    if augment.time_masks:
        hit = spans(augment.time_masks, augment.time_width, n_time).to(x.device)
        hit = hit.view(x.shape[0], *([1] * (x.dim() - 2)), n_time).expand_as(x)
        out = torch.where(hit, means.view(*means.shape, 1, 1).expand_as(x), out)
    if augment.freq_masks:
        hit = spans(augment.freq_masks, augment.freq_width, n_freq).to(x.device)
        hit = hit.view(x.shape[0], *([1] * (x.dim() - 3)), n_freq, 1).expand_as(x)
        out = torch.where(hit, means.view(*means.shape, 1, 1).expand_as(x), out)
    return out


def tensor_dataset(x: np.ndarray, y: np.ndarray) -> torch.utils.data.TensorDataset:
    """A dataset of float32 MFCC maps and int64 labels (copied out of any memmap)."""
    return torch.utils.data.TensorDataset(
        torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32),
        torch.as_tensor(np.asarray(y), dtype=torch.long),
    )


def make_loader(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    traced: bool = False,
    balanced: bool = False,
) -> torch.utils.data.DataLoader:
    """A seeded DataLoader; ``traced`` gives NNI's serialisable ``DataLoader`` (evaluators need it).

    ``balanced``: draw ``len(y)`` examples per epoch with replacement, each with probability
    proportional to 1 / (its class's count), so every class is drawn equally often on
    average (replaces ``shuffle``).
    """
    if traced:
        from nni.nas.evaluator.pytorch import DataLoader
    else:
        from torch.utils.data import DataLoader
    generator = torch.Generator().manual_seed(seed)
    if balanced:
        labels = np.asarray(y, dtype=np.int64)
        counts = np.bincount(labels)
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.as_tensor(1.0 / counts[labels], dtype=torch.double),
            num_samples=len(labels),
            replacement=True,
            generator=generator,
        )
        return DataLoader(tensor_dataset(x, y), batch_size=batch_size, sampler=sampler)
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
    """Softmaxed α of every differentiable edge found in ``module`` (empty for others),
    of every plain differentiable choice (the readout: ``prob/readout/<name>``), and the
    edge weights of cells that weigh their edges in the derivation (PC-DARTS's
    normalised β: ``recorded_edge_weights``), under the genotype module's column names."""
    # Imported here so this function's edit stays local to it (the column format is owned
    # by the genotype module).
    from emodarts_nni.space.genotype import alpha_column, beta_column, choice_column
    from emodarts_nni.space.op_names import NONE_OP

    out: dict[str, float] = {}
    seen: set[int] = set()
    for sub in module.modules():
        alphas = getattr(sub, "_arch_alpha", None)
        op_names = getattr(sub, "op_names", None)
        choice_names = getattr(sub, "names", None)  # NNI's differentiable LayerChoice
        if isinstance(alphas, nn.Parameter) and choice_names and id(alphas) not in seen:
            seen.add(id(alphas))
            probs = torch.softmax(alphas.detach().float(), dim=-1).cpu().tolist()
            for name, p in zip(choice_names, probs, strict=False):
                out[choice_column(str(sub.label), str(name))] = p
            continue
        if not isinstance(alphas, nn.ParameterDict) or op_names is None:
            continue
        edge_weights = getattr(sub, "recorded_edge_weights", None)
        if callable(edge_weights):  # cells of one label share β: the first one's columns
            for edge, weight in edge_weights().items():
                out.setdefault(beta_column(edge), weight)
        for edge, alpha in alphas.items():
            if id(alpha) in seen:
                continue
            seen.add(id(alpha))
            probs = torch.softmax(alpha.detach().float(), dim=-1).cpu().tolist()
            names = list(op_names) + [NONE_OP] * (len(probs) - len(op_names))
            for name, p in zip(names, probs, strict=False):
                out[alpha_column(edge, name)] = p
    return out


class ReraiseInterrupt(pl.Callback):
    """Let Ctrl-C / SIGTERM (``KeyboardInterrupt``) leave ``trainer.fit``.

    Lightning catches ``KeyboardInterrupt`` during ``fit`` and returns as if training had
    ended (status ``INTERRUPTED``), so a stage cut short would go on to save its
    half-trained model and mark itself finished. Raising it again from ``on_exception``,
    which Lightning calls inside its handler, ends the stage instead: nothing of it is
    written and ``--resume`` runs it again.
    """

    def on_exception(
        self, trainer: pl.Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        """Re-raise an interruption; other exceptions propagate on their own."""
        if isinstance(exception, KeyboardInterrupt):
            raise exception


def make_trainer(
    *,
    max_epochs: int,
    accelerator: str,
    devices: int,
    precision: str,
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
        enable_progress_bar=False,  # progress lines instead (training/progress.py)
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        callbacks=[*callbacks, ReraiseInterrupt()],
        default_root_dir=root_dir,
        gradient_clip_val=grad_clip,
        num_sanity_val_steps=0,
        deterministic=False,
    )


@dataclass
class Training:
    """A module, its trainer and its loaders, ready for ``trainer.fit`` (or an evaluator)."""

    module: SerModule
    trainer: pl.Trainer
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader

    def fit(self) -> None:
        """Train ``module`` on the train loader, validating on the validation loader."""
        self.trainer.fit(
            self.module, train_dataloaders=self.train_loader, val_dataloaders=self.val_loader
        )

    def evaluator(self) -> Any:
        """NNI's ``Lightning`` evaluator over this module, trainer and loaders (what a
        one-shot strategy trains the supernet with)."""
        from nni.nas.evaluator.pytorch import Lightning

        return Lightning(
            self.module,
            self.trainer,
            train_dataloaders=self.train_loader,
            val_dataloaders=self.val_loader,
        )


def make_training(
    optimiser: OptimiserConfig,
    hardware: TrainerConfig,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    callbacks: list[pl.Callback],
    root_dir: str,
    clip_gradients: bool = True,
    shuffle_validation: bool = False,
    traced: bool = False,
) -> Training:
    """The one training set-up: module + trainer + seeded loaders from the configs.

    ``optimiser`` gives the SGD settings, ``epochs`` (also the cosine period), the batch size
    and the gradient clipping (off with ``clip_gradients=False``: a one-shot strategy steps
    its own optimisers). ``hardware`` gives accelerator, devices and precision (progress is
    written by :class:`~emodarts_nni.training.progress.ProgressLines`, not a progress bar). The training loader is shuffled with ``seed``; a shuffled validation loader (the
    architecture half of a one-shot search) with ``seed + 1``. ``traced`` gives NNI's
    serialisable trainer and loaders, which an NNI evaluator needs.

    A :class:`RetrainConfig` also sets the recipe: ``balance`` (``sampler``: a class-balanced
    training loader; ``loss``: class weights from the training labels), ``label_smoothing``
    and ``augment``.
    """
    recipe = optimiser if isinstance(optimiser, RetrainConfig) else None
    module = SerModule(
        optimiser,
        class_counts=(
            np.bincount(np.asarray(train[1], dtype=np.int64)).tolist()
            if recipe is not None and recipe.balance == "loss"
            else None
        ),
        label_smoothing=recipe.label_smoothing if recipe is not None else 0.0,
        augment=recipe.augment if recipe is not None else None,
    )
    trainer = make_trainer(
        max_epochs=optimiser.epochs,
        accelerator=hardware.accelerator,
        devices=hardware.devices,
        precision=hardware.precision,
        callbacks=callbacks,
        root_dir=root_dir,
        grad_clip=optimiser.grad_clip if clip_gradients else None,
        traced=traced,
    )
    train_loader = make_loader(
        *train,
        batch_size=optimiser.batch_size,
        shuffle=True,
        seed=seed,
        traced=traced,
        balanced=recipe is not None and recipe.balance == "sampler",
    )
    val_loader = make_loader(
        *validation,
        batch_size=optimiser.batch_size,
        shuffle=shuffle_validation,
        seed=seed + 1 if shuffle_validation else seed,
        traced=traced,
    )
    return Training(module, trainer, train_loader, val_loader)
