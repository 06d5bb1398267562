"""MFCC features, as in the paper, with an on-disk cache.

Per utterance (defaults are the paper's): decode to mono at ``sample_rate``, pad with
zeros or truncate to ``max_seconds`` (so the frame count is fixed), take ``n_mfcc``
librosa MFCCs, keep the first ``frames`` frames (128 × 512) and max-pool along time to
``pooled_frames`` (128 × 128).

Cache layout, under ``cache_root(cache_dir)/features/<hash of the config>/``:

- ``utterances/<id>.npy``: one array per audio file, ``<id>`` hashing its resolved path,
  size and mtime (so an edited file is recomputed); ``<id>.skip.json`` records why a file
  was skipped, ``<id>.warn.json`` why a kept file is suspect (a truncated WAV). All are
  written atomically (temp file + ``os.replace``): an interrupted
  extraction keeps every finished file and leaves nothing half-written.
- ``stack-<hash>.npy`` + ``stack-<hash>.json``: the stacked array of one manifest's kept
  rows (loaded memory-mapped) and the kept rows and skip reasons. A second pass over the
  same manifest reads only these two files and decodes no audio. A damaged per-utterance
  file (e.g. a truncated ``.npy``) is detected when the stack is built and re-extracted.

Normalisation: ``"utterance"`` (per-utterance, per-coefficient z-score) is applied at
extraction; ``"train"`` leaves the stored features raw, and the training pipeline calls
:func:`fit_normalisation` on the training rows and :func:`apply_normalisation` on all;
``"speaker"`` also stores raw features, and :func:`speaker_normalise` z-scores each speaker's
rows with that speaker's own statistics (no labels used).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.files import atomic_path, atomic_write_text, ensure_folder
from emodarts_nni.data.audio import EmptyAudioError, load_audio, wav_truncation
from emodarts_nni.data.cache import cache_root, digest
from emodarts_nni.data.feature_config import NORMALISATIONS, FeatureConfig, FeatureConfigError
from emodarts_nni.data.manifest import Utterance

#: Skip reasons (keys of :attr:`FeatureSet.skipped`).
UNREADABLE_AUDIO = "unreadable audio"
EMPTY_AUDIO = "empty audio"
SILENT_AUDIO = "silent audio"
#: Warning (keys of :attr:`FeatureSet.warned`): a kept WAV holds fewer samples than its
#: header announces; its features are those of the part that is there.
TRUNCATED_AUDIO = "truncated audio"
#: A clip whose kept part never exceeds this amplitude (about -80 dBFS, ±3 steps of
#: 16-bit PCM) is silent: its MFCCs would be a constant floor.
SILENCE_PEAK = 1e-4


class _SilentAudio(DataError):
    """Nothing above :data:`SILENCE_PEAK` in the kept part of a clip."""


@dataclass(frozen=True)
class NormalisationStats:
    """Per-coefficient mean and standard deviation (``"train"`` normalisation)."""

    mean: np.ndarray
    std: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form (e.g. to store beside an exported model)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalisationStats:
        """Inverse of :meth:`to_dict`."""
        mean = np.asarray(data["mean"], dtype=np.float32)
        std = np.asarray(data["std"], dtype=np.float32)
        if mean.shape != std.shape or mean.ndim != 1:
            raise DataError("normalisation stats: mean and std must be vectors of one length")
        return cls(mean=mean, std=std)


@dataclass
class FeatureSet:
    """Features of the usable utterances of a manifest, rows aligned with ``utterances``."""

    features: np.ndarray  # (N, n_mfcc, pooled_frames) float32, memory-mapped from the cache
    utterances: list[Utterance]
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_paths: dict[str, list[str]] = field(default_factory=dict)
    config: FeatureConfig = field(default_factory=FeatureConfig)
    cache_dir: Path | None = None  # the config's cache folder
    #: Kept utterances that deserve a look, by warning (:data:`TRUNCATED_AUDIO`).
    warned: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.utterances)

    def skip_summary(self) -> str:
        """One line: how many utterances were kept and why the others were skipped."""
        n_skipped = sum(self.skipped.values())
        total = len(self.utterances) + n_skipped
        warned = "".join(
            f"; {len(paths)} {reason} used as is" for reason, paths in sorted(self.warned.items())
        )
        if not n_skipped:
            return f"features: kept all {total} utterances{warned}"
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return (
            f"features: kept {len(self.utterances)} of {total} utterances; skipped {reasons}"
            f"{warned}"
        )


# ------------------------------------------------------------------------ one utterance
def compute_features(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Features of one mono waveform at ``config.sample_rate``: ``(n_mfcc, pooled_frames)``.

    Raises :class:`DataError` for a silent clip (nothing above :data:`SILENCE_PEAK` in the
    kept ``max_seconds``).
    """
    import librosa

    n = config.n_samples
    clip = np.zeros(n, dtype=np.float32)
    kept = np.asarray(signal, dtype=np.float32)[:n]
    clip[: len(kept)] = kept
    if not np.any(np.abs(clip) > SILENCE_PEAK):
        raise _SilentAudio(f"silent audio (peak below {SILENCE_PEAK:g} in the kept part)")
    mfcc = librosa.feature.mfcc(
        y=clip,
        sr=config.sample_rate,
        n_mfcc=config.n_mfcc,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
    )[:, : config.frames]
    pool = config.frames // config.pooled_frames
    pooled = mfcc.reshape(config.n_mfcc, config.pooled_frames, pool).max(axis=2)
    if config.normalisation == "utterance":
        mean = pooled.mean(axis=1, keepdims=True)
        std = pooled.std(axis=1, keepdims=True)
        pooled = (pooled - mean) / np.where(std > 1e-6, std, 1.0)
    return np.ascontiguousarray(pooled, dtype=np.float32)


def _extract_one(path: str, target: str, config: FeatureConfig) -> str | None:
    """Compute and cache one utterance; returns its skip reason, or None when kept."""
    try:
        # Single-threaded BLAS: the parallelism is over utterances, and the summation
        # order, hence every bit of the result, must not depend on the number of workers.
        with _single_threaded_blas():
            features = compute_features(load_audio(path, config.sample_rate), config)
    except DataError as exc:
        reason = {EmptyAudioError: EMPTY_AUDIO, _SilentAudio: SILENT_AUDIO}.get(
            type(exc), UNREADABLE_AUDIO
        )
        note = {"reason": reason, "message": str(exc), "path": path}
        atomic_write_text(Path(target + ".skip.json"), json.dumps(note))
        return reason
    problem = wav_truncation(path)
    if problem is not None:  # written before the .npy: a kept file always has its warning
        note = {"warning": TRUNCATED_AUDIO, "message": problem, "path": path}
        atomic_write_text(Path(target + ".warn.json"), json.dumps(note))
    _atomic_save(Path(target + ".npy"), features)
    return None


def _single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    try:
        from threadpoolctl import threadpool_limits  # installed with scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


# ------------------------------------------------------------------------------- corpus
def extract_features(
    utterances: Iterable[Utterance],
    config: FeatureConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> FeatureSet:
    """Features of ``utterances`` (cached; see the module docstring for the layout).

    Unreadable, empty and silent files are skipped and counted in
    :attr:`FeatureSet.skipped` (paths in :attr:`FeatureSet.skipped_paths`); truncated
    WAVs are kept, listed in :attr:`FeatureSet.warned` and named one per line on stderr;
    a one-line summary is printed to stderr. Uncached utterances are extracted by
    ``workers`` processes (default: all cores; they die with this process) with a
    progress bar unless ``progress`` is False. A cache folder that cannot be written
    raises :class:`DataError`.
    """
    config = config or FeatureConfig()
    utterances = list(utterances)
    folder = cache_root(cache_dir) / "features" / config.cache_key()
    ids = [_file_id(u.path) for u in utterances]
    # The stack depends on the files, in order (not on labels or speakers).
    files = [i or f"missing:{u.path}" for i, u in zip(ids, utterances, strict=True)]
    stack_name = "stack-" + digest("\n".join(files))[:16]

    result = _load_stack(folder, stack_name, utterances, config)
    if result is None:
        item_dir = ensure_folder(folder / "utterances", "feature cache")
        try:
            _write_config(folder, config)
            todo = sorted(
                {
                    (utterances[i].path, str(item_dir / ids[i]))
                    for i in range(len(utterances))
                    if ids[i] is not None
                    and not _cached(item_dir, ids[i], config, utterances[i].path)
                }
            )
            _run(todo, config, workers, progress)
            result = _build_stack(folder, stack_name, utterances, ids, config)
        except OSError as exc:  # e.g. a read-only or full disk under a writable-looking folder
            raise DataError(
                f"feature cache {folder}: cannot write ({exc.strerror or exc})"
            ) from None
    for reason, paths in sorted(result.warned.items()):
        for path in paths:
            print(f"features: warning: {reason}, used as is: {path}", file=sys.stderr)
    if result.skipped or result.warned:
        print(result.skip_summary(), file=sys.stderr)
    return result


def _cached(item_dir: Path, key: str, config: FeatureConfig, audio: str) -> bool:
    """Whether utterance ``key`` has a usable cached result; a damaged one (a truncated
    ``.npy``, an unreadable note) is deleted, with a warning, so it is extracted again."""
    npy, skip, warn = (item_dir / f"{key}{ext}" for ext in (".npy", ".skip.json", ".warn.json"))
    if npy.is_file():
        if _load_item(npy, config) is not None and (not warn.is_file() or _note(warn, "warning")):
            return True
    elif skip.is_file():
        if _note(skip, "reason"):
            return True
    else:
        return False
    print(f"features: warning: damaged cache file for {audio}, extracting again", file=sys.stderr)
    for path in (npy, skip, warn):
        path.unlink(missing_ok=True)
    return False


def _load_item(path: Path, config: FeatureConfig) -> np.ndarray | None:
    """The cached array at ``path`` (memory-mapped), or None when it is damaged."""
    try:
        item = np.load(path, mmap_mode="r")  # a truncated file fails here, reading no data
    except (OSError, ValueError, EOFError):
        return None
    if item.shape != config.shape or item.dtype != np.float32:
        return None
    return item


def _note(path: Path, key: str) -> str | None:
    """The ``key`` entry of a ``.skip.json``/``.warn.json`` note, or None when unreadable."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) and value else None


def _run(
    todo: Sequence[tuple[str, str]], config: FeatureConfig, workers: int | None, progress: bool
) -> None:
    from emodarts_nni.common.progress import Ticker
    from emodarts_nni.data.workers import parallel_map

    if not todo:
        return
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
    with Ticker("features", "utterances extracted", len(todo), bar=progress) as bar:
        if n_workers == 1:
            for path, target in todo:
                _extract_one(path, target, config)
                bar.update()
            return
        calls = [(path, target, config) for path, target in todo]
        parallel_map(_extract_one, calls, n_workers, lambda _i, _reason: bar.update())


def _build_stack(
    folder: Path,
    name: str,
    utterances: list[Utterance],
    ids: list[str | None],
    config: FeatureConfig,
) -> FeatureSet:
    item_dir = folder / "utterances"
    kept: list[int] = []
    skipped: dict[str, list[str]] = {}
    warned: dict[str, list[str]] = {}
    for i, (utt, key) in enumerate(zip(utterances, ids, strict=True)):
        if key is not None and (item_dir / f"{key}.npy").is_file():
            kept.append(i)
            warning = _note(item_dir / f"{key}.warn.json", "warning")
            if warning is not None:
                warned.setdefault(warning, []).append(utt.path)
            continue
        reason = UNREADABLE_AUDIO
        if key is not None:
            try:
                note = json.loads((item_dir / f"{key}.skip.json").read_text(encoding="utf-8"))
                reason = note["reason"]
            except (OSError, ValueError, KeyError):
                raise DataError(
                    f"feature cache {item_dir} has no result for {utt.path}; was the file "
                    "changed during extraction? rerun"
                ) from None
        skipped.setdefault(reason, []).append(utt.path)

    stack = folder / f"{name}.npy"
    shape = (len(kept), *config.shape)
    with atomic_path(stack) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        for row, i in enumerate(kept):
            item = _load_item(item_dir / f"{ids[i]}.npy", config)
            if item is None:  # damaged after the check in extract_features: rerun heals it
                (item_dir / f"{ids[i]}.npy").unlink(missing_ok=True)
                raise DataError(
                    f"feature cache file for {utterances[i].path} was damaged during "
                    "extraction and has been removed; rerun"
                )
            array[row] = item
        array.flush()
        del array
    index = {
        "rows": len(utterances),
        "kept": kept,
        "skipped": skipped,
        "warned": warned,
        "shape": list(shape),
    }
    atomic_write_text(folder / f"{name}.json", json.dumps(index))
    loaded = _load_stack(folder, name, utterances, config)
    if loaded is None:
        raise DataError(f"could not read back the feature stack {stack}")
    return loaded


def _load_stack(
    folder: Path, name: str, utterances: list[Utterance], config: FeatureConfig
) -> FeatureSet | None:
    """The cached stack of this manifest, or None when absent or inconsistent."""
    try:
        index = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        kept = [int(i) for i in index["kept"]]
        skipped = {str(reason): list(paths) for reason, paths in index["skipped"].items()}
        warned = {str(reason): list(paths) for reason, paths in index["warned"].items()}
        if index["rows"] != len(utterances) or not all(0 <= i < len(utterances) for i in kept):
            return None
        features = np.load(folder / f"{name}.npy", mmap_mode="r")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if features.shape != (len(kept), *config.shape) or features.dtype != np.float32:
        return None
    return FeatureSet(
        features=features,
        utterances=[utterances[i] for i in kept],
        skipped=Counter({reason: len(paths) for reason, paths in skipped.items()}),
        skipped_paths=skipped,
        config=config,
        cache_dir=folder,
        warned=warned,
    )


# ------------------------------------------------------------------------ normalisation
def fit_normalisation(
    features: np.ndarray, indices: Sequence[int] | np.ndarray
) -> NormalisationStats:
    """Per-coefficient mean and std over the rows ``indices`` (e.g. the training rows of a
    fold) and all their frames. Works chunk by chunk, so a memory-mapped stack is fine."""
    rows = np.asarray(indices, dtype=np.int64).reshape(-1)
    if rows.size == 0:
        raise ValueError("fit_normalisation: no rows given")
    if features.ndim != 3:
        raise ValueError(f"fit_normalisation: expected (N, n_mfcc, frames), got {features.shape}")
    rows = np.sort(rows)  # sequential reads of a memory-mapped stack
    chunks = [rows[i : i + 256] for i in range(0, rows.size, 256)]
    count = rows.size * features.shape[2]
    total = np.zeros(features.shape[1])
    for chunk in chunks:
        total += np.asarray(features[chunk], dtype=np.float64).sum(axis=(0, 2))
    mean = total / count
    squares = np.zeros(features.shape[1])
    for chunk in chunks:
        centred = np.asarray(features[chunk], dtype=np.float64) - mean[:, None]
        squares += (centred**2).sum(axis=(0, 2))
    std = np.sqrt(squares / count)
    std = np.where(std > 1e-6, std, 1.0)  # a constant coefficient carries nothing; keep it 0
    return NormalisationStats(mean=mean.astype(np.float32), std=std.astype(np.float32))


def apply_normalisation(x: np.ndarray, stats: NormalisationStats) -> np.ndarray:
    """``(x - mean) / std`` per coefficient; ``x`` is ``(..., n_mfcc, frames)``; float32."""
    if x.ndim < 2 or x.shape[-2] != stats.mean.shape[0]:
        raise ValueError(
            f"apply_normalisation: features of shape {x.shape} do not have "
            f"{stats.mean.shape[0]} coefficients on axis -2"
        )
    out = (np.asarray(x, dtype=np.float32) - stats.mean[:, None]) / stats.std[:, None]
    return out.astype(np.float32, copy=False)


def speaker_normalise(
    features: np.ndarray, speakers: Sequence[str], rows: Sequence[int] | np.ndarray
) -> np.ndarray:
    """``features[rows]`` z-scored per coefficient with each row's *speaker's own* statistics.

    ``speakers[i]`` is the speaker of ``features[i]``. A speaker's mean and std are fitted
    (:func:`fit_normalisation`) on all of that speaker's rows in ``features`` — every row of
    the speaker, whatever part of a fold it is in, and no labels — so a test speaker is
    normalised with its own statistics, as at inference on a new speaker. Returns float32
    ``(len(rows), n_mfcc, frames)`` in the order of ``rows``.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if len(speakers) != len(features):
        raise ValueError(
            f"speaker_normalise: {len(speakers)} speakers for {len(features)} feature rows"
        )
    speaker_of = np.asarray(speakers, dtype=object)
    out = np.empty((rows.size, *features.shape[1:]), dtype=np.float32)
    for speaker in sorted({str(s) for s in speaker_of[rows]}):
        own = np.flatnonzero(speaker_of == speaker)  # all of the speaker's rows
        stats = fit_normalisation(features, own)
        where = np.flatnonzero(speaker_of[rows] == speaker)
        out[where] = apply_normalisation(np.asarray(features[rows[where]]), stats)
    return out


# -------------------------------------------------------------------------------- files
def _file_id(path: str) -> str | None:
    """Identity of an audio file (resolved path, size, mtime); None when it cannot be stat'ed."""
    try:
        resolved = Path(path).resolve()
        st = resolved.stat()
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symlink loop (Python < 3.13)
        return None
    return digest(f"{resolved}\0{st.st_size}\0{st.st_mtime_ns}")[:24]


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, array)


def _write_config(folder: Path, config: FeatureConfig) -> None:
    path = folder / "config.json"
    if not path.is_file():  # for people browsing the cache
        atomic_write_text(path, json.dumps(config.stored_settings(), indent=1) + "\n")


__all__ = [
    "EMPTY_AUDIO",
    "NORMALISATIONS",
    "SILENT_AUDIO",
    "TRUNCATED_AUDIO",
    "UNREADABLE_AUDIO",
    "FeatureConfig",
    "FeatureConfigError",
    "FeatureSet",
    "NormalisationStats",
    "apply_normalisation",
    "compute_features",
    "extract_features",
    "fit_normalisation",
    "speaker_normalise",
]
