"""PC-DARTS: first-order DARTS on partial-channel mixed cells (the ``pc-darts`` strategy).

Xu, Xie, Zhang, Chen, Qi, Tian and Xiong, *PC-DARTS: Partial Channel Connections for
Memory-Efficient Architecture Search*, ICLR 2020 (arXiv:1907.05737).

The α/weight step is first-order DARTS's (:class:`~emodarts_nni.strategy.darts.first_order.DARTS`);
what changes is the cell, :class:`~emodarts_nni.strategy.supermodule.partial_channel.PartialChannelCell`
(partial channels, edge normalisation and the export that ranks edges by it), installed by a
mutation hook that runs before the DARTS cell's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emodarts_nni.common.rules import INT_POS, checked
from emodarts_nni.strategy.darts.first_order import DARTS
from emodarts_nni.strategy.defaults import PC_DARTS_PARTIAL_CHANNELS
from emodarts_nni.strategy.supermodule.partial_channel import PartialChannelCell
from emodarts_nni.strategy.supermodule.summed import mutation_hook

if TYPE_CHECKING:
    from nni.nas.oneshot.pytorch.strategy import MutationHook


class PCDARTS(DARTS):
    """PC-DARTS: first-order DARTS on :class:`PartialChannelCell` s.

    ``partial_channels`` is K (default 4, the paper's CIFAR-10 setting); every other
    parameter is :class:`emodarts_nni.strategy.darts.first_order.DARTS`'s.
    """

    def __init__(self, *, partial_channels: int = PC_DARTS_PARTIAL_CHANNELS, **kwargs: Any) -> None:
        k = int(checked("partial_channels", partial_channels, INT_POS))
        super().__init__(**kwargs)
        self.partial_channels = k

    def default_mutation_hooks(self) -> list[MutationHook]:
        """DARTS's hooks, with :class:`PartialChannelCell` (K = ``partial_channels``) first."""
        hook = mutation_hook(PartialChannelCell, partial_channels=self.partial_channels)
        return [hook, *super().default_mutation_hooks()]


__all__ = ["PCDARTS"]
