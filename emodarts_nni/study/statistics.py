"""Paired statistics over folds, as a reviewer expects them (light: numpy only).

A study compares arms **by fold**: each fold is one pair, whatever the number of seeds or
random architectures in it (their values are averaged first — pairing fold × seed would
count one speaker split several times, pseudo-replication). On those pairs:

- **wins / ties / losses** from exact values. UA is the mean per-class recall of a
  confusion matrix of integer counts, so :func:`exact_ua` gives it as a fraction and two
  arms tie when their fractions are equal, not when their float means differ by 1e-16.
- the **exact two-sided Wilcoxon signed-rank p** (:func:`signed_rank_p`): zero differences
  dropped (Wilcoxon's rule), tied magnitudes get mid-ranks, and the null distribution is
  enumerated exactly over the 2^n sign patterns (a subset-sum count, so any n is exact).
  With n non-zero pairs the smallest two-sided p is 2/2^n (:func:`smallest_p`): n ≤ 5
  folds can never reach p < 0.05, and the report says so.
- a **bootstrap 95 % CI of the mean paired difference** (:func:`bootstrap_ci`), resampling
  folds with replacement (percentile interval, a fixed seed so a report is reproducible).
- **Holm's step-down adjustment** (:func:`holm`) over the exploratory comparisons; the
  primary comparison named in the study file is reported unadjusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: Resamples of the bootstrap CI (folds resampled with replacement).
BOOTSTRAP_RESAMPLES = 10_000
#: Seed of the bootstrap, so a report recomputed from the same folds is identical.
BOOTSTRAP_SEED = 0
#: The significance level the report's wording refers to.
ALPHA = 0.05


def exact_ua(confusion: Sequence[Sequence[int]]) -> Fraction:
    """Unweighted accuracy (mean recall over the classes present) as an exact fraction.

    ``confusion[i][j]`` counts utterances of true class ``i`` predicted as ``j``. Classes
    with no utterance are left out, as scikit-learn's ``balanced_accuracy_score`` does.
    """
    recalls = []
    for i, row in enumerate(confusion):
        support = sum(int(v) for v in row)
        if support:
            recalls.append(Fraction(int(row[i]), support))
    if not recalls:
        raise ValueError("a confusion matrix without any utterance has no UA")
    return sum(recalls, Fraction(0)) / len(recalls)


def mean_exact(values: Sequence[Fraction]) -> Fraction:
    """The exact mean of fractions (a fold's value over its seeds or random architectures)."""
    if not values:
        raise ValueError("the mean of no values")
    return sum(values, Fraction(0)) / len(values)


def smallest_p(n: int) -> float:
    """The smallest exact two-sided Wilcoxon p that ``n`` non-zero pairs can give: 2/2^n."""
    return 1.0 if n <= 0 else min(1.0, 2.0 / 2**n)


def signed_rank_p(differences: Sequence[float | Fraction]) -> float | None:
    """The exact two-sided Wilcoxon signed-rank p of paired ``differences``.

    Zeros are dropped; equal magnitudes share their mid-rank. The statistic W+ (the sum of
    the ranks of the positive differences) is compared with its exact null distribution:
    every sign pattern equally likely. ``None`` when no difference is non-zero.
    """
    nonzero = [d for d in differences if d != 0]
    n = len(nonzero)
    if n == 0:
        return None
    magnitudes = sorted(abs(d) for d in nonzero)
    # mid-ranks, doubled so they are integers
    doubled: dict[float | Fraction, int] = {}
    i = 0
    while i < n:
        j = i
        while j + 1 < n and magnitudes[j + 1] == magnitudes[i]:
            j += 1
        doubled[magnitudes[i]] = i + j + 2  # 2 × mean of the 1-based ranks i+1 .. j+1
        i = j + 1
    ranks = [doubled[abs(d)] for d in nonzero]
    w_plus = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    total = sum(ranks)
    counts = np.zeros(total + 1, dtype=object)  # exact integer counts of each subset sum
    counts[0] = 1
    for r in ranks:
        counts[r:] = counts[r:] + counts[: total + 1 - r].copy()
    centre = Fraction(total, 2)
    observed = abs(Fraction(w_plus) - centre)
    extreme = sum(int(c) for s, c in enumerate(counts) if abs(Fraction(s) - centre) >= observed)
    return min(1.0, extreme / 2**n)


def bootstrap_ci(
    differences: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean of ``differences`` (folds resampled); ``None``
    for fewer than two pairs."""
    values = np.asarray([float(d) for d in differences], dtype=float)
    if values.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in the input order (``None`` stays ``None``)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class PairedResult:
    """One arm against one reference over the folds both have."""

    folds: tuple[int, ...]
    #: Per-fold arm − reference, in the folds' order (floats of the exact differences).
    differences: tuple[float, ...]
    wins: int
    ties: int
    losses: int
    mean_difference: float
    ci: tuple[float, float] | None
    p_value: float | None
    #: The smallest p these pairs could give (2/2^n over the non-tied folds).
    p_floor: float

    @property
    def n(self) -> int:
        """The number of paired folds."""
        return len(self.folds)

    @property
    def can_reach_alpha(self) -> bool:
        """Whether p < :data:`ALPHA` is possible at all with these folds."""
        return self.p_floor < ALPHA


def paired(arm: Mapping[int, Fraction], reference: Mapping[int, Fraction]) -> PairedResult:
    """Compare ``arm`` with ``reference``, both ``{fold: exact value}``, on common folds."""
    folds = tuple(sorted(set(arm) & set(reference)))
    exact = [arm[f] - reference[f] for f in folds]
    differences = tuple(float(d) for d in exact)
    wins = sum(d > 0 for d in exact)
    losses = sum(d < 0 for d in exact)
    ties = len(exact) - wins - losses
    mean = float(sum(exact, Fraction(0)) / len(exact)) if exact else math.nan
    p_value = signed_rank_p(exact)
    return PairedResult(
        folds=folds,
        differences=differences,
        wins=wins,
        ties=ties,
        losses=losses,
        mean_difference=mean,
        ci=bootstrap_ci(differences),
        p_value=p_value,
        p_floor=smallest_p(wins + losses),
    )


__all__ = [
    "ALPHA",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "PairedResult",
    "bootstrap_ci",
    "exact_ua",
    "holm",
    "mean_exact",
    "paired",
    "signed_rank_p",
    "smallest_p",
]
