"""β-DARTS: first-order DARTS with the β-decay regulariser on α.

Ye, Li, Li, Chen, Fan and Ouyang, *β-DARTS: Beta-Decay Regularization for Differentiable
Architecture Search*, CVPR 2022 (arXiv:2203.01665). β = softmax(α) of an edge; the
regulariser added to the α (validation) loss is the mean over edges of logsumexp(α):

    L_β = mean_edges log Σ_ops exp(α_op),    ∂L_β/∂α_op = β_op / (number of edges)

so each step pulls every α down by its own softmax weight, the larger ones most: it keeps
the activated β small in value and variance, against the drift to parameter-free ops that
makes DARTS collapse. Its weight grows linearly over the search, λ(e) = λ_max · e / E at
epoch e of E. This follows the authors' code (github.com/Sunshine-Ye/Beta-DARTS,
``optimizers/darts/architect.py``: ``mlc_loss`` = ``torch.mean(torch.logsumexp(α, dim=-1))``
and ``weights = 0 + 50*epoch/100`` in ``_backward_step``, for their 100-epoch NAS-Bench-201
search): λ_max = 50. Here E is the search's own epoch count.

Every α of the supernet counts as one edge: each cell edge (including NNI's extra
"zero"/``none`` slot, part of the softmax) and each ``LayerChoice``/``InputChoice``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from emodarts_nni.common.rules import NONNEG, checked
from emodarts_nni.strategy.darts.first_order import DARTS, FrugalDartsModule

if TYPE_CHECKING:
    from nni.nas.evaluator.pytorch import LightningModule

#: λ at the end of the search (the authors' 50 · epoch / 100 with 100 epochs).
BETA_DECAY_WEIGHT = 50.0


def beta_decay_loss(alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    """L_β: the mean over α vectors (edges) of logsumexp over their ops."""
    if not alphas:
        raise ValueError("β-decay needs at least one architecture parameter")
    return torch.stack([torch.logsumexp(alpha, dim=-1) for alpha in alphas]).mean()


def beta_decay_weight(max_weight: float, epoch: int, max_epochs: int) -> float:
    """λ at 0-based ``epoch`` of ``max_epochs``: linear from 0 (first epoch) towards ``max_weight``
    (never above it, also for a trainer without an epoch limit)."""
    return min(max_weight, max_weight * epoch / max(max_epochs, 1))


class BetaDartsModule(FrugalDartsModule):
    """First-order DARTS whose α loss carries λ(epoch) · L_β (logged as ``beta_decay_*``)."""

    def __init__(
        self, training_module: LightningModule, *, beta_decay_weight: float, **kwargs: Any
    ) -> None:
        super().__init__(training_module, **kwargs)
        self.beta_decay_max = beta_decay_weight

    def arch_penalty(self) -> torch.Tensor | None:
        """λ(epoch) · L_β over every α of the supernet."""
        weight = beta_decay_weight(
            self.beta_decay_max, self.trainer.current_epoch, self.trainer.max_epochs or 1
        )
        loss = beta_decay_loss(self.arch_parameters())
        self.log("beta_decay_weight", weight, on_step=False, on_epoch=True, batch_size=1)
        self.log("beta_decay_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=1)
        return weight * loss


class BetaDARTS(DARTS):
    """β-DARTS (Ye et al. 2022, arXiv:2203.01665) as an NNI strategy: ``beta-darts``.

    Parameters are :class:`~emodarts_nni.strategy.darts.first_order.DARTS`'s plus ``beta_decay_weight``
    (λ_max, 50.0): the β-decay weight reached at the end of the search (linear from 0).
    """

    def __init__(self, *, beta_decay_weight: float = BETA_DECAY_WEIGHT, **kwargs: Any) -> None:
        weight = checked("beta_decay_weight", beta_decay_weight, NONNEG)
        super().__init__(**kwargs)
        self.beta_decay_weight = weight

    def configure_oneshot_module(self, training_module: LightningModule) -> BetaDartsModule:
        """The one-shot module that trains the supernet: :class:`BetaDartsModule`."""
        return BetaDartsModule(
            training_module, beta_decay_weight=self.beta_decay_weight, **self.module_kwargs()
        )


__all__ = [
    "BETA_DECAY_WEIGHT",
    "BetaDARTS",
    "BetaDartsModule",
    "beta_decay_loss",
    "beta_decay_weight",
]
