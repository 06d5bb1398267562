"""How big a model of the emoDARTS space will be, from its arguments alone (torch-free).

:func:`estimate` counts the trainable parameters of a space exactly (it follows the layer
shapes of :mod:`emodarts_nni.space.model` and :mod:`emodarts_nni.space.ops`) and approximates the
activation memory a training step keeps for backward. Three things can be sized:

* ``"space"`` — the ``ModelSpace`` :func:`~emodarts_nni.space.model.build_space` returns: every
  candidate op of every node, held but never trained as a whole;
* ``"supernet"`` — what a differentiable strategy (DARTS, GDAS) trains: NNI's mixed cell
  builds every candidate on *every* edge ``j → i`` (``i`` edges into node ``i``) plus one α
  vector per edge;
* ``"frozen"`` — a derived model; exact given its architecture, an upper bound (the
  largest candidate on every edge) without one.

:func:`check_fits` refuses an estimate that cannot fit this machine's physical memory with
a one-line :class:`~emodarts_nni.common.errors.ConfigError` giving the estimate. It runs before
anything is built (space.py, reading an architecture JSON, loading a checkpoint), so a
typo such as ``init_channels: 1000000`` fails in milliseconds instead of allocating
terabytes. The work done here does not grow with the number of cells or nodes.

Accuracy: parameters are exact (a test compares with built spaces). Activations are a
model of what autograd saves (fp32, per sample, calibrated on CPU): expect the real figure
within a factor of about two; cuDNN's recurrent kernels save less than the CPU ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.common.units import format_bytes, format_count
from emodarts_nni.space import genotype
from emodarts_nni.space.op_names import (
    ATTENTION_UNITS,
    DEFAULT_READOUTS,
    MEAN_READOUT,
    NONE_OP,
    SKIP_OP,
)

Mode = Literal["space", "supernet", "frozen"]

#: Bytes per stored value (fp32 weights, gradients, activations).
BYTES_PER_VALUE = 4
#: Copies of the weights a training step holds: weights, gradients, Adam's two moments.
TRAINING_COPIES = 4

# Activation values autograd keeps per op, in tenths of one input map (channels × height ×
# width of the op's input), measured with ``torch.autograd.graph.saved_tensors_hooks``.
# Integers throughout, so absurd sizes give absurd numbers instead of float overflow.
_CNN_ACTIVATION = {
    1: {"max_pool_3x3": 30, "avg_pool_3x3": 10, "sep_conv_3x3": 62, "sep_conv_5x5": 63,
        "dil_conv_3x3": 31, "dil_conv_5x5": 32, "conv_7x1_1x7": 35, SKIP_OP: 0},
    2: {"max_pool_3x3": 15, "avg_pool_3x3": 10, "sep_conv_3x3": 25, "sep_conv_5x5": 26,
        "dil_conv_3x3": 16, "dil_conv_5x5": 17, "conv_7x1_1x7": 22, SKIP_OP: 23},
}  # fmt: skip
# SeqNN ops, in tenths of one (time × hidden) sequence: per recurrent layer, and extra for
# the attention head.
_RNN_LAYER_ACTIVATION = {"rnn": 40, "lstm": 300}
_ATTENTION_ACTIVATION = 80
_TENTHS = 10


@dataclass(frozen=True)
class SizeEstimate:
    """Size of one model of the space.

    ``parameters``: trainable parameters (exact). ``activation_bytes``: activations kept
    for backward over one batch of ``batch_size`` (approximate). ``peak_bytes``: weights
    (with gradients and optimiser state when trained) plus activations.
    """

    mode: str
    parameters: int
    activation_bytes: int
    batch_size: int
    peak_bytes: int

    def describe(self) -> str:
        """``"1.23 M parameters, about 3.4 GiB (supernet, batch 32)"``."""
        return (
            f"{format_count(self.parameters)} parameters, about "
            f"{format_bytes(self.peak_bytes)} ({self.mode}, batch {self.batch_size})"
        )


# --------------------------------------------------------------------------- op sizes
def _conv_bn(c_in: int, c_out: int) -> int:
    """A bias-free 1×1 conv (or FactorizedReduce) followed by BatchNorm."""
    return c_in * c_out + 2 * c_out


def cnn_op_parameters(op: str, channels: int, stride: int) -> int:
    """Trainable parameters of CNN op ``op`` at ``channels`` (see ``ops.CNN_OPS``)."""
    c = channels

    def dil(k: int) -> int:  # depthwise k×k + pointwise 1×1 + BN
        return c * k * k + c * c + 2 * c

    sizes = {
        "max_pool_3x3": 0,
        "avg_pool_3x3": 0,
        "sep_conv_3x3": 2 * dil(3),
        "sep_conv_5x5": 2 * dil(5),
        "dil_conv_3x3": dil(3),
        "dil_conv_5x5": dil(5),
        "conv_7x1_1x7": 14 * c * c + 2 * c,
        SKIP_OP: 0 if stride == 1 else _conv_bn(c, c),
        NONE_OP: 0,
    }
    if op not in sizes:
        raise ConfigError(f"unknown CNN op {op!r}")
    return sizes[op]


def _recurrent(op: str) -> tuple[str, int, bool] | None:
    """``("lstm", 2, True)`` for ``lstm_att_2``; ``None`` for other ops."""
    parts = op.split("_")
    if parts[0] not in _RNN_LAYER_ACTIVATION or not parts[-1].isdigit():
        return None
    return parts[0], int(parts[-1]), "att" in parts


def seq_op_parameters(op: str, hidden: int) -> int:
    """Trainable parameters of SeqNN op ``op`` at width ``hidden`` (see ``ops.SEQ_OPS``)."""
    if op in (SKIP_OP, NONE_OP):
        return 0
    recurrent = _recurrent(op)
    if recurrent is None:
        raise ConfigError(f"unknown SeqNN op {op!r}")
    kind, layers, attention = recurrent
    gates = 4 if kind == "lstm" else 1
    half = hidden // 2  # per direction; every layer reads ``hidden`` features
    per_layer = 2 * gates * half * (hidden + half + 2)
    # AttentionPool (Linear H→H, Linear H→1) and the combining Linear 2H→H.
    head = (hidden * hidden + hidden) + (hidden + 1) + (2 * hidden * hidden + hidden)
    return layers * per_layer + (head if attention else 0)


def _cnn_op_activation(op: str, stride: int) -> int:
    return _CNN_ACTIVATION[stride].get(op, 0)


def _seq_op_activation(op: str) -> int:
    recurrent = _recurrent(op)
    if recurrent is None:
        return 0
    kind, layers, attention = recurrent
    return layers * _RNN_LAYER_ACTIVATION[kind] + (_ATTENTION_ACTIVATION if attention else 0)


# --------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class _Cell:
    """What sizes one cell: its inputs' channels and maps, its width, its kind."""

    label: str
    c_pprev: int
    c_prev: int
    width: int  # channels per node (CNN) or hidden (SeqNN)
    reduction: bool
    map_pprev: int  # values per sample of each input (channels × positions)
    map_prev: int
    positions_in: int  # positions (height × width, or time steps) the ops read
    positions_out: int


def _half(n: int) -> int:
    return (n + 1) // 2  # every stride-2 op here maps n → ⌈n/2⌉


def _cnn_cells(args: Mapping[str, Any]) -> Iterator[tuple[_Cell, int]]:
    """The CNN cells as ``(cell, count)`` runs of identical cells (a handful, however many)."""
    n, nodes = args["cnn_cells"], args["cnn_nodes"]
    reductions = sorted(genotype.reduction_positions(n))
    c_stem = args["stem_multiplier"] * args["init_channels"]
    c_pp, c_p, channels = c_stem, c_stem, args["init_channels"]
    shape_pp = shape_p = (args["n_mfcc"], args["frames"])
    after_reduction = False
    index = 0
    while index < n:
        reduction = index in reductions
        if reduction:
            channels *= 2
        shape_in = shape_p
        shape_out = (_half(shape_in[0]), _half(shape_in[1])) if reduction else shape_in
        cell = _Cell(
            genotype.REDUCE_CELL if reduction else genotype.NORMAL_CELL,
            c_pp,
            c_p,
            channels,
            reduction,
            c_pp * shape_pp[0] * shape_pp[1],
            c_p * shape_p[0] * shape_p[1],
            shape_in[0] * shape_in[1],
            shape_out[0] * shape_out[1],
        )
        steady = (
            not reduction and not after_reduction and c_pp == c_p == channels * nodes
        ) and shape_pp == shape_p
        # A steady normal cell repeats unchanged up to the next reduction (or the end).
        count = min([r for r in reductions if r > index] + [n]) - index if steady else 1
        yield cell, count
        index += count
        c_pp, c_p = c_p, channels * nodes
        shape_pp, shape_p = shape_p, shape_out
        after_reduction = reduction


def _cnn_output(args: Mapping[str, Any]) -> tuple[int, int]:
    """Channels and time steps after the last CNN cell."""
    n, nodes = args["cnn_cells"], args["cnn_nodes"]
    reductions = len(genotype.reduction_positions(n))
    frames = args["frames"]
    for _ in range(reductions):
        frames = _half(frames)
    return args["init_channels"] * 2**reductions * nodes, frames


def _seq_cells(args: Mapping[str, Any], steps: int) -> Iterator[tuple[_Cell, int]]:
    n, hidden, wide = args["seq_cells"], args["hidden"], args["hidden"] * args["seq_nodes"]
    inputs = [(hidden, hidden), (hidden, wide), (wide, wide)]
    for index in range(min(n, 3)):
        d_pp, d_p = inputs[index]
        cell = _Cell(
            genotype.SEQ_CELL, d_pp, d_p, hidden, False, d_pp * steps, d_p * steps, steps, steps
        )
        yield cell, (n - 2 if index == 2 else 1)


# --------------------------------------------------------------------------- estimate
def _op_slots(
    label: str, nodes: int, mode: Mode, arch: Mapping[str, Any] | None
) -> Iterator[tuple[str | None, int | None, int]]:
    """``(chosen op, source, count)`` for the op slots of one cell.

    ``chosen`` None: every candidate (``space``/``supernet``) or the largest (``frozen``
    without an architecture); ``source`` None: the cell's inputs or any node. Aggregated,
    so the work does not grow with ``nodes`` unless an architecture names each slot.
    """
    first = genotype.NUM_PREDECESSORS
    if mode == "supernet":
        # A mixed op on every edge j → i: two read the cell's inputs, i - 2 read nodes.
        yield None, 0, first * nodes
        yield None, first, nodes * (nodes - 1) // 2
    elif arch is None:
        yield None, None, genotype.OPS_PER_NODE * nodes
    else:
        for node in range(first, first + nodes):
            for k in range(genotype.OPS_PER_NODE):
                chosen = arch.get(genotype.op_label(label, node, k))
                source = arch.get(genotype.input_label(label, node, k))
                if isinstance(source, list) and source:
                    source = source[0]
                valid = isinstance(source, int) and not isinstance(source, bool)
                yield (chosen if isinstance(chosen, str) else None), (source if valid else None), 1


def _readout_size(readout: str, features: int, steps: int, n_classes: int) -> tuple[int, int]:
    """Parameters and activations (tenths) of one readout head (``readouts.ReadoutHead``)."""
    pooled = features if readout == MEAN_READOUT else 2 * features
    params = pooled * n_classes + n_classes
    act = _TENTHS * (2 * pooled + n_classes)  # pooled, dropout, logits
    if readout != MEAN_READOUT:  # the centred frames and their square
        act += _TENTHS * 2 * features * steps
    if readout == "attentive-stats":  # Linear(features, units) + tanh + Linear(units, 1)
        params += features * ATTENTION_UNITS + 2 * ATTENTION_UNITS
        act += _TENTHS * (2 * ATTENTION_UNITS * steps + 3 * steps + 2 * features * steps)
    return params, act


def _readout(
    args: Mapping[str, Any], features: int, steps: int, mode: Mode, arch: Mapping[str, Any] | None
) -> tuple[int, int]:
    """Parameters and activations of the readout: every candidate head in a space or
    supernet (plus α and the mixed logits), the chosen (or the largest) one in a frozen model."""
    readouts = list(args.get("readouts") or DEFAULT_READOUTS)
    n_classes = args["n_classes"]
    sizes = [_readout_size(r, features, steps, n_classes) for r in readouts]
    if mode == "frozen" or len(readouts) == 1:
        chosen = arch.get(genotype.READOUT_LABEL) if arch is not None else None
        if chosen in readouts:
            return sizes[readouts.index(chosen)]
        return max(sizes)
    params = sum(p for p, _ in sizes)
    act = sum(a for _, a in sizes)
    if mode == "supernet":  # one α per candidate; the stacked logits and their mix
        params += len(readouts)
        act += _TENTHS * (len(readouts) + 2) * n_classes
    return params, act


def estimate(
    args: Mapping[str, Any],
    mode: Mode = "frozen",
    *,
    architecture: Mapping[str, Any] | None = None,
    batch_size: int = 1,
    recompute: bool = False,
) -> SizeEstimate:
    """Size of a model of the space with resolved arguments ``args``.

    ``args`` are :func:`~emodarts_nni.space.model.resolve_space_args`'s result (sizes, ``cnn_ops``,
    ``seq_ops``). ``mode`` is ``"space"``, ``"supernet"`` or ``"frozen"`` (see the module
    docstring); ``architecture`` (label → choice) makes a frozen estimate exact.
    ``recompute`` (supernet only): the mixed edges are recomputed in backward
    (``search.memory: lean``): their candidates' activations are held for one edge at a time.
    """
    if mode not in ("space", "supernet", "frozen"):
        raise ValueError(f"unknown mode {mode!r}")
    arch = None
    if architecture is not None and mode == "frozen":
        arch = genotype.choices(architecture)
        slots = genotype.OPS_PER_NODE * max(args["cnn_nodes"], args["seq_nodes"])
        if len(arch) < slots:  # cannot be a valid architecture of this space: bound it
            arch = None
    cnn_ops = [op for op in args["cnn_ops"] if op != NONE_OP]
    seq_ops = [op for op in args.get("seq_ops", ()) if op != NONE_OP]
    params = 0
    act = 0  # in tenths of a value, per sample
    c_stem = args["stem_multiplier"] * args["init_channels"]
    params += 9 * c_stem + 2 * c_stem
    act += _TENTHS * args["n_mfcc"] * args["frames"] * (1 + 2 * c_stem)  # input, conv, BN
    alphas = {}
    largest_edge = 0  # recompute: the most one edge's candidates hold at once

    def add_cell(cell: _Cell, count: int, nodes: int, candidates: list[str], seq: bool) -> None:
        nonlocal params, act, largest_edge
        w = cell.width
        cell_params = cell_act = 0
        if seq:  # two Linear + LayerNorm preprocessors
            cell_params += (cell.c_pprev + cell.c_prev) * w + 6 * w
        else:  # ReLUConvBN or FactorizedReduce: a 1×1 conv and BN either way
            cell_params += _conv_bn(cell.c_pprev, w) + _conv_bn(cell.c_prev, w)
        cell_act += _TENTHS * (cell.map_pprev + cell.map_prev + 4 * w * cell.positions_in)
        for chosen, source, slots in _op_slots(cell.label, nodes, mode, arch):
            # Ops reading the cell's inputs are strided in a reduction cell (space.py).
            reads_input = source is None or source < genotype.NUM_PREDECESSORS
            stride = 2 if cell.reduction and reads_input else 1
            positions = cell.positions_in if stride == 2 else cell.positions_out
            ops = [chosen] if chosen in candidates else candidates
            if seq:
                sizes = [(seq_op_parameters(op, w), _seq_op_activation(op)) for op in ops]
            else:
                sizes = [
                    (cnn_op_parameters(op, w, stride), _cnn_op_activation(op, stride)) for op in ops
                ]
            if mode == "frozen":  # one op per slot: the chosen one, or the largest
                sizes = [max(sizes)] if sizes else []
            cell_params += slots * sum(p for p, _ in sizes)
            edge_act = w * positions * sum(a for _, a in sizes)
            if mode == "supernet" and recompute:  # only the edge's output is kept
                largest_edge = max(largest_edge, edge_act + w * positions * _TENTHS * 2)
                cell_act += slots * w * positions * _TENTHS
                continue
            cell_act += slots * edge_act
            if mode == "supernet":  # the stacked op outputs and their weighted sum
                cell_act += slots * w * positions * _TENTHS * (len(sizes) + 2)
        cell_act += _TENTHS * 2 * nodes * w * cell.positions_out  # node sums, concatenation
        params += count * cell_params
        act += count * cell_act
        if mode == "supernet":  # one α per edge and candidate (+ the zero op), shared by label
            edges = genotype.NUM_PREDECESSORS * nodes + nodes * (nodes - 1) // 2
            alphas[cell.label] = edges * (len(candidates) + 1)

    for cell, count in _cnn_cells(args):
        add_cell(cell, count, args["cnn_nodes"], cnn_ops, seq=False)
    channels, steps = _cnn_output(args)
    features = channels
    if args["seq_cells"] > 0:
        hidden = args["hidden"]
        params += channels * hidden + 3 * hidden  # bridge: Linear + LayerNorm
        act += _TENTHS * (channels * steps + 3 * hidden * steps)
        for cell, count in _seq_cells(args, steps):
            add_cell(cell, count, args["seq_nodes"], seq_ops, seq=True)
        features = hidden * args["seq_nodes"]
    readout_params, readout_act = _readout(args, features, steps, mode, arch)
    params += readout_params + sum(alphas.values())
    act += readout_act + largest_edge

    activation_bytes = act * BYTES_PER_VALUE * batch_size // _TENTHS
    copies = 1 if mode == "space" else TRAINING_COPIES
    peak = params * BYTES_PER_VALUE * copies + activation_bytes
    return SizeEstimate(mode, params, activation_bytes, batch_size, peak)


# --------------------------------------------------------------------------- guard
def physical_memory_bytes() -> int | None:
    """This machine's physical memory, or ``None`` where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(size: SizeEstimate, what: str, memory_bytes: int | None = None) -> SizeEstimate:
    """Refuse ``size`` when it exceeds ``memory_bytes`` (default: physical memory).

    Raises a one-line :class:`ConfigError` starting with ``what`` and giving the estimate.
    """
    memory = physical_memory_bytes() if memory_bytes is None else memory_bytes
    if memory is not None and size.peak_bytes > memory:
        raise ConfigError(
            f"{what} is too large for this machine: {size.describe()}, "
            f"but it has {format_bytes(memory)} of memory; reduce its sizes"
        )
    return size


def check_space_fits(
    args: Mapping[str, Any],
    what: str = "space",
    *,
    architecture: Mapping[str, Any] | None = None,
    memory_bytes: int | None = None,
) -> SizeEstimate:
    """Refuse to build a space (``architecture`` None) or a frozen model that cannot fit.

    A space must hold its weights and run one sample of a model drawn from it; a frozen
    model must train one sample.
    """
    if architecture is None:
        frozen = estimate(args, "frozen")
        size = estimate(args, "space")
        size = SizeEstimate(
            "space",
            size.parameters,
            frozen.activation_bytes,
            1,
            size.parameters * BYTES_PER_VALUE + frozen.activation_bytes,
        )
    else:
        size = estimate(args, "frozen", architecture=architecture)
    return check_fits(size, what, memory_bytes)


# --------------------------------------------------------------------------- a run's steps
#: ``search.memory`` values: ``lean`` recomputes the mixed edges in backward (lean.py).
SEARCH_MEMORY_MODES = ("normal", "lean")
#: What a Python process with torch, Lightning and NNI imported holds before any model
#: (measured: 0.5 GiB RSS on CPU); added when comparing with this machine's memory.
RUNTIME_BYTES = 512 * 2**20


# A search step's RSS growth on the CPU, calibrated against our first-order step
# (benchmarks/search_step.py, batch 8, 32 × 32 and 64 × 64 inputs, cnn_only and joint
# spaces; tests/test_plan.py checks other sizes): weights, gradients and SGD momentum, the
# larger of the activations and one more copy of the weights (the allocator keeps the
# initialisation's temporaries and hands them to the activations later), and a constant
# (autograd's and the kernels' work buffers). The activation model above counts what
# autograd saves in NNI's full-backward step; our step keeps less (×0.70), and lean keeps
# more than its edge outputs (the recomputed edge's gradients; ×1.9). SeqNN activations
# are small beside the CNN's at these sequence lengths (×0.1).
_SEARCH_CNN_SCALE = {"normal": 0.70, "lean": 1.9}
_SEARCH_SEQ_SCALE = 0.1
_SEARCH_STEP_BYTES = 75 * 2**20
_SEARCH_WEIGHT_COPIES = 3
# Second-order DARTS (darts-2nd) on top of that, calibrated the same way: a backup of the
# weights and the virtual step's weights, and the α step's backward through the virtual
# weights, which keeps what a weight gradient needs (× the CNN activations of the memory
# mode: 0.28 normal, 1.3 lean, where the recomputed edges' inputs dominate).
_SECOND_ORDER_CNN_SCALE = {"normal": 0.28, "lean": 1.3}
_SECOND_ORDER_WEIGHT_COPIES = 2
#: DARTS orders :func:`search_estimate` sizes.
SEARCH_ORDERS = ("first", "second")


def partial_channel_factor(k: int) -> float:
    """PC-DARTS's peak as a share of DARTS's at K (``partial_channels``): the candidates see
    1/K of the channels while the preprocessing, the edge sums and the SeqNN stay whole.
    Calibrated at K = 4 (measured 0.36-0.48 of ``darts`` at 32-128 inputs, cnn_only and
    joint) and K = 2 (0.62 at the paper's sizes); 1 at K = 1."""
    return 0.2 + 0.8 / k


def search_estimate(
    args: Mapping[str, Any],
    batch_size: int,
    *,
    memory: str = "normal",
    supernet: bool = True,
    order: str = "first",
    partial_channels: int | None = None,
) -> SizeEstimate:
    """Peak memory of one search step at ``batch_size``: what the step adds to the process
    (weights, gradients, optimiser state, activations; not :data:`RUNTIME_BYTES`).

    ``supernet``: a differentiable strategy trains the whole supernet (DARTS, GDAS);
    otherwise (path sampling, multi-trial) the space's weights are held and one sampled
    model is trained, bounded by the largest candidate per slot. ``memory``: one of
    :data:`SEARCH_MEMORY_MODES` (``lean`` recomputes the mixed edges; supernet only).
    ``order``: ``"second"`` for unrolled DARTS (``darts-2nd``); ``partial_channels``: K of
    PC-DARTS (:func:`partial_channel_factor`). Calibrated against the RSS growth of our
    steps (see above).
    """
    if memory not in SEARCH_MEMORY_MODES:
        raise ValueError(f"unknown search memory mode {memory!r}")
    if order not in SEARCH_ORDERS:
        raise ValueError(f"unknown DARTS order {order!r}")
    if not supernet:
        space = estimate(args, "space")
        frozen = estimate(args, "frozen", batch_size=batch_size)
        peak = space.parameters * BYTES_PER_VALUE * TRAINING_COPIES + frozen.activation_bytes
        return SizeEstimate("search", space.parameters, frozen.activation_bytes, batch_size, peak)
    recompute = memory == "lean"
    whole = estimate(args, "supernet", batch_size=batch_size, recompute=recompute)
    cnn = estimate({**args, "seq_cells": 0}, "supernet", batch_size=batch_size, recompute=recompute)
    seq_act = max(whole.activation_bytes - cnn.activation_bytes, 0)
    act = int(cnn.activation_bytes * _SEARCH_CNN_SCALE[memory] + seq_act * _SEARCH_SEQ_SCALE)
    weights = whole.parameters * BYTES_PER_VALUE
    peak = _SEARCH_WEIGHT_COPIES * weights + max(act, weights) + _SEARCH_STEP_BYTES
    what = f"supernet, memory {memory}"
    if order == "second":
        extra = int(cnn.activation_bytes * _SECOND_ORDER_CNN_SCALE[memory])
        extra += _SECOND_ORDER_WEIGHT_COPIES * weights
        act, peak, what = act + extra, peak + extra, what + ", second order"
    if partial_channels is not None:
        share = partial_channel_factor(partial_channels)
        act, peak = int(act * share), int(peak * share)
        what += f", 1/{partial_channels} of the channels"
    return SizeEstimate(what, whole.parameters, act, batch_size, peak)


def retrain_estimate(
    args: Mapping[str, Any], batch_size: int, *, architecture: Mapping[str, Any] | None = None
) -> SizeEstimate:
    """Peak memory of one retraining step (exact weights with ``architecture``; without it
    the largest candidate on every slot, an upper bound)."""
    return estimate(args, "frozen", architecture=architecture, batch_size=batch_size)
