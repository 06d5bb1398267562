"""Speaker-independent folds: test / search / train / validation row indices per fold.

Protocols (``make_folds(protocol=...)``):

- ``session``: leave one session out (IEMOCAP 5 folds, MSP-IMPROV 6). Refused when a
  speaker appears in more than one session (that would not be speaker-independent).
- ``speaker``: leave one speaker out (IEMOCAP 10 folds).
- ``speaker_kfold``: speakers dealt into ``n_folds`` (default 5, or fewer when there are
  fewer speakers) folds of balanced size, largest speakers first; the seed breaks ties.
- ``official``: MSP-Podcast's ``split`` column: ``Train`` → search/train, ``Development``
  (or ``Validation``) → validation, ``Test1`` → test; one fold.
- ``emodarts_pairs``: the emoDARTS authors' IEMOCAP folds (see :func:`emodarts_pair_groups`):
  fold k holds out the male speaker of session k and the female of session k+1.
- ``auto``: ``session`` when there are at least 3 sessions, some session holds more than
  one speaker, and no speaker spans sessions; otherwise ``speaker_kfold``. (RAVDESS's
  one-actor "sessions" therefore get speaker k-fold, not 24 leave-one-actor-out folds.)

With ``n_folds`` below the number of sessions/speakers, ``session`` and ``speaker`` hold
out consecutive groups (in natural order) together.

Inside the training part, validation (model selection, never the test fold) is a
speaker-disjoint group of about ``validation_fraction`` of the utterances when there are
at least 3 training speakers, else a label-stratified utterance split; the rest is split
label-stratified into *search* (``search_fraction``, the paper's 70 %) and *train*
(retraining the derived model). Everything is seeded and independent of input order:
rows are put in path order before any random draw, and each fold has its own generator.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emodarts_nni.common.errors import DataError, suggest
from emodarts_nni.common.files import atomic_path
from emodarts_nni.data.manifest import Utterance, class_names

PROTOCOLS = ("auto", "session", "speaker", "speaker_kfold", "official", "emodarts_pairs")
PARTS = ("search", "train", "validation", "test")
DEFAULT_KFOLD = 5
#: Candidate speaker draws tried for the validation group (best class coverage and size).
_VALIDATION_DRAWS = 16


@dataclass(frozen=True, eq=False)
class FoldSplit:
    """Row indices (into the utterance list) of each part of one fold; arrays are read-only."""

    fold: int
    test_groups: tuple[str, ...]  # held-out sessions or speakers
    test: np.ndarray
    search: np.ndarray  # architecture search (paper: 70 % of the training part)
    train: np.ndarray  # retraining the derived model (paper: 30 %)
    validation: np.ndarray  # model selection (best epoch / early stop); never test
    protocol: str = ""

    def part(self, name: str) -> np.ndarray:
        """The indices of part ``name`` (one of :data:`PARTS`)."""
        if name not in PARTS:
            raise KeyError(name)
        return getattr(self, name)


def make_folds(
    utterances: Sequence[Utterance],
    *,
    protocol: str = "auto",
    n_folds: int | None = None,
    seed: int = 0,
    search_fraction: float = 0.7,
    validation_fraction: float = 0.15,
) -> list[FoldSplit]:
    """Speaker-independent folds of ``utterances`` under ``protocol`` (see module docstring).

    Raises :class:`DataError` for an unknown protocol, a protocol the data cannot support
    (one session, speakers spanning sessions, no ``split`` column), an ``n_folds`` larger
    than the number of groups, or a fold whose training part is too small.
    """
    utts = list(utterances)
    if not utts:
        raise DataError("no utterances to split")
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown split protocol {protocol!r}" + suggest(protocol, PROTOCOLS))
    if not 0.0 < search_fraction < 1.0:
        raise DataError(f"search_fraction must be between 0 and 1, got {search_fraction}")
    if not 0.0 <= validation_fraction < 1.0:
        raise DataError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    if n_folds is not None and n_folds < 1:
        raise DataError(f"n_folds must be positive, got {n_folds}")

    # Canonical order: every random draw walks rows in this order, never input order.
    order = sorted(range(len(utts)), key=lambda i: _row_key(utts[i]))
    rank = np.empty(len(utts), dtype=np.int64)
    rank[order] = np.arange(len(utts))
    labels = [u.label for u in utts]
    speakers = [u.speaker for u in utts]

    if protocol == "auto":
        protocol = choose_protocol(utts)
    if protocol == "official":
        return [_official_fold(utts, rank, seed, search_fraction, validation_fraction, n_folds)]

    held_out = _test_groups(utts, protocol, n_folds, seed)
    group_of = [u.session if protocol == "session" else u.speaker for u in utts]
    folds = []
    for k, groups in enumerate(held_out):
        wanted = set(groups)
        test = [i for i in order if group_of[i] in wanted]
        pool = [i for i in order if group_of[i] not in wanted]
        rng = np.random.default_rng([seed, k])
        validation = _carve_validation(pool, speakers, labels, rng, validation_fraction)
        taken = set(validation)
        rest = [i for i in pool if i not in taken]
        search, train = _stratified(rest, labels, search_fraction, rng, keep_both=True)
        folds.append(_fold(k, groups, test, search, train, validation, protocol, utts))
    return folds


def choose_protocol(utterances: Sequence[Utterance]) -> str:
    """The protocol ``auto`` resolves to (see the module docstring)."""
    speakers_per_session: dict[str, set[str]] = defaultdict(set)
    sessions_per_speaker: dict[str, set[str]] = defaultdict(set)
    for u in utterances:
        speakers_per_session[u.session].add(u.speaker)
        sessions_per_speaker[u.speaker].add(u.session)
    if (
        "" not in speakers_per_session
        and len(speakers_per_session) >= 3
        and any(len(s) > 1 for s in speakers_per_session.values())
        and all(len(s) == 1 for s in sessions_per_speaker.values())
    ):
        return "session"
    return "speaker_kfold"


def write_splits(
    folds: Sequence[FoldSplit], utterances: Sequence[Utterance], path: str | os.PathLike
) -> Path:
    """Write ``fold,part,path,speaker,session,label`` rows for every fold, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["fold", "part", "path", "speaker", "session", "label"])
        for fold in folds:
            for part in PARTS:
                for i in fold.part(part):
                    u = utterances[int(i)]
                    writer.writerow([fold.fold, part, u.path, u.speaker, u.session, u.label])
    return path


def split_summary(fold: FoldSplit, utterances: Sequence[Utterance]) -> str:
    """Utterance, speaker and per-class counts of each part of ``fold``, printable."""
    classes = class_names(utterances)
    groups = ", ".join(fold.test_groups[:8])
    if len(fold.test_groups) > 8:
        groups += f", ... ({len(fold.test_groups)} in all)"
    protocol = f" ({fold.protocol})" if fold.protocol else ""
    lines = [f"fold {fold.fold}{protocol}: test = {groups}"]
    header = ["part", "utterances", "speakers", *classes]
    rows = []
    for part in PARTS:
        idx = fold.part(part)
        per_class = Counter(utterances[int(i)].label for i in idx)
        n_speakers = len({utterances[int(i)].speaker for i in idx})
        rows.append([part, str(len(idx)), str(n_speakers), *(str(per_class[c]) for c in classes)])
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]
    for r in [header, *rows]:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "  ".join(cells))
    return "\n".join(lines)


def _row_key(u: Utterance) -> tuple[str, ...]:
    return (u.path, u.speaker, u.session, u.label, u.split)


def _natural_key(name: str) -> tuple:
    """``Session2`` before ``Session10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _test_groups(
    utts: list[Utterance], protocol: str, n_folds: int | None, seed: int
) -> list[tuple[str, ...]]:
    """The sessions or speakers held out in each fold."""
    if protocol == "session":
        missing = sum(1 for u in utts if not u.session)
        if missing:
            raise DataError(
                f"protocol 'session' needs a session for every utterance; {missing} have none "
                "(use --protocol speaker_kfold)"
            )
        spans: dict[str, set[str]] = defaultdict(set)
        for u in utts:
            spans[u.speaker].add(u.session)
        leaking = sorted(s for s, sessions in spans.items() if len(sessions) > 1)
        if leaking:
            raise DataError(
                f"protocol 'session' is not speaker-independent here: speaker {leaking[0]!r} "
                f"appears in sessions {', '.join(sorted(spans[leaking[0]], key=_natural_key))} "
                f"({len(leaking)} such speakers); use --protocol speaker or speaker_kfold"
            )
        groups = sorted({u.session for u in utts}, key=_natural_key)
        return _chunks(groups, n_folds, "session", "sessions")
    if protocol == EMODARTS_PAIRS:
        return emodarts_pair_groups(utts, n_folds)
    speakers = sorted({u.speaker for u in utts}, key=_natural_key)
    if protocol == "speaker":
        return _chunks(speakers, n_folds, "speaker", "speakers")
    # speaker_kfold: balanced by utterance count, largest speakers first, seed breaks ties.
    if len(speakers) < 2:
        raise DataError(f"protocol 'speaker_kfold' needs at least 2 speakers; found {speakers}")
    k = min(DEFAULT_KFOLD, len(speakers)) if n_folds is None else n_folds
    if not 2 <= k <= len(speakers):
        raise DataError(
            f"protocol 'speaker_kfold': n_folds={k} but there are {len(speakers)} speakers "
            "(need 2 <= n_folds <= speakers)"
        )
    size = Counter(u.speaker for u in utts)
    shuffled = [speakers[i] for i in np.random.default_rng(seed).permutation(len(speakers))]
    dealt = sorted(shuffled, key=lambda s: -size[s])  # stable: ties keep the seeded order
    folds: list[list[str]] = [[] for _ in range(k)]
    load = [0] * k
    for speaker in dealt:
        target = min(range(k), key=lambda j: (load[j], j))
        folds[target].append(speaker)
        load[target] += size[speaker]
    return [tuple(sorted(f, key=_natural_key)) for f in folds]


def _chunks(
    groups: list[str], n_folds: int | None, protocol: str, what: str
) -> list[tuple[str, ...]]:
    if len(groups) < 2:
        raise DataError(
            f"protocol {protocol!r} needs at least 2 {what}; found {len(groups)} "
            f"({', '.join(groups)}); use --protocol speaker_kfold"
        )
    k = len(groups) if n_folds is None else n_folds
    if not 2 <= k <= len(groups):
        raise DataError(
            f"protocol {protocol!r}: n_folds={k} but there are {len(groups)} {what} "
            f"(need 2 <= n_folds <= {len(groups)})"
        )
    return [tuple(chunk) for chunk in np.array_split(np.array(groups, dtype=object), k)]


def _official_fold(
    utts: list[Utterance],
    rank: np.ndarray,
    seed: int,
    search_fraction: float,
    validation_fraction: float,
    n_folds: int | None,
) -> FoldSplit:
    if n_folds not in (None, 1):
        raise DataError(f"protocol 'official' has exactly 1 fold; got n_folds={n_folds}")
    canonical = {"train": "train", "development": "dev", "validation": "dev", "test1": "test"}
    order = np.argsort(rank)
    part_of = [canonical.get(u.split.strip().lower(), "") for u in utts]
    found = {p for p in part_of if p}
    if not {"train", "test"} <= found:
        present = sorted({u.split for u in utts if u.split}) or ["none"]
        raise DataError(
            "protocol 'official' needs a split column with Train and Test1 rows "
            f"(MSP-Podcast); found {', '.join(present)}"
        )
    by_part = {p: [int(i) for i in order if part_of[i] == p] for p in ("train", "dev", "test")}
    rng = np.random.default_rng([seed, 0])
    labels = [u.label for u in utts]
    if by_part["dev"]:
        validation = by_part["dev"]
        pool = by_part["train"]
    else:  # no Development rows: carve validation from Train like the other protocols
        speakers = [u.speaker for u in utts]
        validation = _carve_validation(by_part["train"], speakers, labels, rng, validation_fraction)
        taken = set(validation)
        pool = [i for i in by_part["train"] if i not in taken]
    search, train = _stratified(pool, labels, search_fraction, rng, keep_both=True)
    return _fold(0, ("Test1",), by_part["test"], search, train, validation, "official", utts)


def _carve_validation(
    pool: list[int],
    speakers: list[str],
    labels: list[str],
    rng: np.random.Generator,
    fraction: float,
) -> list[int]:
    """Validation rows from the training ``pool``: whole speakers when there are >= 3."""
    if fraction <= 0 or not pool:
        return []
    pool_speakers = sorted({speakers[i] for i in pool})
    if len(pool_speakers) < 3:
        validation, _ = _stratified(pool, labels, fraction, rng, keep_both=False)
        return validation
    size = Counter(speakers[i] for i in pool)
    target = fraction * len(pool)
    classes = {labels[i] for i in pool}
    by_speaker: dict[str, set[str]] = defaultdict(set)
    for i in pool:
        by_speaker[speakers[i]].add(labels[i])
    cap = len(pool_speakers) - 2  # leave at least two speakers for search and train
    best: tuple | None = None
    for _ in range(_VALIDATION_DRAWS):
        # The shortest prefix of a random speaker order whose size is closest to target.
        drawn = [pool_speakers[j] for j in rng.permutation(len(pool_speakers))[:cap]]
        count, m, gap = 0, 1, float("inf")
        for n, speaker in enumerate(drawn, start=1):
            count += size[speaker]
            if abs(count - target) < gap:
                m, gap = n, abs(count - target)
            if count >= target:
                break
        chosen = set(drawn[:m])
        covered = set().union(*(by_speaker[s] for s in chosen))
        rest = set().union(*(by_speaker[s] for s in pool_speakers if s not in chosen))
        score = (len(classes - covered) + len(classes - rest), gap)
        if best is None or score < best[0]:
            best = (score, chosen)
    assert best is not None
    return [i for i in pool if speakers[i] in best[1]]


def _stratified(
    rows: list[int],
    labels: list[str],
    fraction: float,
    rng: np.random.Generator,
    *,
    keep_both: bool,
) -> tuple[list[int], list[int]]:
    """Split ``rows`` (canonical order) per label into ``fraction`` of them and the rest.

    Per-class shares are apportioned by largest remainder so the total matches
    ``fraction`` even when classes are tiny (ties broken by ``rng``). ``keep_both`` puts
    at least one row on each side, and one of every class with two or more rows.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in rows:
        by_label[labels[i]].append(i)
    names = sorted(by_label)
    sizes = np.array([len(by_label[c]) for c in names])
    quota = fraction * sizes
    low = np.where(keep_both & (sizes >= 2), 1, 0)
    high = np.where(keep_both & (sizes >= 2), sizes - 1, sizes)
    take = np.clip(np.floor(quota).astype(int), low, high)
    total = int(np.floor(fraction * len(rows) + 0.5))
    if len(rows) >= 2 and (keep_both or fraction > 0):
        total = min(max(total, 1), len(rows) - 1 if keep_both else len(rows))
    # Largest remainder first; a random permutation breaks ties reproducibly.
    tie = rng.permutation(len(names))
    while take.sum() != total:
        grow = take.sum() < total
        room = take < high if grow else take > low
        if not room.any():
            break
        remainder = quota - take
        candidates = [j for j in np.lexsort((tie, -remainder if grow else remainder)) if room[j]]
        take[candidates[0]] += 1 if grow else -1
    first: list[int] = []
    for j, label in enumerate(names):
        members = by_label[label]
        first.extend(members[m] for m in rng.permutation(len(members))[: take[j]])
    taken = set(first)
    return sorted(first), [i for i in rows if i not in taken]


def _fold(
    k: int,
    groups: tuple[str, ...],
    test: list[int],
    search: list[int],
    train: list[int],
    validation: list[int],
    protocol: str,
    utts: list[Utterance],
) -> FoldSplit:
    """Build a fold after checking it is usable and speaker-independent."""
    if not test:
        raise DataError(f"fold {k} ({protocol}): no test utterances for {', '.join(groups)}")
    if not search or not train:
        raise DataError(
            f"fold {k} ({protocol}): too few training utterances to split into search and "
            f"train ({len(search)} + {len(train)})"
        )
    parts = {"search": search, "train": train, "validation": validation}
    test_speakers = {utts[i].speaker for i in test}
    test_rows = set(test)
    for name, rows in parts.items():
        leaked = sorted(test_speakers & {utts[i].speaker for i in rows})
        if leaked or test_rows & set(rows):
            raise DataError(
                f"fold {k} ({protocol}) is not speaker-independent: test speaker(s) "
                f"{', '.join(leaked[:5]) or '?'} also in {name}"
            )
    if set(search) & set(train) or set(validation) & (set(search) | set(train)):
        raise DataError(f"fold {k} ({protocol}): search, train and validation overlap")

    def frozen(rows: list[int]) -> np.ndarray:
        array = np.array(sorted(rows), dtype=np.int64)
        array.setflags(write=False)
        return array

    return FoldSplit(
        fold=k,
        test_groups=tuple(groups),
        test=frozen(test),
        search=frozen(search),
        train=frozen(train),
        validation=frozen(validation),
        protocol=protocol,
    )


# ----------------------------------------------------------- the paper's IEMOCAP folds
#: ``splits.protocol`` of the emoDARTS authors' IEMOCAP folds.
EMODARTS_PAIRS = "emodarts_pairs"
_IEMOCAP_SPEAKER = re.compile(r"^Ses0?(\d+)([MF])$")


def emodarts_pair_groups(
    utterances: Sequence[Utterance], n_folds: int | None = None
) -> list[tuple[str, ...]]:
    """The held-out speakers of the authors' IEMOCAP folds: ``01_M+02_F``, ..., ``05_M+01_F``.

    Fold k holds out the male speaker of session k and the female speaker of session k+1
    (the last fold wraps round to session 1). This is speaker-independent but **not**
    session-independent: each held-out speaker's conversation partner (same session, other
    gender) stays in training. It exists so results can be set beside the paper's; the
    default protocol stays leave-one-session-out. Speakers must be named like IEMOCAP's
    (``Ses01M``, ``Ses01F``, ...); ``n_folds`` must be ``None`` or the number of sessions.
    """
    sessions: dict[int, dict[str, str]] = defaultdict(dict)
    for speaker in {u.speaker for u in utterances}:
        match = _IEMOCAP_SPEAKER.match(speaker)
        if match is None:
            raise DataError(
                f"protocol {EMODARTS_PAIRS!r} needs IEMOCAP speakers (Ses01M, Ses01F, ...); "
                f"got speaker {speaker!r}"
            )
        sessions[int(match.group(1))][match.group(2)] = speaker
    numbers = sorted(sessions)
    incomplete = [n for n in numbers if set(sessions[n]) != {"M", "F"}]
    if len(numbers) < 2 or incomplete:
        raise DataError(
            f"protocol {EMODARTS_PAIRS!r} needs at least 2 sessions with one male and one "
            f"female speaker each; sessions {numbers}, incomplete {incomplete}"
        )
    if n_folds is not None and n_folds != len(numbers):
        raise DataError(
            f"protocol {EMODARTS_PAIRS!r} has one fold per session ({len(numbers)}); "
            f"got n_folds={n_folds}"
        )
    return [
        (sessions[n]["M"], sessions[numbers[(i + 1) % len(numbers)]]["F"])
        for i, n in enumerate(numbers)
    ]


__all__ = [
    "PARTS",
    "PROTOCOLS",
    "FoldSplit",
    "EMODARTS_PAIRS",
    "choose_protocol",
    "emodarts_pair_groups",
    "make_folds",
    "split_summary",
    "write_splits",
]
