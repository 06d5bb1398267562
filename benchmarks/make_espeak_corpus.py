"""A second, differently made emotion corpus: espeak-ng voices in the RAVDESS release layout.

    python benchmarks/make_espeak_corpus.py OUT_DIR [--seed 0] [--actors 12]

Writes ``OUT_DIR/Actor_NN/03-01-EE-II-SS-RR-AA.wav`` (the ``ravdess`` reader's layout; see
docs/corpus-readers.md): 12 actors (espeak-ng voice variants, each with its own pitch base
and speaking rate), 4 emotions (neutral 01, happy 03, sad 04, angry 05), 4 sentences
(statement 01-04), intensity 01/02 for the acted emotions and repetitions 01/02 for
neutral: 32 utterances per actor, 384 in all.

Emotion is acted only through prosody, through espeak-ng's SSML ``<prosody>`` element:
pitch, pitch range, rate and volume move away from the actor's own neutral setting
(strong intensity moves 1.6x as far); every utterance then gets Gaussian jitter on all four,
so the classes overlap and an actor's base pitch and rate can be as far apart as two
emotions. Nothing but the espeak-ng binary is used; the result is deterministic given
``--seed`` (and the espeak-ng version).

This generator is a benchmark tool, not part of the product: it exists so a retraining
recipe can be checked on a corpus other than the embedded one (docs/recipe.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: (emotion code, name, pitch %, range %, rate %, volume %) relative to the actor's neutral.
EMOTIONS: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("01", "neutral", 0.0, 0.0, 0.0, 0.0),
    ("03", "happy", 18.0, 60.0, 8.0, 15.0),
    ("04", "sad", -14.0, -45.0, -18.0, -25.0),
    ("05", "angry", 6.0, 25.0, 14.0, 45.0),
)
SENTENCES = (
    "Kids are talking by the door.",
    "Dogs are sitting by the door.",
    "The train leaves at seven tonight.",
    "I put the letters on the kitchen table.",
)
#: espeak-ng voice + variant per actor (odd actor numbers male, even female, as RAVDESS).
VOICES = (
    "en-us+m1",
    "en-gb+f1",
    "en-us+m3",
    "en-us+f2",
    "en-gb-scotland+m2",
    "en-gb+f3",
    "en-029+m4",
    "en-us+f4",
    "en-gb-x-rp+m5",
    "en-us+Annie",
    "en-us+m7",
    "en-gb+f5",
    "en-us+Andy",
    "en-us+Alicia",
)
#: Per-utterance jitter (standard deviations, in the same % units as :data:`EMOTIONS`).
JITTER = {"pitch": 7.0, "range": 25.0, "rate": 7.0, "volume": 15.0}
STRONG = 1.6


@dataclass(frozen=True)
class Utterance:
    """One file to synthesise."""

    path: Path
    voice: str
    text: str
    pitch: float
    range: float
    rate: float
    volume: float


def espeak_binary() -> str | None:
    """The espeak-ng executable, or None when it is not installed."""
    return shutil.which("espeak-ng")


def plan(out: Path, *, seed: int = 0, actors: int = 12) -> list[Utterance]:
    """Every utterance of the corpus with its prosody, drawn from ``seed`` (no audio yet)."""
    if not 2 <= actors <= len(VOICES):
        raise ValueError(f"actors must be between 2 and {len(VOICES)}, got {actors}")
    rng = np.random.default_rng(seed)
    items = []
    for a in range(1, actors + 1):
        voice = VOICES[a - 1]
        base_pitch = rng.uniform(-20, 20)  # the actor's own neutral pitch and rate
        base_rate = rng.uniform(-12, 12)
        base_range = rng.uniform(-15, 15)
        for code, _name, d_pitch, d_range, d_rate, d_volume in EMOTIONS:
            for s, text in enumerate(SENTENCES, start=1):
                for k in (1, 2):
                    if code == "01":
                        intensity, repetition, scale = 1, k, 1.0
                    else:
                        intensity, repetition, scale = k, 1, (1.0 if k == 1 else STRONG)
                    jitter = {key: rng.normal(0, sd) for key, sd in JITTER.items()}
                    name = f"03-01-{code}-{intensity:02d}-{s:02d}-{repetition:02d}-{a:02d}.wav"
                    items.append(
                        Utterance(
                            path=out / f"Actor_{a:02d}" / name,
                            voice=voice,
                            text=text,
                            pitch=base_pitch + scale * d_pitch + jitter["pitch"],
                            range=base_range + scale * d_range + jitter["range"],
                            rate=base_rate + scale * d_rate + jitter["rate"],
                            volume=scale * d_volume + jitter["volume"],
                        )
                    )
    return items


def _percent(value: float, low: float) -> str:
    """An SSML relative value, clipped so espeak-ng never gets a non-positive setting."""
    return f"{max(value, low):+.0f}%"


def ssml(item: Utterance) -> str:
    """The SSML document espeak-ng speaks for ``item``."""
    return (
        f'<speak><prosody pitch="{_percent(item.pitch, -60)}" range="{_percent(item.range, -90)}" '
        f'rate="{100 + max(item.rate, -50):.0f}%" volume="{_percent(item.volume, -70)}">'
        f"{item.text}</prosody></speak>"
    )


def synthesise(item: Utterance, binary: str) -> None:
    """Write ``item.path`` (22.05 kHz mono 16-bit WAV) with espeak-ng; atomic per file."""
    item.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = item.path.with_suffix(".part.wav")
    subprocess.run(
        [binary, "-m", "-v", item.voice, "-w", str(tmp), ssml(item)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    tmp.replace(item.path)


def make_corpus(out: str | Path, *, seed: int = 0, actors: int = 12) -> list[Path]:
    """Write the corpus under ``out`` (files already there are kept); returns the paths."""
    binary = espeak_binary()
    if binary is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    items = plan(Path(out), seed=seed, actors=actors)
    for item in items:
        if not item.path.is_file():
            synthesise(item, binary)
    return [item.path for item in items]


def main(argv: list[str] | None = None) -> int:
    """Command line: write the corpus and print where it is."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actors", type=int, default=12)
    args = parser.parse_args(argv)
    try:
        paths = make_corpus(args.out, seed=args.seed, actors=args.actors)
    except (RuntimeError, ValueError) as exc:
        print(f"make_espeak_corpus: {exc}", file=sys.stderr)
        return 2
    print(f"{len(paths)} utterances of {args.actors} actors in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
