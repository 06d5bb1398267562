"""The study's ``training_service`` section as NNI's own training-service config.

This is the one place that knows how a study's trials are placed: :func:`nni_training_service`
returns NNI's ``LocalConfig`` or ``RemoteConfig`` (the keys are NNI's, snake_case), and
:func:`launch_arguments` the keyword arguments of
:func:`emodarts_nni.webui.launch_trial_experiment` that carry it. Bad values fail here, with
one line naming the key, before any trial starts.
"""

from __future__ import annotations

from typing import Any

from emodarts_nni.errors import ConfigError
from emodarts_nni.study.config import TrainingService


def nni_training_service(service: TrainingService, *, source: str = "<study>") -> Any:
    """NNI's ``TrainingServiceConfig`` for ``service`` (``LocalConfig`` or ``RemoteConfig``).

    On ``local`` with ``trial_gpu_number`` set, NNI assigns GPUs to trials itself
    (``gpu_indices``, ``max_trial_number_per_gpu``); ``use_active_gpu`` defaults to true
    so a workstation with a desktop still gets its GPU. ``remote`` takes NNI's
    ``machine_list`` (``host``, ``port``, ``user``, ``ssh_key_file``, ``python_path``, ...).
    """
    from nni.experiment.config import (
        ExperimentConfig,
        LocalConfig,
        RemoteConfig,
        RemoteMachineConfig,
    )

    options = dict(service.options)
    try:
        if service.platform == "local":
            if service.trial_gpu_number:
                options.setdefault("use_active_gpu", True)
            config = LocalConfig(**options)
        else:
            machines = [RemoteMachineConfig(**dict(m)) for m in options.pop("machine_list")]
            config = RemoteConfig(machine_list=machines, **options)
        # NNI checks a training service only inside a whole experiment config, at start:
        # check it now, so a bad value fails before any work.
        probe = ExperimentConfig(
            training_service=config,
            trial_command="true",
            trial_code_directory=".",
            trial_concurrency=service.trial_concurrency,
            trial_gpu_number=service.trial_gpu_number,
            search_space={},
            tuner={"name": "GridSearch"},
        )
        probe.validate()
        return config
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{source}: training_service: {message}") from None


def launch_arguments(service: TrainingService, *, source: str = "<study>") -> dict[str, Any]:
    """Keyword arguments of ``launch_trial_experiment`` for ``service``."""
    return {
        "training_service": nni_training_service(service, source=source),
        "trial_concurrency": service.trial_concurrency,
        "trial_gpu_number": service.trial_gpu_number,
        "max_trial_duration": service.max_trial_duration,
    }


__all__ = ["launch_arguments", "nni_training_service"]
