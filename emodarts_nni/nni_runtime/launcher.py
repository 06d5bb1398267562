"""Start a one-trial (or grid) NNI ``Experiment('local')`` whose trial runs a command.

One-shot strategies run in-process and never reach the web UI on their own (nni-notes #2):
the CLI runs a one-shot search as the trial of such an experiment, whose trial reports its
metrics with :class:`~emodarts_nni.nni_runtime.reporter.TrialReporter`. The same idea carries
a study grid (folds × scopes × strategies) as NNI trials.
"""

from __future__ import annotations

import contextlib
import math
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.nni_runtime.patches import LOCALHOST, manager_patches, quiet_nni_import
from emodarts_nni.nni_runtime.rest import (
    FINISHED_STATUSES,
    fetch_metrics,
    fetch_status,
    fetch_trial_jobs,
    require_free_port,
    web_url,
)

if TYPE_CHECKING:
    from nni.experiment import Experiment


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

    def watch(self, on_poll: Callable[[], None], every: float = 2.0) -> str:
        """Like :meth:`wait`, calling ``on_poll()`` every ``every`` seconds and once at the
        end (to show progress); returns the final status."""
        while True:
            try:
                status: str | None = self.wait(timeout=every, poll_interval=min(every, 0.5))
            except TimeoutError:
                status = None
            on_poll()
            if status is not None:
                return status

    def stop(self) -> None:
        """Stop the manager (the web UI goes with it; :func:`view_experiment` reopens it)."""
        if self._stopped:
            return
        self._stopped = True
        with manager_patches(self.experiment_dir, self.host):
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
    trials: Sequence[Mapping[str, Any]] | None = None,
    host: str = LOCALHOST,
    platform: str = "local",
    machines: Sequence[Mapping[str, Any]] = (),
    trial_concurrency: int = 1,
    trial_gpu_number: int | None = None,
    local_service: Any = None,
) -> ExperimentHandle:
    """Start an NNI ``Experiment('local')`` whose trial runs ``trial_command``; print its URL.

    Everything NNI writes (database, logs, trial folders, registry) goes under
    ``experiment_dir``, which is also the trials' working directory. The trial reads its
    parameters and reports metrics with :class:`TrialReporter`. By default there is one
    trial with parameters ``{"run": name}``; a ``grid`` (``{"fold": [0, 1], "scope": [...]}``)
    runs one trial per combination in NNI's grid order; ``trials`` (a list of flat
    parameter sets, e.g. a study's cells) runs exactly those, in order, each key a column of
    the web UI's trial table (:mod:`emodarts_nni.nni_runtime.tuner`); ``trial_concurrency`` at a time,
    each with ``trial_gpu_number`` GPUs (``local_service``: NNI's ``LocalConfig`` for GPU
    placement; default NNI's).
    ``max_trial_duration`` (``"2h"`` or seconds) makes NNI cancel a trial that hangs.
    ``platform="remote"`` runs the trials on the SSH ``machines`` instead (NNI's remote
    training service, see :mod:`emodarts_nni.nni_runtime.remote`).
    """
    from emodarts_nni.nni_runtime import remote

    remote.check_platform(platform, machines)
    experiment_dir = Path(experiment_dir).resolve()
    experiment_dir.mkdir(parents=True, exist_ok=True)
    if trials is not None and grid is not None:
        raise ValueError("launch_trial_experiment: give a grid or a list of trials, not both")
    if trials is not None:
        from emodarts_nni.nni_runtime.tuner import declared_space

        if not trials:
            raise ValueError("launch_trial_experiment: an empty list of trials")
        search_space, n_trials = declared_space(trials), len(trials)
    else:
        search_space, n_trials = _grid_search_space(grid if grid else {"run": [name]})
    require_free_port(port, host)

    with quiet_nni_import():
        from nni.experiment import Experiment

    experiment = Experiment("local")
    config = experiment.config
    config.experiment_name = name
    config.trial_command = shlex.join(str(part) for part in trial_command)
    config.trial_code_directory = experiment_dir
    config.experiment_working_directory = experiment_dir
    config.search_space = search_space
    if trials is not None:
        from nni.experiment.config import CustomAlgorithmConfig

        config.tuner = CustomAlgorithmConfig(
            class_name="emodarts_nni.nni_runtime.tuner.ListTuner",
            code_directory=experiment_dir,
            class_args={"trials": [dict(t) for t in trials]},
        )
    else:
        config.tuner.name = "GridSearch"
    config.max_trial_number = n_trials
    if local_service is not None and platform == "local":
        config.training_service = local_service
    config.trial_concurrency = trial_concurrency
    config.trial_gpu_number = trial_gpu_number
    config.max_trial_duration = max_trial_duration
    on_machines = platform == "remote"
    if on_machines:  # SSH machines (docs/remote.md)
        remote.configure_remote_experiment(config, machines, trial_command)
    with (
        manager_patches(experiment_dir, host),
        remote.remote_patches(host) if on_machines else contextlib.nullcontext(),
    ):
        experiment.start(port)
    handle = ExperimentHandle(experiment, experiment_dir, port, host)
    print(f"NNI web UI: {handle.url} (experiment {handle.id}, {experiment_dir})", flush=True)
    return handle


__all__ = ["ExperimentHandle", "launch_trial_experiment"]
