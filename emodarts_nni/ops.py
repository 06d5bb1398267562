"""The candidate operations of emoDARTS (paper Table 2 / Table 6), one table per component.

* :data:`CNN_OPS` — ``name -> factory(channels, stride)`` for 2-D feature maps
  ``(batch, channels, mfcc, frames)``. DARTS conventions: ReLU-Conv-BN, separable convs
  applied twice, dilation 2, ``FactorizedReduce`` for a strided skip.
* :data:`SEQ_OPS` — ``name -> factory(hidden)`` for sequences ``(batch, time, hidden)``,
  mapping to the same shape. ``rnn_k``/``lstm_k`` stack *k* bidirectional layers (``hidden/2``
  units per direction, so the width is kept); ``*_att_k`` adds attention over **time steps**
  (a score per step, softmax over time, the context combined with every step's output) —
  not the feature-wise gate of the authors' code.

Every op treats each sample on its own (no batch statistics in eval mode), so predictions
never depend on batch composition.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

CnnOpFactory = Callable[[int, int], nn.Module]
SeqOpFactory = Callable[[int], nn.Module]


# --------------------------------------------------------------------------- CNN ops
class ReLUConvBN(nn.Sequential):
    """ReLU → Conv2d → BatchNorm (the DARTS building block)."""

    def __init__(self, c_in: int, c_out: int, kernel, stride, padding, dilation=1) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out),
        )


def channels_last_pays(channels: int, kernel: int, stride: int, dilation: int) -> bool:
    """Whether a depthwise ``kernel × kernel`` convolution over ``channels`` channels trains
    faster on CPU in channels-last than in NCHW (forward + backward with the layout
    conversions, torch 2.13, 2 threads, batch 16, 4-32 channels on 32-128 sides:
    ``benchmarks/depthwise_layout.py``, ``docs/benchmarks.md``). Channels-last wins for a
    5-wide receptive field at stride 1 (5 × 5, or 3 × 3 dilated by 2), for an undilated
    5 × 5 at stride 2 and for an undilated 3 × 3 over fewer than 16 channels; it loses for
    an undilated 3 × 3 over 16 channels or more, which NCHW runs through a fast path, and
    for dilated kernels at stride 2."""
    if dilation == 1 and kernel == 3:
        return channels < 16
    if stride == 1:
        return dilation * (kernel - 1) + 1 >= 5
    return dilation == 1 and kernel == 5


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (``groups = channels``) that, on CPU and where
    :func:`channels_last_pays`, runs its kernel in channels-last and hands back NCHW.

    Only this kernel changes layout: every other op keeps seeing NCHW tensors. (A whole
    network in channels-last crashed torch 2.13's CPU kernels on small maps, and no single
    kernel reproduced it; ``benchmarks/channels_last_repro.py`` checks each depthwise shape
    of the space on its own, forward and backward, against NCHW.) The values are NCHW's up
    to float rounding; the parameters and the ``state_dict`` are ``nn.Conv2d``'s.
    """

    def __init__(
        self, channels: int, kernel: int, stride: int, padding: int, dilation: int = 1
    ) -> None:
        super().__init__(
            channels,
            channels,
            kernel,
            stride,
            padding,
            dilation=dilation,
            groups=channels,
            bias=False,
        )
        self.channels_last = channels_last_pays(channels, kernel, stride, dilation)

    def uses_channels_last(self, x: torch.Tensor) -> bool:
        """Whether :meth:`forward` runs ``x`` in channels-last."""
        return self.channels_last and x.is_cpu and x.dim() == 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not self.uses_channels_last(x):
            return super().forward(x)
        y = super().forward(x.contiguous(memory_format=torch.channels_last))
        return y.contiguous()


class DilConv(nn.Sequential):
    """ReLU → depthwise dilated conv → pointwise conv → BN."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int
    ):
        super().__init__(
            nn.ReLU(),
            DepthwiseConv2d(c_in, kernel, stride, padding, dilation),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        relu, depthwise, *rest = self
        if depthwise.uses_channels_last(x):
            # Change layout before the ReLU: the ReLU's output, which it keeps for backward,
            # is then the tensor the convolution keeps too, not a second copy of it.
            x = x.contiguous(memory_format=torch.channels_last)
        x = depthwise(relu(x))
        for module in rest:
            x = module(x)
        return x


class SepConv(nn.Sequential):
    """Separable conv applied twice (the second at stride 1), as in DARTS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, dilation=1),
            DilConv(c_in, c_out, kernel, 1, padding, dilation=1),
        )


class Conv7x1x1x7(nn.Sequential):
    """ReLU → (1×7) conv → (7×1) conv → BN: a factorised 7×7 receptive field."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(channels, channels, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(channels),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (used only while searching)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[..., :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the spatial size with two offset stride-2 1×1 convs (works for odd sizes too)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        a = self.conv_1(x)
        # The offset branch sees x shifted by one; pad so odd sizes line up with branch a.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        b = self.conv_2(shifted)
        return self.bn(torch.cat([a, b], dim=1))


def _pool(kind: str, channels: int, stride: int) -> nn.Module:
    if kind == "max":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)


def _skip(channels: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)


CNN_OPS: dict[str, CnnOpFactory] = {
    "max_pool_3x3": lambda c, s: _pool("max", c, s),
    "avg_pool_3x3": lambda c, s: _pool("avg", c, s),
    "sep_conv_3x3": lambda c, s: SepConv(c, c, 3, s, 1),
    "sep_conv_5x5": lambda c, s: SepConv(c, c, 5, s, 2),
    "dil_conv_3x3": lambda c, s: DilConv(c, c, 3, s, 2, 2),
    "dil_conv_5x5": lambda c, s: DilConv(c, c, 5, s, 4, 2),
    "conv_7x1_1x7": lambda c, s: Conv7x1x1x7(c, s),
    "skip_connect": _skip,
    "none": lambda c, s: Zero(s),
}


# --------------------------------------------------------------------------- SeqNN ops
class Recurrent(nn.Module):
    """``layers`` stacked bidirectional RNN/LSTM layers, ``(B, T, H) -> (B, T, H)``."""

    def __init__(self, kind: str, hidden: int, layers: int) -> None:
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden size must be even for bidirectional SeqNN ops, got {hidden}")
        rnn_cls = nn.LSTM if kind == "lstm" else nn.RNN
        self.rnn = rnn_cls(
            hidden, hidden // 2, num_layers=layers, batch_first=True, bidirectional=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return out


class AttentionPool(nn.Module):
    """Additive attention over time: ``score_t = v·tanh(W h_t + b)``, softmax over ``t``.

    ``forward(h)`` with ``h`` ``(B, T, D)`` returns the context ``(B, D)`` (the weighted sum
    of the steps) and the weights ``(B, T)``, which sum to 1 over time. Shared by the SeqNN
    attention ops and the hand-designed attention baseline.
    """

    def __init__(self, features: int, units: int | None = None) -> None:
        super().__init__()
        units = units or features
        self.score = nn.Sequential(nn.Linear(features, units), nn.Tanh(), nn.Linear(units, 1))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.score(h).squeeze(-1), dim=1)
        return torch.einsum("bt,bth->bh", weights, h), weights


class TemporalAttention(nn.Module):
    """:class:`AttentionPool` kept as a sequence op: the context vector is concatenated with
    every step's output and projected back to ``hidden``, so the op keeps the shape.
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.pool = AttentionPool(hidden)
        self.combine = nn.Linear(2 * hidden, hidden)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(B, T)`` over the time steps of ``h`` ``(B, T, H)``."""
        return self.pool(h)[1]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        context = self.pool(h)[0].unsqueeze(1).expand_as(h)
        return torch.tanh(self.combine(torch.cat([h, context], dim=-1)))


class RecurrentAttention(nn.Sequential):
    """Stacked recurrent layers followed by :class:`TemporalAttention`."""

    def __init__(self, kind: str, hidden: int, layers: int) -> None:
        super().__init__(Recurrent(kind, hidden, layers), TemporalAttention(hidden))


class SeqZero(nn.Module):
    """The SeqNN ``none`` op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _seq_table() -> dict[str, SeqOpFactory]:
    table: dict[str, SeqOpFactory] = {}
    for kind in ("rnn", "lstm"):
        for layers in (1, 2, 3, 4):
            table[f"{kind}_{layers}"] = lambda h, k=kind, n=layers: Recurrent(k, h, n)
        for layers in (1, 2):
            table[f"{kind}_att_{layers}"] = lambda h, k=kind, n=layers: RecurrentAttention(k, h, n)
    table["skip_connect"] = lambda h: nn.Identity()
    table["none"] = lambda h: SeqZero()
    return table


SEQ_OPS: dict[str, SeqOpFactory] = _seq_table()

#: The op every DARTS edge already has implicitly in NNI (the extra α slot); it is
#: never exported and never built into a frozen model.
NONE_OP = "none"

#: Ops without learnable weights (FactorizedReduce aside): a cell made mostly of them is
#: DARTS's collapse (Sec. VI-B of the paper; Liang et al. 2019). Read by ``collapse``.
PARAMETER_FREE_OPS = frozenset({"skip_connect", "max_pool_3x3", "avg_pool_3x3", NONE_OP})
