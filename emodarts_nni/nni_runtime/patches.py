"""The few patches NNI 3.0 needs on our stack, installed only while a manager is in use.

NNI 3.0 is the last release, so instead of forking it we carry small patches, each
documented with the problem it works around (a number in ``docs/nni-notes.md``, or
"new" for problems found while building this layer). None is installed at import:
:func:`manager_patches` installs them while an NNI manager is started, used, viewed or
stopped, and puts NNI's originals back when the outermost such block ends (blocks nest; the
innermost one says where the registry lives and which address the manager binds).

:func:`quiet_nni_import` wraps every import of NNI's NAS modules: it silences one harmless
warning and, only while NNI's ``nni.nas.nn.pytorch`` is first imported, keeps NNI from
writing its generated ``_layers.py`` into site-packages (nni-notes #13). Run as
``python -m emodarts_nni.nni_runtime.patches -m MODULE ARGS...`` this module runs ``MODULE``
with that first import done inside it (the trial command of a multi-trial search).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import types
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emodarts_nni.nni_runtime.interrupts import deferred_interrupts

#: Address NNI's manager (REST server + web UI) listens on unless told otherwise.
LOCALHOST = "127.0.0.1"

#: Folder, inside an experiment working directory, that stands in for ``~`` for NNI.
FAKE_HOME = ".nni-home"

#: File name of the Node.js preload that NNI's manager is started with.
PRELOAD_NAME = "manager-preload.js"

#: Logger NNI's launcher writes "Web portal URLs: ..." to.
NNI_LAUNCH_LOGGER = "nni.experiment"

#: nni-notes #10: the exact messages of NNI's harmless "not a nn.Module" RuntimeWarning.
BUFFER_WARNING = (
    r"<class 'torch\.nn\.[\w.]*\b(Buffer|LinearCrossEntropyOptions)'> "
    r"is found to be not a nn\.Module"
)


#: nni-notes #13: NNI's module that generates its ``torch.nn`` wrappers on first import.
NNI_LAYERS = "nni.nas.nn.pytorch.layers"

#: nni-notes #13: the module NNI generates (as ``_layers.py`` next to :data:`NNI_LAYERS`).
NNI_GENERATED_LAYERS = "nni.nas.nn.pytorch._layers"

#: nni-notes #13: this module, run by a NAS trial's command (:func:`nni_trial_python`).
GUARDED_RUNNER = "emodarts_nni.nni_runtime.patches"

#: nni-notes #13: NNI's warning when it cannot write ``_layers.py`` (expected in the guard).
CANNOT_WRITE_WARNING = r"Cannot write to .*_layers\.py\. Will try to execute the generated code"


class _InMemoryLayersLoader(importlib.abc.Loader):
    """Loads :data:`NNI_GENERATED_LAYERS` from the source NNI just generated, not from a file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        code = compile(self.source, f"<{module.__name__}, generated in memory>", "exec")
        exec(code, module.__dict__)


class _LayersGuard(importlib.abc.MetaPathFinder):
    """nni-notes #13: the first import of NNI's ``layers`` module writes nothing to disk.

    ``nni/nas/nn/pytorch/layers.py`` generates the source of its ``torch.nn`` wrappers at
    every first import and, when ``_layers.py`` beside it is missing or stale (another torch
    version), writes it there if ``os.access`` says it may, then imports it. While this guard
    is installed ``os.access`` says that folder and that file are not writable (only those
    two paths, only for ``W_OK``), and this finder answers the import of
    :data:`NNI_GENERATED_LAYERS` with a module built from the source NNI just generated
    (``layers.code``), under the same name, so its classes are what a written file would
    have given. A fresh ``_layers.py`` (NNI's own ``validate_cache()``) is imported from disk
    as before.
    """

    def __init__(self) -> None:
        self.blocked: set[str] = set()  # absolute paths os.access reports as not writable
        self.original_access = os.access

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == NNI_LAYERS:  # about to run: note where it will write
            for folder in path or ():
                self.blocked.add(os.path.abspath(folder))
                self.blocked.add(os.path.abspath(os.path.join(folder, "_layers.py")))
        elif fullname == NNI_GENERATED_LAYERS:
            layers = sys.modules.get(NNI_LAYERS)
            source = getattr(layers, "code", None)
            validate = getattr(layers, "validate_cache", None)
            if isinstance(source, str) and callable(validate) and not validate():
                return importlib.util.spec_from_loader(fullname, _InMemoryLayersLoader(source))
        return None  # everything else (and a fresh _layers.py): the normal import

    def access(self, path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        """``os.access``, except that the generated file and its folder are not writable."""
        if mode & os.W_OK and not isinstance(path, int) and kwargs.get("dir_fd") is None:
            with contextlib.suppress(TypeError, ValueError):
                if os.path.abspath(os.fsdecode(path)) in self.blocked:
                    return False
        return self.original_access(path, mode, *args, **kwargs)


_guard_lock = threading.Lock()
_guard: _LayersGuard | None = None
_guard_depth = 0


@contextlib.contextmanager
def _layers_written_nowhere() -> Iterator[None]:
    """Install :class:`_LayersGuard` while NNI's ``layers`` module is not imported yet.

    Blocks nest (the outermost installs and removes it); once ``layers`` is imported it is
    a no-op. ``sys.meta_path`` and ``os.access`` are as before afterwards.
    """
    global _guard, _guard_depth
    with _guard_lock:
        if _guard is None and NNI_LAYERS in sys.modules:
            active = False
        else:
            active = True
            if _guard is None:
                _guard = _LayersGuard()
                sys.meta_path.insert(0, _guard)
                os.access = _guard.access
            _guard_depth += 1
    try:
        yield
    finally:
        if active:
            with _guard_lock:
                _guard_depth -= 1
                if _guard_depth == 0 and _guard is not None:
                    with contextlib.suppress(ValueError):
                        sys.meta_path.remove(_guard)
                    if os.access == _guard.access:
                        os.access = _guard.original_access
                    _guard = None


@contextlib.contextmanager
def quiet_nni_import() -> Iterator[None]:
    """Import NNI's NAS modules inside this block: quietly, and writing nothing to site-packages.

    * nni-notes #10: when NNI generates its ``nni.nas.nn.pytorch`` wrappers (once, at first
      import) it warns about every class in ``torch.nn`` that is not a module and re-exports
      it unchanged. On torch 2.13 that is ``nn.Buffer`` (and ``nn.LinearCrossEntropyOptions``,
      an options dataclass). Only those exact messages are dropped, any other warning still
      shows, and ``warnings.filters`` is as before afterwards.
    * nni-notes #13: if this block holds the first import of ``nni.nas.nn.pytorch``, NNI
      neither writes nor rewrites ``_layers.py`` in its install (read-only or shared
      installs work the same); the generated wrappers live in memory instead. A fresh
      ``_layers.py`` is used as it is. ``sys.meta_path`` and ``os.access`` are restored at
      the end of the block.

    Every module of this package that imports ``nni.nas`` does so inside this block, and a
    multi-trial search's trials start through it (:func:`nni_trial_python`).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=BUFFER_WARNING, category=RuntimeWarning)
        warnings.filterwarnings("ignore", message=CANNOT_WRITE_WARNING, category=UserWarning)
        with _layers_written_nowhere():
            yield


def nni_trial_python() -> str:
    """nni-notes #13: the ``python`` of a NAS trial command, so its first NNI import is guarded.

    NNI starts a multi-trial search's trials as ``{python} -m
    nni.nas.execution.training_service trial``, which imports ``nni.nas`` before any module
    of ours. With this as ``python`` (``_trial_command_params``) the trial runs through
    :func:`run_module_guarded` instead.
    """
    return f"{shlex.quote(sys.executable)} -m {GUARDED_RUNNER}"


def run_module_guarded(argv: Sequence[str]) -> None:
    """Run ``-m MODULE ARGS...`` (``argv``) as ``python -m`` would, NNI imported quietly first.

    The first import of ``nni.nas.nn.pytorch`` happens inside :func:`quiet_nni_import`.
    """
    import runpy

    if len(argv) < 2 or argv[0] != "-m":
        raise SystemExit(f"usage: python -m {GUARDED_RUNNER} -m MODULE [ARGS...]")
    with quiet_nni_import():
        import nni.nas.nn.pytorch  # noqa: F401
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


def registry_dir(experiment_working_directory: Path | str) -> Path:
    """The folder holding NNI's experiment registry (``.experiment``) for a working directory.

    NNI's manager (Node.js) hard-codes ``<home>/nni-experiments/.experiment``; with the home
    redirected to ``<experiment_working_directory>/.nni-home`` this is where it ends up.
    """
    return Path(experiment_working_directory).resolve() / FAKE_HOME / "nni-experiments"


@dataclass
class ManagerScope:
    """One :func:`manager_patches` block: registry folder, bound address, managers started.

    ``tied``: the managers started in the block end (with their dispatcher and trials) when
    this process ends, however it ends, ``kill -9`` included.
    """

    registry_dir: Path
    host: str
    tied: bool = True
    started: list[subprocess.Popen] = field(default_factory=list)

    def kill_started(self) -> None:
        """Kill every manager started in this block that still runs (with its process group)."""
        for process in self.started:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    # NNI starts the manager with setpgrp: its group holds what it spawned.
                    os.killpg(process.pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    process.kill()
                process.wait()


_scopes: list[ManagerScope] = []
_originals: dict[str, Any] = {}


def _redirected_experiments_init(original: Any) -> Any:
    """nni-notes #9 (registry part): keep NNI's Python-side experiment registry in the run folder.

    ``experiment_working_directory`` moves an experiment's files, but NNI's launcher still
    records every experiment in ``~/nni-experiments/.experiment`` through
    ``nnictl.config_utils.Experiments()``. While patched the registry defaults to
    :func:`registry_dir` of the innermost :func:`manager_patches` block.
    """

    def __init__(self: Any, home_dir: str | None = None) -> None:
        original(self, str(_scopes[-1].registry_dir) if home_dir is None else home_dir)

    return __init__


_PRELOAD_TEMPLATE = """\
// Written by emodarts_nni.nni_runtime.patches (docs/nni-integration.md): NNI 3.0's manager
// listens on every interface and keeps its registry in ~/nni-experiments; neither is
// configurable. It also outlives a parent killed by SIGKILL (or any signal it cannot clean
// up after), with its dispatcher and trials.
'use strict';
const net = require('net');
const os = require('os');
const HOST = %(host)s;
const HOME = %(home)s;
const PARENT = %(parent)s;
if (PARENT !== null) {
  // NNI starts the manager with setpgrp, and its dispatcher and trials stay in that group:
  // once the Python process that started it is gone (re-parented), end the whole group.
  const watch = setInterval(() => {
    if (process.ppid !== PARENT) {
      try { process.kill(-process.pid, 'SIGKILL'); } catch (error) { process.exit(1); }
    }
  }, %(interval_ms)d);
  watch.unref();
}
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


#: How often the manager checks that the process that started it still runs (milliseconds).
PARENT_WATCH_MS = 500


def _manager_preload(experiments_directory: Path, host: str, parent: int | None) -> Path:
    """Write the Node.js preload for a manager whose experiments live in ``experiments_directory``.

    With a ``parent`` pid the manager, its dispatcher and its trials (one process group) are
    killed within :data:`PARENT_WATCH_MS` once that process is gone.
    """
    home = experiments_directory / FAKE_HOME
    home.mkdir(parents=True, exist_ok=True)
    path = home / PRELOAD_NAME
    source = _PRELOAD_TEMPLATE % {
        "host": json.dumps(host),
        "home": json.dumps(str(home)),
        "parent": json.dumps(parent),
        "interval_ms": PARENT_WATCH_MS,
    }
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    return path


def is_manager_command(command: Any) -> bool:
    """Whether ``command`` (a Popen argument list) starts NNI's Node.js manager."""
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


def _local_manager_popen(original: Any) -> Any:
    """New (not in nni-notes): NNI's manager listens on all interfaces and writes to ``~``.

    ``nni_node/rest_server/index.js`` calls ``app.listen(port)`` with no host, so the web UI
    and REST API (which can stop the experiment and kill trials) are reachable from the
    network; NNI has no manager argument or config field for the address (``nni_manager_ip``
    is only what trials use to reach it). The manager also hard-codes its registry at
    ``os.homedir()/nni-experiments/.experiment``.

    The supported Node.js way to change this without touching NNI's files is a preload
    module (``node --require``): this wraps the ``Popen`` that ``nni.experiment.launcher``
    starts the manager with, and adds ``--require`` of a small script written to
    ``<experiment_working_directory>/.nni-home/`` that (1) gives ``listen(port)`` the
    block's host (``127.0.0.1`` by default) and (2) makes ``os.homedir()`` that folder.
    Trials inherit the real ``HOME`` (the preload changes no environment variable).
    In a ``tied`` block (the default) the preload (3) kills the manager's process group (the
    manager, NNI's dispatcher and the trials) once this process is gone: a SIGKILL leaves no
    chance to stop it, and the manager used to keep starting trials and serving its port
    under PID 1.

    It also records the started manager in the block, so a block left by an exception
    (Ctrl-C, SIGTERM during start-up) kills it instead of orphaning it: NNI's launcher only
    cleans up after an ``Exception``, and the manager runs in its own process group.
    """

    def popen(command: Any, *args: Any, **kwargs: Any) -> subprocess.Popen:
        if not is_manager_command(command):
            return original(command, *args, **kwargs)
        scope = _scopes[-1]
        directory = _argument(command, "--experiments-directory")
        if directory is not None:
            parent = os.getpid() if scope.tied else None
            preload = _manager_preload(Path(directory), scope.host, parent)
            command = [command[0], "--require", str(preload), *command[1:]]
        with deferred_interrupts():  # started and recorded, or neither
            process = original(command, *args, **kwargs)
            scope.started.append(process)
        return process

    return popen


def _drop_web_portal_urls(record: logging.LogRecord) -> bool:
    """New: NNI logs "Web portal URLs: <every interface address>", which the preload makes
    untrue; our launch helpers print the one address that works instead."""
    return not str(record.msg).startswith("Web portal URLs")


#: Seconds NNI's manager may take to answer after it is started (NNI 3.0 allows about 3).
MANAGER_START_SECONDS = 60.0


def _patient_rest_check(original: Any) -> Any:
    """New: NNI gives its freshly started manager about 3 s to answer ``/check-status``
    (``launcher._check_rest_server``: 3 tries a second apart) and otherwise stops the
    experiment. A cold start of Node.js on a busy 2-core machine took longer (seen here:
    ``emodarts study`` failed with "Create experiment failed ... Connection refused" and
    succeeded on the next try). Poll for up to :data:`MANAGER_START_SECONDS` instead."""
    import time

    def check(port: int, retry: int = 3, url_prefix: str | None = None) -> None:
        deadline = time.monotonic() + MANAGER_START_SECONDS
        while time.monotonic() < deadline:
            try:
                return original(port, 1, url_prefix)  # one try, raising if it fails
            except Exception:  # noqa: BLE001 - NNI raises requests' errors; retried
                time.sleep(0.5)
        return original(port, retry, url_prefix)

    return check


def _install() -> None:
    from nni.experiment import launcher
    from nni.tools.nnictl import config_utils

    _originals["_check_rest_server"] = launcher._check_rest_server
    launcher._check_rest_server = _patient_rest_check(launcher._check_rest_server)
    _originals["Popen"] = launcher.Popen
    _originals["Experiments.__init__"] = config_utils.Experiments.__init__
    launcher.Popen = _local_manager_popen(launcher.Popen)  # type: ignore[assignment,misc]
    config_utils.Experiments.__init__ = _redirected_experiments_init(  # type: ignore[method-assign]
        config_utils.Experiments.__init__
    )
    logging.getLogger(NNI_LAUNCH_LOGGER).addFilter(_drop_web_portal_urls)


def _restore() -> None:
    from nni.experiment import launcher
    from nni.tools.nnictl import config_utils

    launcher.Popen = _originals.pop("Popen")  # type: ignore[misc]
    launcher._check_rest_server = _originals.pop("_check_rest_server")
    config_utils.Experiments.__init__ = _originals.pop(  # type: ignore[method-assign]
        "Experiments.__init__"
    )
    logging.getLogger(NNI_LAUNCH_LOGGER).removeFilter(_drop_web_portal_urls)


@contextlib.contextmanager
def manager_patches(
    experiment_working_directory: Path | str, host: str = LOCALHOST, *, tied: bool = True
) -> Iterator[ManagerScope]:
    """Within this block NNI's manager keeps its registry under the run folder and binds ``host``.

    Wrap every call that starts, views or stops an NNI manager (``Experiment.start``/``stop``,
    ``NasExperiment.run``/``stop`` of a multi-trial experiment, ``launcher.start_experiment``).
    The patches are installed on entering the outermost block and NNI's originals restored
    when it ends. A block left by an exception kills the managers started in it; unless
    ``tied=False`` (a detached web UI), they also die with this process.
    """
    scope = ManagerScope(registry_dir(experiment_working_directory), host, tied)
    with quiet_nni_import():
        if not _scopes:
            _install()
        _scopes.append(scope)
    try:
        yield scope
    except BaseException:
        scope.kill_started()
        raise
    finally:
        _scopes.remove(scope)
        if not _scopes:
            _restore()


__all__ = [
    "BUFFER_WARNING",
    "CANNOT_WRITE_WARNING",
    "FAKE_HOME",
    "GUARDED_RUNNER",
    "LOCALHOST",
    "NNI_GENERATED_LAYERS",
    "NNI_LAYERS",
    "ManagerScope",
    "manager_patches",
    "nni_trial_python",
    "quiet_nni_import",
    "registry_dir",
    "run_module_guarded",
]


if __name__ == "__main__":
    # Delegate to the module under its own name, so there is one guard state (nni-notes #13).
    from emodarts_nni.nni_runtime.patches import run_module_guarded as _run

    _run(sys.argv[1:])
