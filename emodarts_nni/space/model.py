"""The joint emoDARTS search space as one NNI ``ModelSpace``.

    MFCC (B, 1, n_mfcc, frames)
      → stem (3×3 conv-BN)
      → ``cnn_cells`` NNI ``Cell``s (labels ``normal`` / ``reduce``; reduction cells at
        ⌊C/3⌋ and ⌊2C/3⌋ halve the map and double the channels; each takes the two previous
        outputs)
      → bridge: mean over frequency, keep time, project to ``hidden`` → (B, T', hidden)
      → ``seq_cells`` NNI ``Cell``s over the sequence (label ``seq``, ``concat_dim=2``)
      → readout over time (:mod:`emodarts_nni.space.readouts`: ``mean``, the paper's, or
        ``stats`` / ``attentive-stats``; several candidates are an NNI ``LayerChoice``
        labelled ``readout``) → dropout → linear → ``n_classes`` logits.

Without SeqNN cells (CNN only) the readout pools the CNN output's time axis after the mean
over frequency (so ``mean`` is the mean over frequency and time, as before).

One definition serves search and retraining: strategies search on this space; the
retrained model is a *fresh* instance built under the exported architecture
(:func:`emodarts_nni.space.architecture.load_architecture`). The layout follows NNI's own
DARTS/NDS space (``nni/nas/hub/pytorch/nasnet.py``): an op table, a preprocessor that
aligns the two predecessors, a postprocessor that returns ``[prev, this]``, and the
stride-2 rule for reduction cells kept in :meth:`CnnCellOpFactory.stride`.

``none`` is not built as a candidate: NNI's differentiable cell already gives every edge
an extra "zero" α slot, which is exactly DARTS's ``none`` and is never exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.space.args import SPACE_DEFAULTS, resolve_space_args  # noqa: F401 (re-export)
from emodarts_nni.space.genotype import (
    NORMAL_CELL,
    NUM_PREDECESSORS,
    OPS_PER_NODE,
    READOUT_LABEL,
    REDUCE_CELL,
    SEQ_CELL,
    reduction_positions,
)
from emodarts_nni.space.op_names import DEFAULT_READOUTS, NONE_OP
from emodarts_nni.space.ops import CNN_OPS, SEQ_OPS, FactorizedReduce, ReLUConvBN
from emodarts_nni.space.readouts import ReadoutHead, pooled_width, pooling
from emodarts_nni.space.scopes import DEFAULT_SCOPE, Scope
from emodarts_nni.space.sizing import check_space_fits

with quiet_nni_import():
    from nni.nas.nn.pytorch import Cell, LayerChoice, ModelSpace


class CnnPreprocessor(nn.Module):
    """Align the two predecessors to ``channels`` (FactorizedReduce after a reduction)."""

    def __init__(self, c_pprev: int, c_prev: int, channels: int, after_reduction: bool) -> None:
        super().__init__()
        if after_reduction:
            self.pre0: nn.Module = FactorizedReduce(c_pprev, channels)
        else:
            self.pre0 = ReLUConvBN(c_pprev, channels, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_prev, channels, 1, 1, 0)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        pprev, prev = inputs
        return [self.pre0(pprev), self.pre1(prev)]


class SeqPreprocessor(nn.Module):
    """Project both predecessors to ``hidden`` features per time step (Linear + LayerNorm)."""

    def __init__(self, d_pprev: int, d_prev: int, hidden: int) -> None:
        super().__init__()
        self.pre0 = nn.Sequential(nn.Linear(d_pprev, hidden), nn.LayerNorm(hidden))
        self.pre1 = nn.Sequential(nn.Linear(d_prev, hidden), nn.LayerNorm(hidden))

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        pprev, prev = inputs
        return [self.pre0(pprev), self.pre1(prev)]


class CellPostprocessor(nn.Module):
    """Return ``[previous cell, this cell]`` so cells chain as ``y_t = f(y_{t-1}, y_{t-2})``."""

    def forward(self, this_cell: torch.Tensor, previous: list[torch.Tensor]) -> list[torch.Tensor]:
        return [previous[-1], this_cell]


class TimeBridge(nn.Module):
    """``(B, C, F, T) → (B, T, hidden)``: mean over frequency, keep the time axis."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(channels, hidden), nn.LayerNorm(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x.mean(dim=2).transpose(1, 2))


@dataclass(frozen=True)
class CnnCellOpFactory:
    """The NNI ``Cell`` factory of one CNN candidate: ``op`` at ``channels`` wide.

    A dataclass rather than a closure so a strategy can rebuild an edge's candidates at
    another width (PC-DARTS builds them at ``channels / K``, :mod:`emodarts_nni.strategy.supermodule.partial_channel`).
    """

    op: str
    channels: int
    reduction: bool

    def __call__(self, node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        # Ops reading the cell's inputs run at stride 2 in a reduction cell; ops reading
        # intermediate nodes (already reduced) at stride 1. ``None`` occurs while building the
        # search space, where the op may read either (as in NNI's nasnet.py).
        return CNN_OPS[self.op](self.channels, self.stride(input_index))

    def stride(self, input_index: int | None) -> int:
        """The stride of this op on the edge from node ``input_index``."""
        reads_cell_input = input_index is None or input_index < NUM_PREDECESSORS
        return 2 if self.reduction and reads_cell_input else 1


@dataclass(frozen=True)
class SeqCellOpFactory:
    """The NNI ``Cell`` factory of one SeqNN candidate: ``op`` over ``hidden`` features."""

    op: str
    hidden: int

    def __call__(self, node_index: int, op_index: int, input_index: int | None) -> nn.Module:
        return SEQ_OPS[self.op](self.hidden)


class EmoDartsSpace(ModelSpace):
    """The joint CNN + SeqNN emoDARTS space (see the module docstring for the layout)."""

    def __init__(
        self,
        cnn_ops: Sequence[str],
        seq_ops: Sequence[str],
        *,
        n_mfcc: int,
        frames: int,
        n_classes: int,
        init_channels: int,
        stem_multiplier: int,
        cnn_cells: int,
        cnn_nodes: int,
        seq_cells: int,
        seq_nodes: int,
        hidden: int,
        dropout: float,
        readouts: Sequence[str] = DEFAULT_READOUTS,
    ) -> None:
        super().__init__()
        cnn_candidates = [op for op in cnn_ops if op != NONE_OP]
        seq_candidates = [op for op in seq_ops if op != NONE_OP]
        self.n_mfcc, self.frames, self.n_classes = n_mfcc, frames, n_classes

        c_stem = stem_multiplier * init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(1, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        c_pprev, c_prev, channels = c_stem, c_stem, init_channels
        after_reduction = False
        reductions = reduction_positions(cnn_cells)
        self.cnn_cells = nn.ModuleList()
        for index in range(cnn_cells):
            reduction = index in reductions
            if reduction:
                channels *= 2
            factories = {op: CnnCellOpFactory(op, channels, reduction) for op in cnn_candidates}
            self.cnn_cells.append(
                Cell(
                    factories,
                    cnn_nodes,
                    OPS_PER_NODE,
                    NUM_PREDECESSORS,
                    "all",
                    preprocessor=CnnPreprocessor(c_pprev, c_prev, channels, after_reduction),
                    postprocessor=CellPostprocessor(),
                    label=REDUCE_CELL if reduction else NORMAL_CELL,
                )
            )
            c_pprev, c_prev = c_prev, channels * cnn_nodes
            after_reduction = reduction

        self.seq_cells = nn.ModuleList()
        if seq_cells > 0:
            self.bridge: nn.Module = TimeBridge(c_prev, hidden)
            d_pprev = d_prev = hidden
            for _ in range(seq_cells):
                factories = {op: SeqCellOpFactory(op, hidden) for op in seq_candidates}
                self.seq_cells.append(
                    Cell(
                        factories,
                        seq_nodes,
                        OPS_PER_NODE,
                        NUM_PREDECESSORS,
                        "all",
                        preprocessor=SeqPreprocessor(d_pprev, d_prev, hidden),
                        postprocessor=CellPostprocessor(),
                        concat_dim=2,
                        label=SEQ_CELL,
                    )
                )
                d_pprev, d_prev = d_prev, hidden * seq_nodes
            features = d_prev
        else:
            self.bridge = nn.Identity()
            features = c_prev
        # One readout: its modules sit on the space itself (the names a mean-readout
        # checkpoint has always had: ``classifier.weight``). Several: a LayerChoice of heads.
        self.readout_choice: nn.Module | None = None
        if len(readouts) > 1:
            self.readout_choice = LayerChoice(
                {name: ReadoutHead(name, features, n_classes, dropout) for name in readouts},
                label=READOUT_LABEL,
            )
        else:
            self.pool = pooling(readouts[0], features)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(pooled_width(readouts[0], features), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` for MFCC maps ``(B, n_mfcc, frames)`` or ``(B, 1, n_mfcc, frames)``."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        s = self.stem(x)
        states = [s, s]
        for cell in self.cnn_cells:
            states = cell(states)
        out = states[-1]
        if len(self.seq_cells):
            h = self.bridge(out)
            states = [h, h]
            for cell in self.seq_cells:
                states = cell(states)
            frames = states[-1]
        else:
            frames = out.mean(dim=2).transpose(1, 2)  # (B, T', C): the time axis, as the bridge
        if self.readout_choice is not None:
            return self.readout_choice(frames)
        return self.classifier(self.dropout(self.pool(frames)))


def space_from_args(args: dict[str, Any]) -> EmoDartsSpace:
    """Build the space from resolved arguments (as stored in an architecture JSON)."""
    kwargs = {k: v for k, v in args.items() if k != "scope"}
    from nni.nas.space import current_model  # the architecture being frozen, if any

    check_space_fits(kwargs, architecture=current_model())
    return EmoDartsSpace(**kwargs)


def build_space(scope: str | Scope = DEFAULT_SCOPE, **overrides: Any) -> EmoDartsSpace:
    """Build the NNI ``ModelSpace`` of a search scope.

    ``scope`` is a scope name (``"emodarts"``, ``"lstm_only"``, ``"lstm_att_only"``,
    ``"rnn_only"``, ``"rnn_att_only"``, ``"cnn_only"``) or a path to a scope YAML;
    ``overrides`` set any of :data:`SPACE_DEFAULTS` (input size, channels, cells, nodes,
    hidden size, dropout, classes).
    """
    return space_from_args(resolve_space_args(scope, **overrides))
