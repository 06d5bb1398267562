"""Every emoDARTS search as an NNI experiment in NNI's web UI (``docs/nni-integration.md``).

* Multi-trial strategies (``random``, ``evolution``) run through NNI's manager natively:
  :func:`configure_nas_experiment` + :func:`running_nas_experiment` (or :func:`run_search`)
  keep its files in the run folder, bind it to ``127.0.0.1`` and always stop it.
* One-shot strategies run in-process and never reach the UI on their own (nni-notes #2).
  :func:`launch_trial_experiment` starts a one-trial ``Experiment('local')`` whose trial runs
  the search; inside that trial a :class:`TrialReporter`, created before any
  ``NasExperiment``, sends per-epoch and final metrics through NNI's trial channel.
* :func:`view_experiment` reopens a finished experiment read-only (nni-notes #3) and
  :func:`fetch_metrics` / :func:`fetch_trial_jobs` read the REST API the UI itself uses.

NNI's manager is reached at ``http://127.0.0.1:PORT``; see :mod:`emodarts_nni.compat` for
why it listens there only and keeps its registry under the experiment folder.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import shlex
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from emodarts_nni import compat
from emodarts_nni.errors import ConfigError

compat.apply()

from nni.experiment import Experiment, RunMode  # noqa: E402

if TYPE_CHECKING:
    from nni.nas.evaluator import Evaluator
    from nni.nas.experiment import NasExperiment
    from nni.nas.nn.pytorch import ModelSpace
    from nni.nas.strategy import Strategy

LOCALHOST = compat.LOCALHOST
API_PREFIX = "/api/v1/nni"
#: Experiment statuses after which NNI's manager schedules nothing more.
FINISHED_STATUSES = ("DONE", "STOPPED", "ERROR")


# --------------------------------------------------------------------------- REST API


def web_url(port: int, host: str = LOCALHOST) -> str:
    """The web UI's address for a manager listening on ``host:port``."""
    shown = LOCALHOST if host in ("", "0.0.0.0", "::") else host
    return f"http://{shown}:{port}"


def rest(
    port: int, api: str, *, host: str = LOCALHOST, method: str = "GET", timeout: float = 10.0
) -> Any:
    """Call NNI's REST API (``/api/v1/nni`` + ``api``); returns the decoded JSON or ``None``."""
    request = urllib.request.Request(f"{web_url(port, host)}{API_PREFIX}{api}", method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


def fetch_status(port: int, host: str = LOCALHOST) -> str:
    """The experiment's status (``RUNNING``, ``NO_MORE_TRIAL``, ``DONE``, ``VIEWED``, ...)."""
    return str(rest(port, "/check-status", host=host)["status"])


def fetch_trial_jobs(port: int, host: str = LOCALHOST) -> list[dict[str, Any]]:
    """The trial jobs as the web UI lists them (``trialJobId``, ``status``, ``hyperParameters``, ...)."""
    return list(rest(port, "/trial-jobs", host=host))


def _decode_metric(data: Any) -> Any:
    """Metric data come JSON-encoded once or twice (the trial dumps, the manager stores)."""
    for _ in range(2):
        if not isinstance(data, str):
            break
        try:
            data = json.loads(data)
        except ValueError:
            break
    return data


def fetch_metrics(port: int, host: str = LOCALHOST) -> list[dict[str, Any]]:
    """Every metric the web UI plots, oldest first.

    Each item: ``trial_id``, ``parameter_id``, ``type`` (``PERIODICAL`` = intermediate, or
    ``FINAL``), ``sequence``, ``timestamp``, ``value`` (a number or a dict) and ``default``
    (the number the UI plots: ``value`` or ``value["default"]``).
    """
    metrics = []
    for item in rest(port, "/metric-data", host=host):
        value = _decode_metric(item.get("data"))
        default = value.get("default") if isinstance(value, dict) else value
        metrics.append(
            {
                "trial_id": item.get("trialJobId"),
                "parameter_id": item.get("parameterId"),
                "type": item.get("type"),
                "sequence": item.get("sequence"),
                "timestamp": item.get("timestamp"),
                "value": value,
                "default": default,
            }
        )
    return sorted(metrics, key=lambda metric: (metric["timestamp"] or 0, metric["sequence"] or 0))


def _port_in_use(port: int, host: str) -> bool:
    address = web_url(port, host).split("//", 1)[1].rsplit(":", 1)[0]
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def _require_free_port(port: int, host: str) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port (1-65535)")
    if _port_in_use(port, host):
        raise ConfigError(
            f"port {port} is in use (another NNI experiment or web UI?); choose another with --port"
        )


# ------------------------------------------------------------------ one-trial experiment


@dataclass
class ExperimentHandle:
    """A running NNI experiment started by :func:`launch_trial_experiment`.

    Use as a context manager (or call :meth:`stop`) so the manager never outlives the run.
    """

    experiment: Experiment
    experiment_dir: Path
    port: int
    host: str = LOCALHOST
    _stopped: bool = field(default=False, init=False, repr=False)

    @property
    def id(self) -> str:
        """NNI's experiment id (the folder ``experiment_dir/<id>``)."""
        return str(self.experiment.id)

    @property
    def url(self) -> str:
        """The web UI's address."""
        return web_url(self.port, self.host)

    def status(self) -> str:
        """The experiment's current status (see :func:`fetch_status`)."""
        return fetch_status(self.port, self.host)

    def trial_jobs(self) -> list[dict[str, Any]]:
        """The trial jobs (see :func:`fetch_trial_jobs`)."""
        return fetch_trial_jobs(self.port, self.host)

    def metrics(self) -> list[dict[str, Any]]:
        """The metrics reported so far (see :func:`fetch_metrics`)."""
        return fetch_metrics(self.port, self.host)

    def wait(self, timeout: float | None = None, poll_interval: float = 1.0) -> str:
        """Block until every trial has ended; return the final status.

        ``SUCCEEDED`` when every trial succeeded; otherwise the first other trial status
        (``FAILED``, ``USER_CANCELED``, ``SYS_CANCELED`` (e.g. past ``max_trial_duration``),
        ...), or ``ERROR`` / ``STOPPED`` when the experiment itself failed or was stopped.
        The manager keeps serving the web UI until :meth:`stop`. Raises ``TimeoutError``
        after ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.status()) not in FINISHED_STATUSES:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"NNI experiment {self.id} still {status} after {timeout} s")
            time.sleep(poll_interval)
        if status != "DONE":
            return status
        unsuccessful = [job["status"] for job in self.trial_jobs() if job["status"] != "SUCCEEDED"]
        return unsuccessful[0] if unsuccessful else "SUCCEEDED"

    def stop(self) -> None:
        """Stop the manager (the web UI goes with it; :func:`view_experiment` reopens it)."""
        if self._stopped:
            return
        self._stopped = True
        with compat.nni_manager_scope(self.experiment_dir, self.host):
            self.experiment.stop()

    def __enter__(self) -> ExperimentHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _grid_search_space(grid: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Any], int]:
    space = {}
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"grid {key!r} must be a non-empty list of values, got {values!r}")
        space[str(key)] = {"_type": "choice", "_value": list(values)}
    return space, math.prod(len(values) for values in grid.values())


def launch_trial_experiment(
    trial_command: Sequence[str | Path],
    *,
    experiment_dir: Path,
    port: int,
    name: str,
    max_trial_duration: str | int | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    host: str = LOCALHOST,
    trial_concurrency: int = 1,
    training_service: Any = None,
    trial_gpu_number: int | None = None,
) -> ExperimentHandle:
    """Start an NNI ``Experiment('local')`` whose trial runs ``trial_command``; print its URL.

    Everything NNI writes (database, logs, trial folders, registry) goes under
    ``experiment_dir``, which is also the trials' working directory. The trial reads its
    parameters and reports metrics with :class:`TrialReporter`. By default there is one
    trial with parameters ``{"run": name}``; a ``grid`` (``{"fold": [0, 1], "scope": [...]}``)
    runs one trial per combination in NNI's grid order.
    ``max_trial_duration`` (``"2h"`` or seconds) makes NNI cancel a trial that hangs.
    ``trial_concurrency`` trials run at once on ``training_service`` (an NNI
    ``TrainingServiceConfig``; default ``local``), each with ``trial_gpu_number`` GPUs.
    """
    experiment_dir = Path(experiment_dir).resolve()
    experiment_dir.mkdir(parents=True, exist_ok=True)
    search_space, trials = _grid_search_space(grid if grid else {"run": [name]})
    _require_free_port(port, host)

    experiment = Experiment("local")
    config = experiment.config
    if training_service is not None:
        config.training_service = training_service
    config.experiment_name = name
    config.trial_command = shlex.join(str(part) for part in trial_command)
    config.trial_code_directory = experiment_dir
    config.experiment_working_directory = experiment_dir
    config.search_space = search_space
    config.tuner.name = "GridSearch"
    config.max_trial_number = trials
    config.trial_concurrency = trial_concurrency
    config.trial_gpu_number = trial_gpu_number
    config.max_trial_duration = max_trial_duration
    with compat.nni_manager_scope(experiment_dir, host):
        experiment.start(port)
    handle = ExperimentHandle(experiment, experiment_dir, port, host)
    print(f"NNI web UI: {handle.url} (experiment {handle.id}, {experiment_dir})", flush=True)
    return handle


# ------------------------------------------------------------------------- trial side


class TrialReporter:
    """Report metrics of an in-process search to the NNI trial this process runs as.

    Create it first thing in the trial, before any ``NasExperiment`` runs: a running
    ``NasExperiment`` replaces NNI's trial command channel with its in-process one, so
    ``nni.report_*`` would no longer reach the web UI (nni-notes #2). The reporter keeps the
    real channel and takes the trial's parameters (:attr:`parameters`) from it; do not also
    call ``nni.get_next_parameter()``.

    Outside NNI (a plain local run, a test) it is inactive: reports are only recorded in
    :attr:`history`.
    """

    def __init__(self) -> None:
        from nni.nas.execution.sequential import SequentialTrialCommandChannel
        from nni.runtime.trial_command_channel import get_default_trial_command_channel

        self.trial_id: str | None = os.environ.get("NNI_TRIAL_JOB_ID")
        self.experiment_id: str | None = os.environ.get("NNI_EXP_ID")
        platform = os.environ.get("NNI_PLATFORM")
        self.active: bool = bool(self.trial_id) and platform not in (None, "", "unittest")
        self.parameters: dict[str, Any] = {}
        self.history: list[tuple[str, dict[str, Any]]] = []
        self._sequence = 0
        self._parameter_id: int | None = None
        self._channel: Any = None
        if not self.active:
            return
        channel = get_default_trial_command_channel()
        if isinstance(channel, SequentialTrialCommandChannel):
            raise RuntimeError("create TrialReporter before running a NasExperiment in-process")
        self._channel = channel
        record = channel.receive_parameter()
        if record is not None:
            self._parameter_id = record.get("parameter_id")
            self.parameters = dict(record.get("parameters") or {})

    @property
    def last_value(self) -> float | None:
        """The ``default`` of the latest report (intermediate or final), if any."""
        return self.history[-1][1]["default"] if self.history else None

    def _send(self, kind: str, value: float, extra: Mapping[str, Any]) -> dict[str, Any]:
        metric = {"default": float(value), **{str(k): _jsonable(v) for k, v in extra.items()}}
        self.history.append((kind, metric))
        if self._channel is not None:
            self._channel.send_metric(
                type=kind,
                parameter_id=self._parameter_id,
                trial_job_id=self.trial_id,
                sequence=self._sequence if kind == "PERIODICAL" else 0,
                value=metric,
            )
        if kind == "PERIODICAL":
            self._sequence += 1
        return metric

    def report_intermediate(self, value: float, **extra: Any) -> dict[str, Any]:
        """Send a per-epoch metric: ``{"default": value, **extra}`` (the UI plots ``default``)."""
        return self._send("PERIODICAL", value, extra)

    def report_final(self, value: float, **extra: Any) -> dict[str, Any]:
        """Send the trial's final metric: ``{"default": value, **extra}``."""
        return self._send("FINAL", value, extra)

    def epoch_callback(
        self,
        monitor: str | Sequence[str] = ("val_acc", "train_acc"),
        skip_prefixes: Sequence[str] = ("prob/",),
    ) -> Any:
        """A Lightning callback reporting each training epoch's logged metrics as intermediate.

        ``default`` is the first of ``monitor`` that the module logged (DARTS-like strategies
        run no validation loop, so ``train_acc`` is the fallback); the other scalar metrics
        and ``epoch`` go along as extras, except those starting with ``skip_prefixes``
        (one-shot strategies log every α as ``prob/...``). Pass it in the evaluator's
        ``callbacks``.
        """
        import pytorch_lightning as pl

        names = (monitor,) if isinstance(monitor, str) else tuple(monitor)
        reporter = self

        class EpochReporter(pl.Callback):
            """Report ``trainer.callback_metrics`` at the end of every training epoch."""

            def on_train_epoch_end(
                self, trainer: pl.Trainer, pl_module: pl.LightningModule
            ) -> None:
                if trainer.sanity_checking:
                    return
                scalars = {
                    name: float(value)
                    for name, value in trainer.callback_metrics.items()
                    if getattr(value, "numel", lambda: 1)() == 1
                    and not name.startswith(tuple(skip_prefixes))
                }
                chosen = next((name for name in names if name in scalars), None)
                if chosen is not None:
                    extra = {k: v for k, v in scalars.items() if k != chosen}
                    reporter.report_intermediate(
                        scalars[chosen], epoch=trainer.current_epoch, **extra
                    )

        return EpochReporter()


def _jsonable(value: Any) -> Any:
    """Tensors and numpy scalars as floats; everything else as JSON would take it."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


# ---------------------------------------------------------------------- NAS experiments


def _runs_trials(experiment: NasExperiment) -> bool:
    """Whether the experiment schedules trials through NNI's manager (multi-trial)."""
    from nni.nas.experiment.config import CgoEngineConfig, TrainingServiceEngineConfig

    engine = experiment.config.execution_engine
    return isinstance(engine, (TrainingServiceEngineConfig, CgoEngineConfig))


def configure_nas_experiment(
    model_space: ModelSpace,
    evaluator: Evaluator,
    strategy: Strategy,
    *,
    experiment_dir: Path,
    name: str | None = None,
    max_trial_number: int | None = None,
    trial_concurrency: int = 1,
    max_trial_duration: str | int | None = None,
    max_experiment_duration: str | int | None = None,
    trial_gpu_number: int | None = None,
    trial_env: Mapping[str, str] | None = None,
) -> NasExperiment:
    """A ``NasExperiment`` whose files go to ``experiment_dir`` (never ``~/nni-experiments``).

    One-shot strategies run in-process and ignore the trial settings. Multi-trial ones
    need a budget (``max_trial_number`` and/or ``max_experiment_duration``), else the
    strategy would sample until stopped. Their trials start in the current directory (NNI
    requires it) as ``python -m nni.nas.execution.training_service trial`` with
    ``trial_env`` set (e.g. ``PYTHONPATH`` for a space that is not installed).
    """
    from nni.nas.experiment import NasExperiment

    experiment = NasExperiment(model_space, evaluator, strategy)
    config = experiment.config
    config.experiment_name = name
    config.experiment_working_directory = Path(experiment_dir).resolve()
    if not _runs_trials(experiment):
        return experiment
    if max_trial_number is None and max_experiment_duration is None:
        raise ConfigError(
            f"multi-trial strategy {type(strategy).__name__} needs a budget "
            "(search.max_trials) or it samples until stopped"
        )
    config.max_trial_number = max_trial_number
    config.max_experiment_duration = max_experiment_duration
    config.max_trial_duration = max_trial_duration
    config.trial_concurrency = trial_concurrency
    config.trial_gpu_number = trial_gpu_number
    if trial_gpu_number:
        config.training_service.use_active_gpu = True
    if trial_env:
        envs = " ".join(f"{key}={shlex.quote(str(value))}" for key, value in trial_env.items())
        config._trial_command_params = {"envs": envs}
    return experiment


@contextlib.contextmanager
def running_nas_experiment(
    experiment: NasExperiment, *, port: int | None = None, host: str = LOCALHOST
) -> Iterator[NasExperiment]:
    """Run ``experiment`` to the end, yield it while its manager still serves, then stop it.

    Export inside the ``with`` block: a multi-trial strategy reads the trials' metrics from
    the manager. Multi-trial experiments need ``port``; they bind ``host`` only. Ctrl-C
    stops the experiment and is re-raised (NNI itself would swallow it).
    """
    multi_trial = _runs_trials(experiment)
    if multi_trial:
        if port is None:
            raise ConfigError(
                f"multi-trial strategy {type(experiment.strategy).__name__} runs NNI's manager "
                "and needs a port (--port)"
            )
        _require_free_port(port, host)
    experiment_dir = Path(experiment.config.experiment_working_directory)
    with compat.nni_manager_scope(experiment_dir, host):
        try:
            if multi_trial:
                url = web_url(port or 0, host)
                print(
                    f"NNI web UI: {url} (experiment {experiment.id}, {experiment_dir})", flush=True
                )
            finished = experiment.run(port=port or 8080)
            if finished is None:  # NNI caught a KeyboardInterrupt and stopped
                raise KeyboardInterrupt
            yield experiment
        finally:
            experiment.stop()


def run_search(
    model_space: ModelSpace,
    evaluator: Evaluator,
    strategy: Strategy,
    *,
    experiment_dir: Path,
    port: int | None = None,
    host: str = LOCALHOST,
    **config: Any,
) -> dict[str, Any]:
    """Search, export the best architecture as a plain dict, and stop: the whole NNI part.

    ``config`` goes to :func:`configure_nas_experiment` (``max_trial_number``, ...).
    """
    from emodarts_nni.strategies import export_architecture

    experiment = configure_nas_experiment(
        model_space, evaluator, strategy, experiment_dir=experiment_dir, **config
    )
    with running_nas_experiment(experiment, port=port, host=host) as finished:
        return export_architecture(finished)


# ------------------------------------------------------------------------ viewing


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
    from nni.experiment import launcher

    working_directory, experiment_id = find_experiment(run_or_experiment_dir)
    config = _view_config(working_directory, _stored_config(working_directory, experiment_id))
    _require_free_port(port, host)
    with compat.nni_manager_scope(working_directory, host):
        process = launcher.start_experiment(
            "view", experiment_id, config, port, False, RunMode.Detach, None
        )
    if not detach:
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
    while _port_in_use(port, host) and time.monotonic() < deadline:
        time.sleep(0.2)


@atexit.register
def _stop_views() -> None:
    for port, (_, host) in list(_views.items()):
        stop_experiment(port, host=host)


__all__ = [
    "ExperimentHandle",
    "TrialReporter",
    "configure_nas_experiment",
    "fetch_metrics",
    "fetch_status",
    "fetch_trial_jobs",
    "find_experiment",
    "launch_trial_experiment",
    "rest",
    "run_search",
    "running_nas_experiment",
    "stop_experiment",
    "view_experiment",
    "web_url",
]
