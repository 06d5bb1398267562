"""The embedded default corpus: deterministic synthetic emotional speech in four classes.

A demonstration corpus so that every command runs on a fresh machine with no data; it
is *not* a benchmark of real emotion recognition. Utterances are made by source-filter
synthesis:

- a Rosenberg glottal-pulse source (with jitter, shimmer and aspiration noise) follows an
  F0 contour built from phrase declination, pitch accents on stressed syllables and a
  phrase-final rise or fall;
- a cascade of five formant resonators moves between vowel (and nasal/approximant)
  targets, scaled by the speaker's vocal-tract length;
- voiceless fricatives, plosive bursts and aspiration are band-passed noise; words are
  separated by (sometimes) short pauses and phrases by longer ones.

Emotion is carried the way speech carries it: pitch level, range and contour, speaking
rate, loudness and voice quality (open quotient and spectral tilt: tense vs breathy),
plus articulation (expanded vs centralised vowels). Each speaker has a baseline voice, a
habitual range and rate, an expressiveness and idiosyncratic emotion offsets; each
utterance draws an emotional intensity and general arousal noise, so the classes overlap
and held-out speakers cannot be classified perfectly.

Everything is seeded per utterance (``seed``, speaker, class, index), so the files are
byte-identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy import signal

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.files import ensure_folder, make_temp_dir
from emodarts_nni.data.cache import cache_root
from emodarts_nni.data.manifest import PAPER_CLASSES, Utterance, write_manifest

#: Name and version of the generator; part of the cache folder name and of ``corpus.json``.
#: Bump it whenever the generated audio changes, so that cached corpora are regenerated.
GENERATOR = "synth-v1"
#: The four classes, exactly the manifest label strings.
EMOTIONS = PAPER_CLASSES
MANIFEST_NAME = "manifest.csv"
INFO_NAME = "corpus.json"

_REFERENCE_DB = -23.0  # RMS of voiced speech at level 0 dB, in dBFS
_BLOCK = 80  # samples between formant-coefficient updates (5 ms at 16 kHz)
_FILTER_SECONDS = 0.04  # resonator ringing kept by block filtering (F1 at 70 Hz: -76 dB)

#: Shortest and longest utterance, in seconds.
MIN_SECONDS = 1.0
MAX_SECONDS = 10.0

# Formant targets F1-F3 (Hz) of an adult male vocal tract (Peterson & Barney-like).
_VOWELS = np.array(
    [
        [730, 1090, 2440],  # a
        [270, 2290, 3010],  # i
        [300, 870, 2240],  # u
        [530, 1840, 2480],  # e
        [570, 840, 2410],  # o
        [660, 1720, 2410],  # ae
        [490, 1350, 1690],  # er
        [440, 1020, 2240],  # uh
    ],
    dtype=float,
)
_SCHWA = np.array([500.0, 1500.0, 2500.0])
_HIGH_FORMANTS = np.array([3350.0, 4250.0])  # F4, F5 of the male reference
_BANDWIDTHS = np.array([70.0, 90.0, 130.0, 200.0, 280.0])

# Voiced consonants: formant targets and relative amplitude.
_VOICED_CONSONANTS = {
    "m": ([280.0, 1000.0, 2300.0], 0.28),
    "n": ([280.0, 1600.0, 2500.0], 0.28),
    "l": ([360.0, 1300.0, 2700.0], 0.5),
    "w": ([300.0, 700.0, 2200.0], 0.55),
    "j": ([280.0, 2200.0, 3000.0], 0.55),
}
# Voiceless fricatives: noise band (Hz) and amplitude relative to vowels.
_FRICATIVES = {
    "s": ((3800.0, 7600.0), 0.22),
    "sh": ((1900.0, 5000.0), 0.26),
    "f": ((900.0, 7000.0), 0.07),
}
# Voiceless plosives: burst band (Hz).
_PLOSIVES = {"p": (400.0, 2000.0), "t": (3000.0, 7200.0), "k": (1400.0, 3600.0)}
_ONSETS = ("s", "sh", "f", "h", "p", "t", "k", "m", "n", "l", "w", "j")
_ONSET_P = np.array([10, 5, 5, 6, 8, 12, 10, 9, 10, 9, 6, 4], dtype=float)
_CODAS = ("s", "t", "n", "k", "m")
_CODA_P = np.array([4, 4, 5, 3, 2], dtype=float)


@dataclass(frozen=True)
class EmotionStyle:
    """How one emotion shifts the voice, at full intensity, relative to neutral speech."""

    f0_shift: float  # semitones
    range_scale: float  # multiplies the pitch range
    rate_scale: float  # multiplies the syllable rate
    energy_db: float
    open_quotient: float  # added; lower = tenser voice, flatter spectrum
    tilt: float  # added to the source low-pass coefficient; lower = flatter
    breathiness: float  # added aspiration-noise ratio
    jitter_scale: float
    articulation: float  # vowel-space expansion (1 = neutral, < 1 = centralised)
    smile: float  # relative formant raise (lip spreading)
    pause_scale: float
    accent: float  # pitch-accent strength
    #: Probabilities of a phrase-final fall, rise and level ending.
    endings: tuple[float, float, float]


#: The four emotion styles. Angry: loud, high, wide, fast, tense. Happy: high, wide,
#: rising, fast-ish, smiling. Sad: low, narrow, slow, quiet, breathy, centralised.
EMOTION_STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(
        0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, (0.75, 0.1, 0.15)
    ),
    "happy": EmotionStyle(
        3.5, 1.6, 1.12, 4.5, -0.04, -0.06, 0.0, 1.1, 1.05, 0.09, 0.85, 1.3, (0.3, 0.55, 0.15)
    ),
    "sad": EmotionStyle(
        -2.5, 0.5, 0.72, -6.0, 0.13, 0.2, 0.1, 1.4, 0.78, -0.02, 1.7, 0.45, (0.5, 0.05, 0.45)
    ),
    "angry": EmotionStyle(
        4.0, 1.45, 1.15, 9.0, -0.16, -0.25, -0.02, 1.6, 1.2, 0.0, 0.7, 1.7, (0.85, 0.05, 0.1)
    ),
}


@dataclass(frozen=True)
class SpeakerVoice:
    """A synthetic speaker: baseline voice, habits and idiosyncratic emotion offsets."""

    speaker: str
    session: str
    sex: str  # "F" or "M"
    f0_hz: float
    range_st: float  # habitual pitch range, semitones
    rate: float  # syllables per second
    formant_scale: float  # vocal-tract length: higher = shorter tract = higher formants
    open_quotient: float
    speed_quotient: float
    tilt: float
    breathiness: float
    jitter: float
    shimmer: float
    loudness_db: float
    expressiveness: float
    #: Per emotion (in :data:`EMOTIONS` order): F0 offset (st), energy offset (dB), rate factor.
    emotion_offsets: tuple[tuple[float, float, float], ...]


def speaker_voices(seed: int = 0, n_speakers: int = 10, n_sessions: int = 5) -> list[SpeakerVoice]:
    """The speakers of a corpus: ``s01F``, ``s02M``, ... alternating sexes, dealt in order
    into ``session1..n_sessions`` (two per session by default: one F, one M, as IEMOCAP)."""
    _check_layout(n_speakers, n_sessions)
    per_session = n_speakers // n_sessions
    voices = []
    for i in range(n_speakers):
        rng = np.random.default_rng([seed, 1, i])
        sex = "F" if i % 2 == 0 else "M"
        female = sex == "F"
        offsets = [(0.0, 0.0, 1.0)]
        for _ in EMOTIONS[1:]:
            offsets.append(
                (
                    float(rng.normal(0.0, 0.8)),
                    float(rng.normal(0.0, 1.0)),
                    float(np.exp(rng.normal(0.0, 0.06))),
                )
            )
        voices.append(
            SpeakerVoice(
                speaker=f"s{i + 1:02d}{sex}",
                session=f"session{i // per_session + 1}",
                sex=sex,
                f0_hz=float((205.0 if female else 115.0) * np.exp(rng.normal(0.0, 0.1))),
                range_st=float(rng.uniform(4.0, 7.0)),
                rate=float(4.6 * np.exp(rng.normal(0.0, 0.08))),
                formant_scale=float((1.16 if female else 1.0) * np.exp(rng.normal(0.0, 0.03))),
                open_quotient=float(
                    np.clip((0.6 if female else 0.5) + rng.normal(0, 0.04), 0.4, 0.7)
                ),
                speed_quotient=float(np.clip(2.5 + rng.normal(0.0, 0.3), 1.6, 3.5)),
                tilt=float(np.clip(0.3 + rng.normal(0.0, 0.08), 0.05, 0.6)),
                breathiness=float((0.06 if female else 0.04) + abs(rng.normal(0.0, 0.02))),
                jitter=float(np.clip(0.008 + rng.normal(0.0, 0.003), 0.002, 0.02)),
                shimmer=float(np.clip(0.05 + rng.normal(0.0, 0.015), 0.01, 0.1)),
                loudness_db=float(rng.normal(0.0, 1.5)),
                expressiveness=float(rng.uniform(0.7, 1.2)),
                emotion_offsets=tuple(offsets),
            )
        )
    return voices


#: Caps on the synthetic corpus (the default: 10 speakers, 800 utterances): a corpus is
#: refused above them at once instead of synthesising (silently) for hours.
MAX_SPEAKERS = 1000
MAX_UTTERANCES = 200_000


def _check_layout(n_speakers: int, n_sessions: int) -> None:
    if n_speakers < 1 or n_sessions < 1:
        raise DataError(f"need at least one speaker and one session, got {n_speakers}/{n_sessions}")
    if n_speakers > MAX_SPEAKERS:
        raise DataError(f"synthetic corpus: {n_speakers} speakers; at most {MAX_SPEAKERS}")
    if n_speakers % n_sessions:
        raise DataError(
            f"n_speakers ({n_speakers}) must be a multiple of n_sessions ({n_sessions})"
        )


# ----------------------------------------------------------------------------- synthesis
@dataclass(frozen=True)
class _Delivery:
    """How one utterance is spoken: the voice after emotion, intensity and noise."""

    f0_hz: float  # mean F0
    pitch_range: float  # semitones
    rate: float  # syllables per second
    level_db: float  # loudness relative to the reference level
    open_quotient: float
    speed_quotient: float
    tilt: float
    breathiness: float
    jitter: float
    shimmer: float
    articulation: float
    formant_scale: float
    pause_scale: float
    accent: float
    endings: tuple[float, float, float]


def _delivery(voice: SpeakerVoice, emotion: str, rng: np.random.Generator) -> _Delivery:
    style = EMOTION_STYLES[emotion]
    f0_offset, energy_offset, rate_factor = voice.emotion_offsets[EMOTIONS.index(emotion)]
    # e: how strongly this utterance shows its emotion (speaker expressiveness x intensity);
    # arousal: excitement drift common to all classes. Both make the classes overlap.
    e = voice.expressiveness * float(0.5 + 0.8 * rng.beta(2.0, 2.0))
    arousal = float(rng.normal(0.0, 0.25))

    def scaled(factor: float) -> float:  # a multiplicative style effect at strength e
        return 1 + e * (factor - 1)

    f0_st = e * style.f0_shift + f0_offset + 2.0 * arousal + rng.normal(0.0, 1.0)
    return _Delivery(
        f0_hz=voice.f0_hz * 2 ** (f0_st / 12),
        pitch_range=voice.range_st * scaled(style.range_scale) * np.exp(rng.normal(0.0, 0.15)),
        rate=voice.rate
        * scaled(style.rate_scale)
        * rate_factor
        * (1 + 0.06 * arousal)
        * np.exp(rng.normal(0.0, 0.08)),
        level_db=voice.loudness_db
        + e * style.energy_db
        + energy_offset
        + 3.0 * arousal
        + rng.normal(0.0, 1.5),
        open_quotient=float(
            np.clip(voice.open_quotient + e * style.open_quotient + rng.normal(0, 0.03), 0.3, 0.85)
        ),
        speed_quotient=voice.speed_quotient,
        tilt=float(
            np.clip(voice.tilt + e * style.tilt - 0.05 * arousal + rng.normal(0, 0.05), 0.0, 0.9)
        ),
        breathiness=max(0.0, voice.breathiness + e * style.breathiness + rng.normal(0, 0.015)),
        jitter=voice.jitter * scaled(style.jitter_scale),
        shimmer=voice.shimmer,
        articulation=scaled(style.articulation),
        formant_scale=voice.formant_scale * (1 + e * style.smile),
        pause_scale=scaled(style.pause_scale),
        accent=scaled(style.accent),
        endings=style.endings,
    )


@dataclass
class _Plan:
    """Sample-level timeline of one utterance."""

    n: int  # samples
    voiced_env: np.ndarray  # amplitude of the glottal source
    aspiration_env: np.ndarray  # 'h' and post-burst aspiration, fed through the formants
    formant_points: list[tuple[float, np.ndarray]]  # (sample, F1-F3 target)
    f0_points: list[tuple[float, float]]  # (sample, semitones around the mean F0)
    noises: list[tuple[int, int, tuple[float, float], float]]  # start, end, band (Hz), amplitude


def synthesize_utterance(
    voice: SpeakerVoice, emotion: str, rng: np.random.Generator, sample_rate: int = 16000
) -> np.ndarray:
    """Synthesise one utterance of ``voice`` speaking with ``emotion``; float32 in [-1, 1]."""
    if emotion not in EMOTION_STYLES:
        raise DataError(f"unknown emotion {emotion!r}; valid: {', '.join(EMOTIONS)}")
    sr = sample_rate
    delivery = _delivery(voice, emotion, rng)
    plan = _lay_out(delivery, rng, sr)
    n_blocks = -(-plan.n // _BLOCK)
    block_centres = (np.arange(n_blocks) + 0.5) * _BLOCK

    f0 = _f0_track(plan, delivery, block_centres, rng, sr)
    source = _glottal_source(f0, plan, delivery, rng, sr)
    formants, bandwidths = _formant_tracks(plan, delivery, block_centres, sr)
    voiced = _formant_filter(source, formants, bandwidths, sr)
    # Loudness is set on the voiced parts, so level_db alone decides it.
    in_vowels = plan.voiced_env > 0.5
    speech = voiced / (float(np.sqrt(np.mean(voiced[in_vowels] ** 2))) + 1e-9)

    # Voiceless fricatives and bursts: band-passed noise added after the vocal tract.
    edge = int(0.01 * sr)
    for start, end, band, amplitude in plan.noises:
        noise = signal.sosfilt(_bandpass(band, sr), rng.standard_normal(end - start + 256))[256:]
        noise /= float(np.sqrt(np.mean(noise**2))) + 1e-9
        speech[start:end] += amplitude * noise * _envelope(end - start, edge, edge)

    out = speech * 10 ** ((_REFERENCE_DB + delivery.level_db) / 20)
    # A faint low-passed background noise (unit RMS, then -68 dBFS), as in any recording.
    background = signal.lfilter([np.sqrt(1 - 0.9**2)], [1, -0.9], rng.standard_normal(plan.n))
    out += background * 10 ** (-68 / 20)
    return np.tanh(out).astype(np.float32)  # soft limit: the loudest angry peaks saturate


def _f0_track(
    plan: _Plan,
    delivery: _Delivery,
    block_centres: np.ndarray,
    rng: np.random.Generator,
    sr: int,
) -> np.ndarray:
    """F0 in Hz per sample: the planned contour, smoothed, with slow drift and jitter."""
    points = np.array(plan.f0_points)
    semitones = np.interp(block_centres, points[:, 0], points[:, 1])
    window = np.hanning(max(3, int(0.06 * sr / _BLOCK)) + 2)[1:-1]
    padded = np.pad(semitones, len(window), mode="edge")
    semitones = np.convolve(padded, window / window.sum(), mode="same")[len(window) : -len(window)]
    seconds = block_centres / sr
    for _ in range(2):
        semitones += 0.3 * np.sin(
            2 * np.pi * rng.uniform(0.5, 2.0) * seconds + rng.uniform(0, 2 * np.pi)
        )
    f0 = np.clip(delivery.f0_hz * 2 ** (semitones / 12), 50.0, 600.0)
    f0 *= 1 + delivery.jitter * rng.standard_normal(len(f0))
    return np.repeat(f0, _BLOCK)[: plan.n]


def _glottal_source(
    f0: np.ndarray, plan: _Plan, delivery: _Delivery, rng: np.random.Generator, sr: int
) -> np.ndarray:
    """Rosenberg flow derivative with shimmer, aspiration noise and spectral tilt."""
    phase = np.cumsum(f0 / sr)
    period = phase.astype(np.int64)
    flow, dflow = _rosenberg(phase - period, delivery.open_quotient, delivery.speed_quotient)
    shimmer = 1 + delivery.shimmer * rng.standard_normal(int(period[-1]) + 2)
    source = dflow * shimmer[period] * plan.voiced_env
    # Breath noise is modulated by the glottal opening; 'h' is noise alone.
    breath = 2.5 * delivery.breathiness * (0.3 + flow) * plan.voiced_env
    scale = float(np.sqrt(np.mean(dflow**2))) + 1e-9
    source += scale * rng.standard_normal(plan.n) * (breath + 0.6 * plan.aspiration_env)
    tilt = delivery.tilt
    return signal.lfilter([1 - tilt], [1, -tilt], source)


def _formant_tracks(
    plan: _Plan, delivery: _Delivery, block_centres: np.ndarray, sr: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and bandwidths (Hz) of the five resonators at every block."""
    times = np.array([t for t, _ in plan.formant_points])
    targets = np.array([f for _, f in plan.formant_points])
    formants = np.empty((len(block_centres), 5))
    for k in range(3):
        formants[:, k] = np.interp(block_centres, times, targets[:, k])
    formants[:, 3:] = _HIGH_FORMANTS
    formants *= delivery.formant_scale
    formants = np.minimum(formants, 0.45 * sr)
    formants[:, 1] = np.maximum(formants[:, 1], formants[:, 0] + 150)
    # Glottal losses widen the low formants of a breathy voice.
    widening = np.array([1 + 3 * delivery.breathiness, 1 + delivery.breathiness, 1, 1, 1])
    bandwidths = np.broadcast_to(_BANDWIDTHS * widening, formants.shape)
    return formants, bandwidths


def _lay_out(delivery: _Delivery, rng: np.random.Generator, sr: int) -> _Plan:
    """Choose words and phones and place them on a timeline."""
    rate = delivery.rate
    # Text length in syllables (independent of emotion), bounded so that the utterance lasts
    # between MIN_SECONDS and MAX_SECONDS at this rate.
    n_syllables = round(float(np.exp(rng.normal(math.log(11.0), 0.42))))
    n_syllables = int(np.clip(n_syllables, max(3, math.ceil(rate)), math.floor(7.0 * rate)))
    words: list[int] = []  # syllables per word
    while sum(words) < n_syllables:
        size = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
        words.append(min(size, n_syllables - sum(words)))
    phrases: list[list[int]] = []
    while len(phrases) == 0 or sum(map(sum, phrases)) < n_syllables:
        start = sum(map(len, phrases))
        phrases.append(words[start : start + int(rng.integers(2, 6))])

    # Phones as (kind, name, nominal seconds, vowel info); kinds: "pause" (not rate-scaled),
    # "vowel", "voiced", "fricative", "h", "stop".
    phones: list[tuple[str, Any, float, Any]] = [("pause", None, rng.uniform(0.12, 0.3), None)]
    for p_index, phrase in enumerate(phrases):
        syllables_in_phrase = sum(phrase)
        syllable = 0
        for w_index, n_word in enumerate(phrase):
            stressed = int(rng.integers(0, n_word)) if rng.random() < 0.3 else 0
            content_word = rng.random() < 0.65
            for s_index in range(n_word):
                final = w_index == len(phrase) - 1 and s_index == n_word - 1
                if rng.random() < 0.78:
                    phones.append(_consonant(_ONSETS, _ONSET_P, rng))
                is_stressed = s_index == stressed
                seconds = 0.11 * (1.35 if is_stressed else 1.0) * (1.5 if final else 1.0)
                position = syllable / max(1, syllables_in_phrase - 1)
                info = (is_stressed and content_word, final, p_index / len(phrases), position)
                vowel = int(rng.integers(0, len(_VOWELS)))
                phones.append(("vowel", vowel, seconds * rng.uniform(0.85, 1.15), info))
                if rng.random() < 0.3:
                    phones.append(_consonant(_CODAS, _CODA_P, rng))
                syllable += 1
            if w_index < len(phrase) - 1 and rng.random() < 0.3:
                phones.append(("pause", None, rng.uniform(0.04, 0.12) * delivery.pause_scale, None))
        if p_index < len(phrases) - 1:
            phones.append(("pause", None, rng.uniform(0.15, 0.4) * delivery.pause_scale, None))
    phones.append(("pause", None, rng.uniform(0.15, 0.35), None))

    # Scale speech (not pauses) so that the syllable rate is exactly `rate`; then only
    # pauses can push the length past MAX_SECONDS, so shrink them when they do.
    speech = sum(seconds for kind, _, seconds, _ in phones if kind != "pause")
    factor = (n_syllables / rate) / speech
    durations = np.array([s if k == "pause" else s * factor for k, _, s, _ in phones])
    is_pause = np.array([k == "pause" for k, *_ in phones])
    overflow = durations.sum() - (MAX_SECONDS - 0.3)
    if overflow > 0:
        durations[is_pause] *= max(0.0, 1 - overflow / durations[is_pause].sum())
    bounds = np.round(np.concatenate([[0.0], np.cumsum(durations)]) * sr).astype(int)
    n = max(int(bounds[-1]), int(MIN_SECONDS * sr) + 1)

    plan = _Plan(n, np.zeros(n), np.zeros(n), [], [], [])
    ramp = int(0.012 * sr)
    for (kind, name, _, info), a, b in zip(phones, bounds[:-1], bounds[1:], strict=True):
        a, b = int(a), int(b)
        length = b - a
        if length <= 0:
            continue
        if kind == "vowel":
            accented, final, phrase_offset, position = info
            target = _SCHWA + delivery.articulation * (_VOWELS[name] - _SCHWA)
            target[0] = max(target[0], 220.0)
            plan.formant_points += [(a + 0.3 * length, target), (a + 0.7 * length, target)]
            amplitude = 1.0 if accented else 0.75
            envelope = amplitude * _envelope(length, ramp, 2 * ramp)
            plan.voiced_env[a:b] = np.maximum(plan.voiced_env[a:b], envelope)
            # F0: declination over the phrase (and the utterance), pitch accents, and the
            # phrase-final fall, rise or level ending.
            level = delivery.pitch_range * (0.3 - 0.6 * position) - 0.8 * phrase_offset
            if accented:
                level += delivery.accent * delivery.pitch_range * rng.uniform(0.35, 0.8)
            level += rng.normal(0.0, 0.1 * delivery.pitch_range)
            plan.f0_points.append((a + 0.3 * length, level))
            if final:
                ending = int(rng.choice(3, p=np.asarray(delivery.endings)))
                glide = (-0.55, 0.6, 0.0)[ending] * delivery.pitch_range * rng.uniform(0.6, 1.2)
                plan.f0_points.append((b, level + glide))
            else:
                plan.f0_points.append((a + 0.8 * length, level))
        elif kind == "voiced":
            target, amplitude = _VOICED_CONSONANTS[name]
            plan.formant_points.append((a + 0.5 * length, np.array(target)))
            envelope = amplitude * _envelope(length, ramp, ramp)
            plan.voiced_env[a:b] = np.maximum(plan.voiced_env[a:b], envelope)
        elif kind == "fricative":
            band, amplitude = _FRICATIVES[name]
            plan.noises.append((a, b, band, amplitude))
        elif kind == "h":
            plan.aspiration_env[a:b] += 0.5 * _envelope(length, ramp, ramp)
        elif kind == "stop":  # closure silence, then a burst and aspiration at its end
            burst = min(length, int(0.012 * sr))
            plan.noises.append((b - burst, b, _PLOSIVES[name], 0.45))
            aspiration = min(int(0.03 * sr), n - b)
            if aspiration > 0:
                plan.aspiration_env[b : b + aspiration] += 0.35 * _envelope(
                    aspiration, 1, aspiration // 2
                )
    return plan


def _consonant(
    names: tuple[str, ...], weights: np.ndarray, rng: np.random.Generator
) -> tuple[str, str, float, None]:
    """Draw a consonant from ``names`` and give its phone (kind, name, nominal seconds)."""
    name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    spread = rng.uniform(0.8, 1.2)
    if name in _FRICATIVES:
        return ("fricative", name, 0.085 * spread, None)
    if name in _PLOSIVES:
        return ("stop", name, 0.06 * spread, None)
    return ("h" if name == "h" else "voiced", name, 0.06 * spread, None)


def _envelope(length: int, attack: int, release: int) -> np.ndarray:
    """A flat envelope with raised-cosine attack and release."""
    env = np.ones(length)
    attack, release = min(attack, length // 2), min(release, length // 2)
    if attack > 0:
        env[:attack] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(attack) + 0.5) / attack)
    if release > 0:
        env[length - release :] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 0.5) / release)
    return env


def _rosenberg(frac: np.ndarray, open_q: float, speed_q: float) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg glottal flow and its derivative at positions ``frac`` in [0, 1) of a period."""
    tp = open_q * speed_q / (1 + speed_q)
    tn = open_q / (1 + speed_q)
    opening = frac < tp
    closing = (frac >= tp) & (frac < tp + tn)
    flow = np.zeros_like(frac)
    dflow = np.zeros_like(frac)
    x = frac[opening] / tp
    flow[opening] = 0.5 - 0.5 * np.cos(np.pi * x)
    dflow[opening] = np.pi / (2 * tp) * np.sin(np.pi * x)
    y = (frac[closing] - tp) / tn
    flow[closing] = np.cos(0.5 * np.pi * y)
    dflow[closing] = -np.pi / (2 * tn) * np.sin(0.5 * np.pi * y)
    return flow, dflow


def _formant_filter(
    x: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray, sr: int
) -> np.ndarray:
    """Cascade of second-order resonators (unit gain at DC) whose frequencies change every
    block: each block of the source, Hann-windowed with 50 % overlap, is filtered in the
    frequency domain with that block's response and the results are overlap-added."""
    nb = formants.shape[0]
    hop = _BLOCK
    nfft = hop * math.ceil(_FILTER_SECONDS * sr / hop)
    width = nfft // hop  # blocks spanned by one filtered frame
    r = np.exp(-np.pi * bandwidths / sr).astype(np.float32)
    c = (2 * np.cos(2 * np.pi * formants / sr)).astype(np.float32) * r
    z1, z2 = _unit_circle(nfft)
    denominator = 1 - c[:, 0, None] * z1 + (r[:, 0] ** 2)[:, None] * z2
    for k in range(1, formants.shape[1]):
        denominator *= 1 - c[:, k, None] * z1 + (r[:, k] ** 2)[:, None] * z2
    response = np.prod(1 - c + r**2, axis=1)[:, None] / denominator
    # Frame b covers samples [(b - 1) * hop, (b + 1) * hop) of x.
    padded = np.concatenate([np.zeros(hop), x, np.zeros((nb + 1) * hop - len(x))])
    frames = np.lib.stride_tricks.sliding_window_view(padded, 2 * hop)[::hop][:nb] * _hann(2 * hop)
    frames = frames.astype(np.float32)
    filtered = np.fft.irfft(np.fft.rfft(frames, nfft) * response, nfft).reshape(nb, width, hop)
    out = np.zeros((nb + width, hop))
    for k in range(width):
        out[k : k + nb] += filtered[:, k]
    return out.reshape(-1)[hop : hop + len(x)]


@lru_cache(maxsize=4)
def _unit_circle(nfft: int) -> tuple[np.ndarray, np.ndarray]:
    z1 = np.exp(-2j * np.pi * np.arange(nfft // 2 + 1) / nfft).astype(np.complex64)
    return z1, z1**2


@lru_cache(maxsize=4)
def _hann(length: int) -> np.ndarray:
    return np.hanning(length + 1)[:-1]  # periodic: overlapping copies sum to one


@lru_cache(maxsize=32)
def _bandpass(band: tuple[float, float], sr: int) -> np.ndarray:
    low, high = band
    high = min(high, 0.45 * sr)
    low = min(low, 0.5 * high)
    return signal.butter(2, [low, high], btype="bandpass", fs=sr, output="sos")


# -------------------------------------------------------------------------------- corpus
def _corpus_params(
    seed: int = 0,
    n_speakers: int = 10,
    n_sessions: int = 5,
    utterances_per_class_per_speaker: int = 20,
    sample_rate: int = 16000,
) -> dict[str, Any]:
    """The parameters that determine a corpus, validated, in a fixed order."""
    for name, value in (
        ("seed", seed),
        ("n_speakers", n_speakers),
        ("n_sessions", n_sessions),
        ("utterances_per_class_per_speaker", utterances_per_class_per_speaker),
        ("sample_rate", sample_rate),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise DataError(f"synthetic corpus: {name} must be an integer, got {value!r}")
    if seed < 0:
        raise DataError(f"synthetic corpus: seed must be >= 0, got {seed}")
    if utterances_per_class_per_speaker < 1:
        raise DataError("synthetic corpus: utterances_per_class_per_speaker must be at least 1")
    if sample_rate < 8000:
        raise DataError(f"synthetic corpus: sample_rate must be at least 8000, got {sample_rate}")
    _check_layout(n_speakers, n_sessions)
    total = n_speakers * len(EMOTIONS) * utterances_per_class_per_speaker
    if total > MAX_UTTERANCES:
        raise DataError(
            f"synthetic corpus: {total} utterances ({n_speakers} speakers x {len(EMOTIONS)} "
            f"classes x {utterances_per_class_per_speaker}); at most {MAX_UTTERANCES}"
        )
    return {
        "generator": GENERATOR,
        "seed": int(seed),
        "n_speakers": int(n_speakers),
        "n_sessions": int(n_sessions),
        "utterances_per_class_per_speaker": int(utterances_per_class_per_speaker),
        "sample_rate": int(sample_rate),
    }


@dataclass(frozen=True)
class _Job:
    voice: SpeakerVoice
    speaker_index: int
    emotion: str
    index: int
    seed: int
    sample_rate: int
    relpath: str


def _jobs(params: dict[str, Any]) -> list[_Job]:
    voices = speaker_voices(params["seed"], params["n_speakers"], params["n_sessions"])
    jobs = []
    for speaker_index, voice in enumerate(voices):
        for emotion in EMOTIONS:
            for j in range(params["utterances_per_class_per_speaker"]):
                rel = (
                    f"wav/{voice.session}/{voice.speaker}/{voice.speaker}_{emotion}_{j + 1:03d}.wav"
                )
                jobs.append(
                    _Job(
                        voice, speaker_index, emotion, j, params["seed"], params["sample_rate"], rel
                    )
                )
    return jobs


def _render(job: _Job, root: str) -> float:
    """Synthesise and write one utterance; returns its duration in seconds."""
    rng = np.random.default_rng(
        [job.seed, 2, job.speaker_index, EMOTIONS.index(job.emotion), job.index]
    )
    audio = synthesize_utterance(job.voice, job.emotion, rng, job.sample_rate)
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    path = Path(root) / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, pcm, job.sample_rate, subtype="PCM_16", format="WAV")
    return len(pcm) / job.sample_rate


def _read_info(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _complete(folder: Path, params: dict[str, Any]) -> bool:
    info = _read_info(folder)
    return (
        info is not None
        and info.get("params") == params
        and info.get("complete") is True
        and (folder / MANIFEST_NAME).is_file()
    )


def synthesize_corpus(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    n_speakers: int = 10,
    n_sessions: int = 5,
    utterances_per_class_per_speaker: int = 20,
    sample_rate: int = 16000,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the synthetic corpus into ``out_dir`` and return its manifest path.

    ``out_dir`` gets ``wav/<session>/<speaker>/<speaker>_<class>_<NNN>.wav`` (16-bit PCM,
    mono), ``manifest.csv`` (paths relative to ``out_dir``) and ``corpus.json`` (the
    parameters). Everything is generated in a temporary sibling folder that is renamed into
    place at the end, so an interrupted run leaves nothing half-written. When ``out_dir``
    already holds a complete corpus with the same parameters it is reused as is; any other
    non-empty ``out_dir`` is refused with a :class:`DataError`.
    """
    params = _corpus_params(
        seed, n_speakers, n_sessions, utterances_per_class_per_speaker, sample_rate
    )
    out_dir = Path(out_dir).expanduser().absolute()
    if _complete(out_dir, params):
        return out_dir / MANIFEST_NAME
    _check_target(out_dir, params)

    jobs = _jobs(params)
    ensure_folder(out_dir.parent, "corpus folder")  # a file in the way: one line
    tmp = make_temp_dir(out_dir.parent, f".{out_dir.name}.partial-")
    try:
        durations = _run_jobs(jobs, str(tmp), workers, progress)
        utterances = [
            Utterance(
                path=job.relpath,
                label=job.emotion,
                speaker=job.voice.speaker,
                session=job.voice.session,
                duration=duration,
            )
            for job, duration in zip(jobs, durations, strict=True)
        ]
        write_manifest(utterances, tmp / MANIFEST_NAME)
        info = {
            "params": params,
            "complete": True,
            "utterances": len(utterances),
            "seconds": round(sum(durations), 3),
            "speakers": [asdict(v) for v in speaker_voices(seed, n_speakers, n_sessions)],
            "note": "synthetic demonstration corpus, not a benchmark of real emotion",
        }
        (tmp / INFO_NAME).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        _commit(tmp, out_dir, params)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / MANIFEST_NAME


def _check_target(out_dir: Path, params: dict[str, Any]) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DataError(f"synthetic corpus target exists and is not a folder: {out_dir}")
    if not any(out_dir.iterdir()):
        return
    info = _read_info(out_dir)
    if info is not None and info.get("params") != params:
        raise DataError(
            f"{out_dir} holds a synthetic corpus with other parameters ({info.get('params')}); "
            "choose another folder or delete it"
        )
    raise DataError(
        f"{out_dir} is not empty and not a complete synthetic corpus; refusing to overwrite"
    )


def _commit(tmp: Path, out_dir: Path, params: dict[str, Any]) -> None:
    """Rename the finished temporary folder into place (tolerating a concurrent writer)."""
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if not _complete(out_dir, params):  # another process may have won the race
            raise DataError(f"could not move the synthetic corpus into {out_dir}") from None


def _run_jobs(jobs: list[_Job], root: str, workers: int | None, progress: bool) -> list[float]:
    from emodarts_nni.common.progress import Ticker

    n_workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = Ticker("corpus", "utterances synthesised", len(jobs), bar=progress)
    try:
        if n_workers == 1:
            durations = []
            for job in jobs:
                durations.append(_render(job, root))
                bar.update()
            return durations
        from emodarts_nni.data.workers import parallel_map

        found: list[float] = [0.0] * len(jobs)

        def done(i: int, duration: float) -> None:
            found[i] = duration
            bar.update()

        # Workers die with this process (kill -9 leaves no one rendering).
        parallel_map(_render, [(job, root) for job in jobs], n_workers, done)
        return found
    finally:
        bar.close()


def corpus_key(**params: Any) -> str:
    """The folder name of the cached corpus with ``params``: ``synth-v1-<hash>``."""
    full = _corpus_params(**params)
    digest = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:10]
    return f"{GENERATOR}-{digest}"


def default_corpus(
    cache_dir: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    **params: Any,
) -> Path:
    """The embedded default corpus: generated once into
    ``<cache>/corpora/synth-v1-<hash of params>/`` and reused afterwards.

    ``params`` are :func:`synthesize_corpus`'s (``seed``, ``n_speakers``, ``n_sessions``,
    ``utterances_per_class_per_speaker``, ``sample_rate``); the cache root is
    :func:`~emodarts_nni.data.cache.cache_root` of ``cache_dir``. Returns the manifest path.
    """
    try:
        key = corpus_key(**params)
    except TypeError as exc:
        raise DataError(f"default corpus: {exc}") from None
    out_dir = cache_root(cache_dir) / "corpora" / key
    return synthesize_corpus(out_dir, workers=workers, progress=progress, **params)


__all__ = [
    "EMOTIONS",
    "EMOTION_STYLES",
    "GENERATOR",
    "EmotionStyle",
    "SpeakerVoice",
    "corpus_key",
    "default_corpus",
    "speaker_voices",
    "synthesize_corpus",
    "synthesize_utterance",
]
