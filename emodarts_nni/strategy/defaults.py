"""Defaults the DARTS family shares with the registry and the config (torch- and NNI-free).

The algorithms (:mod:`emodarts_nni.strategy.darts`, :mod:`emodarts_nni.strategy.supermodule`)
and the registry that names them (:mod:`emodarts_nni.strategy.registry`, read when a config
loads) both need these values; they live here so that neither imports the other for them.
"""

from __future__ import annotations

#: Weight decay of α's Adam optimiser (NNI's fixed value, the DARTS paper's); the default of
#: ``search.arch_weight_decay``.
ARC_WEIGHT_DECAY = 1.0e-3
#: PC-DARTS's default K: 1/4 of the channels through the mixed op (the paper's CIFAR-10 setting).
PC_DARTS_PARTIAL_CHANNELS = 4
#: The config key of pc-darts's K, as its error messages name it.
PC_DARTS_PARTIAL_CHANNELS_KEY = "search.params.partial_channels"
#: DARTS-'s initial weight of the auxiliary skip (the reference's ``skip_beta``).
AUXILIARY_SKIP_WEIGHT = 1.0

__all__ = [
    "ARC_WEIGHT_DECAY",
    "AUXILIARY_SKIP_WEIGHT",
    "PC_DARTS_PARTIAL_CHANNELS",
    "PC_DARTS_PARTIAL_CHANNELS_KEY",
]
