"""``search.memory: lean``: DARTS cells that recompute their mixed edges during backward.

A differentiable search keeps, for backward, what every candidate op of every mixed edge
``j → i`` saved in the forward pass: the largest part of a search step's memory (each
edge holds 7 CNN or up to 14 SeqNN candidates). :class:`LeanMixedCell` is NNI's
:class:`~nni.nas.oneshot.pytorch.supermodule.differentiable.DifferentiableMixedCell` with
each edge's weighted sum run under :func:`torch.utils.checkpoint.checkpoint`: the forward
pass keeps only the edge's input and its α weights, and the backward pass runs the edge's
candidates again, one edge at a time. The result and the gradients are the same (a test
compares them with NNI's cell); the step costs one more forward pass of the mixed edges.

BatchNorm layers of the candidates would update their running statistics twice (once in
the forward pass, once when recomputed). The recomputation restores them, and
``num_batches_tracked``, to what they were before it. (Turning ``track_running_stats`` off
instead would change which tensors batch norm saves, and the checkpoint refuses a
recomputation that saves different tensors.)

The edge's weighted sum is accumulated op by op instead of stacking every candidate's
output with an extra zero slot (NNI's form): the zero op adds nothing, so the value is the
same and the stacked copy is never made.

Used through :func:`lean_mutation_hooks`, passed as a differentiable strategy's
``mutation_hooks`` (see :mod:`emodarts_nni.strategies`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from emodarts_nni.nni_runtime.patches import quiet_nni_import

with quiet_nni_import():
    from nni.nas.nn.pytorch.cell import preprocess_cell_inputs
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedCell


@contextlib.contextmanager
def running_stats_kept(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Whatever runs inside the block, the BatchNorm layers in ``modules`` end it with the
    running statistics (and ``num_batches_tracked``) they had before it."""
    norms = [
        m
        for module in modules
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]
    saved = [
        [b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in norms
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved, strict=True):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


def _weighted_sum(candidates: Sequence[nn.Module], x: torch.Tensor, weights: torch.Tensor):
    """``Σ_k weights[k] · candidates[k](x)``; a trailing weight without a candidate is the
    zero op and adds nothing."""
    total = None
    for k, op in enumerate(candidates):
        term = op(x) * weights[k]
        total = term if total is None else total + term
    return total


def _contexts(candidates: Sequence[nn.Module]) -> tuple[Any, Any]:
    """The forward pass runs as is; the recomputation keeps BatchNorm's statistics."""
    return contextlib.nullcontext(), running_stats_kept(candidates)


class LeanMixedCell(DifferentiableMixedCell):
    """NNI's differentiable DARTS cell, each mixed edge recomputed in backward (see module)."""

    def forward(self, *inputs: list[torch.Tensor] | torch.Tensor) -> Any:
        """Same value as :meth:`DifferentiableMixedCell.forward`, less memory kept."""
        processed = preprocess_cell_inputs(self.num_predecessors, *inputs)
        states: list[torch.Tensor] = self.preprocessor(processed)
        for i, ops in enumerate(self.ops, start=self.num_predecessors):
            current = []
            for j in range(i):
                candidates = list(ops[j].values())
                # α's softmax (or Gumbel sample) is taken once, outside the recomputed part.
                weights = self._softmax(self._arch_alpha[f"{self.label}/{i}_{j}"])
                edge = partial(_weighted_sum, candidates)
                if torch.is_grad_enabled():
                    current.append(
                        checkpoint(
                            edge,
                            states[j],
                            weights,
                            use_reentrant=False,
                            context_fn=partial(_contexts, candidates),
                        )
                    )
                else:
                    current.append(edge(states[j], weights))
            states.append(sum(current))
        this_cell = torch.cat(states[self.num_predecessors :], self.concat_dim)
        return self.postprocessor(this_cell, processed)


def lean_mutation_hooks() -> list[Callable[..., Any]]:
    """The ``mutation_hooks`` that make a differentiable strategy build lean cells."""
    return [LeanMixedCell.mutate]


__all__ = ["LeanMixedCell", "lean_mutation_hooks", "running_stats_kept"]
