"""emodarts-nni: emoDARTS (joint DARTS search of CNN + SeqNN cells for speech emotion
recognition) as a Microsoft NNI plugin.

Public names (``docs/interface.md``): :func:`build_space`, :func:`load_architecture`,
:data:`CNN_OPS`, :data:`SEQ_OPS`, :class:`Predictor`. They are imported lazily so that the data tools and
the CLI start without importing torch and NNI.
"""

from __future__ import annotations

import os
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

# Release 0.1's flat module paths (``emodarts_nni.predict``, …) resolve to the warning shims
# in ``_compat/`` for one release; this extends this package's own search path only.
__path__.append(os.path.join(os.path.dirname(__file__), "_compat"))

_LAZY = {
    "CNN_OPS": "emodarts_nni.space.ops",
    "SEQ_OPS": "emodarts_nni.space.ops",
    "build_space": "emodarts_nni.space.model",
    "load_architecture": "emodarts_nni.space.architecture",
    "Predictor": "emodarts_nni.inference.predict",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emodarts_nni' has no attribute {name!r}")
