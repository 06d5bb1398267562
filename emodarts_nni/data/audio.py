"""Reading audio: any sample rate and channel count in, float32 mono at one rate out.

Every failure is a :class:`~emodarts_nni.common.errors.DataError` naming the file, so a corpus
with one bad file fails (or, in feature extraction, skips) with a message a user can act on.
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf

from emodarts_nni.common.errors import DataError

#: Sample rates a recording can plausibly have; a header outside them is corrupt.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 1_000_000


class EmptyAudioError(DataError):
    """An audio file holds no samples (a 0-byte file, or a valid header with no frames)."""


def load_audio(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """Decode ``path`` to a float32 mono signal at ``sample_rate`` Hz.

    Multi-channel audio is down-mixed by averaging the channels; other sample rates are
    resampled with soxr (high quality). Raises :class:`EmptyAudioError` for a file with no
    samples and :class:`DataError` for a missing, unreadable or corrupt file (a header rate
    outside :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE` included); both name the path.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise DataError(f"audio file not found: {path}") from None
    if size == 0:
        raise EmptyAudioError(f"empty audio file (0 bytes): {path}")
    try:
        with sf.SoundFile(path) as fh:
            file_rate = fh.samplerate
            if not MIN_SAMPLE_RATE <= file_rate <= MAX_SAMPLE_RATE:
                # resampling 1 Hz to 16 kHz multiplies the samples by 16,000: a 1 MB file
                # would take ~30 GB, so the header is refused before anything is decoded
                raise DataError(
                    f"implausible sample rate {file_rate} Hz in the header of {path} "
                    f"(expected {MIN_SAMPLE_RATE} Hz to {MAX_SAMPLE_RATE} Hz)"
                )
            data = fh.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"cannot decode audio {path}: {_reason(exc)}") from None
    if data.shape[0] == 0:
        raise EmptyAudioError(f"audio file has no samples: {path}")
    signal = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(signal)):
        raise DataError(f"audio has non-finite samples (NaN/inf): {path}")
    if file_rate != sample_rate:
        import librosa

        signal = librosa.resample(
            signal, orig_sr=file_rate, target_sr=sample_rate, res_type="soxr_hq"
        )
        if signal.shape[0] == 0:
            raise EmptyAudioError(f"audio too short to resample to {sample_rate} Hz: {path}")
    return np.ascontiguousarray(signal, dtype=np.float32)


def wav_truncation(path: str | os.PathLike) -> str | None:
    """Why the WAV file ``path`` is truncated, or None when it is complete (or not a WAV).

    A WAV header states its data chunk's size; a file cut short (an interrupted copy or
    recording; a streamed header claiming 4 GB) holds fewer bytes. libsndfile then decodes
    what is there without complaint, so the clip silently becomes shorter than it was.
    Reads only the chunk headers (at most 64 chunks).
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            riff = fh.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None  # not a plain RIFF WAV (RF64, FLAC, ...): nothing to compare
            for _ in range(64):
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                declared = int.from_bytes(chunk[4:8], "little")
                if chunk[:4] == b"data":
                    available = size - fh.tell()
                    if declared > available:
                        return (
                            f"truncated audio: the header announces {declared} bytes of "
                            f"samples, the file holds {available}"
                        )
                    return None
                fh.seek(declared + (declared & 1), os.SEEK_CUR)  # chunks are word-aligned
    except OSError:
        return None  # unreadable files are reported by load_audio
    return None


def _reason(exc: BaseException) -> str:
    # libsndfile messages repeat the path; keep only its explanation.
    text = str(exc).strip()
    if isinstance(exc, sf.LibsndfileError):
        text = exc.error_string or text
    return text or type(exc).__name__


__all__ = ["MAX_SAMPLE_RATE", "MIN_SAMPLE_RATE", "EmptyAudioError", "load_audio", "wav_truncation"]
