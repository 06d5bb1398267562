"""First-order DARTS without the gradients it throws away.

NNI 3.0's ``DartsLightningModule`` back-propagates the architecture loss into every
weight and the weight loss into every α, then discards those gradients. For the emoDARTS
supernet that is most of the cost: convolution weight gradients (``convolution_backward``)
are over half of a step on CPU, and keeping α differentiable during the weight step makes
autograd save every candidate's output of every mixed edge for a gradient nobody uses.

:class:`DARTS` computes exactly the same updates (a test compares parameters after several
steps) with the weights frozen during the α step and α frozen during the weight step, on
:class:`~emodarts_nni.strategy.supermodule.summed.SummedMixedCell` s (NNI's cell without its stacked copies
of every edge's outputs).

Variants change the α step only: :meth:`FrugalDartsModule.arch_step` (second-order DARTS,
:mod:`emodarts_nni.strategy.darts.second_order`) or :meth:`FrugalDartsModule.arch_penalty`, a term added
to the α loss (β-DARTS, :mod:`emodarts_nni.strategy.darts.beta`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn, optim

from emodarts_nni.common.rules import NONNEG, checked
from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.strategy.defaults import ARC_WEIGHT_DECAY
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell

with quiet_nni_import():
    from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
    from nni.nas.strategy import DARTS as NniDARTS

if TYPE_CHECKING:
    from nni.nas.evaluator.pytorch import LightningModule
    from nni.nas.oneshot.pytorch.strategy import MutationHook


@contextlib.contextmanager
def frozen(parameters: Iterable[nn.Parameter]) -> Iterator[None]:
    """Turn ``requires_grad`` off for ``parameters`` inside the block (restored after)."""
    params = [p for p in parameters if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class FrugalDartsModule(DartsLightningModule):
    """NNI's first-order DARTS step, with the unused half of each backward pass skipped.

    ``arc_weight_decay`` is the α optimiser's weight decay (NNI fixes it at 1e-3).
    """

    def __init__(
        self,
        training_module: LightningModule,
        *,
        arc_weight_decay: float = ARC_WEIGHT_DECAY,
        **kwargs: Any,
    ) -> None:
        super().__init__(training_module, **kwargs)
        self.arc_weight_decay = float(arc_weight_decay)

    def configure_architecture_optimizers(self) -> optim.Optimizer:
        """NNI's Adam over α (β = (0.5, 0.999)) with ``arc_weight_decay``."""
        arch = self.arch_parameters()
        if not arch:
            raise ValueError("No architecture parameters found. Nothing to search.")
        return optim.Adam(
            arch, self.arc_learning_rate, betas=(0.5, 0.999), weight_decay=self.arc_weight_decay
        )

    def _weights(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def arch_penalty(self) -> torch.Tensor | None:
        """A differentiable term added to the α loss (none here; β-DARTS adds β-decay)."""
        return None

    def arch_step(
        self, trn_batch: Any, val_batch: Any, batch_idx: int, arc_optim: optim.Optimizer
    ) -> None:
        """Phase 1: one α update from the validation batch (first order: d L_val / d α)."""
        arc_optim.zero_grad()
        with frozen(self._weights()):  # α step: d loss / d α only
            arc_step_loss = self.training_module.training_step(val_batch, 2 * batch_idx)
            if isinstance(arc_step_loss, dict):
                arc_step_loss = arc_step_loss["loss"]
            if self.penalty is not None:
                arc_step_loss, details = self.penalty(arc_step_loss, self.export_probs())
                self.log_dict({f"penalty/{k}": v for k, v in details.items()})
            extra = self.arch_penalty()
            if extra is not None:
                arc_step_loss = arc_step_loss + extra
            self.manual_backward(arc_step_loss)
        arc_optim.step()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Any:
        """One DARTS step on ``batch`` (``{"train": ..., "val": ...}``): the α step
        (:meth:`arch_step`, after the warm-up epochs), then the weight step with α frozen;
        returns the training module's loss (and metrics) of the weight step."""
        arc_optim = self.architecture_optimizers()
        if not isinstance(arc_optim, optim.Optimizer):
            raise TypeError(f"Expect arc_optim to be a single Optimizer, but found: {arc_optim}")
        trn_batch, val_batch = batch["train"], batch["val"]

        if self.warmup_epochs == 0 or self.trainer.current_epoch >= self.warmup_epochs:
            self.resample()
            self.arch_step(trn_batch, val_batch, batch_idx, arc_optim)

        self.resample()
        with frozen(self.arch_parameters()):  # weight step: d loss / d w only
            loss_and_metrics = self.training_module.training_step(trn_batch, 2 * batch_idx + 1)
            w_step_loss = (
                loss_and_metrics["loss"] if isinstance(loss_and_metrics, dict) else loss_and_metrics
            )
            self.advance_optimization(w_step_loss, batch_idx, self.gradient_clip_val)
        self.advance_lr_schedulers(batch_idx)
        if batch_idx % self.log_prob_every_n_step == 0:
            self.log_probs(self.export_probs())
        return loss_and_metrics


class DARTS(NniDARTS):
    """NNI's first-order ``DARTS`` strategy running :class:`FrugalDartsModule` on
    :class:`~emodarts_nni.strategy.supermodule.summed.SummedMixedCell` s (same updates, less work);
    ``arc_weight_decay`` as the module's."""

    def __init__(self, *, arc_weight_decay: float = ARC_WEIGHT_DECAY, **kwargs: Any) -> None:
        decay = checked("arc_weight_decay", arc_weight_decay, NONNEG)
        super().__init__(**kwargs)
        self.arc_weight_decay = decay

    def module_kwargs(self) -> dict[str, Any]:
        """The DARTS module's keyword arguments held by this strategy (the variants add theirs)."""
        return {
            "arc_learning_rate": self.arc_learning_rate,
            "gradient_clip_val": self.gradient_clip_val,
            "log_prob_every_n_step": self.log_prob_every_n_step,
            "warmup_epochs": self.warmup_epochs,
            "penalty": self.penalty,
            "arc_weight_decay": self.arc_weight_decay,
        }

    def default_mutation_hooks(self) -> list[MutationHook]:
        """NNI's hooks, with :class:`SummedMixedCell` first for the cells."""
        return [SummedMixedCell.mutate, *super().default_mutation_hooks()]

    def configure_oneshot_module(self, training_module: LightningModule) -> FrugalDartsModule:
        """The one-shot module that trains the supernet: :class:`FrugalDartsModule`."""
        return FrugalDartsModule(training_module, **self.module_kwargs())


def darts_step(
    net: nn.Module,
    loss_fn: nn.Module,
    arch_batch: tuple[torch.Tensor, torch.Tensor],
    weight_batch: tuple[torch.Tensor, torch.Tensor],
    arch_optimizer: optim.Optimizer,
    weight_optimizer: optim.Optimizer,
    grad_clip: float | None = 5.0,
) -> None:
    """One first-order DARTS step on a supernet outside Lightning (benchmarks, tests).

    Identical in effect to :meth:`FrugalDartsModule.training_step`.
    """
    alphas = [p for g in arch_optimizer.param_groups for p in g["params"]]
    weights = [p for g in weight_optimizer.param_groups for p in g["params"]]
    arch_optimizer.zero_grad()
    with frozen(weights):
        loss_fn(net(arch_batch[0]), arch_batch[1]).backward()
    arch_optimizer.step()
    weight_step(net, loss_fn, weight_batch, alphas, weight_optimizer, grad_clip)


def weight_step(
    net: nn.Module,
    loss_fn: nn.Module,
    weight_batch: tuple[torch.Tensor, torch.Tensor],
    alphas: Iterable[nn.Parameter],
    weight_optimizer: optim.Optimizer,
    grad_clip: float | None = 5.0,
) -> None:
    """Phase 2 of a DARTS step outside Lightning: one weight update with α frozen."""
    weights = [p for g in weight_optimizer.param_groups for p in g["params"]]
    weight_optimizer.zero_grad()
    with frozen(alphas):
        loss_fn(net(weight_batch[0]), weight_batch[1]).backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(weights, grad_clip)
    weight_optimizer.step()
