"""Experiment configuration: a YAML file validated into typed, frozen dataclasses.

This is the edge. :func:`load_config` reads a file (``experiments/*.yaml``), applies
command-line overrides (dotted keys such as ``"search.strategy"``), checks every key and
value, and returns an :class:`ExperimentConfig`; code further in takes plain arguments
from it and never sees raw YAML. Every mistake a user can make is a
:class:`~emodarts_nni.common.errors.ConfigError` naming the file, the dotted key and the value.

Paths: ``corpus.root``, ``corpus.manifest``, ``features.cache_dir`` and a ``space.scope``
ending in ``.yaml`` are relative to the config file's folder, so a config and its data can
move together. ``output.dir`` is relative to the current working directory, so ``runs/``
appears where the command was run. Paths given as overrides are relative to the current
working directory (that is where the user typed them). A shipped config loaded by name
(``emodarts run quickstart``) has no folder of its own to speak of (it may sit inside an
installed package): its relative paths are relative to the current working directory too.
All paths come out absolute.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from emodarts_nni.common.errors import ConfigError, suggest
from emodarts_nni.common.files import atomic_path, writable_folder_problem
from emodarts_nni.common.rules import (
    FRACTION_OPEN,
    INT_NONNEG,
    INT_POS,
    NONNEG,
    POS,
    PROBABILITY,
    Bool,
    Choice,
    Invalid,
    Number,
    Text,
    option,
    show,
)
from emodarts_nni.common.shipped import EXPERIMENTS, shipped_folder, shipped_names
from emodarts_nni.common.yaml_loader import parse_yaml, read_yaml_text
from emodarts_nni.data.corpora import (
    CORPUS_KINDS,
    ROOTLESS_KINDS,
    ReaderOptionError,
    check_reader_options,
    reader_options,
)
from emodarts_nni.data.feature_config import FeatureConfig, FeatureConfigError
from emodarts_nni.data.splits import PROTOCOLS as SPLIT_PROTOCOLS
from emodarts_nni.space.args import (
    SPACE_DEFAULTS,
    SPACE_RULES,
    SpaceArgumentError,
    resolve_space_args,
)
from emodarts_nni.space.scopes import DEFAULT_SCOPE, Scope, load_scope
from emodarts_nni.space.sizing import SEARCH_MEMORY_MODES, check_space_fits
from emodarts_nni.strategy.defaults import ARC_WEIGHT_DECAY
from emodarts_nni.strategy.registry import (
    STRATEGY_NAMES,
    check_strategy_config,
    strategy_spec,
)

#: ``trainer.accelerator`` values.
ACCELERATORS = ("auto", "cpu", "gpu")
#: ``trainer.precision`` values (Lightning's names).
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
# Imported from their owners, listed here for readers of this module: STRATEGY_NAMES and
# ONE_SHOT_STRATEGIES (strategies), CORPUS_KINDS (data.corpora), SPLIT_PROTOCOLS
# (data.splits), NORMALISATIONS and the feature fields (data.feature_config), the space
# arguments (space_args).


# --------------------------------------------------------------------------- rules
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
        return ConfigError(f"{self.source}: {where} = {show(value)}: expected {expected}")


def _resolve(value: Any, anchor: Path) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise Invalid
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
            raise Invalid
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
            raise Invalid
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


def _section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"rule": _Section(cls)})


def _table() -> Any:
    # Excluded from the hash (a mapping is unhashable) but still compared.
    return field(
        default_factory=lambda: MappingProxyType({}), hash=False, metadata={"rule": _Table()}
    )


# --------------------------------------------------------------------------- sections
#: Caps on the synthetic corpus, checked here before anything is written; the same as
#: ``emodarts_nni.data.synth.MAX_SPEAKERS`` / ``MAX_UTTERANCES`` (which imports scipy).
SYNTH_MAX_SPEAKERS = 1000
SYNTH_MAX_UTTERANCES = 200_000


@dataclass(frozen=True)
class SynthConfig:
    """Size of the embedded synthetic corpus (``corpus.kind: synth``)."""

    n_speakers: int = option(10, Number(integer=True, low=2, high=SYNTH_MAX_SPEAKERS))
    n_sessions: int = option(5, INT_POS)
    utterances_per_class_per_speaker: int = option(20, INT_POS)


@dataclass(frozen=True)
class CorpusConfig:
    """Which corpus to read and how (``corpus``)."""

    kind: str = option("synth", Choice(CORPUS_KINDS))
    root: Path | None = option(None, _Path())
    manifest: Path | None = option(None, _Path())
    options: Mapping[str, Any] = _table()
    all_classes: bool = option(False, Bool())
    #: Set (defaults filled in) when ``kind`` is ``synth``; None for every other kind.
    synth: SynthConfig | None = option(None, _Section(SynthConfig))

    def __post_init__(self) -> None:
        if self.kind == "synth" and self.synth is None:
            object.__setattr__(self, "synth", SynthConfig())


@dataclass(frozen=True)
class FeaturesConfig(FeatureConfig):
    """MFCC input (``features``): the extractor's own :class:`FeatureConfig` (its fields,
    defaults and rules; the paper's 128 x 512 -> 128 x 128) plus where to cache the features
    and how many processes extract them."""

    cache_dir: Path | None = option(None, _Path())
    workers: int | None = option(None, INT_POS)


@dataclass(frozen=True)
class SplitsConfig:
    """Speaker-independent folds and the search / training / validation split (``splits``)."""

    protocol: str = option("auto", Choice(SPLIT_PROTOCOLS))
    n_folds: int | None = option(None, Number(integer=True, low=2))
    fold: int = option(0, INT_NONNEG)
    search_fraction: float = option(0.7, FRACTION_OPEN)
    validation_fraction: float = option(0.15, PROBABILITY)


def _space_option(name: str) -> Any:
    """A ``space`` field: the space argument's own default and rule (space_args)."""
    return option(SPACE_DEFAULTS[name], SPACE_RULES[name])


@dataclass(frozen=True)
class SpaceConfig:
    """The model space (``space``): a scope plus the arguments of ``build_space``.

    After loading, each argument holds its resolved value: the space default, overridden by
    the scope's ``settings``, by the key the user wrote, by a command-line override.
    """

    scope: str = option(DEFAULT_SCOPE, _Scope())
    init_channels: int = _space_option("init_channels")
    stem_multiplier: int = _space_option("stem_multiplier")
    cnn_cells: int = _space_option("cnn_cells")
    cnn_nodes: int = _space_option("cnn_nodes")
    seq_cells: int = _space_option("seq_cells")  # 0 = CNN only
    seq_nodes: int = _space_option("seq_nodes")
    hidden: int = _space_option("hidden")
    dropout: float = _space_option("dropout")

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``build_space(self.scope, **kwargs)``: every field but scope."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "scope"
        }


@dataclass(frozen=True)
class OptimiserConfig:
    """The paper's training recipe, shared by ``search`` and ``retrain``: SGD with momentum,
    cosine-annealed learning rate ``lr`` -> ``lr_min`` over ``epochs``, gradient clipping."""

    epochs: int = option(300, INT_POS)
    batch_size: int = option(16, INT_POS)
    lr: float = option(0.025, POS)
    lr_min: float = option(0.001, NONNEG)
    momentum: float = option(0.9, PROBABILITY)
    weight_decay: float = option(3.0e-4, NONNEG)
    grad_clip: float = option(5.0, POS)


@dataclass(frozen=True)
class SearchConfig(OptimiserConfig):
    """Architecture search (``search``): strategy, supernet optimiser, multi-trial budget."""

    strategy: str = option("darts", Choice(STRATEGY_NAMES))
    arch_lr: float = option(3.0e-4, POS)
    arch_weight_decay: float = option(ARC_WEIGHT_DECAY, NONNEG)
    #: Epochs that train only the weights before α start to move (one-shot strategies).
    warmup_epochs: int = option(0, INT_NONNEG)
    max_trials: int = option(20, INT_POS)
    trial_epochs: int = option(5, INT_POS)
    trial_concurrency: int = option(1, INT_POS)
    population_size: int = option(8, INT_POS)
    sample_size: int = option(4, INT_POS)
    #: ``lean`` recomputes the mixed edges in backward: less memory, one more forward
    #: pass of the edges (emodarts_nni.strategy.supermodule.lean; differentiable strategies only).
    memory: str = option("normal", Choice(SEARCH_MEMORY_MODES))
    params: Mapping[str, Any] = _table()
    # DARTS+ early stop (Liang et al. 2019): off by default, the paper's search runs its epochs.
    early_stop: bool = option(False, Bool())
    early_stop_epochs: int = option(10, INT_POS)


#: ``retrain.balance`` values: no balancing, a class-balanced sampler, or a class-weighted loss.
BALANCES = ("none", "sampler", "loss")
#: ``retrain.train_parts`` values: which parts of the fold's training speakers retrain.
TRAIN_PARTS = ("train", "search+train")


@dataclass(frozen=True)
class AugmentConfig:
    """SpecAugment-style masking of the MFCC maps during retraining (``retrain.augment``):
    ``time_masks`` masks of up to ``time_width`` frames and ``freq_masks`` masks of up to
    ``freq_width`` coefficients per map, set to the map's mean; 0 masks = off."""

    time_masks: int = option(0, INT_NONNEG)
    time_width: int = option(8, INT_POS)
    freq_masks: int = option(0, INT_NONNEG)
    freq_width: int = option(4, INT_POS)

    @property
    def enabled(self) -> bool:
        """Whether any mask is drawn."""
        return self.time_masks > 0 or self.freq_masks > 0


@dataclass(frozen=True)
class RetrainConfig(OptimiserConfig):
    """Training the derived architecture from scratch (``retrain``): the optimiser, early
    stopping, and the recipe (which data, augmentation, class balance, label smoothing)."""

    patience: int | None = option(None, INT_POS)
    train_parts: str = option("train", Choice(TRAIN_PARTS))
    augment: AugmentConfig = field(
        default_factory=AugmentConfig, metadata={"rule": _Section(AugmentConfig)}
    )
    balance: str = option("none", Choice(BALANCES))
    label_smoothing: float = option(0.0, Number(integer=False, low=0, high=1, high_open=True))


@dataclass(frozen=True)
class TrainerConfig:
    """Hardware and numerics (``trainer``)."""

    accelerator: str = option("auto", Choice(ACCELERATORS))
    devices: int = option(1, INT_POS)
    precision: str = option("32", Choice(PRECISIONS, integer_ok=True))
    num_threads: int | None = option(None, INT_POS)
    progress: bool = option(True, Bool())


@dataclass(frozen=True)
class WebUIConfig:
    """NNI's web UI (``webui``)."""

    enabled: bool = option(True, Bool())
    port: int = option(8080, Number(integer=True, low=1, high=65535))
    host: str = option("127.0.0.1", Text())


@dataclass(frozen=True)
class OutputConfig:
    """Where run folders go (``output``); ``dir`` is relative to the working directory."""

    dir: Path = option(Path("runs"), _Path(against_cwd=True))


_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: everything ``emodarts run`` needs, validated."""

    name: str = option(
        "experiment",
        Text(_NAME_PATTERN, "a run name of letters, digits, '.', '_' or '-' (a folder name)"),
    )
    seed: int = option(0, Number(integer=True, low=0, high=2**32 - 1))
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
        except Invalid as exc:
            raise ctx.invalid(dotted, value, exc.expected or rule.expected) from None
    try:
        return cls(**values)
    except FeatureConfigError as exc:  # a rule that relates fields, named by the type
        raise ctx.invalid(prefix + exc.key, exc.value, exc.expected) from None


def _check_reader_options(corpus: CorpusConfig, ctx: _Context) -> None:
    """``corpus.options`` must be options the corpus reader has, with the type of the
    reader's default (the reader package's own check, reported with the config's key)."""
    try:
        check_reader_options(corpus.kind, corpus.options)
    except ReaderOptionError as exc:
        dotted = f"corpus.options.{exc.name}"
        if exc.expected is None:
            valid = list(reader_options(corpus.kind)) or [f"(none for kind {corpus.kind!r})"]
            raise ConfigError(
                f"{ctx.source}: unknown key {dotted!r}{suggest(exc.name, valid)}"
            ) from None
        raise ctx.invalid(dotted, _plain(corpus.options[exc.name]), exc.expected) from None


def _check_strategy_params(search: SearchConfig, ctx: _Context) -> None:
    """``search.params`` must be parameters the chosen strategy accepts (strategies' table)."""
    spec = strategy_spec(search.strategy)
    unknown = spec.unknown_params(search.params)
    if unknown:
        raise ConfigError(
            f"{ctx.source}: unknown key {'search.params.' + unknown[0]!r} (strategy "
            f"{search.strategy!r} has no such parameter){suggest(unknown[0], spec.params)}"
        )


def _resolve_space(
    space: SpaceConfig, raw: Mapping[str, Any], ctx: _Context
) -> tuple[SpaceConfig, Scope]:
    """The ``space`` section with every argument resolved, and the loaded scope.

    Precedence, lowest first: the space defaults < the scope's ``settings`` < the keys the
    user wrote (``raw``, which already holds the command-line overrides, applied on top of
    the file's keys). The scope is loaded here, so a misspelt name, an unknown op or bad
    settings stop the run before any data work.
    """
    raw_space = raw.get("space") if isinstance(raw.get("space"), Mapping) else {}
    written = {
        f.name: getattr(space, f.name)
        for f in dataclasses.fields(space)
        if f.name != "scope" and f.name in raw_space
    }
    try:
        scope = load_scope(space.scope)
        resolved = resolve_space_args(scope, **written)
    except SpaceArgumentError as exc:
        if exc.key in written:  # the user's key (or override) broke the rule
            raise ctx.invalid(f"space.{exc.key}", exc.value, exc.expected) from None
        # else the scope's settings did: name the scope
        raise ConfigError(f"{ctx.source}: space.scope = {show(space.scope)}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{ctx.source}: space.scope = {show(space.scope)}: {exc}") from None
    fields = {f.name: resolved[f.name] for f in dataclasses.fields(space) if f.name != "scope"}
    return dataclasses.replace(space, **fields), scope


def _check(cfg: ExperimentConfig, raw: Mapping[str, Any], ctx: _Context) -> None:
    """Rules that involve more than one value, or the filesystem."""
    corpus = cfg.corpus
    raw_corpus = raw.get("corpus") if isinstance(raw.get("corpus"), Mapping) else {}
    if corpus.kind != "synth" and raw_corpus.get("synth") is not None:
        raise ctx.invalid(
            "corpus.synth", _plain(raw_corpus["synth"]), "null unless corpus.kind is 'synth'"
        )
    if corpus.kind not in ROOTLESS_KINDS and corpus.root is None:
        raise ctx.invalid(
            "corpus.root", None, f"the folder holding the corpus (corpus.kind {corpus.kind!r})"
        )
    if corpus.kind == "manifest" and corpus.manifest is None:
        raise ctx.invalid("corpus.manifest", None, "a manifest CSV (corpus.kind is 'manifest')")
    # The embedded corpus is generated under features.cache_dir: a root would be ignored.
    if corpus.kind == "synth" and corpus.root is not None:
        raise ctx.invalid(
            "corpus.root",
            corpus.root,
            "null for corpus.kind 'synth' (the embedded corpus is generated under "
            "features.cache_dir); for your own corpus set corpus.kind",
        )
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
    if corpus.synth is not None:
        synth = corpus.synth
        total = synth.n_speakers * 4 * synth.utterances_per_class_per_speaker  # 4 classes
        if total > SYNTH_MAX_UTTERANCES:
            raise ctx.invalid(
                "corpus.synth.utterances_per_class_per_speaker",
                synth.utterances_per_class_per_speaker,
                f"a corpus of at most {SYNTH_MAX_UTTERANCES} utterances ({synth.n_speakers} "
                f"speakers x 4 classes x this = {total})",
            )
    if corpus.synth is not None and corpus.synth.n_speakers % corpus.synth.n_sessions:
        raise ctx.invalid(
            "corpus.synth.n_speakers",
            corpus.synth.n_speakers,
            f"a multiple of corpus.synth.n_sessions ({corpus.synth.n_sessions})",
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
    _check_strategy_params(cfg.search, ctx)

    for section in ("search", "retrain"):
        optimiser = getattr(cfg, section)
        if optimiser.lr_min > optimiser.lr:
            raise ctx.invalid(
                f"{section}.lr_min", optimiser.lr_min, f"<= {section}.lr ({optimiser.lr:g})"
            )
    search = cfg.search
    if search.memory == "lean" and not strategy_spec(search.strategy).differentiable:
        raise ctx.invalid(
            "search.memory",
            search.memory,
            f"'normal' (strategy {search.strategy!r} does not run the DARTS cells that "
            "lean recomputes)",
        )
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

    # Where results go: a file in the way fails here, not after the features are
    # extracted. Permissions are checked where the folders are created (a read-only
    # cache of finished features is fine to read; `emodarts plan` writes nothing).
    folders = (("output.dir", cfg.output.dir), ("features.cache_dir", cfg.features.cache_dir))
    for dotted, folder in folders:
        problem = writable_folder_problem(folder, check_access=False) if folder else None
        if problem is not None:
            raise ctx.invalid(dotted, folder, f"a folder ({problem})")
    if not _is_host(cfg.webui.host):
        raise ctx.invalid(
            "webui.host", cfg.webui.host, "an IP address or a host name such as 127.0.0.1"
        )


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _is_host(host: str) -> bool:
    """An IPv4/IPv6 address or an RFC 1123 host name (checked without DNS)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if labels[-1].isdigit():  # "256.1.1.1" is a mistyped address, not a name
        return False
    return 0 < len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


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
            f"{source}: expected a mapping of sections at the top level, got {show(data)}"
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
    # last: loading the scope imports the op tables (torch); every cheaper check came first
    space, scope = _resolve_space(cfg.space, raw, ctx)
    cfg = dataclasses.replace(cfg, space=space)
    _check_space_size(cfg, scope, ctx)
    try:  # rules between the strategy's parameters and the space (e.g. pc-darts's K)
        check_strategy_config(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{ctx.source}: {exc}") from None
    return cfg


def space_size_args(cfg: ExperimentConfig, scope: Scope | None = None) -> dict[str, Any]:
    """The resolved space arguments that size a run of ``cfg``, before any data is read
    (the input is the feature map; the class count is the paper's 4, a negligible part)."""
    scope = scope if scope is not None else load_scope(cfg.space.scope)
    return {
        **{f.name: getattr(cfg.space, f.name) for f in dataclasses.fields(cfg.space)},
        "cnn_ops": scope.cnn_ops,
        "seq_ops": scope.seq_ops if cfg.space.seq_cells > 0 else [],
        "readouts": list(scope.readouts),
        "n_mfcc": cfg.features.n_mfcc,
        "frames": cfg.features.pooled_frames,
        "n_classes": SPACE_DEFAULTS["n_classes"],
    }


def _check_space_size(cfg: ExperimentConfig, scope: Scope, ctx: _Context) -> None:
    """Refuse a space this machine cannot hold, from the arguments alone, before any data
    work (``emodarts run`` then checks its search and retraining steps the way
    ``emodarts plan`` sizes them)."""
    try:
        check_space_fits(space_size_args(cfg, scope), "space")
    except ConfigError as exc:
        raise ConfigError(f"{ctx.source}: {exc}") from None


def shipped_configs() -> list[str]:
    """Names of the experiment configs shipped with the package (``experiments/*.yaml``)."""
    return shipped_names(EXPERIMENTS)


def locate_config(path: str | os.PathLike) -> tuple[Path, Path]:
    """Where the config ``path`` is, and the folder its relative paths are resolved against.

    A path to a file is itself, resolved against its own folder. A bare name that is no file
    here (``quickstart``: no folder, no ``.yaml``) is a shipped config
    (:func:`shipped_configs`); its relative paths are resolved against the current working
    directory, so a config loaded from an installed package never writes into the package.
    """
    path = Path(path).expanduser()
    text = os.fspath(path)
    is_bare_name = path.suffix not in (".yaml", ".yml") and "/" not in text and "\\" not in text
    if is_bare_name and not path.exists():
        shipped = shipped_folder(EXPERIMENTS) / f"{text}.yaml"
        if shipped.is_file():
            return shipped, Path.cwd()
        raise ConfigError(
            f"{text}: config file not found, and no shipped config has that name"
            + suggest(text, shipped_configs())
        )
    return path, path.absolute().parent


def load_config(
    path: str | os.PathLike, overrides: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    """Read, override and validate the YAML config at ``path`` (a file, or the name of a
    shipped config such as ``"quickstart"``; see :func:`locate_config`).

    ``overrides`` are typed values under dotted keys, e.g. ``{"search.strategy": "enas",
    "splits.fold": 2, "output.dir": "/tmp/x"}``; they are validated like the file. When
    the file has no ``name``, the run is named after the file (``iemocap.yaml`` ->
    ``iemocap``). Raises :class:`ConfigError` naming the file, key and value on any error.
    Everything that can be checked without data is checked here: keys, values, the scope
    and its ops, the space arguments, the strategy's parameters.
    """
    path, base_dir = locate_config(path)
    source = os.fspath(path)
    data = parse_yaml(read_yaml_text(path, "config file"), source)
    if data is None:  # an empty file: all defaults
        data = {}
    if isinstance(data, Mapping) and "name" not in data:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).lstrip("._-") or "experiment"
        data = {"name": stem, **data}
    return config_from_dict(data, source=source, base_dir=base_dir, overrides=overrides)


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
    "# Load it again with `emodarts run THIS_FILE` or emodarts_nni.config.experiment.load_config.\n"
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
