"""SER metrics: UA (unweighted accuracy = mean per-class recall), WA (accuracy), macro-F1,
and the single-class check (a model that predicts one class for nearly every utterance)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score

#: Share of utterances given one class from which a model counts as a single-class
#: predictor: 95 %, so one or two stray predictions on a small test part do not hide it.
SINGLE_CLASS_SHARE = 0.95


def unweighted_accuracy(
    y_true: Sequence[int], y_pred: Sequence[int], n_classes: int | None = None
) -> float:
    """UA: the mean of per-class recalls over the classes present in ``y_true``."""
    if len(y_true) == 0:
        return float("nan")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes predicted but absent from y_true
        return float(balanced_accuracy_score(y_true, y_pred))


def weighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """WA: plain accuracy."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def single_class(
    y_pred: Sequence[int], class_names: Sequence[str], share: float = SINGLE_CLASS_SHARE
) -> str | None:
    """The class predicted for at least ``share`` of the utterances, or ``None``.

    A degenerate model (the majority class for everything) scores UA = 1/n_classes and
    looks like a poor model, not a broken one; this names it. ``None`` for no utterances.
    """
    y_pred = np.asarray(y_pred)
    if len(y_pred) == 0:
        return None
    counts = np.bincount(y_pred, minlength=len(class_names))
    top = int(counts.argmax())
    if counts[top] / len(y_pred) < share:
        return None
    return class_names[top] if top < len(class_names) else str(top)


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]
) -> dict[str, Any]:
    """UA, WA, macro-F1, per-class recall, the confusion matrix (rows = true class) and
    ``single_class``: the class predicted for nearly every utterance (:func:`single_class`),
    or ``None``."""
    labels = list(range(len(class_names)))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    recall = {
        name: (float(cm[i, i] / support[i]) if support[i] else None)
        for i, name in enumerate(class_names)
    }
    return {
        "ua": unweighted_accuracy(y_true, y_pred),
        "wa": weighted_accuracy(y_true, y_pred),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "per_class_recall": recall,
        "confusion_matrix": cm.tolist(),
        "class_names": list(class_names),
        "n_utterances": int(len(y_true)),
        "single_class": single_class(y_pred, class_names),
    }
