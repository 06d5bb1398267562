"""Recordings no corpus of the test suite holds, made by a generator other than
``emodarts_nni.data.synth``: espeak-ng speech when ``espeak-ng`` is installed, otherwise a
numpy voice-like signal (a gliding harmonic tone with syllable-rate amplitude modulation).
Both are written at 22.05 kHz, so reading them also exercises resampling to 16 kHz.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 22050


def voice_like(seconds: float, seed: int) -> np.ndarray:
    """A harmonic tone whose pitch glides (110-220 Hz) under a 4 Hz syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 110 + 110 * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, np.pi)), 0, None) ** 2
    signal = tone * envelope + 0.01 * rng.standard_normal(t.size)
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def write_unseen(path: Path, text: str, seconds: float, seed: int) -> Path:
    """Write an unseen recording to ``path``: espeak-ng saying ``text`` (then resampled by
    it to its own rate) if available, else :func:`voice_like` of ``seconds``."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        subprocess.run([espeak, "-w", str(path), text], check=True, capture_output=True)
        data, rate = sf.read(path, dtype="float32")
        if rate == RATE:
            return path
    sf.write(path, voice_like(seconds, seed), RATE, subtype="PCM_16")
    return path


#: Long enough to exceed the quickstart's max_seconds (8 s) several times over.
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog and keeps on running."] * 6)
SHORT_TEXT = "I cannot believe you did this to me."
