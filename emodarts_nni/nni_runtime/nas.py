"""Run an NNI ``NasExperiment`` with its files in the run folder, and always stop it.

* One-shot strategies (DARTS, ENAS, ...) train a supernet in-process (NNI's sequential
  engine) and never start NNI's manager: no patch is installed for them.
* Multi-trial strategies (``random``, ``evolution``) run every trial through NNI's manager
  (visible in the web UI) inside :func:`~.patches.manager_patches`, or, with
  ``in_process=True`` (the web UI disabled), one after another in this process with NNI's
  sequential engine (nni-notes #7; the evaluator must build a fresh trainer per model).
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.nni_runtime.patches import (
    LOCALHOST,
    manager_patches,
    nni_trial_python,
    quiet_nni_import,
    registry_dir,
)
from emodarts_nni.nni_runtime.rest import fetch_metrics, require_free_port, web_url

with quiet_nni_import():
    from nni.nas.experiment import NasExperiment
    from nni.nas.experiment.config import (
        CgoEngineConfig,
        SequentialEngineConfig,
        TrainingServiceEngineConfig,
    )
    from nni.nas.experiment.experiment import _get_current_timestamp
    from nni.tools.nnictl.config_utils import Experiments

if TYPE_CHECKING:
    from nni.nas.evaluator import Evaluator
    from nni.nas.nn.pytorch import ModelSpace
    from nni.nas.strategy import Strategy


class RunFolderNasExperiment(NasExperiment):
    """A ``NasExperiment`` that records a manager-less run in the run folder's registry.

    nni-notes #9 (registry part): NNI records every experiment, also an in-process one
    that starts no manager, in ``~/nni-experiments/.experiment``. These two methods are
    NNI's own with the registry folder passed explicitly (:func:`~.patches.registry_dir`),
    so an in-process search needs no patch.
    """

    def _registry(self) -> Any:
        return Experiments(str(registry_dir(self.config.experiment_working_directory)))

    def _start_without_nni_manager(self) -> None:
        self._registry().add_experiment(
            self.id,
            "N/A",
            _get_current_timestamp(),
            "N/A",
            self.config.experiment_name,
            "N/A",
            status="RUNNING",
            tag=["retiarii"],
            logDir=str(self.config.experiment_working_directory),
        )

    def _stop_without_nni_manager(self) -> None:
        self._registry().update_experiment(self.id, "status", "STOPPED")
        self._registry().update_experiment(self.id, "endTime", _get_current_timestamp())


def uses_manager(experiment: NasExperiment) -> bool:
    """Whether the experiment schedules its trials through NNI's manager."""
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
    in_process: bool = False,
) -> NasExperiment:
    """A ``NasExperiment`` whose files go to ``experiment_dir`` (never ``~/nni-experiments``).

    One-shot strategies run in-process and ignore the trial settings. Multi-trial ones
    need a budget (``max_trial_number`` and/or ``max_experiment_duration``), else the
    strategy would sample until stopped. Their trials start in the current directory (NNI
    requires it) as ``python -m nni.nas.execution.training_service trial`` with
    ``trial_env`` set (e.g. ``PYTHONPATH`` for a space that is not installed), that module
    run through :func:`~.patches.nni_trial_python` (nni-notes #13). With
    ``in_process`` they run one at a time in this process instead (no manager, no web UI;
    ``trial_concurrency``, ``trial_gpu_number`` and ``trial_env`` do not apply).
    """
    experiment = RunFolderNasExperiment(model_space, evaluator, strategy)
    config = experiment.config
    config.experiment_name = name
    config.experiment_working_directory = Path(experiment_dir).resolve()
    if not uses_manager(experiment):
        return experiment  # one-shot: NNI chose its sequential engine already
    if max_trial_number is None and max_experiment_duration is None:
        raise ConfigError(
            f"multi-trial strategy {type(strategy).__name__} needs a budget "
            "(search.max_trials) or it samples until stopped"
        )
    config.max_trial_number = max_trial_number
    config.max_experiment_duration = max_experiment_duration
    config.max_trial_duration = max_trial_duration
    if in_process:
        config.execution_engine = SequentialEngineConfig()
        config.trial_concurrency = 1
        # Unset, as for a one-shot search: NNI warns that a set training service is ignored.
        config.training_service = dataclasses.MISSING
        return experiment
    config.trial_concurrency = trial_concurrency
    config.trial_gpu_number = trial_gpu_number
    if trial_gpu_number:
        config.training_service.use_active_gpu = True
    # nni-notes #13: the trial's first import of NNI's NAS modules writes nothing to its install.
    params = {"python": nni_trial_python()}
    if trial_env:
        params["envs"] = " ".join(f"{key}={shlex.quote(str(v))}" for key, v in trial_env.items())
    config._trial_command_params = params
    return experiment


@contextlib.contextmanager
def _run_to_end(experiment: NasExperiment, port: int) -> Iterator[NasExperiment]:
    try:
        finished = experiment.run(port=port)
        if finished is None:  # NNI caught a KeyboardInterrupt and stopped
            raise KeyboardInterrupt
        yield experiment
    finally:
        experiment.stop()


@contextlib.contextmanager
def running_nas_experiment(
    experiment: NasExperiment, *, port: int | None = None, host: str = LOCALHOST
) -> Iterator[NasExperiment]:
    """Run ``experiment`` to the end, yield it while its manager still serves, then stop it.

    Export inside the ``with`` block: a multi-trial strategy reads the trials' metrics from
    the manager. Experiments that use the manager need ``port``; it binds ``host`` only.
    Ctrl-C stops the experiment and is re-raised (NNI itself would swallow it).
    """
    if not uses_manager(experiment):
        with _run_to_end(experiment, port or 8080) as finished:
            yield finished
        return
    if port is None:
        raise ConfigError(
            f"multi-trial strategy {type(experiment.strategy).__name__} runs NNI's manager "
            "and needs a port (--port)"
        )
    require_free_port(port, host)
    experiment_dir = Path(experiment.config.experiment_working_directory)
    with manager_patches(experiment_dir, host):
        print(
            f"NNI web UI: {web_url(port, host)} (experiment {experiment.id}, {experiment_dir})",
            flush=True,
        )
        with _run_to_end(experiment, port) as finished:
            yield finished


def final_metrics(
    experiment: NasExperiment, port: int | None = None, host: str = LOCALHOST
) -> list[dict[str, Any]]:
    """The trials' final metrics, oldest first; call inside :func:`running_nas_experiment`.

    Items as :func:`~.rest.fetch_metrics` gives them (``trial_id``, ``type`` ``"FINAL"``,
    ``value``, ``default``, ...): read from the manager's REST API, or, for an in-process
    experiment, from the strategy's models (trial ids are then their 0-based order).
    """
    if uses_manager(experiment):
        if port is None:
            raise ConfigError("reading a manager's metrics needs its port")
        return [m for m in fetch_metrics(port, host) if m["type"] == "FINAL"]
    metrics = []
    for index, model in enumerate(experiment.strategy.list_models(sort=False)):
        value = model.metrics.final
        if value is None:
            continue
        default = value.get("default") if isinstance(value, Mapping) else value
        metrics.append(
            {
                "trial_id": str(index),
                "parameter_id": index,
                "type": "FINAL",
                "sequence": 0,
                "timestamp": None,
                "value": value,
                "default": default,
            }
        )
    return metrics


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

    ``config`` goes to :func:`configure_nas_experiment` (``max_trial_number``,
    ``in_process``, ...).
    """
    from emodarts_nni.strategy.registry import export_architecture

    experiment = configure_nas_experiment(
        model_space, evaluator, strategy, experiment_dir=experiment_dir, **config
    )
    with running_nas_experiment(experiment, port=port, host=host) as finished:
        return export_architecture(finished)


__all__ = [
    "RunFolderNasExperiment",
    "configure_nas_experiment",
    "final_metrics",
    "run_search",
    "running_nas_experiment",
    "uses_manager",
]
