"""The study's ``training_service`` section as NNI's own training-service config.

This is the one place that knows how a study's trials are placed: :func:`nni_training_service`
returns NNI's ``LocalConfig`` or ``RemoteConfig`` (the keys are NNI's, snake_case), and
:func:`launch_arguments` the keyword arguments of
:func:`emodarts_nni.nni_runtime.launch_trial_experiment` that carry it. SSH machines are
validated and patched by :mod:`emodarts_nni.nni_runtime.remote` (``docs/remote.md``). Bad
values fail here, with one line naming the key, before any trial starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.study.config import TrainingService

#: The one key of ``training_service`` the remote platform takes besides the common ones.
MACHINE_LIST = "machine_list"


def _study_folder(source: str) -> Path:
    return Path(source).absolute().parent if os.path.isfile(source) else Path.cwd()


def _machines(service: TrainingService, source: str) -> list[dict[str, Any]]:
    """The remote machines, with relative ``ssh_key_file`` paths made absolute against the
    study file's folder (trials are launched from elsewhere)."""
    options = dict(service.options)
    extra = sorted(set(options) - {MACHINE_LIST})
    if extra:
        raise ConfigError(
            f"{source}: training_service.{extra[0]}: not supported on the remote platform "
            "(see docs/remote.md)"
        )
    machines = options.get(MACHINE_LIST)
    if not isinstance(machines, list):
        return machines  # the remote module names what is wrong with it
    folder = _study_folder(source)
    resolved = []
    for machine in machines:
        if isinstance(machine, Mapping) and isinstance(machine.get("ssh_key_file"), str):
            key = Path(machine["ssh_key_file"]).expanduser()
            machine = {**machine, "ssh_key_file": str(key if key.is_absolute() else folder / key)}
        resolved.append(machine)
    return resolved


def nni_training_service(service: TrainingService, *, source: str = "<study>") -> Any:
    """NNI's ``TrainingServiceConfig`` for ``service`` (``LocalConfig`` or ``RemoteConfig``).

    On ``local`` with ``trial_gpu_number`` set, NNI assigns GPUs to trials itself
    (``gpu_indices``, ``max_trial_number_per_gpu``); ``use_active_gpu`` defaults to true
    so a workstation with a desktop still gets its GPU. ``remote`` takes NNI's
    ``machine_list`` (``host``, ``port``, ``user``, ``ssh_key_file``, ``python_path``).
    """
    if service.platform == "remote":
        from emodarts_nni.nni_runtime.remote import remote_training_service

        return remote_training_service(
            _machines(service, source), trial_gpu_number=service.trial_gpu_number
        )
    from nni.experiment.config import ExperimentConfig, LocalConfig

    options = dict(service.options)
    try:
        if service.trial_gpu_number:
            options.setdefault("use_active_gpu", True)
        config = LocalConfig(**options)
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
    """Keyword arguments of ``launch_trial_experiment`` for ``service`` (validated now)."""
    placement = nni_training_service(service, source=source)
    common = {
        "trial_concurrency": service.trial_concurrency,
        "trial_gpu_number": service.trial_gpu_number,
        "max_trial_duration": service.max_trial_duration,
    }
    if service.platform == "remote":
        return {**common, "platform": "remote", "machines": _machines(service, source)}
    return {**common, "local_service": placement}


__all__ = ["launch_arguments", "nni_training_service"]
