"""The study report's statistics (``emodarts_nni.study.statistics``) against references:
scikit-learn's balanced accuracy, SciPy's exact Wilcoxon test, Holm by hand, a numpy
bootstrap written out."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import wilcoxon
from sklearn.metrics import balanced_accuracy_score

from emodarts_nni.study.statistics import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    bootstrap_ci,
    exact_ua,
    holm,
    mean_exact,
    paired,
    signed_rank_p,
    smallest_p,
)
from emodarts_nni.training.metrics import classification_report


def test_exact_ua_is_the_mean_recall_of_the_classes_present():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=57)
    y_pred = np.where(rng.random(57) < 0.6, y_true, rng.integers(0, 4, size=57))
    report = classification_report(y_true, y_pred, ["ang", "hap", "neu", "sad"])
    ua = exact_ua(report["confusion_matrix"])
    assert isinstance(ua, Fraction)
    assert float(ua) == pytest.approx(report["ua"], abs=1e-15)
    assert float(ua) == pytest.approx(balanced_accuracy_score(y_true, y_pred), abs=1e-15)
    # a class nobody spoke is left out (as scikit-learn does), even when it is predicted
    assert exact_ua([[3, 1, 0], [0, 0, 0], [1, 1, 2]]) == Fraction(1, 2) * (
        Fraction(3, 4) + Fraction(2, 4)
    )
    with pytest.raises(ValueError):
        exact_ua([[0, 0], [0, 0]])


def test_exact_values_tie_where_float_means_do_not():
    seeds = [exact_ua([[2, 8], [10, 0]]), exact_ua([[4, 6], [10, 0]])]  # 1/10, 2/10
    architectures = [exact_ua([[3, 7], [10, 0]])] * 4  # 3/20 each
    assert mean_exact(seeds) == mean_exact(architectures) == Fraction(3, 20)
    assert np.mean([float(v) for v in seeds]) != np.mean([float(v) for v in architectures])
    with pytest.raises(ValueError):
        mean_exact([])


@pytest.mark.parametrize("n", range(1, 13))
def test_signed_rank_p_is_scipys_exact_p_without_ties(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        differences = rng.permutation(np.arange(1, n + 1)) * rng.choice([-1, 1], n) / 100
        expected = wilcoxon(differences, method="exact").pvalue
        assert signed_rank_p(differences) == pytest.approx(expected, abs=1e-12)


def test_signed_rank_p_drops_zeros_and_mid_ranks_equal_magnitudes():
    # magnitudes 1, 1, 2, 2, 3 -> mid-ranks 1.5, 1.5, 3.5, 3.5, 5; W+ = 13.5 of 15.
    # Of the 32 sign patterns, 3 give W+ <= 1.5 and 3 give W+ >= 13.5: p = 6/32.
    differences = [Fraction(1), Fraction(-1), Fraction(2), Fraction(2), Fraction(3)]
    assert signed_rank_p(differences) == pytest.approx(6 / 32)
    assert signed_rank_p([0, 0, *differences]) == signed_rank_p(differences)
    assert signed_rank_p([1.0, -1.0, 2.0, 2.0, 3.0]) == pytest.approx(6 / 32)
    assert signed_rank_p([0, Fraction(0)]) is None


def test_smallest_p_says_when_alpha_is_out_of_reach():
    assert smallest_p(5) == 2 / 32 > ALPHA
    assert smallest_p(6) == 2 / 64 < ALPHA
    assert smallest_p(0) == 1.0 and smallest_p(1) == 1.0
    assert signed_rank_p([0.1, 0.2, 0.3, 0.4, 0.5]) == smallest_p(5)  # every sign positive


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4 x 0.005, 3 x 0.01, 2 x 0.03, max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_bootstrap_ci_resamples_folds_with_a_fixed_seed():
    differences = [0.05, -0.01, 0.03, 0.02, 0.04]
    values = np.asarray(differences)
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, 5, size=(BOOTSTRAP_RESAMPLES, 5))
    expected = np.quantile(values[draws].mean(axis=1), [0.025, 0.975])
    assert bootstrap_ci(differences) == pytest.approx(tuple(expected))
    assert bootstrap_ci(differences) == bootstrap_ci(differences)
    assert bootstrap_ci([0.02, 0.02, 0.02]) == pytest.approx((0.02, 0.02))
    assert bootstrap_ci([0.1]) is None


def test_paired_counts_exact_wins_ties_and_losses_on_common_folds():
    arm = {0: Fraction(3, 20), 1: Fraction(11, 20), 2: Fraction(12, 20), 3: Fraction(7, 20)}
    reference = {0: Fraction(3, 20), 1: Fraction(10, 20), 2: Fraction(10, 20), 3: Fraction(1, 2)}
    reference[9] = Fraction(1, 2)  # a fold the arm has not finished: not paired
    result = paired(arm, reference)
    assert result.folds == (0, 1, 2, 3)
    assert (result.wins, result.ties, result.losses) == (2, 1, 1)
    assert result.differences == (0.0, 0.05, 0.1, -0.15)
    assert result.mean_difference == pytest.approx(0.0)
    assert result.p_value == pytest.approx(1.0)  # ranks 1, 2 up, 3 down: W+ at the centre
    assert result.p_floor == smallest_p(3) and not result.can_reach_alpha
    assert result.ci == bootstrap_ci(result.differences)
    empty = paired(arm, {7: Fraction(1)})
    assert empty.n == 0 and empty.p_value is None and empty.ci is None
