"""Reopen a stopped NNI experiment's web UI read-only, and stop it (nni-notes #3)."""

from __future__ import annotations

import atexit
import contextlib
import json
import sqlite3
import subprocess
import time
import urllib.error
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.nni_runtime.patches import LOCALHOST, manager_patches, quiet_nni_import
from emodarts_nni.nni_runtime.rest import port_in_use, require_free_port, rest, web_url


def find_experiment(directory: Path) -> tuple[Path, str]:
    """``(experiment working directory, experiment id)`` of the newest NNI experiment in ``directory``.

    ``directory`` may be the experiment folder itself, its working directory, a run folder or
    a study folder (searched three levels down for ``<id>/db/nni.sqlite``).
    """
    directory = Path(directory).resolve()
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such folder")
    databases = {  # resolved: NNI's ``_latest`` link points at one of them
        database.resolve()
        for depth in range(4)
        for database in directory.glob("/".join(["*"] * depth + ["db", "nni.sqlite"]))
    }
    if not databases:
        raise ConfigError(f"{directory}: no NNI experiment in it (no <id>/db/nni.sqlite)")
    experiment_folder = max(databases, key=lambda path: path.stat().st_mtime).parent.parent
    return experiment_folder.parent, experiment_folder.name


def _stored_config(working_directory: Path, experiment_id: str) -> dict[str, Any]:
    database = working_directory / experiment_id / "db" / "nni.sqlite"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT params FROM ExperimentProfile WHERE id = ? ORDER BY revision DESC",
            (experiment_id,),
        ).fetchone()
    if row is None:
        raise ConfigError(f"{database}: holds no profile of experiment {experiment_id}")
    return dict(json.loads(row[0]))


class _ViewConfig(SimpleNamespace):
    """The few fields NNI's launcher reads, taken from a stopped experiment's database.

    Viewing through ``Experiment.view`` re-validates the stored config, which a NAS
    experiment fails (nni-notes #3: "search_space field can not be customized", and its
    trial code directory must be the current directory); the manager itself reads the
    profile from the database, so the stored JSON is passed through unvalidated.
    """

    def json(self) -> dict[str, Any]:
        return self.stored


def _view_config(working_directory: Path, stored: dict[str, Any]) -> _ViewConfig:
    services = stored.get("trainingService") or {"platform": "local"}

    def service(item: Mapping[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(platform=item.get("platform", "local"))

    return _ViewConfig(
        stored=stored,
        experiment_working_directory=str(working_directory),
        training_service=[service(s) for s in services]
        if isinstance(services, list)
        else service(services),
        log_level=stored.get("logLevel") or "info",
        experiment_name=stored.get("experimentName"),
    )


_views: dict[int, tuple[subprocess.Popen, str]] = {}


def view_experiment(
    run_or_experiment_dir: Path, port: int, *, host: str = LOCALHOST, detach: bool = False
) -> str:
    """Reopen a stopped experiment's web UI read-only; return its URL (nni-notes #3).

    The manager runs in the background until :func:`stop_experiment` (or, unless
    ``detach``, until this Python process exits).
    """
    with quiet_nni_import():
        from nni.experiment import RunMode, launcher

    working_directory, experiment_id = find_experiment(run_or_experiment_dir)
    config = _view_config(working_directory, _stored_config(working_directory, experiment_id))
    require_free_port(port, host)
    with manager_patches(working_directory, host, tied=not detach):
        process = launcher.start_experiment(
            "view", experiment_id, config, port, False, RunMode.Detach, None
        )
        if not detach:  # recorded before the block ends: an interrupt here kills it
            _views[port] = (process, host)
    url = web_url(port, host)
    print(f"NNI web UI: {url} (experiment {experiment_id}, read-only)", flush=True)
    return url


def stop_experiment(port: int, *, host: str = LOCALHOST, timeout: float = 30.0) -> None:
    """Stop whatever NNI manager serves ``host:port`` (a view, or a leftover experiment)."""
    with contextlib.suppress(urllib.error.URLError, OSError):
        rest(port, "/experiment", host=host, method="DELETE")
    entry = _views.pop(port, None)
    process = entry[0] if entry is not None else None
    deadline = time.monotonic() + timeout
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        if process.poll() is None:
            process.kill()
            process.wait()
        return
    while port_in_use(port, host) and time.monotonic() < deadline:
        time.sleep(0.2)


@atexit.register
def stop_views() -> None:
    """Stop every web UI this process opened with :func:`view_experiment` (not detached)."""
    for port, (_, host) in list(_views.items()):
        stop_experiment(port, host=host)


__all__ = ["find_experiment", "stop_experiment", "stop_views", "view_experiment"]
