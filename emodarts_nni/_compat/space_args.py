"""Moved to :mod:`emodarts_nni.space.args` (kept for one release, with a DeprecationWarning)."""

from emodarts_nni._compat import moved

moved(__name__, globals())
