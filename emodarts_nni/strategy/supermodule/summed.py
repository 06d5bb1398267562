"""The differentiable DARTS cell every strategy of ours searches on: NNI's cell, summed op by op.

NNI's :class:`~nni.nas.oneshot.pytorch.supermodule.differentiable.DifferentiableMixedCell`
computes each mixed edge ``j → i`` as ``torch.stack`` of every candidate's output, a zero
slot concatenated for the ``none`` choice, a broadcast multiplication by ``softmax(α)`` and a
sum over the stack. That makes two extra copies of the edge's outputs (the stack and the
product, both kept for backward) and a 5-D broadcast multiplication that torch's CPU kernels
run slowly. :class:`SummedMixedCell` accumulates ``Σ_k softmax(α)_k · op_k(x)`` candidate by
candidate instead: the same value and the same gradients (the zero slot adds nothing to the
sum, and its weight still takes part in the softmax), up to float rounding
(``tests/test_oneshot.py``). ``docs/benchmarks.md`` has what it saves.

The cell has :meth:`~SummedMixedCell.edge`, :meth:`~SummedMixedCell.mix` and
:meth:`~SummedMixedCell.node` as methods, so the variants
(:mod:`~emodarts_nni.strategy.supermodule.partial_channel`,
:mod:`~emodarts_nni.strategy.supermodule.auxiliary_skip`,
:mod:`~emodarts_nni.strategy.supermodule.lean`) change one edge, one mixture or one node and
keep the rest; :func:`mutation_hook` installs a variant in a strategy. It exists only in the
supernet: the retrained model is NNI's as ever.

Its :meth:`~SummedMixedCell.export` is DARTS's derivation
(:mod:`emodarts_nni.strategy.derivation`: per edge its strongest op other than ``none`` in
that edge's softmax(α), per node the strongest edges), not NNI's ranking by raw α across a
node's edges; a variant that weighs its edges (PC-DARTS's β) says so in
:meth:`~SummedMixedCell.derivation_weights`. The history's α (and β) columns hold the same
numbers, so the collapse diagnostics derive the same cell from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.space import genotype
from emodarts_nni.space.op_names import NONE_OP
from emodarts_nni.space.ops import ActivatedInput, StartsWithReLU, Zero
from emodarts_nni.strategy import derivation

with quiet_nni_import():
    from nni.nas.nn.pytorch.cell import preprocess_cell_inputs
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell

if TYPE_CHECKING:
    from nni.nas.oneshot.pytorch.strategy import MutationHook


def weighted_sum(ops: Iterable[nn.Module], x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_k weights[k] · ops[k](x)``. A trailing weight without an op (NNI's ``none`` slot)
    adds nothing, nor does a :class:`~emodarts_nni.space.ops.Zero` op (the ``none`` candidate):
    its term is zero and so is its own share of α's gradient (its weight still takes part
    in the softmax), so it is not computed unless it is the edge's only op. The ops that
    start with ``relu(x)`` (:class:`~emodarts_nni.space.ops.StartsWithReLU`) share one, made once
    per layout (:class:`~emodarts_nni.space.ops.ActivatedInput`): the same values, one ReLU kept
    for backward instead of one per op."""
    activated = ActivatedInput(x)
    total: torch.Tensor | None = None
    zero: tuple[torch.Tensor, nn.Module] | None = None
    for w, op in zip(weights, ops, strict=False):
        if isinstance(op, Zero):
            zero = zero or (w, op)
            continue
        out = op.after_relu(activated) if isinstance(op, StartsWithReLU) else op(x)
        # addcmul: the product and the sum in one pass, without a tensor for the product.
        total = w * out if total is None else torch.addcmul(total, w, out)
    if total is None and zero is not None:
        w, op = zero
        total = w * op(x)
    if total is None:
        raise ValueError("a mixed edge needs at least one candidate op")
    return total


class SummedMixedCell(DifferentiableMixedCell):
    """NNI's differentiable cell with each mixed edge summed op by op (see the module)."""

    def edge_alpha(self, node: int, source: int) -> nn.Parameter:
        """α of the edge ``source → node`` (one entry per candidate, then ``none``)."""
        return self._arch_alpha[genotype.edge_name(self.label, node, source)]

    def edge(self, node: int, source: int, x: torch.Tensor) -> torch.Tensor:
        """The mixed output of the edge ``source → node`` for the state ``x``."""
        candidates = list(self.ops[node - self.num_predecessors][source].values())
        return self.mix(candidates, x, self._softmax(self.edge_alpha(node, source)))

    def mix(
        self, candidates: list[nn.Module], x: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """One edge's candidates on ``x``, weighted by ``weights`` (:func:`weighted_sum`)."""
        return weighted_sum(candidates, x, weights)

    def node(self, node: int, states: list[torch.Tensor]) -> torch.Tensor:
        """The state of ``node``: the sum of its incoming edges."""
        return sum(self.edge(node, j, states[j]) for j in range(node))  # type: ignore[return-value]

    def edge_probabilities(self, node: int, source: int) -> dict[str, float]:
        """softmax(α) of the edge ``source → node`` per op name, ``none`` last: the numbers
        the history's α columns hold (:func:`~emodarts_nni.training.module.alpha_probabilities`).
        Always the plain softmax, also under Gumbel-DARTS's sampled one."""
        alpha = self.edge_alpha(node, source).detach().float()
        probs = torch.softmax(alpha, dim=-1).cpu().tolist()
        names = [*self.op_names, *[NONE_OP] * (len(probs) - len(self.op_names))]
        return dict(zip(names, probs, strict=False))

    def derivation_weights(self, node: int) -> dict[int, float] | None:
        """Each incoming edge's weight in the derivation of ``node``, by source; ``None``:
        every edge weighs 1 (DARTS). PC-DARTS's cell returns its normalised β."""
        return None

    def recorded_edge_weights(self) -> dict[str, float]:
        """:meth:`derivation_weights` of every node by edge name (``normal/3_1``), for the
        history's β columns; empty when the cell does not weigh its edges."""
        out: dict[str, float] = {}
        for node in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            weights = self.derivation_weights(node)
            for source, weight in (weights or {}).items():
                out[genotype.edge_name(self.label, node, source)] = weight
        return out

    def export(self, memo: dict[str, Any]) -> dict[str, Any]:
        """DARTS's derivation of this cell (:func:`~emodarts_nni.strategy.derivation.derive_cell`):
        per node the ``num_ops_per_node`` edges whose strongest op other than ``none``
        (softmax of the edge's α, times :meth:`derivation_weights`) is strongest, each with
        that op. Nodes whose labels ``memo`` has (exported by another cell of this label,
        which shares its α) are skipped, as in NNI."""
        tables: dict[int, dict[int, dict[str, float]]] = {}
        weights: dict[int, dict[int, float]] = {}
        for node in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            labels = [
                label
                for k in range(self.num_ops_per_node)
                for label in (
                    genotype.op_label(self.label, node, k),
                    genotype.input_label(self.label, node, k),
                )
            ]
            if all(label in memo for label in labels):
                continue
            tables[node] = {j: self.edge_probabilities(node, j) for j in range(node)}
            node_weights = self.derivation_weights(node)
            weights[node] = (
                node_weights if node_weights is not None else dict.fromkeys(range(node), 1.0)
            )
        return derivation.derive_cell(self.label, tables, self.num_ops_per_node, weights)

    def forward(self, *inputs: list[torch.Tensor] | torch.Tensor) -> Any:
        """The same value as :meth:`DifferentiableMixedCell.forward`."""
        processed = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states: list[torch.Tensor] = self.preprocessor(processed)
        for i in range(self.num_predecessors, self.num_nodes + self.num_predecessors):
            states.append(self.node(i, states))
        this_cell = torch.cat(states[self.num_predecessors :], self.concat_dim)
        return self.postprocessor(this_cell, processed)


def mutation_hook(cell_cls: type[SummedMixedCell], **extra: Any) -> MutationHook:
    """A mutation hook that replaces each NNI ``Cell`` with ``cell_cls`` (``extra`` goes to its
    ``mutate_kwargs``); NNI's hooks handle everything else. A strategy lists it before
    :meth:`SummedMixedCell.mutate` (the DARTS cell's hook) so that its variant wins."""

    def hook(
        module: nn.Module, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]
    ) -> Any:
        return cell_cls.mutate(module, name, memo, {**mutate_kwargs, **extra})

    return hook


__all__ = ["SummedMixedCell", "mutation_hook", "weighted_sum"]
