"""Gumbel-DARTS on our DARTS cells, so that it exports a cell as DARTS derives it.

NNI's ``GumbelDARTS`` (FBNet, arXiv:1812.03443; SNAS, arXiv:1812.09926) mixes every edge
with a Gumbel-softmax sample of α instead of softmax(α), annealing its temperature. It
trains NNI's :class:`~nni.nas.oneshot.pytorch.supermodule.differentiable.DifferentiableMixedCell`,
whose export ranks a node's (op, input) pairs by raw α across edges.
:class:`GumbelDARTS` is NNI's strategy unchanged (its module, temperature schedule and α
optimiser) on :class:`~emodarts_nni.strategy.supermodule.summed.SummedMixedCell` s: the same
mixture under the Gumbel softmax NNI hands the cell, and DARTS's derivation of softmax(α)
as the export (:mod:`emodarts_nni.strategy.derivation`), as every strategy of the family.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emodarts_nni.nni_runtime.patches import quiet_nni_import
from emodarts_nni.strategy.supermodule.summed import SummedMixedCell

with quiet_nni_import():
    from nni.nas.strategy import GumbelDARTS as NniGumbelDARTS

if TYPE_CHECKING:
    from nni.nas.oneshot.pytorch.strategy import MutationHook


class GumbelDARTS(NniGumbelDARTS):
    """NNI's ``GumbelDARTS`` building :class:`SummedMixedCell` s (see the module)."""

    def default_mutation_hooks(self) -> list[MutationHook]:
        """NNI's hooks, with :class:`SummedMixedCell` first for the cells."""
        return [SummedMixedCell.mutate, *super().default_mutation_hooks()]


__all__ = ["GumbelDARTS"]
