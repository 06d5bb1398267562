"""Using a trained model on new recordings: :class:`Predictor`.

``Predictor.from_checkpoint("run/checkpoint.pt").predict_file("clip.wav")`` gives
``{"label": "happy", "probabilities": {"angry": 0.1, ...}}`` — the shape of SpeechBrain's
``classify_file``. The features go through exactly the training pipeline: the checkpoint's
feature settings (sample rate, MFCC sizes, ``max_seconds``) with
:func:`~emodarts_nni.data.audio.load_audio` and
:func:`~emodarts_nni.data.features.compute_features`, then the normalisation statistics
saved with the checkpoint (:func:`~emodarts_nni.data.features.apply_normalisation`), and
the model's probabilities come from :func:`~emodarts_nni.training.module.predict_proba`, the
function ``emodarts evaluate`` scores with. ``emodarts predict`` is a thin layer over this
class.

Long recordings: as in the paper (and in training), only the first ``max_seconds`` are
scored. With ``windows=True`` the whole recording is cut into consecutive
``max_seconds`` windows, each scored like a training utterance (a short last window is
padded with zeros, as a short utterance is), and the probabilities are averaged, each
window weighted by the seconds of audio it holds; silent windows are left out.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from emodarts_nni.common.errors import DataError, EmodartsError
from emodarts_nni.data.audio import load_audio
from emodarts_nni.data.feature_config import FeatureConfig, FeatureConfigError
from emodarts_nni.data.features import (
    NormalisationStats,
    apply_normalisation,
    compute_features,
    fit_normalisation,
)

#: Suffixes of the audio files found in a folder (files named explicitly are read whatever
#: their suffix): what libsndfile decodes.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64"}
)

#: Normalisation modes fitted per speaker at training time. Prediction normalises with the
#: statistics of the recordings' own speaker when told which recordings share one
#: (:meth:`Predictor.speaker_statistics`, ``emodarts predict --same-speaker``); otherwise it
#: falls back to the training statistics saved with the checkpoint.
PER_SPEAKER_MODES = frozenset({"speaker"})

#: Fewest recordings whose own statistics the speaker methods use (``--same-speaker``,
#: :meth:`Predictor.predict_speaker`, :meth:`Predictor.speaker_statistics`). With fewer, the
#: statistics of so few recordings are a poor estimate of the speaker's (one or two
#: utterances carry one or two emotions, which the mean then removes) and predict worse than
#: the training statistics saved with the model, so those are used instead, with a
#: :class:`FewRecordingsWarning`. Measured by ``benchmarks/same_speaker_minimum.py``
#: (``benchmarks/results-same-speaker-minimum.json``, docs/using-a-model.md): on 20
#: per-speaker models, held-out speakers' random subsets of N utterances with their own
#: statistics lose 26 and 13 accuracy points to the training statistics at N = 1 and 2, tie
#: at 3 (-0.3), and are no worse from 4 on (+1.1 at 4, +9 at 6, +13 at 12, +18 with all 80);
#: the rule, fixed before measuring: the smallest N from which on own >= training.
MIN_SPEAKER_RECORDINGS = 4

#: One prediction: ``{"label": str, "probabilities": {class: float}}``; ``predict_files``
#: adds ``"path"``.
Prediction = dict[str, Any]


class FewRecordingsWarning(UserWarning):
    """Speaker statistics asked of fewer than :data:`MIN_SPEAKER_RECORDINGS` recordings:
    the training statistics saved with the model are used instead (or, when the checkpoint
    has none, the few recordings' own statistics, as before). ``emodarts predict
    --same-speaker`` prints it as one line on stderr."""


def find_audio_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand ``paths``: a file stays as given; a folder gives every audio file under it
    (recursively, sorted, by :data:`AUDIO_SUFFIXES`). A path that does not exist is kept
    (reading it fails later, naming it), so one typo never hides the other files.

    Raises :class:`DataError` naming a folder that holds no audio file.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
            )
            if not inside:
                raise DataError(
                    f"no audio files under {path} (looked for {', '.join(sorted(AUDIO_SUFFIXES))})"
                )
            found.extend(inside)
        else:
            found.append(path)
    return found


class Predictor:
    """A trained model plus the feature pipeline it was trained with.

    Build it with :meth:`from_checkpoint`. ``model`` is the eval-mode ``nn.Module``
    (``(B, n_mfcc, frames)`` float32 → logits); ``class_names`` orders its outputs;
    ``feature_config`` holds the extraction settings; ``normalisation`` the statistics
    applied after extraction (``None`` when the model was trained without them).
    """

    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str],
        feature_config: FeatureConfig,
        normalisation: NormalisationStats | None,
        *,
        batch_size: int = 32,
        note: str | None = None,
        normalisation_mode: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model.eval()
        self.class_names = list(class_names)
        self.feature_config = feature_config
        self.normalisation = normalisation
        self.batch_size = batch_size
        #: What prediction does differently from training (e.g. per-speaker statistics
        #: replaced by the training statistics), or ``None``.
        self.note = note
        #: The ``features.normalisation`` the model was trained with.
        self.normalisation_mode = normalisation_mode or feature_config.normalisation

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, batch_size: int = 32) -> Predictor:
        """Load ``checkpoint.pt`` (``weights_only``) and the feature settings inside it.

        Raises :class:`EmodartsError` naming the file when it is not a usable checkpoint.
        """
        from emodarts_nni.inference.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(path)
        config, mode = feature_settings(checkpoint.features, source=path)
        note = None
        stats = None
        if checkpoint.normalisation:
            try:
                stats = NormalisationStats.from_dict(checkpoint.normalisation)
            except DataError as exc:
                raise EmodartsError(f"{path}: {exc}") from None
            if stats.mean.shape[0] != config.n_mfcc:
                raise EmodartsError(
                    f"{path}: normalisation statistics have {stats.mean.shape[0]} "
                    f"coefficients, the features {config.n_mfcc}"
                )
        if mode in PER_SPEAKER_MODES:
            note = f"the model was trained with {mode!r} normalisation; without the speaker's " + (
                "own statistics (--same-speaker) the training statistics saved with it are used"
                if stats is not None
                else "own statistics (--same-speaker) and with no training statistics in the "
                "checkpoint, features are not normalised"
            )
        if checkpoint.architecture is not None:
            space = checkpoint.architecture.space
            if (space["n_mfcc"], space["frames"]) != config.shape:
                raise EmodartsError(
                    f"{path}: the model expects n_mfcc {space['n_mfcc']} × frames "
                    f"{space['frames']} but its feature settings give {config.shape[0]} × "
                    f"{config.shape[1]}"
                )
        return cls(
            checkpoint.model,
            checkpoint.class_names,
            config,
            stats,
            batch_size=batch_size,
            note=note,
            normalisation_mode=mode,
        )

    # ------------------------------------------------------------------ features
    def features(
        self, path: str | os.PathLike, *, speaker: NormalisationStats | None = None
    ) -> np.ndarray:
        """The normalised ``(n_mfcc, frames)`` float32 array the model sees for ``path``
        (its first ``max_seconds``, as in training), normalised with ``speaker`` statistics
        when given (:meth:`speaker_statistics`). Raises :class:`DataError` naming an
        unreadable, empty or silent file."""
        return self._normalise(self._raw_features(path)[None], speaker)[0]

    def _raw_features(self, path: str | os.PathLike) -> np.ndarray:
        signal = load_audio(path, self.feature_config.sample_rate)
        return _features_of(signal, self.feature_config, path)

    def speaker_statistics(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        on_skip: Callable[[str, str], None] | None = None,
        min_recordings: int = MIN_SPEAKER_RECORDINGS,
    ) -> NormalisationStats:
        """Per-coefficient mean and std of one speaker's recordings, as training fits them
        for ``features.normalisation: speaker`` (the first ``max_seconds`` of each file, no
        labels). Pass the result as ``speaker=`` to the prediction methods. Unreadable files
        raise :class:`DataError`, or are reported to ``on_skip(path, reason)`` and left out.

        With fewer than ``min_recordings`` readable recordings (default
        :data:`MIN_SPEAKER_RECORDINGS`) it warns (:class:`FewRecordingsWarning`) and returns
        the training statistics saved with the model instead, when the checkpoint has
        them; ``min_recordings=1`` always fits the recordings' own.
        """
        return self._speaker_maps(paths, on_skip, min_recordings)[1]

    def _speaker_maps(
        self,
        paths: Iterable[str | os.PathLike],
        on_skip: Callable[[str, str], None] | None,
        min_recordings: int,
    ) -> tuple[list[tuple[str, np.ndarray]], NormalisationStats]:
        """Each readable file with its unnormalised features (in order, a path given twice
        counted twice, as :meth:`predict_files` does), and the statistics fitted on them —
        or, below ``min_recordings`` files, the training statistics (warning)."""
        maps: list[tuple[str, np.ndarray]] = []
        failures = []
        for path in paths:
            try:
                maps.append((os.fspath(path), self._raw_features(path)))
            except DataError as exc:
                if on_skip is None:
                    raise
                failures.append(str(exc))
                on_skip(os.fspath(path), str(exc))
        if not maps:
            raise DataError(
                "speaker statistics: no readable recording of the speaker"
                + (f" ({len(failures)} unreadable; first: {failures[0]})" if failures else "")
            )
        if len(maps) < min_recordings:
            count = len(maps)
            few = (
                f"{count} readable recording{'' if count == 1 else 's'} of the speaker, fewer "
                f"than the minimum of {min_recordings} whose own statistics predict no worse "
                "than the training statistics; "
            )
            if self.normalisation is not None:
                warnings.warn(
                    few + "the training statistics saved with the model are used instead",
                    FewRecordingsWarning,
                    stacklevel=3,
                )
                return maps, self.normalisation
            warnings.warn(
                few + "the checkpoint has no training statistics, so their own are used",
                FewRecordingsWarning,
                stacklevel=3,
            )
        stack = np.stack([features for _, features in maps])
        return maps, fit_normalisation(stack, np.arange(len(stack)))

    def predict_speaker(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        windows: bool = False,
        on_skip: Callable[[str, str], None] | None = None,
        progress: bool = False,
        min_recordings: int = MIN_SPEAKER_RECORDINGS,
    ) -> tuple[list[Prediction], NormalisationStats]:
        """Predictions for recordings of one speaker, normalised with the speaker's own
        statistics (:meth:`speaker_statistics` on the same files), and the statistics used.

        The same as ``predict_files(paths, speaker=speaker_statistics(paths))`` with each
        file's features computed once (twice with ``windows``, whose windows are features
        of their own). Unreadable files: as :meth:`predict_files`, reported once. Fewer
        than ``min_recordings`` readable files: as :meth:`speaker_statistics`, a
        :class:`FewRecordingsWarning` and the training statistics saved with the model.
        """
        maps, stats = self._speaker_maps(paths, on_skip, min_recordings)
        readable = [path for path, _ in maps]
        if windows:
            return self.predict_files(
                readable, windows=True, speaker=stats, progress=progress
            ), stats
        raw = dict(maps)

        def features(path: str) -> tuple[np.ndarray, np.ndarray]:
            return self._normalise(raw[path][None], stats), np.ones(1)

        return self._predict(readable, features, None, progress), stats

    def window_features(
        self, path: str | os.PathLike, *, speaker: NormalisationStats | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features of every consecutive ``max_seconds`` window of ``path``:
        ``(windows, n_mfcc, frames)`` and each window's seconds of audio (its weight).
        Silent windows are left out; a file silent throughout raises :class:`DataError`."""
        config = self.feature_config
        signal = load_audio(path, config.sample_rate)
        step = config.n_samples
        maps, seconds = [], []
        for start in range(0, len(signal), step):
            piece = signal[start : start + step]
            try:
                maps.append(compute_features(piece, config))
            except DataError:  # a silent window carries nothing
                continue
            seconds.append(len(piece) / config.sample_rate)
        if not maps:
            _features_of(signal, config, path)  # raises the silent-audio error naming the file
        return self._normalise(np.stack(maps), speaker), np.asarray(seconds, dtype=np.float64)

    def _normalise(self, x: np.ndarray, speaker: NormalisationStats | None = None) -> np.ndarray:
        stats = speaker if speaker is not None else self.normalisation
        if stats is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        return apply_normalisation(x, stats)

    # ------------------------------------------------------------------ predictions
    def predict_file(
        self,
        path: str | os.PathLike,
        *,
        windows: bool = False,
        speaker: NormalisationStats | None = None,
    ) -> Prediction:
        """``{"label", "probabilities": {class: p}}`` for one audio file.

        ``windows=True`` averages over consecutive ``max_seconds`` windows (module
        docstring); otherwise the first ``max_seconds`` are scored, as in the paper.
        Raises :class:`DataError` naming an unreadable file.
        """
        result = self.predict_files([path], windows=windows, speaker=speaker)[0]
        result.pop("path")
        return result

    def predict_files(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        windows: bool = False,
        on_skip: Callable[[str, str], None] | None = None,
        progress: bool = False,
        speaker: NormalisationStats | None = None,
    ) -> list[Prediction]:
        """Predictions for many files, in order, each ``{"path", "label", "probabilities"}``.

        ``speaker``: normalisation statistics of the files' speaker
        (:meth:`speaker_statistics`) instead of the checkpoint's training statistics.

        Features are computed file by file and scored ``batch_size`` files at a time.
        Without ``on_skip`` an unreadable file raises :class:`DataError`; with it,
        ``on_skip(path, reason)`` is called and the file is left out of the result.
        ``progress`` shows a progress bar (on stderr).
        """

        def features(path: str) -> tuple[np.ndarray, np.ndarray]:
            if windows:
                return self.window_features(path, speaker=speaker)
            return self.features(path, speaker=speaker)[None], np.ones(1)

        return self._predict([os.fspath(p) for p in paths], features, on_skip, progress)

    def _predict(
        self,
        paths: list[str],
        features: Callable[[str], tuple[np.ndarray, np.ndarray]],
        on_skip: Callable[[str, str], None] | None,
        progress: bool,
    ) -> list[Prediction]:
        """Score ``features(path)`` (maps and their weights) ``batch_size`` files at a time."""
        from tqdm.auto import tqdm

        results: list[Prediction] = []
        with tqdm(total=len(paths), desc="predicting", unit="file", disable=not progress) as bar:
            for start in range(0, len(paths), self.batch_size):
                chunk = paths[start : start + self.batch_size]
                maps, weights, owners = [], [], []
                for path in chunk:
                    try:
                        x, w = features(path)
                    except DataError as exc:
                        if on_skip is None:
                            raise
                        on_skip(path, str(exc))
                        continue
                    finally:
                        bar.update(1)
                    maps.append(x)
                    weights.append(w)
                    owners.append(path)
                if not maps:
                    continue
                probabilities = self._probabilities(np.concatenate(maps))
                row = 0
                for path, w in zip(owners, weights, strict=True):
                    p = probabilities[row : row + len(w)]
                    row += len(w)
                    results.append({"path": path, **self._prediction(_average(p, w))})
        return results

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        from emodarts_nni.training.module import (
            predict_proba,  # the function `evaluate` scores with
        )

        return predict_proba(self.model, x, batch_size=max(self.batch_size, 1))

    def _prediction(self, probabilities: np.ndarray) -> Prediction:
        best = int(np.argmax(probabilities))
        return {
            "label": self.class_names[best],
            "probabilities": {
                name: float(p) for name, p in zip(self.class_names, probabilities, strict=True)
            },
        }


def feature_settings(
    features: dict[str, Any], *, source: str | os.PathLike = "checkpoint"
) -> tuple[FeatureConfig, str]:
    """The extraction settings of a checkpoint's ``features`` dict, and its normalisation
    mode. Extraction normalises per utterance only for ``"utterance"``; every other mode
    extracts raw features (statistics, if any, are applied afterwards)."""
    names = [f.name for f in fields(FeatureConfig)]
    missing = [name for name in names if name not in features]
    if missing:
        raise EmodartsError(f"{source}: feature settings lack {', '.join(missing)}")
    mode = features["normalisation"]
    values = {name: features[name] for name in names}
    values["normalisation"] = "utterance" if mode == "utterance" else "none"
    try:
        return FeatureConfig(**values), str(mode)
    except FeatureConfigError as exc:
        raise EmodartsError(f"{source}: {exc}") from None


def _features_of(signal: np.ndarray, config: FeatureConfig, path: str | os.PathLike) -> np.ndarray:
    try:
        return compute_features(signal, config)
    except DataError as exc:
        raise DataError(f"{exc}: {os.fspath(path)}") from None


def _average(probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    if len(weights) == 1:
        return probabilities[0]
    return (probabilities * (weights / weights.sum())[:, None]).sum(axis=0)


__all__ = [
    "AUDIO_SUFFIXES",
    "MIN_SPEAKER_RECORDINGS",
    "FewRecordingsWarning",
    "Predictor",
    "feature_settings",
    "find_audio_files",
]
