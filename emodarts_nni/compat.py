"""Compatibility layer between NNI 3.0 and today's stack (see ``docs/nni-integration.md``).

NNI 3.0 is the last release, so instead of forking it we carry a few small patches. Each
patch is one function whose docstring names the upstream problem (a number in
``shared/docs/nni-notes.md``, or "new" for problems found while building this layer).
:func:`apply` installs them all; it is idempotent and must run before NNI is used
(importing :mod:`emodarts_nni.strategies` or :mod:`emodarts_nni.webui` calls it).

Two patches take their setting from a scope rather than from global configuration:
:func:`nni_manager_scope` says where NNI's experiment registry lives and which address
NNI's manager listens on while an experiment is started, viewed or stopped. Outside any
scope NNI's registry stays where NNI puts it and the manager still binds ``127.0.0.1``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Address NNI's manager (REST server + web UI) listens on unless told otherwise.
LOCALHOST = "127.0.0.1"

#: Folder, inside an experiment working directory, that stands in for ``~`` for NNI.
FAKE_HOME = ".nni-home"

#: File name of the Node.js preload that NNI's manager is started with.
PRELOAD_NAME = "manager-preload.js"

_PATCHED_MARK = "_emodarts_patched"


@dataclass(frozen=True)
class _ManagerScope:
    """Where the registry lives and which address the manager binds, for one scope."""

    registry_dir: Path
    host: str


_scopes: list[_ManagerScope] = []


def registry_dir(experiment_working_directory: Path | str) -> Path:
    """The folder holding NNI's experiment registry (``.experiment``) for a working directory.

    NNI's manager (Node.js) hard-codes ``<home>/nni-experiments/.experiment``; with the home
    redirected to ``<experiment_working_directory>/.nni-home`` this is where it ends up.
    """
    return Path(experiment_working_directory).resolve() / FAKE_HOME / "nni-experiments"


@contextlib.contextmanager
def nni_manager_scope(
    experiment_working_directory: Path | str, host: str = LOCALHOST
) -> Iterator[Path]:
    """Within this scope NNI keeps its registry under the run folder and binds ``host``.

    Wrap every call that starts, views or stops an NNI experiment (``Experiment.start``,
    ``NasExperiment.run``/``stop``). Yields the registry folder.
    """
    apply()
    scope = _ManagerScope(registry_dir(experiment_working_directory), host)
    _scopes.append(scope)
    try:
        yield scope.registry_dir
    finally:
        _scopes.remove(scope)


def filter_buffer_warning() -> None:
    """nni-notes #10: silence NNI's harmless "is found to be not a nn.Module" RuntimeWarning.

    When NNI generates its ``nni.nas.nn.pytorch`` wrappers it warns about every class in
    ``torch.nn`` that is not a module and re-exports it unchanged. On torch 2.13 that is
    ``nn.Buffer`` (and ``nn.LinearCrossEntropyOptions``, an options dataclass). Only those
    exact messages are filtered; any other RuntimeWarning still shows.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"<class 'torch\.nn\.[\w.]*\b(Buffer|LinearCrossEntropyOptions)'> "
        r"is found to be not a nn\.Module",
        category=RuntimeWarning,
    )


def redirect_python_registry() -> None:
    """nni-notes #9 (registry part): keep NNI's Python-side experiment registry in the run folder.

    ``experiment_working_directory`` moves an experiment's files, but NNI still records every
    experiment in ``~/nni-experiments/.experiment`` through ``nnictl.config_utils.Experiments()``
    (also one-shot runs that never start a manager). Inside :func:`nni_manager_scope` the
    registry defaults to :func:`registry_dir` instead; outside it NNI's default is kept.
    """
    from nni.tools.nnictl import config_utils, constants

    original = config_utils.Experiments.__init__
    if getattr(original, _PATCHED_MARK, False):
        return

    def __init__(self: Any, home_dir: str | None = None) -> None:
        if home_dir is None:
            home_dir = str(_scopes[-1].registry_dir) if _scopes else constants.NNI_HOME_DIR
        original(self, home_dir)

    setattr(__init__, _PATCHED_MARK, True)
    config_utils.Experiments.__init__ = __init__  # type: ignore[method-assign]


_PRELOAD_TEMPLATE = """\
// Written by emodarts_nni.compat (docs/nni-integration.md): NNI 3.0's manager listens on
// every interface and keeps its registry in ~/nni-experiments; neither is configurable.
'use strict';
const net = require('net');
const os = require('os');
const HOST = %(host)s;
const HOME = %(home)s;
const ANY = new Set(['0.0.0.0', '::', '']);
os.homedir = () => HOME;
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^[0-9]+$/.test(first))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, HOST);
    else if (ANY.has(args[1])) args[1] = HOST;
  } else if (first && typeof first === 'object' && 'port' in first && !first.path) {
    if (first.host === undefined || ANY.has(first.host)) args[0] = { ...first, host: HOST };
  }
  return listen.apply(this, args);
};
"""


def _manager_preload(experiments_directory: Path, host: str) -> Path:
    """Write the Node.js preload for a manager whose experiments live in ``experiments_directory``."""
    home = experiments_directory / FAKE_HOME
    home.mkdir(parents=True, exist_ok=True)
    path = home / PRELOAD_NAME
    source = _PRELOAD_TEMPLATE % {"host": json.dumps(host), "home": json.dumps(str(home))}
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    return path


def _is_manager_command(command: Any) -> bool:
    if not isinstance(command, Sequence) or isinstance(command, str) or len(command) < 2:
        return False
    import nni_node

    node_dir = Path(nni_node.__path__[0]).resolve()
    return Path(str(command[0])).resolve().parent == node_dir and any(
        Path(str(part)).name == "main.js" for part in command
    )


def _argument(command: Sequence[str], flag: str) -> str | None:
    parts = [str(part) for part in command]
    return parts[parts.index(flag) + 1] if flag in parts[:-1] else None


def bind_manager_locally() -> None:
    """New (not in nni-notes): NNI's manager listens on all interfaces and writes to ``~``.

    ``nni_node/rest_server/index.js`` calls ``app.listen(port)`` with no host, so the web UI
    and REST API (which can stop the experiment and kill trials) are reachable from the
    network; NNI has no manager argument or config field for the address (``nni_manager_ip``
    is only what trials use to reach it). The manager also hard-codes its registry at
    ``os.homedir()/nni-experiments/.experiment``.

    The supported Node.js way to change this without touching NNI's files is a preload
    module (``node --require``): the patch wraps the ``Popen`` that
    ``nni.experiment.launcher`` starts the manager with, and adds ``--require`` of a small
    script written to ``<experiment_working_directory>/.nni-home/`` that (1) gives
    ``listen(port)`` the host ``127.0.0.1`` (or the :func:`nni_manager_scope` host) and
    (2) makes ``os.homedir()`` that folder. Trials inherit the real ``HOME`` (the preload
    changes no environment variable). NNI's log line "Web portal URLs: <every interface>"
    is dropped, as only the bound address works.
    """
    from nni.experiment import launcher

    if getattr(launcher.Popen, _PATCHED_MARK, False):
        return

    def popen(command: Any, *args: Any, **kwargs: Any) -> subprocess.Popen:
        if _is_manager_command(command):
            directory = _argument(command, "--experiments-directory")
            if directory is not None:
                host = _scopes[-1].host if _scopes else LOCALHOST
                preload = _manager_preload(Path(directory), host)
                command = [command[0], "--require", str(preload), *command[1:]]
        return subprocess.Popen(command, *args, **kwargs)

    setattr(popen, _PATCHED_MARK, True)
    launcher.Popen = popen  # type: ignore[assignment,misc]
    # NNI then logs "Web portal URLs: <every interface address>", which is no longer true;
    # our launch helpers print the one address that works instead.
    logging.getLogger("nni.experiment").addFilter(_drop_web_portal_urls)


def _drop_web_portal_urls(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Web portal URLs")


def enas_supported() -> bool:
    """nni-notes #1: whether NNI's ENAS works with the installed pytorch-lightning.

    ENAS is verified to work unmodified on the pinned pytorch-lightning 2.0.9 (no patch is
    carried); from 2.1 Lightning drops the dataloader index it relies on.
    """
    from importlib.metadata import version

    major, minor = (int(part) for part in version("pytorch-lightning").split(".")[:2])
    return (major, minor) < (2, 1)


def proxyless_cell_guard(
    module: Any, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]
) -> None:
    """New (not in nni-notes): refuse, up front, cells that NNI's Proxyless cannot search.

    Proxyless has no ``Cell`` hook (its docstring lists ``LayerChoice``, ``InputChoice`` and
    ``Repeat`` only), so it mutates a cell's op and input choices separately, with the ops a
    factory built for ``input_index=None``. In a reduction cell those ops have stride 2 for
    *every* input, and the inputs differ in size, so training fails deep inside with
    "Sizes of tensors must match". DARTS, GumbelDARTS, ENAS and RandomOneShot rebuild the ops
    per input and are unaffected. Used as a Proxyless mutation hook (by
    :func:`emodarts_nni.strategies.make_strategy`); it changes nothing, it only raises.
    """
    from nni.nas.nn.pytorch import Cell
    from nni.nas.nn.pytorch.cell import create_cell_op_candidates

    from emodarts_nni.errors import ConfigError

    factory = getattr(module, "op_candidates_factory", None)
    if not isinstance(module, Cell) or factory is None or module.num_nodes < 2:
        return None
    last_node = module.num_predecessors + module.num_nodes - 1
    built = [
        {
            key: repr(op)
            for key, op in create_cell_op_candidates(factory, last_node, 0, index)[0].items()
        }
        for index in (None, last_node - 1)  # while building the space / reading a node
    ]
    if built[0] != built[1]:
        raise ConfigError(
            f"strategy 'proxyless' cannot search cell {module.label!r}: its ops depend on the "
            "input they read (a reduction cell), which NNI 3.0's Proxyless does not support; "
            "use darts or gumbel"
        )
    return None


def apply() -> None:
    """Install every patch; idempotent. Call before importing NNI's NAS modules."""
    filter_buffer_warning()
    redirect_python_registry()
    bind_manager_locally()


__all__ = [
    "FAKE_HOME",
    "LOCALHOST",
    "apply",
    "bind_manager_locally",
    "enas_supported",
    "filter_buffer_warning",
    "nni_manager_scope",
    "proxyless_cell_guard",
    "redirect_python_registry",
    "registry_dir",
]
