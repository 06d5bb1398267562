"""EmoDB (Berlin Database of Emotional Speech) from its file names: ``wav/03a01Wa.wav``.

Characters 1-2 are the speaker, 3-5 the sentence, 6 the emotion (German initials: W Wut
anger, L Langeweile boredom, E Ekel disgust, A Angst fear, F Freude happiness, T Trauer
sadness, N neutral), 7 the version.
"""

from __future__ import annotations

import re
from pathlib import Path

from emodarts_nni.data.corpora.common import (
    ReadResult,
    add_named_files,
    require_dir,
    require_wavs,
)

#: Emotion letters → class names.
EMODB_CODES: dict[str, str | None] = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}

_NAME = re.compile(r"^(\d\d)([a-z]\d\d)([A-Z])([a-z])$")


def read_emodb(root: str | Path, *, all_classes: bool = False) -> ReadResult:
    """Read EmoDB from ``root`` (the release folder or its ``wav/``).

    Speaker = the two-digit speaker number (``03``); session = ``""``.
    """
    root = require_dir(Path(root), "EmoDB root")
    audio_dir = root / "wav" if (root / "wav").is_dir() else root
    wavs = require_wavs(audio_dir, "EmoDB audio folder")
    result = ReadResult(kind="emodb", root=str(root), options={"all_classes": all_classes})

    def parse(stem: str) -> tuple[str, str, str] | None:
        match = _NAME.match(stem)
        if not match:
            return None
        speaker, _sentence, emotion, _version = match.groups()
        return emotion, speaker, ""

    add_named_files(result, wavs, parse, EMODB_CODES, all_classes=all_classes)
    return result


__all__ = ["EMODB_CODES", "read_emodb"]
