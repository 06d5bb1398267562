"""The manifest: one CSV row per utterance, the only thing later stages read.

Columns (``docs/interface.md``): ``path,label,speaker,session,duration`` and an
optional ``split`` (e.g. MSP-Podcast's official partition). Paths are stored as given
(absolute, or relative to the manifest's folder) and resolved on reading.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from emodarts_nni.errors import DataError
from emodarts_nni.files import atomic_path

MANIFEST_COLUMNS = ("path", "label", "speaker", "session", "duration")
OPTIONAL_COLUMNS = ("split",)

#: The paper's four classes, in the order used for class indices everywhere.
PAPER_CLASSES = ("neutral", "happy", "sad", "angry")


@dataclass(frozen=True)
class Utterance:
    """One labelled utterance of a corpus."""

    path: str
    label: str
    speaker: str
    session: str
    duration: float
    split: str = ""


def write_manifest(utterances: Iterable[Utterance], path: str | os.PathLike) -> Path:
    """Write ``utterances`` to ``path`` as CSV, atomically (temp file + rename)."""
    path = Path(path)
    rows = list(utterances)
    with_split = any(u.split for u in rows)
    columns = list(MANIFEST_COLUMNS) + (["split"] if with_split else [])
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for u in rows:
            row = asdict(u)
            row["duration"] = f"{u.duration:.3f}"
            writer.writerow(row)
    return path


def read_manifest(path: str | os.PathLike, *, resolve_paths: bool = True) -> list[Utterance]:
    """Read a manifest CSV; relative audio paths are resolved against its folder.

    Raises :class:`DataError` naming the file (and line) on a missing file, a missing
    column, or an unparsable duration.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in MANIFEST_COLUMNS if c not in header]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(missing)}; "
                f"expected {','.join(MANIFEST_COLUMNS)}[,split]"
            )
        out: list[Utterance] = []
        for line_no, row in enumerate(reader, start=2):
            try:
                duration = float(row["duration"]) if row["duration"] not in ("", None) else 0.0
            except ValueError:
                raise DataError(
                    f"{path}:{line_no}: duration {row['duration']!r} is not a number"
                ) from None
            audio = row["path"]
            if not audio:
                raise DataError(f"{path}:{line_no}: empty path")
            if resolve_paths and not os.path.isabs(audio):
                audio = str((path.parent / audio).resolve())
            if not row["label"]:
                raise DataError(f"{path}:{line_no}: empty label for {audio}")
            out.append(
                Utterance(
                    path=audio,
                    label=row["label"],
                    speaker=row["speaker"] or "unknown",
                    session=row["session"] or "",
                    duration=duration,
                    split=(row.get("split") or ""),
                )
            )
    return out


def class_names(utterances: Sequence[Utterance]) -> tuple[str, ...]:
    """Class names in canonical order: the paper's four first, then others sorted."""
    present = {u.label for u in utterances}
    ordered = [c for c in PAPER_CLASSES if c in present]
    ordered += sorted(present - set(PAPER_CLASSES))
    return tuple(ordered)


__all__ = [
    "MANIFEST_COLUMNS",
    "OPTIONAL_COLUMNS",
    "PAPER_CLASSES",
    "Utterance",
    "class_names",
    "read_manifest",
    "write_manifest",
]
