"""DARTS-: first-order DARTS with a decaying auxiliary skip on every edge (``darts-minus``).

Chu, Wang, Zhang, Lu, Wei and Yan, *DARTS-: Robustly Stepping out of Performance Collapse
Without Indicators*, ICLR 2021 (arXiv:2009.01027); reference code
github.com/Meituan-AutoML/DARTS- ``src/search/model_search.py``.

The α/weight step is first-order DARTS's (:class:`~emodarts_nni.strategy.darts.first_order.DARTS`);
the cell is :class:`~emodarts_nni.strategy.supermodule.auxiliary_skip.AuxiliarySkipCell`, and
:class:`DartsMinusModule` sets the skips' coefficient at each epoch start
(:func:`~emodarts_nni.strategy.supermodule.auxiliary_skip.auxiliary_skip_weight`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emodarts_nni.common.rules import NONNEG, Number, checked
from emodarts_nni.strategy.darts.first_order import DARTS, FrugalDartsModule
from emodarts_nni.strategy.defaults import AUXILIARY_SKIP_WEIGHT
from emodarts_nni.strategy.supermodule.auxiliary_skip import (
    AuxiliarySkipCell,
    auxiliary_skip_weight,
)
from emodarts_nni.strategy.supermodule.summed import mutation_hook

if TYPE_CHECKING:
    from nni.nas.evaluator.pytorch import LightningModule
    from nni.nas.oneshot.pytorch.strategy import MutationHook

#: DARTS-'s ``decay_epochs`` when given (``None``, its default, is the search's epochs).
_DECAY_EPOCHS = Number(integer=True, low=1, description="a positive integer or null")


class DartsMinusModule(FrugalDartsModule):
    """:class:`FrugalDartsModule` that sets the auxiliary skips' weight at each epoch start."""

    def __init__(
        self,
        training_module: LightningModule,
        *,
        auxiliary_skip_weight: float = AUXILIARY_SKIP_WEIGHT,
        decay_epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(training_module, **kwargs)
        self.initial_skip_weight = auxiliary_skip_weight
        self.decay_epochs = decay_epochs

    def skip_weight(self) -> float:
        """The coefficient of the current epoch (:func:`auxiliary_skip_weight`)."""
        epochs = self.decay_epochs or self.trainer.max_epochs
        return auxiliary_skip_weight(self.trainer.current_epoch, epochs, self.initial_skip_weight)

    def on_train_epoch_start(self) -> None:
        """Set every :class:`AuxiliarySkipCell`'s ``skip_weight`` to this epoch's (logged)."""
        weight = self.skip_weight()
        for module in self.supernet_modules():
            if isinstance(module, AuxiliarySkipCell):
                module.skip_weight = weight
        self.log("darts_minus/skip_weight", weight)
        return super().on_train_epoch_start()


class DartsMinus(DARTS):
    """DARTS-: first-order DARTS on :class:`AuxiliarySkipCell` s.

    ``auxiliary_skip_weight`` is the coefficient's start (1.0, the reference's
    ``skip_beta``); ``decay_epochs`` the epochs over which it falls to 0 (``None``: the
    search's epochs, as the reference's ``decay_max_epoch`` = its 50 search epochs).
    """

    def __init__(
        self,
        *,
        auxiliary_skip_weight: float = AUXILIARY_SKIP_WEIGHT,
        decay_epochs: int | None = None,
        **kwargs: Any,
    ) -> None:
        weight = checked("auxiliary_skip_weight", auxiliary_skip_weight, NONNEG)
        if decay_epochs is not None:
            checked("decay_epochs", decay_epochs, _DECAY_EPOCHS)
        super().__init__(**kwargs)
        self.auxiliary_skip_weight = weight
        self.decay_epochs = decay_epochs

    def default_mutation_hooks(self) -> list[MutationHook]:
        """DARTS's hooks, with :class:`AuxiliarySkipCell` first."""
        return [mutation_hook(AuxiliarySkipCell), *super().default_mutation_hooks()]

    def configure_oneshot_module(self, training_module: LightningModule) -> DartsMinusModule:
        """The one-shot module that trains the supernet: :class:`DartsMinusModule`."""
        return DartsMinusModule(
            training_module,
            auxiliary_skip_weight=self.auxiliary_skip_weight,
            decay_epochs=self.decay_epochs,
            **self.module_kwargs(),
        )


__all__ = ["DartsMinus", "DartsMinusModule"]
