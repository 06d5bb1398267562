"""The module paths of release 0.1, kept for one release with a ``DeprecationWarning``.

Release 0.1 had about thirty flat modules (``emodarts_nni.predict``, ``emodarts_nni.oneshot``,
…); they now live in role folders (``docs/architecture.md``). This folder is appended to the
package's own ``__path__`` (by ``emodarts_nni/__init__.py``, a change to this package only),
so ``import emodarts_nni.predict`` still finds ``_compat/predict.py``, which warns and
re-exports :mod:`emodarts_nni.inference.predict`. :data:`MOVED` is the one table of the moves;
a module that was split has a tuple of homes, and its shim re-exports the names of all of them.

Three old modules became packages of the same name (``space``, ``training``, ``config``):
their ``__init__`` forwards the old module's names through :func:`forwarding`.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any

#: Old module (release 0.1) → its home now (several, when it was split).
MOVED: dict[str, str | tuple[str, ...]] = {
    "emodarts_nni.errors": "emodarts_nni.common.errors",
    "emodarts_nni.files": "emodarts_nni.common.files",
    "emodarts_nni.rules": "emodarts_nni.common.rules",
    "emodarts_nni.yaml_loader": "emodarts_nni.common.yaml_loader",
    "emodarts_nni.shipped": "emodarts_nni.common.shipped",
    "emodarts_nni.config": "emodarts_nni.config.experiment",
    "emodarts_nni.genotype": "emodarts_nni.space.genotype",
    "emodarts_nni.space_args": "emodarts_nni.space.args",
    "emodarts_nni.scopes": "emodarts_nni.space.scopes",
    "emodarts_nni.sizing": "emodarts_nni.space.sizing",
    "emodarts_nni.ops": "emodarts_nni.space.ops",
    "emodarts_nni.space": "emodarts_nni.space.model",
    "emodarts_nni.architecture": "emodarts_nni.space.architecture",
    "emodarts_nni.strategies": "emodarts_nni.strategy.registry",
    "emodarts_nni.collapse": "emodarts_nni.strategy.collapse",
    "emodarts_nni.oneshot": "emodarts_nni.strategy.darts.first_order",
    "emodarts_nni.second_order": "emodarts_nni.strategy.darts.second_order",
    "emodarts_nni.beta_decay": "emodarts_nni.strategy.darts.beta",
    "emodarts_nni.mixed_cells": (
        "emodarts_nni.strategy.supermodule.partial_channel",
        "emodarts_nni.strategy.supermodule.auxiliary_skip",
        "emodarts_nni.strategy.darts.pc",
        "emodarts_nni.strategy.darts.minus",
    ),
    "emodarts_nni.summed_cell": "emodarts_nni.strategy.supermodule.summed",
    "emodarts_nni.lean": "emodarts_nni.strategy.supermodule.lean",
    "emodarts_nni.training": "emodarts_nni.training.module",
    "emodarts_nni.metrics": "emodarts_nni.training.metrics",
    "emodarts_nni.baselines": "emodarts_nni.training.baselines",
    "emodarts_nni.classical": "emodarts_nni.training.classical",
    "emodarts_nni.runfolder": "emodarts_nni.pipeline.runfolder",
    "emodarts_nni.predict": "emodarts_nni.inference.predict",
    "emodarts_nni.export": "emodarts_nni.inference.export",
    "emodarts_nni.checkpoint": "emodarts_nni.inference.checkpoint",
    "emodarts_nni.report": "emodarts_nni.reporting.runs",
    "emodarts_nni.plots": "emodarts_nni.reporting.plots",
    # what `emodarts plan` computes (cli/plan.py keeps only the command)
    "emodarts_nni.cli.plan": "emodarts_nni.pipeline.plan",
}


def _warn(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(
        f"{old} has moved to {new}; the old path goes in the next release",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def _homes(old: str) -> tuple[str, ...]:
    """The module(s) ``old`` moved to."""
    homes = MOVED[old]
    return (homes,) if isinstance(homes, str) else homes


def moved(old: str, namespace: dict[str, Any]) -> None:
    """Fill the shim module ``old``'s ``namespace`` with its new modules' names, and warn."""
    homes = _homes(old)
    _warn(old, ", ".join(homes), stacklevel=3)
    for new in homes:
        module = importlib.import_module(new)
        namespace.update({k: v for k, v in vars(module).items() if not k.startswith("__")})


def forwarding(package: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that serves the old module's ``names``.

    Only those names load the old module's new home, so ``from emodarts_nni.space import
    sizing`` (a submodule) does not import torch; each forwarded name warns once per use.
    """
    (target,) = _homes(package)  # a package's old module was moved whole, not split
    served = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in served:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        _warn(f"{package}.{name}", f"{target}.{name}", stacklevel=3)
        return getattr(importlib.import_module(target), name)

    return __getattr__
