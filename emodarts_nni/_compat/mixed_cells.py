"""Split into :mod:`emodarts_nni.strategy.supermodule.partial_channel`, :mod:`~emodarts_nni.strategy.supermodule.auxiliary_skip`, :mod:`emodarts_nni.strategy.darts.pc` and :mod:`~emodarts_nni.strategy.darts.minus` (kept for one release, with a DeprecationWarning)."""

from emodarts_nni._compat import moved

moved(__name__, globals())
