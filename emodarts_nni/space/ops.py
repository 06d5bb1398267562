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

from emodarts_nni.space.op_names import (  # noqa: F401 (NONE_OP … re-exported)
    ATTENTION_LAYERS,
    CNN_OP_NAMES,
    NONE_OP,
    PARAMETER_FREE_OPS,
    RECURRENT_KINDS,
    RECURRENT_LAYERS,
    SEQ_OP_NAMES,
    SKIP_OP,
)

CnnOpFactory = Callable[[int, int], nn.Module]
SeqOpFactory = Callable[[int], nn.Module]


# --------------------------------------------------------------------------- CNN ops
class ActivatedInput:
    """``relu(x)`` of one input, made at most once per layout (NCHW, channels-last), for
    the ops that start with a ReLU of that input (:class:`StartsWithReLU`).

    On a mixed edge five of the eight CNN candidates (six on a reduction edge, with
    :class:`FactorizedReduce`) start with ``relu(x)``. Made here, it is computed once per
    layout, and autograd keeps one copy of it per layout instead of one per candidate
    (``weighted_sum`` in :mod:`emodarts_nni.strategy.supermodule.summed`).
    """

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self._made: dict[bool, torch.Tensor] = {}
        self._grids: dict[tuple[int, int, bool], torch.Tensor] = {}

    def relu(self, channels_last: bool = False) -> torch.Tensor:
        """``relu(x)``, in channels-last when asked (the layout changes before the ReLU, so
        the tensor the ReLU keeps for backward is the one the next kernel keeps too)."""
        made = self._made.get(channels_last)
        if made is None:
            x = self.x.contiguous(memory_format=torch.channels_last) if channels_last else self.x
            made = self._made[channels_last] = torch.relu(x)
        return made

    def grid(self, stride: int, offset: int = 0, channels_last: bool = False) -> torch.Tensor:
        """``relu(x)`` at every ``stride``-th row and column from ``offset``: a copy made
        once per grid and layout for the ops that read only that grid (on a reduction edge
        the two dilated convolutions and :class:`FactorizedReduce`). Shared, its backward
        writes one gradient of the whole map instead of one per op."""
        key = (stride, offset, channels_last)
        made = self._grids.get(key)
        if made is None:
            if channels_last:
                made = self.grid(stride, offset).contiguous(memory_format=torch.channels_last)
            else:
                made = self.relu()[:, :, offset::stride, offset::stride].contiguous()
            self._grids[key] = made
        return made


class StartsWithReLU(nn.Module):
    """An op whose first step is ``relu`` of its input; :meth:`after_relu` runs the rest
    on an :class:`ActivatedInput` that other ops may share. Its ``nn.ReLU`` stays a
    submodule (the ``state_dict`` keys are unchanged) but :meth:`after_relu` takes the ReLU
    from the shared input."""

    def after_relu(self, activated: ActivatedInput) -> torch.Tensor:
        """The op's output, its ReLU taken from ``activated``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.after_relu(ActivatedInput(x))


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


class LayoutSwitch(nn.Module):
    """A module that, on CPU and where :attr:`channels_last` says it is faster, runs its
    kernels in channels-last; it takes and hands back NCHW tensors unless its caller asks
    for channels-last.

    Only these modules change layout: every other op keeps seeing NCHW tensors. (A whole
    network in channels-last crashed torch 2.13's CPU kernels on small maps, and no single
    kernel reproduced it; ``benchmarks/channels_last_repro.py`` checks each kernel shape
    of the space on its own, forward and backward, against NCHW.) Values are NCHW's up to
    float rounding. Set :attr:`channels_last` to ``False`` to keep NCHW (the benchmark's
    ``frugal-nchw`` step does, for every one).
    """

    #: Whether this module runs in channels-last on CPU (set by the subclass's rule).
    channels_last: bool = False

    def uses_channels_last(self, x: torch.Tensor) -> bool:
        """Whether the module runs ``x`` in channels-last."""
        return self.channels_last and x.is_cpu and x.dim() == 4


class ChannelsLastKernel(LayoutSwitch):
    """One kernel with a :class:`LayoutSwitch`: :meth:`kernel` in channels-last where
    :attr:`channels_last` says so, NCHW in and out."""

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The plain kernel, in whatever layout ``x`` has."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.uses_channels_last(x):
            x = x.contiguous(memory_format=torch.channels_last)
        return self.kernel(x).contiguous()  # NCHW out (a no-op where it already is)


class ReLUConvBN(StartsWithReLU, LayoutSwitch, nn.Sequential):
    """ReLU → Conv2d → BatchNorm (the DARTS building block).

    A 1 × 1 convolution over a number of input channels that is not a multiple of 16 runs
    in channels-last (:class:`LayoutSwitch`), where oneDNN's NCHW kernel is slow: forward +
    backward at batch 16, 2 threads, 24 → 8 channels on 128 × 128 (the first cell's
    preprocessing of the stem) 72 vs 20 ms, 8 → 4 10 vs 3 ms; from 16, 32 or 64 channels
    NCHW is as fast or faster. Batch norm stays in NCHW.
    """

    def __init__(self, c_in: int, c_out: int, kernel, stride, padding, dilation=1) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.channels_last = kernel == 1 and c_in % 16 != 0

    def after_relu(self, activated: ActivatedInput) -> torch.Tensor:  # noqa: D102
        _, conv, bn = self
        x = activated.relu(channels_last=self.uses_channels_last(activated.x))
        return bn(conv(x).contiguous())


class SubsamplesFirst:
    """An op with a strided kernel that, where it gives the same values, runs at stride 1
    on the subsampled input instead: on CPU oneDNN's strided kernels are several times
    slower than the stride-1 kernel over a quarter of the pixels."""

    #: Subsample first (the default). ``False`` runs the strided kernel as it is: the same
    #: values, slower (the reference step of ``benchmarks/search_step.py``).
    subsample: bool = True


class DepthwiseConv2d(SubsamplesFirst, ChannelsLastKernel, nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (``groups = channels``) in channels-last where
    :func:`channels_last_pays` (:class:`ChannelsLastKernel`). The parameters and the
    ``state_dict`` are ``nn.Conv2d``'s.

    A kernel dilated by its stride and padded by a multiple of it (the dilated convs of a
    reduction edge: stride 2, dilation 2, padding 2 or 4) reads only every ``stride``-th row
    and column of its input, the ones the output's first pixel reads: it runs at stride 1,
    undilated, on that grid (:attr:`grid`; :class:`SubsamplesFirst`). Forward + backward at
    batch 16, 2 threads: 16 channels from 128 × 128, 3 × 3 16 → 7 ms and 5 × 5 35 → 11 ms;
    32 channels from 64 × 64, 16 → 2 ms and 33 → 6 ms.
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
        on_grid = stride > 1 and dilation == stride and padding % stride == 0
        #: The stride of the grid the kernel reads (1: every pixel, the plain convolution).
        self.grid = stride if on_grid else 1
        g = self.grid
        self.channels_last = channels_last_pays(channels, kernel, stride // g, dilation // g)

    def on_grid(self) -> bool:
        """Whether the kernel runs at stride 1 on its :attr:`grid` (:meth:`grid_kernel`)."""
        return self.grid > 1 and self.subsample

    def uses_channels_last(self, x: torch.Tensor) -> bool:
        """Whether the module wants ``x`` in channels-last. On a grid it takes NCHW: the
        copy of the grid it makes is in the kernel's layout (:meth:`grid_channels_last`)."""
        return not self.on_grid() and super().uses_channels_last(x)

    def grid_channels_last(self, x: torch.Tensor) -> bool:
        """Whether :meth:`grid_kernel` wants the grid of ``x`` in channels-last."""
        return super().uses_channels_last(x)

    def grid_kernel(self, on_grid: torch.Tensor) -> torch.Tensor:
        """The kernel at stride 1, undilated, on the grid of its input (``on_grid``: every
        :attr:`grid`-th row and column from the first)."""
        g = self.grid
        padding = (self.padding[0] // g, self.padding[1] // g)
        return nn.functional.conv2d(on_grid, self.weight, None, 1, padding, 1, self.groups)

    def kernel(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if not self.on_grid():
            return nn.Conv2d.forward(self, x)
        layout = torch.channels_last if self.grid_channels_last(x) else torch.contiguous_format
        return self.grid_kernel(
            x[:, :, :: self.grid, :: self.grid].contiguous(memory_format=layout)
        )


class MaxPool2d(ChannelsLastKernel, nn.MaxPool2d):
    """3 × 3 max pooling, in channels-last at stride 1 (:class:`ChannelsLastKernel`).

    Forward + backward at batch 16, 2 threads, torch 2.13 CPU: 8 channels on 128 × 128
    28.7 vs 62.8 ms in NCHW, 16 on 64 × 64 9.5 vs 17.6 ms, 32 on 32 × 32 5.7 vs 9.2 ms
    (with the conversions); at stride 2 neither layout wins clearly. The maximum and the
    position it takes its gradient from are NCHW's exactly.
    """

    def __init__(self, stride: int) -> None:
        super().__init__(3, stride=stride, padding=1)
        self.channels_last = stride == 1

    def kernel(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return nn.MaxPool2d.forward(self, x)


class DilConv(StartsWithReLU, nn.Sequential):
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

    def after_relu(self, activated: ActivatedInput) -> torch.Tensor:  # noqa: D102
        _, depthwise, pointwise, bn = self
        # Where the depthwise kernel runs in channels-last the pointwise convolution stays
        # in it too (at 8 channels on 128 × 128 its forward and backward take 4.3 ms there
        # and 19 ms in NCHW); batch norm, whose backward is slower in channels-last, is
        # back in NCHW (``contiguous`` leaves an NCHW tensor as it is).
        # On a grid, the grid is shared with the edge's other ops that read it.
        if depthwise.on_grid():
            layout = depthwise.grid_channels_last(activated.x)
            out = depthwise.grid_kernel(activated.grid(depthwise.grid, channels_last=layout))
        else:
            x = activated.relu(channels_last=depthwise.uses_channels_last(activated.x))
            out = depthwise.kernel(x)
        return bn(pointwise(out).contiguous())


class SepConv(StartsWithReLU, nn.Sequential):
    """Separable conv applied twice (the second at stride 1), as in DARTS."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, dilation=1),
            DilConv(c_in, c_out, kernel, 1, padding, dilation=1),
        )

    def after_relu(self, activated: ActivatedInput) -> torch.Tensor:  # noqa: D102
        first, second = self
        return second(first.after_relu(activated))


class Conv7x1x1x7(StartsWithReLU, LayoutSwitch, nn.Sequential):
    """ReLU → (1×7) conv → (7×1) conv → BN: a factorised 7×7 receptive field.

    Over fewer than 32 channels the two convolutions run in channels-last
    (:class:`LayoutSwitch`; batch 16, 2 threads, forward + backward with the conversions:
    8 channels on 128 × 128 43 vs 57-64 ms, 16 channels at stride 2 from 128 × 128 36-45 vs
    62-65 ms, a wash on 64 × 64 and smaller maps); batch norm stays in NCHW.
    """

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(channels, channels, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(channels),
        )
        self.channels_last = channels < 32

    def after_relu(self, activated: ActivatedInput) -> torch.Tensor:  # noqa: D102
        _, wide, tall, bn = self
        x = activated.relu(channels_last=self.uses_channels_last(activated.x))
        return bn(tall(wide(x)).contiguous())  # batch norm in NCHW


class Zero(nn.Module):
    """The ``none`` op: zeros of the output shape (used only while searching)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[..., :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(SubsamplesFirst, StartsWithReLU):
    """Halve the spatial size with two offset stride-2 1×1 convs (works for odd sizes too);
    they run at stride 1 on the subsampled input (:class:`SubsamplesFirst`).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def after_relu(self, activated: ActivatedInput) -> torch.Tensor:  # noqa: D102
        # A stride-2 1×1 conv is the 1×1 conv of every second row and column: subsampled
        # first, the same values (bit for bit) 1.4-2.2x faster on CPU, where oneDNN's
        # strided 1×1 kernel is slow (16 channels on 128 × 128: 52 vs 88 ms forward and
        # backward). The offset branch sees x shifted by one, zero-padded at the end for odd
        # sizes so that it lines up with the first. The grids are shared with the edge's
        # other ops that read them (ActivatedInput.grid).
        if not self.subsample:
            x = activated.relu()
            shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
            return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))
        a = nn.functional.conv2d(activated.grid(2), self.conv_1.weight)
        shifted = activated.grid(2, offset=1)
        rows, cols = a.shape[-2] - shifted.shape[-2], a.shape[-1] - shifted.shape[-1]
        b = nn.functional.conv2d(nn.functional.pad(shifted, (0, cols, 0, rows)), self.conv_2.weight)
        return self.bn(torch.cat([a, b], dim=1))


def _pool(kind: str, channels: int, stride: int) -> nn.Module:
    if kind == "max":
        return MaxPool2d(stride)
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
    SKIP_OP: _skip,
    NONE_OP: lambda c, s: Zero(s),
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
    for kind in RECURRENT_KINDS:
        for layers in RECURRENT_LAYERS:
            table[f"{kind}_{layers}"] = lambda h, k=kind, n=layers: Recurrent(k, h, n)
        for layers in ATTENTION_LAYERS:
            table[f"{kind}_att_{layers}"] = lambda h, k=kind, n=layers: RecurrentAttention(k, h, n)
    table[SKIP_OP] = lambda h: nn.Identity()
    table[NONE_OP] = lambda h: SeqZero()
    return table


SEQ_OPS: dict[str, SeqOpFactory] = _seq_table()

# The names are owned by op_names (light modules validate against them without torch).
if tuple(CNN_OPS) != CNN_OP_NAMES or tuple(SEQ_OPS) != SEQ_OP_NAMES:
    raise ImportError("space/ops.py and space/op_names.py disagree on the op names")
