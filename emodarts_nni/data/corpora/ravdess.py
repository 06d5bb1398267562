"""RAVDESS (audio-only release) from its file names.

``Actor_NN/03-01-EE-II-SS-RR-AA.wav``: modality, vocal channel (01 speech, 02 song),
emotion EE, intensity, statement, repetition, actor AA (odd = male). Files are found
recursively, so re-packaged copies (``audio_speech_actors_01-24/Actor_01/...``) work.
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

#: Emotion codes → class names (``calm`` is kept only with ``all_classes``).
RAVDESS_CODES: dict[str, str | None] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}
SONG = "song (include_song=False)"

_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


def read_ravdess(
    root: str | Path, *, all_classes: bool = False, include_song: bool = False
) -> ReadResult:
    """Read RAVDESS from ``root``; speaker = session = ``Actor_NN``.

    Song recordings (vocal channel 02) are skipped unless ``include_song``.
    """
    root = require_dir(Path(root), "RAVDESS root")
    wavs = require_wavs(root, "RAVDESS root")
    result = ReadResult(
        kind="ravdess",
        root=str(root),
        options={"all_classes": all_classes, "include_song": include_song},
    )

    def parse(stem: str) -> tuple[str, str, str] | str | None:
        match = _NAME.match(stem)
        if not match:
            return None
        _modality, channel, emotion, *_rest, actor = match.groups()
        if channel == "02" and not include_song:
            return SONG
        return emotion, f"Actor_{actor}", f"Actor_{actor}"

    add_named_files(result, wavs, parse, RAVDESS_CODES, all_classes=all_classes)
    return result


__all__ = ["RAVDESS_CODES", "read_ravdess"]
