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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.study.config import StudyConfig, TrainingService

#: The one key of ``training_service`` the remote platform takes besides the common ones.
MACHINE_LIST = "machine_list"
#: ``max_trial_duration`` as NNI reads it: seconds, or a number with a unit (``90s``,
#: ``30m``, ``2h``, ``1d``).
_DURATION = re.compile(r"\s*\d+(\.\d*)?\s*[dhms]\s*", re.IGNORECASE)


#: Caps on a study's size, checked before its cells are expanded (which took 40-150 s of
#: silence for ``random_architectures: 100000000`` or a 1000 x 1000 x 1000 grid).
MAX_GRID_CELLS = 10_000
MAX_RANDOM_ARCHITECTURES = 1_000


def check_study_size(study: StudyConfig) -> None:
    """Refuse a study whose grid or random-architecture control is above its cap, giving
    the count, before any cell is built."""
    import math

    cells = math.prod(len(values) for values in study.grid.values())
    if cells > MAX_GRID_CELLS:
        axes = " x ".join(str(len(values)) for values in study.grid.values())
        raise ConfigError(f"{study.source}: grid: {cells} cells ({axes}); at most {MAX_GRID_CELLS}")
    n_random = study.controls.random_architectures
    if n_random > MAX_RANDOM_ARCHITECTURES:
        raise ConfigError(
            f"{study.source}: controls.random_architectures = {n_random}: at most "
            f"{MAX_RANDOM_ARCHITECTURES}"
        )


def check_max_trial_duration(service: TrainingService, *, source: str = "<study>") -> None:
    """Refuse a ``max_trial_duration`` NNI would reject only after its experiment started
    (``forever``: NNI's "Bad unit"), with one line naming the key and the value."""
    value = service.max_trial_duration
    if value is None:
        return
    if isinstance(value, str) and _DURATION.fullmatch(value):
        number = float(re.sub(r"[^0-9.]", "", value))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        number = -1.0
    if not number > 0:
        raise ConfigError(
            f"{source}: training_service.max_trial_duration = {value!r}: expected seconds or "
            "a number with a unit s, m, h or d (e.g. 90s, 30m, 2h, 1d), greater than 0"
        )


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
    check_max_trial_duration(service, source=source)
    placement = nni_training_service(service, source=source)
    common = {
        "trial_concurrency": service.trial_concurrency,
        "trial_gpu_number": service.trial_gpu_number,
        "max_trial_duration": service.max_trial_duration,
    }
    if service.platform == "remote":
        from emodarts_nni.nni_runtime.remote import check_reachable

        machines = _machines(service, source)
        check_reachable(machines)  # before NNI's manager starts and fails without a reason
        return {**common, "platform": "remote", "machines": machines}
    return {**common, "local_service": placement}


__all__ = [
    "MAX_GRID_CELLS",
    "MAX_RANDOM_ARCHITECTURES",
    "check_max_trial_duration",
    "check_study_size",
    "launch_arguments",
    "nni_training_service",
]
