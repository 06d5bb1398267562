"""Which arms the study report compares, on which folds, and how (numpy only).

Pairs are **folds**: a fold's value is the exact mean of its cells' UA fractions, over its
seeds and (for ``random-arch``) its random architectures, so a fold counts once however
many seeds ran on it (:func:`fold_values`). Two arms tie on a fold when those fractions are
equal (:mod:`emodarts_nni.study.statistics`).

- The **primary** comparison is the one the study file names (``primary:``); it is given
  first and not adjusted.
- Every other comparison is **exploratory**: each searched arm against the random
  architectures' mean (same scope), the best baseline and the classical control, with
  Holm's adjustment over all of them.
- The **best baseline** of a corpus is the baseline arm with the highest mean *validation*
  UA (``val_ua`` of its cells' ``metrics.json``), never the test UA it is then compared on
  (:func:`best_baseline`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from emodarts_nni.study.arms import BASELINE_PREFIX, CLASSICAL_ARM, RANDOM_ARM, is_searched
from emodarts_nni.study.statistics import PairedResult, holm, mean_exact, paired


def exact_value(row: Mapping[str, Any]) -> Fraction:
    """A cell's test UA as an exact fraction (``ua_exact``; a row without one: its float)."""
    value = row.get("ua_exact")
    return value if isinstance(value, Fraction) else Fraction(float(row["ua"]))


def fold_values(rows: Sequence[Mapping[str, Any]]) -> dict[int, Fraction]:
    """``{fold: exact mean UA of the rows of that fold}`` (seeds and random architectures)."""
    by_fold: dict[int, list[Fraction]] = {}
    for row in rows:
        by_fold.setdefault(int(row["fold"]), []).append(exact_value(row))
    return {fold: mean_exact(values) for fold, values in sorted(by_fold.items())}


def select(
    rows: Sequence[Mapping[str, Any]], corpus: str, arm: str, scope: str | None = None
) -> list[Mapping[str, Any]]:
    """The rows of ``arm`` in ``corpus`` (and ``scope``, for arms that have one)."""
    return [
        r
        for r in rows
        if r["corpus"] == corpus and r["arm"] == arm and (scope is None or r["scope"] == scope)
    ]


@dataclass(frozen=True)
class BaselineChoice:
    """The best baseline of one corpus and what it was chosen on."""

    corpus: str
    best: str | None
    #: Mean validation UA of each baseline arm (``None``: a cell recorded none).
    validation_ua: Mapping[str, float | None]

    def describe(self) -> str:
        """One sentence for the report."""
        if not self.validation_ua:
            return f"{self.corpus}: no baseline"
        scores = ", ".join(
            f"{arm} {'no validation UA' if ua is None else f'{100 * ua:.2f}'}"
            for arm, ua in self.validation_ua.items()
        )
        if self.best is None:
            return (
                f"{self.corpus}: not chosen — no baseline recorded a validation UA in every "
                f"cell ({scores}), so no best-baseline comparison is made"
            )
        left_out = [arm for arm, ua in self.validation_ua.items() if ua is None]
        note = f"; left out for lacking a validation UA: {', '.join(left_out)}" if left_out else ""
        return f"{self.corpus}: {self.best} (mean validation UA %: {scores}{note})"


def best_baseline(rows: Sequence[Mapping[str, Any]], corpus: str) -> BaselineChoice:
    """The baseline arm of ``corpus`` with the highest mean validation UA over folds.

    A fold's validation UA is the mean over its cells (seeds); a baseline any of whose cells
    lacks ``val_ua`` is not a candidate. Equal scores go to the first name in sort order.
    """
    arms = sorted(
        {r["arm"] for r in rows if r["corpus"] == corpus and r["arm"].startswith(BASELINE_PREFIX)}
    )
    scores: dict[str, float | None] = {}
    for arm in arms:
        members = select(rows, corpus, arm)
        if any(r.get("val_ua") is None for r in members):
            scores[arm] = None
            continue
        by_fold: dict[int, list[float]] = {}
        for r in members:
            by_fold.setdefault(int(r["fold"]), []).append(float(r["val_ua"]))
        scores[arm] = float(np.mean([np.mean(v) for v in by_fold.values()]))
    candidates = [arm for arm in arms if scores[arm] is not None]
    best = max(candidates, key=lambda arm: scores[arm], default=None)  # first of equals
    return BaselineChoice(corpus, best, scores)


@dataclass(frozen=True)
class Comparison:
    """One arm against one reference on the folds both have (UA, exact per-fold values)."""

    corpus: str
    scope: str
    arm: str
    #: The reference arm: ``random-arch``, ``baseline:NAME``, ``classical`` or a searched arm.
    reference: str
    #: How the report names the reference (``random-arch mean``, ``best baseline (...)``).
    label: str
    result: PairedResult
    primary: bool = False
    #: Holm-adjusted p over the exploratory comparisons (``None`` for the primary one).
    p_adjusted: float | None = None
    #: The reference's scope when it differs from the arm's (a primary ``against_scope``).
    reference_scope: str | None = None

    @property
    def folds(self) -> tuple[int, ...]:
        """The paired folds."""
        return self.result.folds

    @property
    def differences(self) -> tuple[float, ...]:
        """Arm UA − reference UA per fold (floats of the exact differences)."""
        return self.result.differences

    @property
    def n(self) -> int:
        """Number of paired folds."""
        return self.result.n

    @property
    def wins(self) -> int:
        """Folds on which the arm's exact UA is higher."""
        return self.result.wins

    @property
    def ties(self) -> int:
        """Folds on which the two exact UAs are equal."""
        return self.result.ties

    @property
    def losses(self) -> int:
        """Folds on which the arm's exact UA is lower."""
        return self.result.losses

    @property
    def mean_difference(self) -> float:
        """Mean UA difference over the paired folds."""
        return self.result.mean_difference

    @property
    def p_value(self) -> float | None:
        """Exact two-sided Wilcoxon p; ``None`` when every fold is tied."""
        return self.result.p_value


def _reference_rows(
    rows: Sequence[Mapping[str, Any]], corpus: str, scope: str, reference: str
) -> list[Mapping[str, Any]]:
    """Random architectures and searched arms are taken from ``scope``; baselines and the
    classical control have none."""
    has_scope = reference == RANDOM_ARM or is_searched(reference)
    return select(rows, corpus, reference, scope if has_scope else None)


def _label(reference: str, best: str | None, scope: str | None = None) -> str:
    if reference == RANDOM_ARM:
        label = f"{RANDOM_ARM} mean"
    elif reference == best:
        label = f"best baseline ({best})"
    else:
        label = reference
    return label if scope is None else f"{label} of scope {scope}"


def compare(
    rows: Sequence[Mapping[str, Any]],
    corpus: str,
    scope: str,
    arm: str,
    reference: str,
    label: str,
    *,
    primary: bool = False,
    reference_scope: str | None = None,
) -> Comparison | None:
    """``arm`` (in ``scope``) against ``reference`` (in ``reference_scope``, by default
    ``scope``) on their common folds; ``None`` if none."""
    mine = fold_values(select(rows, corpus, arm, scope))
    theirs = fold_values(_reference_rows(rows, corpus, reference_scope or scope, reference))
    if not set(mine) & set(theirs):
        return None
    return Comparison(
        corpus,
        scope,
        arm,
        reference,
        label,
        paired(mine, theirs),
        primary,
        reference_scope=reference_scope,
    )


def comparisons(
    rows: Sequence[Mapping[str, Any]], primary: Mapping[str, Any] | None = None
) -> list[Comparison]:
    """The primary comparison (when named and paired) first, then the exploratory ones.

    ``primary`` is the study's ``{arm, against, scope, corpus, against_scope}``
    (``study.json``; a missing scope or corpus matches the arm's first; ``against_scope``
    takes the reference from another scope). The exploratory ones are every searched arm
    against the random architectures' mean (same scope), the best baseline and the classical
    control, except the primary pair, with Holm-adjusted p-values (a comparison whose folds
    all tie counts as p = 1).
    """
    out: list[Comparison] = []
    key = None
    if primary:
        arm, against = str(primary["arm"]), str(primary["against"])
        places = [
            (r["corpus"], r["scope"])
            for r in rows
            if r["arm"] == arm
            and primary.get("corpus") in (None, r["corpus"])
            and primary.get("scope") in (None, r["scope"])
        ]
        if places:
            corpus, scope = places[0]
            best = best_baseline(rows, corpus).best
            other = primary.get("against_scope")
            found = compare(
                rows,
                corpus,
                scope,
                arm,
                against,
                _label(against, best, other),
                primary=True,
                reference_scope=other,
            )
            if found is not None:
                out.append(found)
                key = (corpus, scope, arm, against) if other is None else None
    exploratory: list[Comparison] = []
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        best = best_baseline(rows, corpus).best
        references = [RANDOM_ARM, *([best] if best else []), CLASSICAL_ARM]
        searched = dict.fromkeys(
            (r["scope"], r["arm"]) for r in rows if r["corpus"] == corpus and is_searched(r["arm"])
        )
        for scope, arm in searched:
            for reference in references:
                if (corpus, scope, arm, reference) == key:
                    continue
                found = compare(rows, corpus, scope, arm, reference, _label(reference, best))
                if found is not None:
                    exploratory.append(found)
    adjusted = holm([1.0 if c.p_value is None else c.p_value for c in exploratory])
    out += [replace(c, p_adjusted=p) for c, p in zip(exploratory, adjusted, strict=True)]
    return out


__all__ = [
    "BaselineChoice",
    "Comparison",
    "best_baseline",
    "compare",
    "comparisons",
    "exact_value",
    "fold_values",
    "select",
]
