"""The study file: a base experiment config, a grid over its keys, controls, a training service.

A study file (``experiments/study_*.yaml``) reads top to bottom::

    name: study_quickstart
    base: quickstart.yaml          # every cell starts from this experiment config
    overrides:                     # optional: dotted keys set in every cell
      retrain.epochs: 5
    grid:                          # the cross product; any experiment key may be an axis
      splits.fold: [0, 1, 2, 3, 4]
      search.strategy: [darts, random-oneshot]
    controls:                      # per fold, same splits, same retrain budget
      random_architectures: 3
      baselines: [cnn, cnn_lstm, cnn_lstm_att]
      classical: true
    training_service:              # NNI's own terms
      platform: local
      trial_concurrency: 1
    primary:                       # optional: the one comparison the study is run for
      arm: darts
      against: random-arch         # random-arch | baseline:NAME | classical | a searched arm
      # scope: NAME                # the arm's scope, when it is searched in several
      # against_scope: NAME        # the reference's, to compare one arm across two scopes

:func:`load_study` validates all of it, including every cell's resolved experiment config
(:func:`emodarts_nni.study.cells.expand_cells`), before any work starts; every mistake is a
:class:`~emodarts_nni.common.errors.ConfigError` of one line naming the file and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emodarts_nni.common.errors import ConfigError, suggest
from emodarts_nni.study.arms import BASELINE_PREFIX, CLASSICAL_ARM, RANDOM_ARM

#: Top-level keys of a study file.
STUDY_KEYS = (
    "name",
    "description",
    "base",
    "overrides",
    "grid",
    "controls",
    "training_service",
    "primary",
)
#: Keys of ``controls``.
CONTROL_KEYS = ("random_architectures", "baselines", "classical")
#: Keys of ``primary``.
PRIMARY_KEYS = ("arm", "against", "scope", "corpus", "against_scope")
#: NNI training-service platforms a study may name (``training_service.platform``).
PLATFORMS = ("local", "remote")
#: Keys of ``training_service`` understood for every platform (NNI's names, snake_case).
SERVICE_KEYS = (
    "platform",
    "trial_concurrency",
    "trial_gpu_number",
    "use_active_gpu",
    "gpu_indices",
    "max_trial_number_per_gpu",
    "max_trial_duration",
    "machine_list",
    "reuse_mode",
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Controls:
    """The study's controls, run per fold with the same splits and retrain budget."""

    random_architectures: int = 0
    baselines: tuple[str, ...] = ()
    classical: bool = False


@dataclass(frozen=True)
class TrainingService:
    """Where trials run, in NNI's own config terms (``training_service``).

    ``options`` holds the platform's remaining keys (``gpu_indices``, ``machine_list``, ...)
    exactly as written; :func:`emodarts_nni.study.service.nni_training_service` turns the
    whole section into NNI's training-service config.
    """

    platform: str = "local"
    trial_concurrency: int = 1
    trial_gpu_number: int | None = None
    max_trial_duration: str | int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Primary:
    """The one comparison a study is run to make, named before any result (``primary``).

    ``arm`` is a searched arm (a strategy of the study). ``against`` is ``random-arch``
    (the mean of the random architectures of the same scope), ``baseline:NAME``,
    ``classical`` or another searched arm (same scope). ``scope`` and ``corpus`` pick one
    when the arm is searched in several; :func:`emodarts_nni.study.cells.resolve_primary`
    fills them in from the cells. ``against_scope`` takes the reference (a searched arm
    or ``random-arch``) from another scope: the same strategy with and without a change
    to its space (``darts`` with the readout searched against ``darts`` with the mean).
    The report gives this comparison first, unadjusted; every other comparison is
    exploratory (Holm-adjusted).
    """

    arm: str
    against: str
    scope: str | None = None
    corpus: str | None = None
    against_scope: str | None = None


@dataclass(frozen=True)
class StudyConfig:
    """A validated study file."""

    name: str
    base: Path
    grid: Mapping[str, tuple[Any, ...]]
    overrides: Mapping[str, Any] = field(default_factory=dict)
    controls: Controls = field(default_factory=Controls)
    training_service: TrainingService = field(default_factory=TrainingService)
    description: str = ""
    source: str = "<study>"
    primary: Primary | None = None


def _mapping(value: Any, where: str, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {where}: expected a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _unknown(keys: Mapping[str, Any], valid: tuple[str, ...], prefix: str, source: str) -> None:
    for key in keys:
        if key not in valid:
            raise ConfigError(f"{source}: unknown key {prefix + key!r}{suggest(key, valid)}")


def _positive_int(value: Any, where: str, source: str, *, zero: bool = False) -> int:
    low = 0 if zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        expected = "a non-negative integer" if zero else "a positive integer"
        raise ConfigError(f"{source}: {where} = {value!r}: expected {expected}")
    return value


def _controls(raw: Any, source: str) -> Controls:
    data = _mapping(raw, "controls", source)
    _unknown(data, CONTROL_KEYS, "controls.", source)
    n_random = _positive_int(
        data.get("random_architectures", 0), "controls.random_architectures", source, zero=True
    )
    baselines = data.get("baselines") or []
    if isinstance(baselines, str) or not isinstance(baselines, list):
        raise ConfigError(f"{source}: controls.baselines = {baselines!r}: expected a list")
    from emodarts_nni.training.baselines import BASELINES

    for name in baselines:
        if name not in BASELINES:
            raise ConfigError(
                f"{source}: controls.baselines: unknown baseline {name!r}"
                f"{suggest(str(name), list(BASELINES))}"
            )
    if len(set(baselines)) != len(baselines):
        raise ConfigError(f"{source}: controls.baselines: {baselines!r} names one twice")
    classical = data.get("classical", False)
    if not isinstance(classical, bool):
        raise ConfigError(f"{source}: controls.classical = {classical!r}: expected true or false")
    return Controls(n_random, tuple(baselines), classical)


def _service(raw: Any, source: str) -> TrainingService:
    data = _mapping(raw, "training_service", source)
    _unknown(data, SERVICE_KEYS, "training_service.", source)
    platform = data.pop("platform", "local")
    if platform not in PLATFORMS:
        raise ConfigError(
            f"{source}: training_service.platform = {platform!r}{suggest(str(platform), PLATFORMS)}"
        )
    concurrency = _positive_int(
        data.pop("trial_concurrency", 1), "training_service.trial_concurrency", source
    )
    gpus = data.pop("trial_gpu_number", None)
    if gpus is not None:
        _positive_int(gpus, "training_service.trial_gpu_number", source, zero=True)
    duration = data.pop("max_trial_duration", None)
    if platform == "remote" and not data.get("machine_list"):
        raise ConfigError(
            f"{source}: training_service.machine_list: the remote platform needs SSH machines"
        )
    if platform == "local" and "machine_list" in data:
        raise ConfigError(
            f"{source}: training_service.machine_list: only the remote platform has machines"
        )
    return TrainingService(platform, concurrency, gpus, duration, data)


def _strategies(
    grid: Mapping[str, tuple[Any, ...]], overrides: Mapping[str, Any]
) -> tuple[str, ...] | None:
    """The searched arms the file names (``None``: only the base config knows its strategy)."""
    if "search.strategy" in grid:
        return tuple(str(s) for s in grid["search.strategy"])
    if "search.strategy" in overrides:
        return (str(overrides["search.strategy"]),)
    return None


def _primary(
    raw: Any,
    strategies: tuple[str, ...] | None,
    controls: Controls,
    source: str,
) -> Primary | None:
    """``primary``: both arms must be in the study (a base-only strategy is checked with the
    cells, :func:`emodarts_nni.study.cells.resolve_primary`)."""
    if raw is None:
        return None
    data = _mapping(raw, "primary", source)
    _unknown(data, PRIMARY_KEYS, "primary.", source)
    for key in PRIMARY_KEYS:
        value = data.get(key)
        if value is None and key in ("arm", "against"):
            raise ConfigError(
                f"{source}: primary.{key}: missing; e.g. primary: {{arm: darts, against: "
                f"{RANDOM_ARM}}}"
            )
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{source}: primary.{key} = {value!r}: expected a name")
    arm, against = data["arm"], data["against"]
    if strategies is not None and arm not in strategies:
        raise ConfigError(
            f"{source}: primary.arm = {arm!r}: not a searched arm of this study "
            f"({', '.join(strategies)}){suggest(arm, strategies)}"
        )
    controls_named = [
        *([RANDOM_ARM] if controls.random_architectures else []),
        *(BASELINE_PREFIX + name for name in controls.baselines),
        *([CLASSICAL_ARM] if controls.classical else []),
    ]
    valid = [
        *(s for s in strategies or () if s != arm or data.get("against_scope")),
        *controls_named,
    ]
    against_scope = data.get("against_scope")
    if against == arm and against_scope is None:
        raise ConfigError(
            f"{source}: primary.against = {against!r}: the arm itself (name "
            "primary.against_scope to compare it across two scopes)"
        )
    if against_scope is not None and against not in (RANDOM_ARM, *(strategies or (against,))):
        raise ConfigError(
            f"{source}: primary.against_scope: {against!r} has no scope (only a searched arm "
            f"or {RANDOM_ARM} does)"
        )
    if against_scope is not None and data.get("scope") in (None, against_scope):
        raise ConfigError(
            f"{source}: primary.against_scope = {against_scope!r}: name primary.scope too, "
            "and a different one"
        )
    is_control = against in (RANDOM_ARM, CLASSICAL_ARM) or against.startswith(BASELINE_PREFIX)
    if (is_control or strategies is not None) and against not in valid:
        raise ConfigError(
            f"{source}: primary.against = {against!r}: not an arm of this study "
            f"({', '.join(valid) or 'none'}){suggest(against, valid)}"
        )
    return Primary(arm, against, data.get("scope"), data.get("corpus"), against_scope)


def _grid(raw: Any, source: str) -> dict[str, tuple[Any, ...]]:
    data = _mapping(raw, "grid", source)
    if not data:
        raise ConfigError(f"{source}: grid: empty; name at least one axis, e.g. splits.fold: [0]")
    grid = {}
    for key, values in data.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, list) or not values:
            raise ConfigError(
                f"{source}: grid {key!r} = {values!r}: expected a non-empty list of values"
            )
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"{source}: grid {key!r}: a value is listed twice")
        grid[key] = tuple(values)
    return grid


def study_from_dict(
    data: Any, *, source: str = "<study>", base_dir: Path | None = None
) -> StudyConfig:
    """Validate a parsed study mapping (the cells' experiment configs are checked later)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {data!r}")
    raw = {str(k): v for k, v in data.items()}
    _unknown(raw, STUDY_KEYS, "", source)
    if "base" not in raw:
        raise ConfigError(f"{source}: base: missing; name the experiment config every cell uses")
    name = str(raw.get("name") or Path(source).stem)
    if not _NAME.match(name):
        raise ConfigError(f"{source}: name = {name!r}: expected letters, digits, '.', '_', '-'")
    base = Path(os.path.expanduser(str(raw["base"])))
    if not base.is_absolute():
        base = (base_dir or Path.cwd()) / base
    if not base.is_file():
        raise ConfigError(f"{source}: base = {raw['base']!r}: no such experiment config {base}")
    overrides = _mapping(raw.get("overrides"), "overrides", source)
    grid = _grid(raw.get("grid"), source)
    clash = sorted(set(grid) & set(overrides))
    if clash:
        raise ConfigError(f"{source}: {clash[0]!r} is both a grid axis and an override")
    controls = _controls(raw.get("controls"), source)
    return StudyConfig(
        name=name,
        base=base.resolve(),
        grid=grid,
        overrides=overrides,
        controls=controls,
        training_service=_service(raw.get("training_service"), source),
        description=str(raw.get("description") or ""),
        source=source,
        primary=_primary(raw.get("primary"), _strategies(grid, overrides), controls, source),
    )


def load_study(path: str | os.PathLike) -> StudyConfig:
    """Read and validate the study file at ``path`` (its ``base`` is relative to its folder)."""
    from emodarts_nni.common.yaml_loader import parse_yaml

    path = Path(path).expanduser()
    source = os.fspath(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: study file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read study file ({exc})") from None
    return study_from_dict(parse_yaml(text, source), source=source, base_dir=path.absolute().parent)


__all__ = [
    "CONTROL_KEYS",
    "PLATFORMS",
    "PRIMARY_KEYS",
    "STUDY_KEYS",
    "Controls",
    "Primary",
    "StudyConfig",
    "TrainingService",
    "load_study",
    "study_from_dict",
]
