"""emodarts-nni: emoDARTS (joint DARTS search of CNN + SeqNN cells for speech emotion
recognition) as a Microsoft NNI plugin.

Public names (``docs/interface.md``): :func:`build_space`, :func:`load_architecture`,
:data:`CNN_OPS`, :data:`SEQ_OPS`, :class:`Predictor`. They are imported lazily so that the data tools and
the CLI start without importing torch and NNI.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = [
    "CNN_OPS",
    "SEQ_OPS",
    "Predictor",
    "build_space",
    "load_architecture",
    "__version__",
]

_LAZY = {
    "CNN_OPS": "emodarts_nni.ops",
    "SEQ_OPS": "emodarts_nni.ops",
    "build_space": "emodarts_nni.space",
    "load_architecture": "emodarts_nni.architecture",
    "Predictor": "emodarts_nni.predict",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emodarts_nni' has no attribute {name!r}")
