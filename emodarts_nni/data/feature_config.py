"""The MFCC extraction settings: one type, used by the extractor and, as the ``features``
section, by experiment configs (:mod:`emodarts_nni.config.experiment` adds only where to cache and how
many workers). Kept free of librosa, numpy and torch so configs are checked cheaply.

Every field carries its validation rule (:mod:`emodarts_nni.common.rules`); the rules that relate
fields live in :meth:`FeatureConfig.__post_init__` and name the field to blame
(:attr:`FeatureConfigError.key`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from emodarts_nni.common.errors import ConfigError
from emodarts_nni.common.rules import Choice, Invalid, Number, option
from emodarts_nni.common.units import format_bytes
from emodarts_nni.data.cache import digest
from emodarts_nni.space.sizing import physical_memory_bytes

#: Version of the extraction code (:mod:`emodarts_nni.data.features`): part of every cache
#: key, so a change to how features are computed never reads arrays made the old way.
FEATURES_VERSION = "mfcc-v1"

#: Values of :attr:`FeatureConfig.normalisation`: none, per utterance, statistics of the
#: training speakers (fitted by the pipeline), or each speaker's own statistics (unlabelled;
#: test speakers use theirs; :func:`emodarts_nni.data.features.speaker_normalise`).
NORMALISATIONS = ("none", "utterance", "train", "speaker")

_POSITIVE_INT = Number(integer=True, low=1, description="a positive integer")
_SECONDS = Number(integer=False, low=0, low_open=True, description="> 0")


class FeatureConfigError(ConfigError, ValueError):
    """An invalid :class:`FeatureConfig` value (a :class:`ConfigError` and a ``ValueError``).

    ``key`` is the field to blame, ``value`` its value and ``expected`` what it should be,
    so the config layer can name the file and the dotted key.
    """

    def __init__(self, message: str, key: str, value: Any, expected: str) -> None:
        super().__init__(message)
        self.key, self.value, self.expected = key, value, expected


@dataclass(frozen=True)
class FeatureConfig:
    """MFCC extraction settings; the defaults are the paper's 128 × 512 → 128 × 128."""

    sample_rate: int = option(16000, _POSITIVE_INT)
    n_mfcc: int = option(128, _POSITIVE_INT)
    n_mels: int = option(128, _POSITIVE_INT)
    n_fft: int = option(1024, _POSITIVE_INT)
    hop_length: int = option(250, _POSITIVE_INT)  # 8 s * 16 kHz / 512 frames
    max_seconds: float = option(8.0, _SECONDS)
    frames: int = option(512, _POSITIVE_INT)  # frames kept after pad/truncate
    pooled_frames: int = option(128, _POSITIVE_INT)  # max-pool along time down to this many
    normalisation: str = option("train", Choice(NORMALISATIONS))

    def __post_init__(self) -> None:
        for f in fields(FeatureConfig):  # only the extraction fields, not a subclass's
            rule = f.metadata["rule"]
            value = getattr(self, f.name)
            try:
                rule.convert(value)
            except Invalid:
                if f.name == "normalisation":
                    message = (
                        f"features: normalisation {value!r} is not one of "
                        f"{', '.join(NORMALISATIONS)}"
                    )
                else:
                    message = f"features: {f.name} must be {rule.expected}, got {value!r}"
                raise FeatureConfigError(message, f.name, value, rule.expected) from None
        if self.n_mfcc > self.n_mels:
            raise FeatureConfigError(
                f"features: n_mfcc ({self.n_mfcc}) cannot exceed n_mels ({self.n_mels})",
                "n_mels",
                self.n_mels,
                f">= features.n_mfcc ({self.n_mfcc})",
            )
        if self.n_fft // 2 + 1 < self.n_mels:
            raise FeatureConfigError(
                f"features: n_fft {self.n_fft} gives {self.n_fft // 2 + 1} frequency bins, "
                f"fewer than n_mels ({self.n_mels})",
                "n_fft",
                self.n_fft,
                f"at least 2 * (features.n_mels - 1) = {2 * (self.n_mels - 1)}",
            )
        if self.pooled_frames > self.frames or self.frames % self.pooled_frames:
            raise FeatureConfigError(
                f"features: frames ({self.frames}) must be a multiple of "
                f"pooled_frames ({self.pooled_frames})",
                "pooled_frames",
                self.pooled_frames,
                f"a divisor of features.frames ({self.frames}), so time pools evenly",
            )
        if self.frames > self.available_frames:
            raise FeatureConfigError(
                f"features: {self.max_seconds:g} s at {self.sample_rate} Hz with hop "
                f"{self.hop_length} gives {self.available_frames} frames, fewer than "
                f"frames ({self.frames}); lower hop_length or frames, or raise max_seconds",
                "frames",
                self.frames,
                f"<= {self.available_frames} (the frames of features.max_seconds at this "
                "sample_rate and hop_length)",
            )

        need = self.working_bytes
        memory = physical_memory_bytes()
        if memory is not None and need > memory // 2:
            # The culprit is n_fft when a window no longer than the utterance would fit.
            capped_bins = min(self.n_fft, self.n_samples) // 2 + 1
            window_too_long = (
                4 * self.n_samples + 16 * capped_bins * self.available_frames <= memory // 2
            )
            key, value, wanted = (
                ("n_fft", self.n_fft, "a window whose STFT fits in memory")
                if window_too_long
                else ("max_seconds", self.max_seconds, "a length whose extraction fits in memory")
            )
            raise FeatureConfigError(
                f"features: one utterance of {self.max_seconds:g} s at {self.sample_rate} Hz "
                f"(n_fft {self.n_fft}) needs about {format_bytes(need)} to extract; this "
                f"machine has {format_bytes(memory)}",
                key,
                value,
                f"{wanted} (about {format_bytes(need)} now)",
            )

    @property
    def working_bytes(self) -> int:
        """Estimated peak bytes to extract one utterance: the float32 waveform plus its
        complex64 STFT and a power spectrogram of the same size (librosa's MFCC path)."""
        bins = self.n_fft // 2 + 1
        return 4 * self.n_samples + 16 * bins * self.available_frames

    @property
    def n_samples(self) -> int:
        """Samples after padding/truncation to ``max_seconds``."""
        return round(self.max_seconds * self.sample_rate)

    @property
    def available_frames(self) -> int:
        """MFCC frames of ``max_seconds`` of audio (librosa centres frames)."""
        return 1 + self.n_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one utterance's features: ``(n_mfcc, pooled_frames)``."""
        return (self.n_mfcc, self.pooled_frames)

    def extraction(self) -> FeatureConfig:
        """Only the extraction settings, as a plain :class:`FeatureConfig` (a config's
        ``features`` section also says where to cache and how many workers to use)."""
        if type(self) is FeatureConfig:
            return self
        return FeatureConfig(**{f.name: getattr(self, f.name) for f in fields(FeatureConfig)})

    def stored_settings(self) -> dict[str, Any]:
        """What determines the stored arrays: the extraction settings (``"train"`` and
        ``"speaker"`` store raw features, as ``"none"`` does), the extraction code's
        version (:data:`FEATURES_VERSION`) and librosa's."""
        import librosa  # only its version; imported here so configs are checked without it

        settings = asdict(self.extraction())
        if settings["normalisation"] != "utterance":
            settings["normalisation"] = "none"
        settings["version"] = FEATURES_VERSION
        settings["librosa"] = librosa.__version__
        return settings

    def cache_key(self) -> str:
        """Hash naming the cache folder. ``"none"``, ``"train"`` and ``"speaker"`` store the
        same raw features, so they share one folder; ``"utterance"`` has its own."""
        return digest(json.dumps(self.stored_settings(), sort_keys=True))[:16]


__all__ = ["FEATURES_VERSION", "NORMALISATIONS", "FeatureConfig", "FeatureConfigError"]
