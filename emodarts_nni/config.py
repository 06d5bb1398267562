"""Experiment configuration: a YAML file validated into typed, frozen dataclasses.

This is the edge. :func:`load_config` reads a file (``experiments/*.yaml``), applies
command-line overrides (dotted keys such as ``"search.strategy"``), checks every key and
value, and returns an :class:`ExperimentConfig`; code further in takes plain arguments
from it and never sees raw YAML. Every mistake a user can make is a
:class:`~emodarts_nni.errors.ConfigError` naming the file, the dotted key and the value.

Paths: ``corpus.root``, ``corpus.manifest``, ``features.cache_dir`` and a ``space.scope``
ending in ``.yaml`` are relative to the config file's folder, so a config and its data can
move together. ``output.dir`` is relative to the current working directory, so ``runs/``
appears where the command was run. Paths given as overrides are relative to the current
working directory (that is where the user typed them). All paths come out absolute.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from emodarts_nni.errors import ConfigError, suggest
from emodarts_nni.files import atomic_path

#: Architecture-search strategies a config may name (``search.strategy``).
STRATEGY_NAMES = ("darts", "enas", "gumbel", "proxyless", "random-oneshot", "random", "evolution")
#: The strategies that train one supernet (the rest run many independent trials).
ONE_SHOT_STRATEGIES = ("darts", "enas", "gumbel", "proxyless", "random-oneshot")
#: Corpus readers (``corpus.kind``); ``synth`` is the embedded corpus, ``manifest`` a ready CSV.
CORPUS_KINDS = (
    "synth",
    "iemocap",
    "msp_improv",
    "msp_podcast",
    "ravdess",
    "crema_d",
    "emodb",
    "tess",
    "csv",
    "manifest",
)
#: How folds are formed (``splits.protocol``).
SPLIT_PROTOCOLS = ("auto", "session", "speaker", "speaker_kfold", "official", "emodarts_pairs")
#: Feature normalisation (``features.normalisation``).
NORMALISATIONS = ("none", "utterance", "train")
#: ``trainer.accelerator`` values.
ACCELERATORS = ("auto", "cpu", "gpu")
#: ``trainer.precision`` values (Lightning's names).
PRECISIONS = ("32", "16-mixed", "bf16-mixed")

# Corpus kinds that read nothing from ``corpus.root``.
_ROOTLESS_KINDS = ("synth", "manifest")


# --------------------------------------------------------------------------- rules
class _Invalid(Exception):
    """A value breaks its rule; turned into a ConfigError that names the key."""

    def __init__(self, expected: str | None = None) -> None:
        super().__init__(expected)
        self.expected = expected


@dataclass
class _Context:
    """Where values come from: the file (or ``<dict>``), its folder, and the override keys."""

    source: str
    base_dir: Path
    cwd: Path
    override_keys: frozenset[str] = frozenset()

    def overridden(self, dotted: str) -> bool:
        return any(dotted == key or dotted.startswith(key + ".") for key in self.override_keys)

    def invalid(self, dotted: str, value: Any, expected: str) -> ConfigError:
        where = f"override {dotted}" if self.overridden(dotted) else dotted
        return ConfigError(f"{self.source}: {where} = {_show(value)}: expected {expected}")


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML, shortened for one-line messages."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, os.PathLike):
        text = repr(os.fspath(value))
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bound(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class _Number:
    """An int (``integer``) or a float (ints accepted and converted), optionally bounded."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def expected(self) -> str:
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_bound(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_bound(self.high)}")
        what = "an integer" if self.integer else "a number"
        return " ".join([what, " and ".join(bounds)]) if bounds else what

    def convert(self, value: Any, ctx: _Context, dotted: str) -> int | float:
        if self.integer and (not isinstance(value, int) or isinstance(value, bool)):
            raise _Invalid
        if not self.integer:
            if not _is_number(value) or not math.isfinite(value):
                raise _Invalid
            value = float(value)
        too_low = self.low is not None and (
            value <= self.low if self.low_open else value < self.low
        )
        too_high = self.high is not None and (
            value >= self.high if self.high_open else value > self.high
        )
        if too_low or too_high:
            raise _Invalid
        return value


@dataclass(frozen=True)
class _Bool:
    expected: str = "true or false"

    def convert(self, value: Any, ctx: _Context, dotted: str) -> bool:
        if not isinstance(value, bool):
            raise _Invalid
        return value


@dataclass(frozen=True)
class _Text:
    """A non-empty string, optionally matching ``pattern``."""

    pattern: str | None = None
    expected: str = "a non-empty string"

    def convert(self, value: Any, ctx: _Context, dotted: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _Invalid
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise _Invalid
        return value


@dataclass(frozen=True)
class _Choice:
    """One of ``options``. With ``integer_ok``, an unquoted ``32`` is read as ``"32"``
    (YAML turns ``precision: 32`` into an integer)."""

    options: tuple[str, ...]
    integer_ok: bool = False

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(repr(option) for option in self.options)

    def convert(self, value: Any, ctx: _Context, dotted: str) -> str:
        if self.integer_ok and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or value not in self.options:
            close = isinstance(value, str) and difflib.get_close_matches(
                value.lower(), self.options, n=1
            )
            raise _Invalid(self.expected + (f" (did you mean {close[0]!r}?)" if close else ""))
        return value


def _resolve(value: Any, anchor: Path) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise _Invalid
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else anchor / path))


@dataclass(frozen=True)
class _Path:
    """A filesystem path, made absolute against the config's folder or the working folder."""

    against_cwd: bool = False
    expected: str = "a path (a non-empty string)"

    def convert(self, value: Any, ctx: _Context, dotted: str) -> Path:
        anchor = ctx.cwd if self.against_cwd or ctx.overridden(dotted) else ctx.base_dir
        return _resolve(value, anchor)


@dataclass(frozen=True)
class _Scope:
    """A scope name (checked later by the space builder) or a path to a scope YAML."""

    expected: str = "a scope name (e.g. 'emodarts') or a path to a scope .yaml file"

    def convert(self, value: Any, ctx: _Context, dotted: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _Invalid
        if not value.endswith((".yaml", ".yml")):
            return value
        anchor = ctx.cwd if ctx.overridden(dotted) else ctx.base_dir
        return str(_resolve(value, anchor))


@dataclass(frozen=True)
class _Table:
    """Free-form keyword arguments passed through to a reader or strategy (frozen)."""

    expected: str = "a mapping of option names (strings) to values"

    def convert(self, value: Any, ctx: _Context, dotted: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
            raise _Invalid
        return _freeze(value)


@dataclass(frozen=True)
class _Section:
    """A nested section, itself one of the dataclasses below."""

    cls: type

    @property
    def expected(self) -> str:
        return "a mapping of keys: " + ", ".join(f.name for f in dataclasses.fields(self.cls))

    def convert(self, value: Any, ctx: _Context, dotted: str) -> Any:
        return _build_section(self.cls, value, dotted + ".", ctx)


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _plain(value: Any) -> Any:
    """The YAML-ready form: mappings to dicts, sequences to lists, paths to strings."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _opt(default: Any, rule: Any) -> Any:
    """A plain field with its validation rule."""
    return field(default=default, metadata={"rule": rule})


def _section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"rule": _Section(cls)})


def _table() -> Any:
    # Excluded from the hash (a mapping is unhashable) but still compared.
    return field(
        default_factory=lambda: MappingProxyType({}), hash=False, metadata={"rule": _Table()}
    )


_INT_POS = _Number(integer=True, low=1)
_INT_NONNEG = _Number(integer=True, low=0)
_POS = _Number(integer=False, low=0, low_open=True)
_NONNEG = _Number(integer=False, low=0)
_FRACTION_OPEN = _Number(integer=False, low=0, high=1, low_open=True, high_open=True)


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class SynthConfig:
    """Size of the embedded synthetic corpus (``corpus.kind: synth``)."""

    n_speakers: int = _opt(10, _Number(integer=True, low=2))
    n_sessions: int = _opt(5, _INT_POS)
    utterances_per_class_per_speaker: int = _opt(20, _INT_POS)


@dataclass(frozen=True)
class CorpusConfig:
    """Which corpus to read and how (``corpus``)."""

    kind: str = _opt("synth", _Choice(CORPUS_KINDS))
    root: Path | None = _opt(None, _Path())
    manifest: Path | None = _opt(None, _Path())
    options: Mapping[str, Any] = _table()
    all_classes: bool = _opt(False, _Bool())
    #: Set (defaults filled in) when ``kind`` is ``synth``; None for every other kind.
    synth: SynthConfig | None = _opt(None, _Section(SynthConfig))

    def __post_init__(self) -> None:
        if self.kind == "synth" and self.synth is None:
            object.__setattr__(self, "synth", SynthConfig())


@dataclass(frozen=True)
class FeaturesConfig:
    """MFCC extraction (``features``); defaults are the paper's 128 x 512 -> 128 x 128."""

    sample_rate: int = _opt(16000, _INT_POS)
    n_mfcc: int = _opt(128, _INT_POS)
    n_mels: int = _opt(128, _INT_POS)
    n_fft: int = _opt(1024, _INT_POS)
    hop_length: int = _opt(250, _INT_POS)
    max_seconds: float = _opt(8.0, _POS)
    frames: int = _opt(512, _INT_POS)
    pooled_frames: int = _opt(128, _INT_POS)
    normalisation: str = _opt("train", _Choice(NORMALISATIONS))
    cache_dir: Path | None = _opt(None, _Path())
    workers: int | None = _opt(None, _INT_POS)


@dataclass(frozen=True)
class SplitsConfig:
    """Speaker-independent folds and the search / training / validation split (``splits``)."""

    protocol: str = _opt("auto", _Choice(SPLIT_PROTOCOLS))
    n_folds: int | None = _opt(None, _Number(integer=True, low=2))
    fold: int = _opt(0, _INT_NONNEG)
    search_fraction: float = _opt(0.7, _FRACTION_OPEN)
    validation_fraction: float = _opt(0.15, _Number(integer=False, low=0, high=1, high_open=True))


@dataclass(frozen=True)
class SpaceConfig:
    """The model space (``space``): a scope plus the arguments of ``build_space``."""

    scope: str = _opt("emodarts", _Scope())
    init_channels: int = _opt(8, _INT_POS)
    stem_multiplier: int = _opt(3, _INT_POS)
    cnn_cells: int = _opt(4, _INT_POS)
    cnn_nodes: int = _opt(4, _INT_POS)
    seq_cells: int = _opt(2, _INT_NONNEG)  # 0 = CNN only
    seq_nodes: int = _opt(2, _INT_POS)
    hidden: int = _opt(128, _INT_POS)
    dropout: float = _opt(0.3, _Number(integer=False, low=0, high=1, high_open=True))

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``build_space(self.scope, **kwargs)``: every field but scope."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "scope"
        }


@dataclass(frozen=True)
class OptimiserConfig:
    """The paper's training recipe, shared by ``search`` and ``retrain``: SGD with momentum,
    cosine-annealed learning rate ``lr`` -> ``lr_min`` over ``epochs``, gradient clipping."""

    epochs: int = _opt(300, _INT_POS)
    batch_size: int = _opt(16, _INT_POS)
    lr: float = _opt(0.025, _POS)
    lr_min: float = _opt(0.001, _NONNEG)
    momentum: float = _opt(0.9, _Number(integer=False, low=0, high=1, high_open=True))
    weight_decay: float = _opt(3.0e-4, _NONNEG)
    grad_clip: float = _opt(5.0, _POS)


@dataclass(frozen=True)
class SearchConfig(OptimiserConfig):
    """Architecture search (``search``): strategy, supernet optimiser, multi-trial budget."""

    strategy: str = _opt("darts", _Choice(STRATEGY_NAMES))
    arch_lr: float = _opt(3.0e-4, _POS)
    arch_weight_decay: float = _opt(1.0e-3, _NONNEG)
    max_trials: int = _opt(20, _INT_POS)
    trial_epochs: int = _opt(5, _INT_POS)
    trial_concurrency: int = _opt(1, _INT_POS)
    population_size: int = _opt(8, _INT_POS)
    sample_size: int = _opt(4, _INT_POS)
    params: Mapping[str, Any] = _table()


@dataclass(frozen=True)
class RetrainConfig(OptimiserConfig):
    """Training the derived architecture from scratch (``retrain``)."""

    patience: int | None = _opt(None, _INT_POS)


@dataclass(frozen=True)
class TrainerConfig:
    """Hardware and numerics (``trainer``)."""

    accelerator: str = _opt("auto", _Choice(ACCELERATORS))
    devices: int = _opt(1, _INT_POS)
    precision: str = _opt("32", _Choice(PRECISIONS, integer_ok=True))
    num_threads: int | None = _opt(None, _INT_POS)
    progress: bool = _opt(True, _Bool())


@dataclass(frozen=True)
class WebUIConfig:
    """NNI's web UI (``webui``)."""

    enabled: bool = _opt(True, _Bool())
    port: int = _opt(8080, _Number(integer=True, low=1, high=65535))
    host: str = _opt("127.0.0.1", _Text())


@dataclass(frozen=True)
class OutputConfig:
    """Where run folders go (``output``); ``dir`` is relative to the working directory."""

    dir: Path = _opt(Path("runs"), _Path(against_cwd=True))


_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: everything ``emodarts run`` needs, validated."""

    name: str = _opt(
        "experiment",
        _Text(_NAME_PATTERN, "a run name of letters, digits, '.', '_' or '-' (a folder name)"),
    )
    seed: int = _opt(0, _Number(integer=True, low=0, high=2**32 - 1))
    corpus: CorpusConfig = _section(CorpusConfig)
    features: FeaturesConfig = _section(FeaturesConfig)
    splits: SplitsConfig = _section(SplitsConfig)
    space: SpaceConfig = _section(SpaceConfig)
    search: SearchConfig = _section(SearchConfig)
    retrain: RetrainConfig = _section(RetrainConfig)
    trainer: TrainerConfig = _section(TrainerConfig)
    webui: WebUIConfig = _section(WebUIConfig)
    output: OutputConfig = _section(OutputConfig)


# --------------------------------------------------------------------------- building
def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _build_section(cls: type, data: Any, prefix: str, ctx: _Context) -> Any:
    """Validate ``data`` (a mapping, or null for all defaults) into the dataclass ``cls``."""
    if data is None:
        data = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, Mapping):
        raise ctx.invalid(prefix.rstrip(".") or "<top level>", data, _Section(cls).expected)
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"{ctx.source}: unknown key {prefix + str(key)!r}{suggest(str(key), list(fields))}"
            )
    values = {}
    for name, f in fields.items():
        rule = f.metadata["rule"]
        dotted = prefix + name
        value = data[name] if name in data else _default(f)
        if (
            isinstance(rule, _Section)
            and f.default is not None
            and (value is None or name not in data)
        ):
            value = {}  # a missing or empty section: its defaults (default paths resolved too)
        if value is None:
            if f.default is not None:
                raise ctx.invalid(dotted, value, rule.expected + " (null is not allowed here)")
            values[name] = None
            continue
        try:
            values[name] = rule.convert(value, ctx, dotted)
        except _Invalid as exc:
            raise ctx.invalid(dotted, value, exc.expected or rule.expected) from None
    return cls(**values)


def _check_reader_options(corpus: CorpusConfig, ctx: _Context) -> None:
    """``corpus.options`` must be options the corpus reader has (checked here, so the
    message names the config file), with the type of the reader's default."""
    if corpus.kind in _ROOTLESS_KINDS:
        accepted: dict[str, object] = {}
    else:
        from emodarts_nni.data.corpora import reader_options  # imports soundfile: only here

        accepted = reader_options(corpus.kind)
    for name, value in corpus.options.items():
        dotted = f"corpus.options.{name}"
        if name not in accepted:
            valid = list(accepted) or [f"(none for kind {corpus.kind!r})"]
            raise ConfigError(f"{ctx.source}: unknown key {dotted!r}{suggest(name, valid)}")
        default = accepted[name]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ctx.invalid(dotted, value, "true or false")
        if isinstance(default, str) and not isinstance(value, str):
            raise ctx.invalid(dotted, value, "a string")
        if isinstance(default, tuple) and not isinstance(value, (str, tuple)):
            raise ctx.invalid(dotted, _plain(value), "a list or a comma-separated string")


def _check(cfg: ExperimentConfig, raw: Mapping[str, Any], ctx: _Context) -> None:
    """Rules that involve more than one value, or the filesystem."""
    corpus = cfg.corpus
    raw_corpus = raw.get("corpus") if isinstance(raw.get("corpus"), Mapping) else {}
    if corpus.kind != "synth" and raw_corpus.get("synth") is not None:
        raise ctx.invalid(
            "corpus.synth", _plain(raw_corpus["synth"]), "null unless corpus.kind is 'synth'"
        )
    if corpus.kind not in _ROOTLESS_KINDS and corpus.root is None:
        raise ctx.invalid(
            "corpus.root", None, f"the folder holding the corpus (corpus.kind {corpus.kind!r})"
        )
    if corpus.kind == "manifest" and corpus.manifest is None:
        raise ctx.invalid("corpus.manifest", None, "a manifest CSV (corpus.kind is 'manifest')")
    # The synth corpus may be written to corpus.root, so only real corpora must exist.
    if corpus.kind == "csv" and corpus.root is not None and not corpus.root.is_file():
        raise ctx.invalid("corpus.root", corpus.root, "an existing CSV file (corpus.kind 'csv')")
    if corpus.kind not in ("synth", "csv") and corpus.root is not None and not corpus.root.is_dir():
        raise ctx.invalid(
            "corpus.root",
            corpus.root,
            "an existing folder (it does not exist; point corpus.root at your copy of the corpus)",
        )
    if corpus.manifest is not None and not corpus.manifest.is_file():
        raise ctx.invalid(
            "corpus.manifest", corpus.manifest, "an existing file (it does not exist)"
        )
    _check_reader_options(corpus, ctx)
    if corpus.synth is not None and corpus.synth.n_speakers % corpus.synth.n_sessions:
        raise ctx.invalid(
            "corpus.synth.n_speakers",
            corpus.synth.n_speakers,
            f"a multiple of corpus.synth.n_sessions ({corpus.synth.n_sessions})",
        )

    features = cfg.features
    if features.n_mels < features.n_mfcc:
        raise ctx.invalid(
            "features.n_mels", features.n_mels, f">= features.n_mfcc ({features.n_mfcc})"
        )
    if features.pooled_frames > features.frames:
        raise ctx.invalid(
            "features.pooled_frames",
            features.pooled_frames,
            f"<= features.frames ({features.frames})",
        )

    splits = cfg.splits
    if splits.n_folds is not None and splits.fold >= splits.n_folds:
        raise ctx.invalid(
            "splits.fold",
            splits.fold,
            f"0 to {splits.n_folds - 1} (splits.n_folds is {splits.n_folds})",
        )

    scope = cfg.space.scope
    if scope.endswith((".yaml", ".yml")) and not Path(scope).is_file():
        raise ctx.invalid("space.scope", scope, "an existing scope .yaml file (it does not exist)")

    for section in ("search", "retrain"):
        optimiser = getattr(cfg, section)
        if optimiser.lr_min > optimiser.lr:
            raise ctx.invalid(
                f"{section}.lr_min", optimiser.lr_min, f"<= {section}.lr ({optimiser.lr:g})"
            )
    search = cfg.search
    if search.strategy == "evolution" and search.sample_size > search.population_size:
        raise ctx.invalid(
            "search.sample_size",
            search.sample_size,
            f"<= search.population_size ({search.population_size})",
        )
    if cfg.retrain.patience is not None and splits.validation_fraction == 0:
        raise ctx.invalid(
            "retrain.patience",
            cfg.retrain.patience,
            "null when splits.validation_fraction is 0 (early stopping needs a validation set)",
        )
    trainer = cfg.trainer
    if trainer.accelerator == "cpu" and trainer.precision == "16-mixed":
        raise ctx.invalid("trainer.precision", trainer.precision, "'32' or 'bf16-mixed' on the CPU")


def _apply_overrides(
    data: dict[str, Any], overrides: Mapping[str, Any], source: str
) -> frozenset[str]:
    """Set each dotted key of ``overrides`` in ``data`` (in place); returns the keys."""
    for dotted, value in overrides.items():
        parts = str(dotted).split(".")
        if not all(parts):
            raise ConfigError(
                f"{source}: override {dotted!r}: expected a dotted key like 'search.epochs'"
            )
        cls: type = ExperimentConfig
        node = data
        for depth, part in enumerate(parts):
            here = ".".join(parts[: depth + 1])
            if cls is None:  # inside a pass-through table: any key goes
                rule = _Table()
            else:
                fields = {f.name: f for f in dataclasses.fields(cls)}
                if part not in fields:
                    raise ConfigError(
                        f"{source}: override {dotted!r}: unknown key {here!r}"
                        f"{suggest(part, list(fields))}"
                    )
                rule = fields[part].metadata["rule"]
            if depth == len(parts) - 1:
                node[part] = _plain(value)
                break
            if not isinstance(rule, (_Section, _Table)):
                raise ConfigError(
                    f"{source}: override {dotted!r}: {here!r} is a value, not a section"
                )
            child = node.get(part)
            if not isinstance(child, Mapping):
                child = {}
            node[part] = child = _plain(child)
            node = child
            cls = rule.cls if isinstance(rule, _Section) else None
    return frozenset(str(key) for key in overrides)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<dict>",
    base_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """Validate a parsed config mapping into an :class:`ExperimentConfig`.

    ``source`` names the origin in error messages; relative paths resolve against
    ``base_dir`` (default: the current working directory), except ``output.dir`` and
    overridden paths, which resolve against the current working directory. ``overrides``
    are dotted keys (``{"splits.fold": 2}``), applied before validation.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of sections at the top level, got {_show(data)}"
        )
    raw = _plain(data)
    override_keys = _apply_overrides(raw, overrides or {}, source)
    cwd = Path.cwd()
    ctx = _Context(
        source=source,
        base_dir=Path(os.path.abspath(base_dir)) if base_dir is not None else cwd,
        cwd=cwd,
        override_keys=override_keys,
    )
    cfg = _build_section(ExperimentConfig, raw, "", ctx)
    _check(cfg, raw, ctx)
    return cfg


# --------------------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """The safe loader, plus two fixes: ``3e-4`` is a float (PyYAML's YAML 1.1 reads it
    as a string), and a key repeated in one mapping is an error, not silently dropped."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            with contextlib.suppress(TypeError):  # unhashable keys: the base class reports them
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{source}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None


def load_config(
    path: str | os.PathLike, overrides: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    """Read, override and validate the YAML config at ``path``.

    ``overrides`` are typed values under dotted keys, e.g. ``{"search.strategy": "enas",
    "splits.fold": 2, "output.dir": "/tmp/x"}``; they are validated like the file. When
    the file has no ``name``, the run is named after the file (``iemocap.yaml`` ->
    ``iemocap``). Raises :class:`ConfigError` naming the file, key and value on any error.
    """
    path = Path(path).expanduser()
    source = os.fspath(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file ({exc.strerror})") from None
    data = _parse_yaml(text, source)
    if data is None:  # an empty file: all defaults
        data = {}
    if isinstance(data, Mapping) and "name" not in data:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).lstrip("._-") or "experiment"
        data = {"name": stem, **data}
    return config_from_dict(
        data, source=source, base_dir=path.absolute().parent, overrides=overrides
    )


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """The resolved config (or one section) as plain YAML-ready data.

    Paths become absolute strings; ``config_from_dict(config_to_dict(cfg)) == cfg``.
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = config_to_dict(value)
        elif value is None and isinstance(f.metadata["rule"], _Section):
            continue  # e.g. corpus.synth of a real corpus
        else:
            out[f.name] = _plain(value)
    return out


_DUMP_HEADER = (
    "# Resolved emodarts-nni configuration: every key, absolute paths.\n"
    "# Load it again with `emodarts run THIS_FILE` or emodarts_nni.config.load_config.\n"
)


def dump_config(cfg: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _DUMP_HEADER + yaml.safe_dump(
        config_to_dict(cfg), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    return path
