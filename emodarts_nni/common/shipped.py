"""Files shipped with the package: the search scopes and the experiment configs.

They live at the top of the repository (``search_spaces/``, ``experiments/``) so people
find and edit them there; a wheel carries them inside the package
(``emodarts_nni/search_spaces/``, ``emodarts_nni/experiments/``, mapped in pyproject.toml).
:func:`shipped_folder` finds them either way: in an installed wheel, or in a source checkout
(a ``PYTHONPATH`` checkout or an editable install, where the package folder holds no copy).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

#: Scope YAML files (``name.yaml``), see :mod:`emodarts_nni.space.scopes`.
SCOPES = "search_spaces"
#: Experiment configs (``name.yaml``), loadable by name, see :func:`emodarts_nni.config.experiment.load_config`.
EXPERIMENTS = "experiments"


def shipped_folder(name: str) -> Path:
    """The folder of shipped files ``name`` (:data:`SCOPES` or :data:`EXPERIMENTS`)."""
    installed = files("emodarts_nni") / name
    if installed.is_dir():  # a wheel install: the files are package data
        return Path(str(installed))
    return Path(__file__).resolve().parents[2] / name  # a source checkout


def shipped_names(name: str) -> list[str]:
    """The names (file stems) of the ``*.yaml`` files in the shipped folder ``name``."""
    folder = shipped_folder(name)
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


__all__ = ["EXPERIMENTS", "SCOPES", "shipped_folder", "shipped_names"]
