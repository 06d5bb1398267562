"""What every corpus reader shares: the :class:`ReadResult`, label resolution, audio probing.

A reader turns a corpus release folder into a list of :class:`Utterance` rows plus an
account of everything it left out (``skipped``: reason → count, ``examples``: a few
culprit paths per reason). Nothing is dropped silently: a corrupt WAV, a label without
audio or a class outside the class set each become a counted skip reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import soundfile

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.units import shown
from emodarts_nni.data.manifest import PAPER_CLASSES, Utterance, class_names

#: How many culprit paths are kept per skip reason.
MAX_EXAMPLES = 3

#: Skip reasons shared by several readers (kept as constants so tests and docs agree).
UNREADABLE_AUDIO = "unreadable audio header"
EMPTY_AUDIO = "zero-length audio"
LABEL_WITHOUT_AUDIO = "label without audio"
AUDIO_WITHOUT_LABEL = "audio without label"
UNKNOWN_CODE = "unknown label code"
NOT_IN_CLASS_SET = "label not in class set"
NO_AGREEMENT = "no agreement among raters"
DUPLICATE = "duplicate label for the same utterance"
DUPLICATE_FILE = "duplicate file name (first copy kept)"
BAD_FILE_NAME = "file name does not follow the corpus convention"


@dataclass
class ReadResult:
    """The utterances a reader kept, and what it skipped and why."""

    utterances: list[Utterance] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    kind: str = ""
    root: str = ""
    options: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, culprit: str | os.PathLike) -> None:
        """Count one skipped item under ``reason`` and remember a few culprits."""
        self.skipped[reason] += 1
        kept = self.examples.setdefault(reason, [])
        if len(kept) < MAX_EXAMPLES:
            kept.append(str(culprit))

    def add_audio(
        self,
        path: str | os.PathLike,
        label: str,
        speaker: str,
        session: str,
        *,
        split: str = "",
        duration: float | None = None,
    ) -> bool:
        """Append an utterance after probing its header; a bad file becomes a skip.

        Returns whether the utterance was kept. ``duration`` skips the probe when the
        caller already knows it (e.g. a user CSV with a duration column).
        """
        if duration is None:
            duration, problem = probe_duration(path)
            if problem:
                self.skip(problem, path)
                return False
        self.utterances.append(
            Utterance(
                path=str(path),
                label=label,
                speaker=speaker,
                session=session,
                duration=float(duration),
                split=split,
            )
        )
        return True

    def summary(self) -> str:
        """A printable account: counts per class, speakers, sessions, skips by reason."""
        utts = self.utterances
        speakers = sorted({u.speaker for u in utts})
        sessions = sorted({u.session for u in utts if u.session})
        minutes = sum(u.duration for u in utts) / 60.0
        lines = [
            f"{self.kind or 'corpus'} at {self.root}: {len(utts)} utterances, "
            f"{len(speakers)} speakers, {len(sessions)} sessions, {minutes:.1f} min of audio"
        ]
        if self.options:
            lines.append("options: " + ", ".join(f"{k}={v!r}" for k, v in self.options.items()))
        per_class = Counter(u.label for u in utts)
        if per_class:
            width = max(len("class"), *(len(c) for c in per_class))
            lines.append(f"  {'class':<{width}}  utterances  speakers")
            for name in class_names(utts):
                n_spk = len({u.speaker for u in utts if u.label == name})
                lines.append(f"  {name:<{width}}  {per_class[name]:>10}  {n_spk:>8}")
        if sessions:
            shown = ", ".join(sessions[:12]) + (", ..." if len(sessions) > 12 else "")
            lines.append(f"sessions: {shown}")
        splits = Counter(u.split for u in utts if u.split)
        if splits:
            lines.append(
                "split column: " + ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
            )
        if self.skipped:
            lines.append(f"skipped {sum(self.skipped.values())}:")
            width = max(len(r) for r in self.skipped)
            for reason, count in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
                example = self.examples.get(reason, [])
                hint = f"  e.g. {example[0]}" if example else ""
                lines.append(f"  {reason:<{width}}  {count:>7}{hint}")
        else:
            lines.append("skipped: none")
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def probe_duration(path: str | os.PathLike) -> tuple[float, str | None]:
    """Duration in seconds from the audio header only (no decoding).

    Returns ``(duration, None)``, or ``(0.0, reason)`` when the header cannot be read or
    holds no frames.
    """
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError):
        return 0.0, UNREADABLE_AUDIO
    if info.frames <= 0 or info.samplerate <= 0:
        return 0.0, EMPTY_AUDIO
    return info.frames / info.samplerate, None


def resolve_label(
    code: str,
    table: Mapping[str, str | None],
    *,
    all_classes: bool,
    merge: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None]:
    """Map a corpus label code to a class name, or say why it is skipped.

    ``table`` maps every known code to a readable class name, or to ``None`` for "no
    agreement" codes that are never a class. ``merge`` renames codes first (IEMOCAP's
    ``exc`` → ``happy``). Without ``all_classes`` only :data:`PAPER_CLASSES` are kept.
    Returns ``(label, None)`` or ``(None, reason)``.
    """
    if code not in table:
        return None, f"{UNKNOWN_CODE}: {shown(code)}"
    name = (merge or {}).get(code, table[code])
    if name is None:
        return None, f"{NO_AGREEMENT}: {shown(code)}"
    if not all_classes and name not in PAPER_CLASSES:
        return None, f"{NOT_IN_CLASS_SET}: {shown(code)} ({shown(name)})"
    return name, None


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a folder, else raise :class:`DataError` naming it."""
    if not path.is_dir():
        raise DataError(f"{what} not found: {path}")
    return path


def first_existing(candidates: Iterable[Path], what: str) -> Path:
    """Return the first existing path; raise :class:`DataError` listing all tried."""
    tried = list(candidates)
    for candidate in tried:
        if candidate.exists():
            return candidate
    raise DataError(f"{what} not found; looked for {', '.join(str(p) for p in tried)}")


def sorted_files(folder: Path, pattern: str = "*.wav") -> list[Path]:
    """Files under ``folder`` matching ``pattern``, sorted, without hidden files.

    Sorting makes every reader independent of file-system order; hidden files (macOS
    ``._x.wav`` resource forks are common in copied releases) are not audio.
    """
    found = [p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith(".")]
    return sorted(found)


def add_named_files(
    result: ReadResult,
    wavs: Iterable[Path],
    parse: Callable[[str], tuple[str, str, str] | str | None],
    table: Mapping[str, str | None],
    *,
    all_classes: bool,
) -> None:
    """Add corpora whose label and speaker are in the file name (RAVDESS, EmoDB ...).

    ``parse(stem)`` returns ``(code, speaker, session)``, a skip reason (``str``), or
    ``None`` for a name outside the convention. A stem seen before (the same file copied
    twice in a release, common in re-packaged downloads) is a duplicate; the first one in
    sorted path order wins.
    """
    seen: set[str] = set()
    for wav in wavs:
        if wav.stem in seen:
            result.skip(DUPLICATE_FILE, wav)
            continue
        seen.add(wav.stem)
        parsed = parse(wav.stem)
        if parsed is None:
            result.skip(BAD_FILE_NAME, wav)
            continue
        if isinstance(parsed, str):
            result.skip(parsed, wav)
            continue
        code, speaker, session = parsed
        label, problem = resolve_label(code, table, all_classes=all_classes)
        if problem:
            result.skip(problem, wav)
            continue
        result.add_audio(wav, label, speaker=speaker, session=session)


def require_wavs(folder: Path, what: str) -> list[Path]:
    """All WAVs below ``folder`` (recursively, sorted); :class:`DataError` if there are none."""
    wavs = sorted_files(folder, "**/*.wav")
    if not wavs:
        raise DataError(f"no .wav files under {what} {folder}")
    return wavs


def count_unlabelled(result: ReadResult, audio: Mapping[str, Path], labelled: set[str]) -> None:
    """Count every audio file whose key has no label line as a skip."""
    for key in sorted(set(audio) - labelled):
        result.skip(AUDIO_WITHOUT_LABEL, audio[key])


__all__ = [
    "AUDIO_WITHOUT_LABEL",
    "BAD_FILE_NAME",
    "DUPLICATE",
    "DUPLICATE_FILE",
    "EMPTY_AUDIO",
    "LABEL_WITHOUT_AUDIO",
    "NOT_IN_CLASS_SET",
    "NO_AGREEMENT",
    "ReadResult",
    "UNKNOWN_CODE",
    "UNREADABLE_AUDIO",
    "add_named_files",
    "count_unlabelled",
    "first_existing",
    "probe_duration",
    "require_dir",
    "require_wavs",
    "resolve_label",
    "sorted_files",
]
