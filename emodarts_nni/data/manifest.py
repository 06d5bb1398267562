"""The manifest: one CSV row per utterance, the only thing later stages read.

Columns (``docs/interface.md``): ``path,label,speaker,session,duration`` and an
optional ``split`` (e.g. MSP-Podcast's official partition). Paths are stored as given
(absolute, or relative to the manifest's folder) and resolved on reading.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.files import atomic_path
from emodarts_nni.common.units import shown

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


def read_manifest(
    path: str | os.PathLike,
    *,
    resolve_paths: bool = True,
    all_classes: bool = True,
) -> list[Utterance]:
    """Read a manifest CSV; relative audio paths are resolved against its folder.

    Labels are normalised (surrounding spaces stripped, lower-cased: ``ANGRY `` is
    ``angry``). With ``all_classes=False`` (as for the corpus readers) only
    :data:`PAPER_CLASSES` are accepted and any other label is refused (``bored``, or a
    typo such as ``angyr``), since it would silently become a class of its own. A UTF-8 byte-order mark is ignored.

    Raises :class:`DataError` naming the file and line on: a missing or unreadable file,
    bytes that are not UTF-8, a NUL byte, malformed CSV (e.g. a field over the CSV
    module's 131,072-character limit), a missing or repeated header column, a row with
    more or fewer fields than the header, an empty path or label, an unparsable
    duration, an unknown label, or an audio file listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the manifest ({exc.strerror})") from None
    text = _decode(data, path)
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise DataError(f"{path}:{line}: NUL byte in the manifest (a binary file?)")
    reader = csv.reader(io.StringIO(text, newline=""))
    classes = None if all_classes else PAPER_CLASSES
    out: list[Utterance] = []
    first_line: dict[str, int] = {}
    try:
        header = next(reader, [])
        _check_header(header, path)
        for row in reader:
            if not row:  # a blank line
                continue
            line_no = reader.line_num
            if len(row) != len(header):
                raise DataError(
                    f"{path}:{line_no}: {len(row)} field(s) but the header has {len(header)}"
                )
            utterance = _utterance(dict(zip(header, row, strict=True)), path, line_no, classes)
            if resolve_paths and not os.path.isabs(utterance.path):
                utterance = replace(utterance, path=_resolve(path.parent / utterance.path))
            if utterance.path in first_line:
                raise DataError(
                    f"{path}:{line_no}: {shown(utterance.path)} is listed again "
                    f"(first on line {first_line[utterance.path]})"
                )
            first_line[utterance.path] = line_no
            out.append(utterance)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    return out


def _decode(data: bytes, path: Path) -> str:
    if data.startswith(codecs.BOM_UTF8):  # written by Excel and Windows editors
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
            "save the manifest as UTF-8"
        ) from None


def _check_header(header: list[str], path: Path) -> None:
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path}:1: column(s) {', '.join(repeated)} appear more than once")
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"expected {','.join(MANIFEST_COLUMNS)}[,split]"
        )


def _utterance(
    row: dict[str, str], path: Path, line_no: int, classes: Collection[str] | None
) -> Utterance:
    try:
        duration = float(row["duration"]) if row["duration"] != "" else 0.0
    except ValueError:
        raise DataError(f"{path}:{line_no}: duration {row['duration']!r} is not a number") from None
    audio = row["path"]
    if not audio:
        raise DataError(f"{path}:{line_no}: empty path")
    label = normalise_label(row["label"])
    if not label:
        raise DataError(f"{path}:{line_no}: empty label for {shown(audio)}")
    if classes is not None and label not in classes:
        raise DataError(
            f"{path}:{line_no}: label {row['label']!r} is not one of {', '.join(classes)} "
            "(other classes are kept only with corpus.all_classes: true)"
        )
    return Utterance(
        path=audio,
        label=label,
        speaker=row["speaker"] or "unknown",
        session=row["session"] or "",
        duration=duration,
        split=(row.get("split") or ""),
    )


def _resolve(path: Path) -> str:
    """The absolute path with symlinks resolved; for a symlink loop (or a path the OS
    refuses), the absolute path as written: the file is then skipped as unreadable by
    feature extraction instead of aborting the whole manifest."""
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop" on Python < 3.13
        return os.path.normpath(os.path.abspath(path))


def normalise_label(label: str) -> str:
    """The canonical spelling of a class name: no surrounding spaces, lower case."""
    return label.strip().lower()


def class_names(utterances: Sequence[Utterance]) -> tuple[str, ...]:
    """Class names in canonical order: the paper's four first, then others sorted."""
    present = {u.label for u in utterances}
    ordered = [c for c in PAPER_CLASSES if c in present]
    ordered += sorted(present - set(PAPER_CLASSES))
    return tuple(ordered)


def require_classes(utterances: Sequence[Utterance], source: str) -> None:
    """Raise :class:`DataError` naming ``source`` (a manifest or corpus) when its utterances
    hold fewer than two classes: nothing can be learnt, yet every test utterance would be
    "recognised" (UA 1.0). Labels are shown with ``repr`` (invisible characters show)."""
    names = class_names(utterances)
    if len(names) == 1:
        raise DataError(
            f"{source}: every utterance is labelled {names[0]!r}; training needs at least "
            "two classes"
        )


__all__ = [
    "MANIFEST_COLUMNS",
    "OPTIONAL_COLUMNS",
    "PAPER_CLASSES",
    "Utterance",
    "class_names",
    "normalise_label",
    "read_manifest",
    "require_classes",
    "write_manifest",
]
