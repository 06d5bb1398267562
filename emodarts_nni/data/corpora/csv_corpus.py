"""A user's own corpus described by a CSV file.

Required columns: ``path,label,speaker``; optional: ``session``, ``duration``, ``split``.
Relative paths are resolved against the CSV's folder. A missing or empty duration is
read from the audio header. Labels are lower-cased, with common spellings
(``anger``, ``ang``, ``happiness``, ``neu`` ...) mapped to the paper's class names.
"""

from __future__ import annotations

import csv
from pathlib import Path

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.units import shown
from emodarts_nni.data.corpora.common import (
    NOT_IN_CLASS_SET,
    ReadResult,
)
from emodarts_nni.data.manifest import PAPER_CLASSES

REQUIRED_COLUMNS = ("path", "label", "speaker")
OPTIONAL_COLUMNS = ("session", "duration", "split")
AUDIO_NOT_FOUND = "audio file not found"
EMPTY_LABEL = "empty label"
EMPTY_SPEAKER = "empty speaker"
DUPLICATE_PATH = "duplicate path (first row kept)"

#: Spellings mapped onto the paper's class names (keys lower case).
LABEL_ALIASES = {
    "neu": "neutral",
    "hap": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "ang": "angry",
    "anger": "angry",
}


def read_csv_corpus(root: str | Path, *, all_classes: bool = False) -> ReadResult:
    """Read a corpus from the CSV file ``root`` (see the module docstring for columns).

    Without ``all_classes`` only the paper's four classes are kept; other labels are
    counted as skipped. Rows whose audio is missing or unreadable are counted too.
    """
    csv_path = Path(root)
    if not csv_path.is_file():
        raise DataError(f"corpus CSV not found: {csv_path}")
    result = ReadResult(kind="csv", root=str(csv_path), options={"all_classes": all_classes})
    seen: set[str] = set()
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DataError(
                f"{csv_path}: missing column(s) {', '.join(missing)}; needs "
                f"{','.join(REQUIRED_COLUMNS)} (optional: {','.join(OPTIONAL_COLUMNS)})"
            )
        reader.fieldnames = header
        for line_no, row in enumerate(reader, start=2):
            raw_path = (row.get("path") or "").strip()
            if not raw_path:
                raise DataError(f"{csv_path}:{line_no}: empty path")
            audio = Path(raw_path)
            if not audio.is_absolute():
                audio = (csv_path.parent / audio).resolve()
            if str(audio) in seen:
                result.skip(DUPLICATE_PATH, f"{csv_path}:{line_no}: {audio}")
                continue
            seen.add(str(audio))
            label = _normalise_label(row.get("label") or "")
            speaker = (row.get("speaker") or "").strip()
            if not label:
                result.skip(EMPTY_LABEL, f"{csv_path}:{line_no}")
                continue
            if not all_classes and label not in PAPER_CLASSES:
                result.skip(f"{NOT_IN_CLASS_SET}: {shown(label)}", audio)
                continue
            if not speaker:
                result.skip(EMPTY_SPEAKER, f"{csv_path}:{line_no}")
                continue
            if not audio.is_file():
                result.skip(AUDIO_NOT_FOUND, audio)
                continue
            result.add_audio(
                audio,
                label,
                speaker=speaker,
                session=(row.get("session") or "").strip(),
                split=(row.get("split") or "").strip(),
                duration=_duration(row.get("duration"), csv_path, line_no),
            )
    return result


def _normalise_label(label: str) -> str:
    label = label.strip().lower()
    return LABEL_ALIASES.get(label, label)


def _duration(value: str | None, csv_path: Path, line_no: int) -> float | None:
    """The CSV's duration, or ``None`` (read the header) when missing or not positive."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        raise DataError(f"{csv_path}:{line_no}: duration {value!r} is not a number") from None
    return seconds if seconds > 0 else None


__all__ = ["LABEL_ALIASES", "read_csv_corpus"]
