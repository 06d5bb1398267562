"""The readout: from a sequence of frame features ``(B, T, D)`` to class logits ``(B, n_classes)``.

Three poolings over time, named in :data:`~emodarts_nni.space.op_names.READOUT_NAMES`:

``mean``
    the mean over time (the paper's, and every emoDARTS anchor's): ``D`` features;
``stats``
    statistics pooling, mean ‖ standard deviation over time (Snyder et al., *X-vectors*,
    ICASSP 2018): ``2D`` features, no parameters. It lets the network form the per-utterance
    spread that a linear model on utterance-level MFCC mean and std leans on;
``attentive-stats``
    attentive statistics pooling (Okabe, Koshinaka and Shinoda, Interspeech 2018; as in
    ECAPA-TDNN): frame weights ``softmax_t(vᵀ tanh(W h_t + b))``, then the weighted mean ‖
    weighted standard deviation: ``2D`` features.

Each is followed by dropout and a linear classifier (:class:`ReadoutHead`). A space offering
several readouts searches them as one NNI ``LayerChoice`` of heads (the pooled widths
differ, so each candidate carries its own classifier and the mixed op mixes logits).
"""

from __future__ import annotations

import torch
from torch import nn

from emodarts_nni.space.op_names import ATTENTION_UNITS, MEAN_READOUT, READOUT_NAMES

#: Floor of the variance before its square root: keeps the gradient of the standard
#: deviation finite on a constant sequence (a padded or silent stretch).
VARIANCE_FLOOR = 1e-5


def mean_and_std(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``mean ‖ std`` over time of ``x`` ``(B, T, D)`` → ``(B, 2D)``; ``weights`` ``(B, T, 1)``
    (summing to one over time) make both weighted."""
    if weights is None:
        mean = x.mean(dim=1)
        variance = ((x - mean.unsqueeze(1)) ** 2).mean(dim=1)
    else:
        mean = (weights * x).sum(dim=1)
        variance = (weights * (x - mean.unsqueeze(1)) ** 2).sum(dim=1)
    return torch.cat([mean, torch.sqrt(variance.clamp(min=VARIANCE_FLOOR))], dim=1)


class MeanPooling(nn.Module):
    """Mean over time: ``(B, T, D) → (B, D)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


class StatsPooling(nn.Module):
    """Mean ‖ std over time: ``(B, T, D) → (B, 2D)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mean_and_std(x)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean ‖ std over time: ``(B, T, D) → (B, 2D)``.

    The bias of the score layer is left out: a constant added to every frame's score does
    not change the softmax.
    """

    def __init__(self, features: int, units: int = ATTENTION_UNITS) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(features, units), nn.Tanh(), nn.Linear(units, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.attention(x), dim=1)
        return mean_and_std(x, weights)


def pooled_width(readout: str, features: int) -> int:
    """Width of the pooled vector of ``readout`` over ``features``-wide frames."""
    return features if readout == MEAN_READOUT else 2 * features


def pooling(readout: str, features: int) -> nn.Module:
    """The pooling module of ``readout`` (a name of :data:`READOUT_NAMES`)."""
    if readout == MEAN_READOUT:
        return MeanPooling()
    if readout == "stats":
        return StatsPooling()
    if readout == "attentive-stats":
        return AttentiveStatsPooling(features)
    raise ValueError(f"unknown readout {readout!r}; expected one of {', '.join(READOUT_NAMES)}")


class ReadoutHead(nn.Module):
    """Pooling over time → dropout → linear: ``(B, T, D)`` frames → ``(B, n_classes)`` logits."""

    def __init__(self, readout: str, features: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.pool = pooling(readout, features)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(pooled_width(readout, features), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.pool(x)))


__all__ = [
    "AttentiveStatsPooling",
    "MeanPooling",
    "ReadoutHead",
    "StatsPooling",
    "VARIANCE_FLOOR",
    "mean_and_std",
    "pooled_width",
    "pooling",
]
