"""The paper's hand-designed baselines ("w/o DARTS", Sec. IV-B, Fig. 4) as plain modules.

Three models, each taking MFCC maps ``(B, n_mfcc, frames)`` or ``(B, 1, n_mfcc, frames)``
and returning **logits** ``(B, n_classes)``:

``cnn``
    conv (kernel 2, stride 2, padding 2) → ReLU → BN → max-pool (2, 2) → dropout 0.3 →
    flatten → dense → ReLU → dense (``n_classes``).
``cnn_lstm``
    the same front end, then a bidirectional LSTM (128 units per direction) run over the
    **time** axis of the pooled map (channels × frequency form the feature vector of a
    step) → mean over time → dense → ReLU → dense.
``cnn_lstm_att``
    as ``cnn_lstm``, with additive attention over the LSTM's time steps (one score per
    step, softmax over time, weighted sum) instead of the mean.

What differs from the authors' public code (``docs/paper-notes.md``, defects 1, 3, 8):

- Their models ended in ``softmax(dim=0)``, a softmax over the *batch*. These return
  logits; the softmax is taken over the **class** dimension by the cross-entropy loss in
  training and by the caller at inference.
- Their models had no non-linearity at all (conv, pool, two dense layers: one affine map).
  Here a ReLU + BatchNorm follows the conv and a ReLU sits between the dense layers.
- Their LSTM was fed the flattened ``(B, features)`` map, so it ran over the *batch* as a
  sequence: a sample's prediction depended on its batch-mates and their order. Here the
  LSTM runs over time (``batch_first``), and each sample is scored on its own.
- Their "attention" was a feature-wise softmax gate; here it is attention over time.
- Dropout sits after the max-pool as the paper says (their code put it between the dense
  layers).

Sizes default to what gives the paper's parameter count: the authors' conv has **one**
output channel and their first dense layer 32 units, which at 128 × 128 is the CNN
baseline's 35 K parameters (Table 3). Both are arguments of :func:`build_baseline`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from emodarts_nni.common.errors import ConfigError, suggest
from emodarts_nni.space.ops import AttentionPool

#: Front-end geometry fixed by the paper (Fig. 4).
CONV_KERNEL, CONV_STRIDE, CONV_PADDING = 2, 2, 2
POOL_KERNEL, POOL_STRIDE = 2, 2


def _front_end_size(size: int) -> int:
    """Length of one axis after the conv and the max-pool (PyTorch's floor rounding)."""
    conv = (size + 2 * CONV_PADDING - CONV_KERNEL) // CONV_STRIDE + 1
    return (conv - POOL_KERNEL) // POOL_STRIDE + 1


def _as_image(x: torch.Tensor) -> torch.Tensor:
    """``(B, n_mfcc, frames)`` → ``(B, 1, n_mfcc, frames)``; 4-D input is passed through."""
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() == 4 and x.shape[1] == 1:
        return x
    raise ValueError(
        f"expected MFCC maps (B, n_mfcc, frames) or (B, 1, n_mfcc, frames), got {tuple(x.shape)}"
    )


class ConvFrontEnd(nn.Module):
    """conv (k 2, s 2, p 2) → ReLU → BN → max-pool (2, 2) → dropout: ``(B, C, F', T')``."""

    def __init__(self, conv_channels: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, conv_channels, CONV_KERNEL, CONV_STRIDE, CONV_PADDING)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(conv_channels)
        self.pool = nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map ``(B, conv_channels, F', T')`` of MFCC maps (3-D or 4-D)."""
        x = self.bn(self.relu(self.conv(_as_image(x))))
        return self.dropout(self.pool(x))


def _dense_head(in_features: int, dense_units: int, n_classes: int) -> nn.Sequential:
    """The two dense layers: ``in → dense_units → ReLU → n_classes`` (logits)."""
    return nn.Sequential(
        nn.Linear(in_features, dense_units),
        nn.ReLU(),
        nn.Linear(dense_units, n_classes),
    )


class CnnBaseline(nn.Module):
    """The CNN baseline: conv front end → flatten → two dense layers → logits.

    The flattened map fixes the input size at construction (``n_mfcc`` × ``frames``), as in
    the paper; the output is logits, not probabilities (softmax over classes is the loss's
    job — the authors' code took it over the batch).
    """

    def __init__(
        self,
        *,
        n_mfcc: int,
        frames: int,
        n_classes: int,
        conv_channels: int = 1,
        dense_units: int = 32,
        dropout: float = 0.3,
        lstm_units: int = 128,
    ) -> None:
        super().__init__()
        del lstm_units  # accepted so every baseline takes the same arguments
        self.input_size = (n_mfcc, frames)
        self.front = ConvFrontEnd(conv_channels, dropout)
        flat = conv_channels * _front_end_size(n_mfcc) * _front_end_size(frames)
        self.head = _dense_head(flat, dense_units, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``."""
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"the cnn baseline was built for {self.input_size[0]} × {self.input_size[1]} "
                f"MFCC maps, got {tuple(x.shape[-2:])}"
            )
        return self.head(torch.flatten(self.front(x), start_dim=1))


class CnnLstmBaseline(nn.Module):
    """CNN + bidirectional LSTM over time (+ attention over time when ``attention``).

    The pooled map ``(B, C, F', T')`` becomes the sequence ``(B, T', C·F')``; the LSTM runs
    over its ``T'`` steps, never over the batch. Its outputs ``(B, T', 2·lstm_units)`` are
    pooled over time — by the mean, or by attention weights that sum to 1 over time — and
    fed to two dense layers. Any number of frames works; ``n_mfcc`` is fixed at
    construction (it sets the LSTM's input width).
    """

    def __init__(
        self,
        *,
        n_mfcc: int,
        frames: int,
        n_classes: int,
        conv_channels: int = 1,
        lstm_units: int = 128,
        dense_units: int = 32,
        dropout: float = 0.3,
        attention: bool = False,
    ) -> None:
        super().__init__()
        del frames  # the LSTM takes any sequence length
        self.n_mfcc = n_mfcc
        self.front = ConvFrontEnd(conv_channels, dropout)
        self.lstm = nn.LSTM(
            conv_channels * _front_end_size(n_mfcc),
            lstm_units,
            batch_first=True,
            bidirectional=True,
        )
        self.attention = AttentionPool(2 * lstm_units, lstm_units) if attention else None
        self.head = _dense_head(2 * lstm_units, dense_units, n_classes)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        """LSTM outputs ``(B, T', 2·lstm_units)`` over the time steps of the pooled map."""
        if x.shape[-2] != self.n_mfcc:
            raise ValueError(f"this baseline was built for {self.n_mfcc} MFCCs, got {x.shape[-2]}")
        fmap = self.front(x)  # (B, C, F', T')
        steps = fmap.permute(0, 3, 1, 2).flatten(start_dim=2)  # (B, T', C·F')
        out, _ = self.lstm(steps)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)``."""
        h = self.sequence(x)
        pooled = h.mean(dim=1) if self.attention is None else self.attention(h)[0]
        return self.head(pooled)


def _cnn_lstm_att(**kwargs: object) -> nn.Module:
    return CnnLstmBaseline(attention=True, **kwargs)  # type: ignore[arg-type]


#: Baseline name (``emodarts baseline NAME``, ``metrics.json`` ``scope``) → constructor.
BASELINES: dict[str, Callable[..., nn.Module]] = {
    "cnn": CnnBaseline,
    "cnn_lstm": CnnLstmBaseline,
    "cnn_lstm_att": _cnn_lstm_att,
}


def build_baseline(
    name: str,
    *,
    n_mfcc: int,
    frames: int,
    n_classes: int,
    conv_channels: int = 1,
    lstm_units: int = 128,
    dense_units: int = 32,
    dropout: float = 0.3,
) -> nn.Module:
    """A freshly initialised baseline ``name`` (``cnn``, ``cnn_lstm``, ``cnn_lstm_att``).

    Defaults reproduce the paper: one conv channel and 32 dense units (the authors' sizes,
    35 K parameters for the CNN at 128 × 128), a 128-unit bidirectional LSTM, dropout 0.3.
    The module has a ``num_parameters`` attribute (trainable parameters). An unknown name
    raises :class:`~emodarts_nni.common.errors.ConfigError`.
    """
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}{suggest(name, list(BASELINES))}")
    for key, value in (
        ("n_mfcc", n_mfcc),
        ("frames", frames),
        ("n_classes", n_classes),
        ("conv_channels", conv_channels),
        ("lstm_units", lstm_units),
        ("dense_units", dense_units),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"baseline {name}: {key} must be a positive integer, got {value!r}")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"baseline {name}: dropout must be in [0, 1), got {dropout!r}")
    model = BASELINES[name](
        n_mfcc=n_mfcc,
        frames=frames,
        n_classes=n_classes,
        conv_channels=conv_channels,
        lstm_units=lstm_units,
        dense_units=dense_units,
        dropout=dropout,
    )
    model.num_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model
