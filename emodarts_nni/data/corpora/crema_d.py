"""CREMA-D from its file names: ``AudioWAV/1087_IWL_ANG_XX.wav``.

Actor id, sentence code, emotion (ANG DIS FEA HAP NEU SAD), intensity level. The release
contains at least one header-only WAV; it is counted as zero-length audio.
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

#: Emotion codes → class names.
CREMA_D_CODES: dict[str, str | None] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

_NAME = re.compile(r"^(\d+)_([A-Z]+)_([A-Z]+)_([A-Z]+)$")


def read_crema_d(root: str | Path, *, all_classes: bool = False) -> ReadResult:
    """Read CREMA-D from ``root`` (the release folder or its ``AudioWAV/``).

    Speaker = actor id (``1087``); session = ``""`` (one recording per actor).
    """
    root = require_dir(Path(root), "CREMA-D root")
    audio_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    wavs = require_wavs(audio_dir, "CREMA-D audio folder")
    result = ReadResult(kind="crema_d", root=str(root), options={"all_classes": all_classes})

    def parse(stem: str) -> tuple[str, str, str] | None:
        match = _NAME.match(stem)
        if not match:
            return None
        actor, _sentence, emotion, _level = match.groups()
        return emotion, actor, ""

    add_named_files(result, wavs, parse, CREMA_D_CODES, all_classes=all_classes)
    return result


__all__ = ["CREMA_D_CODES", "read_crema_d"]
