"""DARTS-'s mixed cell: an auxiliary skip on every edge, outside the α mixture.

Chu, Wang, Zhang, Lu, Wei and Yan, *DARTS-: Robustly Stepping out of Performance Collapse
Without Indicators*, ICLR 2021 (arXiv:2009.01027); reference code
github.com/Meituan-AutoML/DARTS- ``src/search/model_search.py``.

Every edge gets an extra skip connection outside the α mixture — identity, or
``FactorizedReduce`` on a stride-2 edge as in the reference — weighted by a coefficient that
decays linearly from its initial value to 0 over the search (:func:`auxiliary_skip_weight`).
It never appears in α, so it is never exported: the exported architecture is the usual dict
and the retrained model a plain :class:`~emodarts_nni.space.model.EmoDartsSpace`. The strategy
that trains it, and sets the coefficient each epoch, is
:class:`emodarts_nni.strategy.darts.minus.DartsMinus`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from emodarts_nni.common.rules import INT_POS, checked
from emodarts_nni.space.model import CnnCellOpFactory, SeqCellOpFactory
from emodarts_nni.space.op_names import SKIP_OP
from emodarts_nni.strategy.defaults import AUXILIARY_SKIP_WEIGHT
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell


def auxiliary_skip_weight(epoch: int, epochs: int, initial: float = AUXILIARY_SKIP_WEIGHT) -> float:
    """DARTS-'s coefficient of the auxiliary skip at (0-based) ``epoch`` of ``epochs``.

    The reference's linear ``DecayScheduler``: ``initial · (epochs − epoch) / epochs``, so 1
    in the first epoch, ``1/epochs`` in the last, and 0 from ``epochs`` on.
    """
    checked("epochs", epochs, INT_POS)
    return initial * max(0.0, (epochs - epoch) / epochs)


def skip_factory(op_factory: Mapping[str, Any]) -> Any:
    """The factory of the cell's ``skip_connect`` (identity, or ``FactorizedReduce`` on a
    stride-2 edge): the space's, whether or not the scope offers the op, else the cell's own."""
    factory = next(iter(op_factory.values()))
    if isinstance(factory, (CnnCellOpFactory, SeqCellOpFactory)):
        return dataclasses.replace(factory, op=SKIP_OP)
    if SKIP_OP in op_factory:
        return op_factory[SKIP_OP]
    raise TypeError(
        f"an auxiliary-skip cell needs a {SKIP_OP!r} op or the emoDARTS space's factories"
    )


class AuxiliarySkipCell(SummedMixedCell):
    """DARTS-'s mixed cell: every edge adds ``skip_weight · skip(x)`` outside the α mixture.

    ``skip_weight`` is set by :class:`~emodarts_nni.strategy.darts.minus.DartsMinusModule` at
    the start of each epoch. The skip of an edge is the space's ``skip_connect`` at that edge
    (identity, ``FactorizedReduce`` on a stride-2 edge, as the reference); its weights train
    with the other weights.
    """

    def __init__(
        self,
        op_factory: Mapping[str, Callable[..., nn.Module]],
        num_nodes: int,
        num_ops_per_node: int,
        num_predecessors: int,
        preprocessor: nn.Module,
        postprocessor: nn.Module,
        concat_dim: int,
        memo: dict[str, Any],
        mutate_kwargs: dict[str, Any],
        label: str,
    ) -> None:
        skip = skip_factory(op_factory)
        super().__init__(
            op_factory,
            num_nodes,
            num_ops_per_node,
            num_predecessors,
            preprocessor,
            postprocessor,
            concat_dim,
            memo,
            mutate_kwargs,
            label,
        )
        self.skip_weight = 1.0
        self.auxiliary_skip = nn.ModuleList(
            nn.ModuleList(skip(i, 0, j) for j in range(i))
            for i in range(num_predecessors, num_nodes + num_predecessors)
        )

    def edge(self, node: int, source: int, x: torch.Tensor) -> torch.Tensor:
        """The α mixture plus the decaying auxiliary skip."""
        mixed = super().edge(node, source, x)
        if self.skip_weight == 0.0:
            return mixed
        skip = self.auxiliary_skip[node - self.num_predecessors][source]
        return mixed + self.skip_weight * skip(x)


__all__ = ["AuxiliarySkipCell", "auxiliary_skip_weight", "skip_factory"]
