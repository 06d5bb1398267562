"""Moved to :mod:`emodarts_nni.common.shipped` (kept for one release, with a DeprecationWarning)."""

from emodarts_nni._compat import moved

moved(__name__, globals())
