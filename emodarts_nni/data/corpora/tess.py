"""TESS (Toronto emotional speech set) from its file names: ``OAF_back_angry.wav``.

Two speakers (``OAF`` older, ``YAF`` younger female), the target word, the emotion;
pleasant surprise is spelt ``ps`` in the release. Files are found recursively (the
release nests them in one folder per speaker and emotion).
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

#: Emotion words (lower case) → class names.
TESS_CODES: dict[str, str | None] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "ps": "surprise",
    "surprise": "surprise",
    "surprised": "surprise",
}

_NAME = re.compile(r"^(OAF|YAF)_\w+?_([A-Za-z]+)$", re.IGNORECASE)


def read_tess(root: str | Path, *, all_classes: bool = False) -> ReadResult:
    """Read TESS from ``root``; speaker = ``OAF`` or ``YAF``; session = ``""``."""
    root = require_dir(Path(root), "TESS root")
    wavs = require_wavs(root, "TESS root")
    result = ReadResult(kind="tess", root=str(root), options={"all_classes": all_classes})

    def parse(stem: str) -> tuple[str, str, str] | None:
        match = _NAME.match(stem)
        if not match:
            return None
        speaker, emotion = match.groups()
        return emotion.lower(), speaker.upper(), ""

    add_named_files(result, wavs, parse, TESS_CODES, all_classes=all_classes)
    return result


__all__ = ["TESS_CODES", "read_tess"]
