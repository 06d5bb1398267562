"""Stage 1 — data: corpus → manifest → cached MFCC features → one speaker-independent fold.

Everything after this stage reads a :class:`FoldData`: feature arrays and labels of the
fold's ``search``, ``train``, ``validation`` and ``test`` parts. Normalisation statistics
("train" mode) are fitted on the fold's non-test rows only; "speaker" mode z-scores every
speaker with its own statistics (no labels; a test speaker with its own, as a new speaker
at inference) and keeps the non-test rows' statistics as the fallback for a speaker whose
statistics are unknown.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.common import progress as progress_lines
from emodarts_nni.common.errors import ConfigError
from emodarts_nni.common.files import atomic_path
from emodarts_nni.config.experiment import ExperimentConfig
from emodarts_nni.data.feature_config import FeatureConfig
from emodarts_nni.data.manifest import (
    Utterance,
    class_names,
    read_manifest,
    require_classes,
    write_manifest,
)
from emodarts_nni.data.splits import PARTS, FoldSplit, make_folds, write_splits
from emodarts_nni.pipeline.runfolder import RunFolder

log = logging.getLogger("emodarts")


@dataclass
class FoldData:
    """The features and labels of one fold, split into its parts."""

    class_names: tuple[str, ...]
    utterances: list[Utterance]
    fold: FoldSplit
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    feature_config: dict[str, Any]
    normalisation: dict[str, list[float]] | None

    @property
    def input_shape(self) -> tuple[int, int]:
        """``(n_mfcc, frames)`` of one feature map."""
        return tuple(self.x["train"].shape[1:])  # type: ignore[return-value]

    def training_arrays(self, parts: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Features and labels retraining learns from: ``"train"`` (the fold's train part)
        or ``"search+train"`` (both parts of the training speakers; validation and test are
        never included). ``parts`` is ``retrain.train_parts``."""
        if parts == "train":
            return self.x["train"], self.y["train"]
        if parts == "search+train":
            return (
                np.concatenate([self.x["search"], self.x["train"]]),
                np.concatenate([self.y["search"], self.y["train"]]),
            )
        raise ValueError(f"training_arrays: parts {parts!r} is not 'train' or 'search+train'")

    def part_utterances(self, part: str) -> list[Utterance]:
        """The utterances of ``part``, aligned with ``x[part]``."""
        return [self.utterances[i] for i in self.fold.part(part)]

    def save(self, path: Path) -> Path:
        """Write the arrays to one ``.npz`` (what multi-trial trials load)."""
        arrays = {f"x_{p}": self.x[p] for p in PARTS} | {f"y_{p}": self.y[p] for p in PARTS}
        with atomic_path(path, suffix=".npz") as tmp:  # np.savez would append .npz otherwise
            np.savez(tmp, **arrays, class_names=np.array(self.class_names))
        return path


def load_fold_arrays(
    path: str | Path,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], tuple[str, ...]]:
    """Read what :meth:`FoldData.save` wrote: ``(x, y, class_names)``."""
    with np.load(path, allow_pickle=False) as data:
        x = {p: data[f"x_{p}"] for p in PARTS}
        y = {p: data[f"y_{p}"] for p in PARTS}
        names = tuple(str(c) for c in data["class_names"])
    return x, y, names


def feature_config(cfg: ExperimentConfig) -> FeatureConfig:
    """The extraction settings of ``cfg.features`` (which is a ``FeatureConfig`` that also
    says where to cache and how many workers to use)."""
    return cfg.features.extraction()


def load_utterances(cfg: ExperimentConfig, *, progress: bool = True) -> list[Utterance]:
    """The corpus of ``cfg`` as manifest rows (generating the embedded corpus if needed)."""
    corpus = cfg.corpus
    if corpus.kind == "synth":
        from emodarts_nni.data.synth import default_corpus

        synth = corpus.synth
        manifest = default_corpus(
            cfg.features.cache_dir,
            workers=cfg.features.workers,
            progress=progress,
            seed=0,
            n_speakers=synth.n_speakers,
            n_sessions=synth.n_sessions,
            utterances_per_class_per_speaker=synth.utterances_per_class_per_speaker,
        )
        return read_manifest(manifest)
    if corpus.kind == "manifest":
        if corpus.manifest is None:
            raise ConfigError("corpus.manifest: a manifest CSV is required for kind 'manifest'")
        return read_manifest(corpus.manifest, all_classes=corpus.all_classes)
    from emodarts_nni.data.corpora import build_manifest

    if corpus.root is None:
        raise ConfigError(f"corpus.root: the {corpus.kind} corpus folder is required")
    result = build_manifest(
        corpus.kind, corpus.root, all_classes=corpus.all_classes, **dict(corpus.options)
    )
    log.info("%s", result.summary())
    return result.utterances


def prepare_fold(
    cfg: ExperimentConfig, run_dir: Path | None = None, *, progress: bool = True
) -> FoldData:
    """Run the data stage for ``cfg.splits.fold``; writes manifest and splits into ``run_dir``."""
    from emodarts_nni.data.features import (
        apply_normalisation,
        extract_features,
        fit_normalisation,
        speaker_normalise,
    )

    shown = progress_lines.current()
    if shown is not None:
        shown.line("corpus", f"{cfg.corpus.kind}: reading the utterance list")
    utterances = load_utterances(cfg, progress=progress)
    if shown is not None:
        speakers = len({u.speaker for u in utterances})
        shown.line("corpus", f"{len(utterances)} utterances of {speakers} speakers")
    corpus = cfg.corpus  # one class: refused before features, search or training
    require_classes(utterances, str(corpus.manifest or corpus.root or f"the {corpus.kind} corpus"))
    fcfg = feature_config(cfg)
    features = extract_features(
        utterances,
        fcfg,
        cache_dir=cfg.features.cache_dir,
        workers=cfg.features.workers,
        progress=progress,
    )
    kept = list(features.utterances)
    if shown is not None:
        shown.line(
            "features", f"{len(kept)} MFCC maps ready ({fcfg.n_mfcc} × {fcfg.pooled_frames})"
        )
    if features.skipped:
        log.info("features: skipped %s", dict(features.skipped))
    folds = make_folds(
        kept,
        protocol=cfg.splits.protocol,
        n_folds=cfg.splits.n_folds,
        seed=cfg.seed,
        search_fraction=cfg.splits.search_fraction,
        validation_fraction=cfg.splits.validation_fraction,
    )
    if not 0 <= cfg.splits.fold < len(folds):
        raise ConfigError(
            f"splits.fold: fold {cfg.splits.fold} does not exist; this corpus has folds 0..{len(folds) - 1}"
        )
    fold = folds[cfg.splits.fold]
    if run_dir is not None:
        write_manifest(kept, RunFolder(run_dir).manifest)
        write_splits(folds, kept, RunFolder(run_dir).splits)

    names = class_names(kept)
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[u.label] for u in kept], dtype=np.int64)
    all_x = features.features
    normalisation = None
    if fcfg.normalisation in ("train", "speaker"):
        # "speaker": the fallback for a speaker without statistics of its own (checkpoint)
        fit_rows = np.concatenate([fold.search, fold.train, fold.validation])
        stats = fit_normalisation(all_x, fit_rows)
        normalisation = {
            "mean": np.asarray(stats.mean).ravel().tolist(),
            "std": np.asarray(stats.std).ravel().tolist(),
        }
    speakers = [u.speaker for u in kept]
    x, y = {}, {}
    for part in PARTS:
        rows = fold.part(part)
        if fcfg.normalisation == "speaker":
            x[part] = speaker_normalise(all_x, speakers, rows)
        elif fcfg.normalisation == "train":
            x[part] = apply_normalisation(np.asarray(all_x[rows], dtype=np.float32), stats)
        else:
            x[part] = np.asarray(all_x[rows], dtype=np.float32)
        y[part] = labels[rows]
    return FoldData(
        class_names=names,
        utterances=kept,
        fold=fold,
        x=x,
        y=y,
        feature_config=dataclasses.asdict(fcfg),
        normalisation=normalisation,
    )


def stratified_halves(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions ``0..len(y)-1`` into two class-stratified halves (DARTS's w/α data)."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        rng.shuffle(rows)
        half = (len(rows) + 1) // 2
        first.extend(rows[:half])
        second.extend(rows[half:])
    return np.sort(np.array(first, dtype=np.int64)), np.sort(np.array(second, dtype=np.int64))
