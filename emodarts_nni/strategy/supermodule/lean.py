"""``search.memory: lean``: DARTS cells that recompute their mixed edges during backward.

A differentiable search keeps, for backward, what every candidate op of every mixed edge
``j → i`` saved in the forward pass: the largest part of a search step's memory (each
edge holds 7 CNN or up to 14 SeqNN candidates). :class:`LeanMixedCell` is NNI's
:class:`~nni.nas.oneshot.pytorch.supermodule.differentiable.DifferentiableMixedCell` with
each edge's weighted sum run under :func:`torch.utils.checkpoint.checkpoint`: the forward
pass keeps only the edge's input and its α weights, and the backward pass runs the edge's
candidates again, one edge at a time. The result and the gradients are the same (a test
compares them with the plain cell); the step costs one more forward pass of the mixed edges.

BatchNorm layers of the candidates would update their running statistics twice (once in
the forward pass, once when recomputed). The recomputation restores them, and
``num_batches_tracked``, to what they were before it. (Turning ``track_running_stats`` off
instead would change which tensors batch norm saves, and the checkpoint refuses a
recomputation that saves different tensors.)

Used through :func:`lean_mutation_hooks`, passed as a differentiable strategy's
``mutation_hooks`` (see :mod:`emodarts_nni.strategy.registry`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from emodarts_nni.strategy.supermodule.summed import SummedMixedCell, weighted_sum


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


def _contexts(candidates: Sequence[nn.Module]) -> tuple[Any, Any]:
    """The forward pass runs as is; the recomputation keeps BatchNorm's statistics."""
    return contextlib.nullcontext(), running_stats_kept(candidates)


class LeanMixedCell(SummedMixedCell):
    """The DARTS cell with each mixed edge recomputed in backward (see the module)."""

    def mix(
        self, candidates: list[nn.Module], x: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Same value as :meth:`SummedMixedCell.mix`, less memory kept. α's softmax
        (``weights``, or a Gumbel sample) is taken by :meth:`SummedMixedCell.edge`, outside
        the recomputed part."""
        if not torch.is_grad_enabled():
            return super().mix(candidates, x, weights)
        return checkpoint(
            partial(weighted_sum, candidates),
            x,
            weights,
            use_reentrant=False,
            context_fn=partial(_contexts, candidates),
        )


def lean_mutation_hooks() -> list[Callable[..., Any]]:
    """The ``mutation_hooks`` that make a differentiable strategy build lean cells."""
    return [LeanMixedCell.mutate]


__all__ = ["LeanMixedCell", "lean_mutation_hooks", "running_stats_kept"]
