"""The classical control: logistic regression on utterance-level MFCC statistics.

What a study compares every searched architecture with besides the hand-designed baselines:
no neural network, no search. Each utterance becomes the per-coefficient mean and standard
deviation over frames of the same cached (and identically normalised) MFCC map the networks
see, so ``2 * n_mfcc`` numbers. (No separate RMS: the 0th MFCC already carries the frame
energy, and the cached map holds no waveform to compute it from.)

The model is fitted on the fold's training speakers (its *search* and *train* parts
together); the regularisation strength ``C`` is chosen on the *validation* part (best UA,
ties to the stronger regularisation) and never on test. The result is a normal run folder:
``config.yaml``, ``environment.json``, ``manifest.csv``, ``splits.csv``, ``predictions.csv``
and ``metrics.json`` (``ua``, ``wa``, ``macro_f1``, ``per_class_recall``,
``confusion_matrix``, ``parameters`` = coefficients + intercepts, ...).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.config.experiment import ExperimentConfig
from emodarts_nni.pipeline.runfolder import RunFolder

log = logging.getLogger("emodarts")

#: Candidate inverse regularisation strengths, strongest regularisation first.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
#: The arm name of the classical control (``metrics.json`` ``strategy`` and ``scope``).
CLASSICAL = "classical"


def utterance_statistics(x: np.ndarray) -> np.ndarray:
    """``(n, n_mfcc, frames)`` → ``(n, 2 n_mfcc)``: per-coefficient mean, then std, over frames."""
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([x.mean(axis=2), x.std(axis=2)], axis=1)


def _fit(c: float, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed)
    )
    return model.fit(x, y)


def fit_classical(
    x_fit: np.ndarray,
    y_fit: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int = 0,
    c_grid: tuple[float, ...] = C_GRID,
) -> tuple[Any, float, dict[float, float]]:
    """Fit on ``x_fit`` once per ``C``; keep the best validation UA: ``(model, C, {C: UA})``.

    Without validation rows ``C = 1`` is used (and reported as the only candidate).
    """
    from emodarts_nni.training.metrics import unweighted_accuracy

    if len(y_val) == 0:
        return _fit(1.0, x_fit, y_fit, seed), 1.0, {}
    scores: dict[float, float] = {}
    best = None
    for c in c_grid:
        model = _fit(c, x_fit, y_fit, seed)
        scores[c] = unweighted_accuracy(y_val, model.predict(x_val))
        if best is None or scores[c] > scores[best[1]]:
            best = (model, c)
    assert best is not None
    return best[0], best[1], scores


def run_classical(cfg: ExperimentConfig, run_dir: Path, *, reporter: Any = None) -> dict[str, Any]:
    """Run the classical control on ``cfg``'s fold in ``run_dir``; returns the metrics.

    A finished folder (``metrics.json`` present) is returned as it is, never recomputed.
    ``reporter`` (a :class:`~emodarts_nni.nni_runtime.TrialReporter`) gets each candidate's
    validation UA as an intermediate metric and the test UA as the final one.
    """
    from emodarts_nni.pipeline.data import prepare_fold
    from emodarts_nni.pipeline.run import write_predictions

    folder = RunFolder(run_dir)
    if folder.metrics.is_file():
        metrics = folder.read_metrics()
        if reporter is not None:
            reporter.report_final(float(metrics["ua"]), wa=metrics["wa"])
        return metrics
    folder.start(cfg)
    started = time.monotonic()
    data = prepare_fold(cfg, run_dir, progress=cfg.trainer.progress)
    stats = {part: utterance_statistics(data.x[part]) for part in data.x}
    x_fit = np.concatenate([stats["search"], stats["train"]])
    y_fit = np.concatenate([data.y["search"], data.y["train"]])
    model, c, scores = fit_classical(
        x_fit, y_fit, stats["validation"], data.y["validation"], seed=cfg.seed
    )
    if reporter is not None:
        for epoch, candidate in enumerate(scores):
            reporter.report_intermediate(scores[candidate], epoch=epoch, C=candidate)

    probs = _predict(model, stats["test"], len(data.class_names))
    report = _report(data, probs)
    write_predictions(folder.predictions, data, probs)
    linear = model[-1]
    metrics = {
        **report,
        "parameters": int(linear.coef_.size + linear.intercept_.size),
        "search_seconds": 0.0,
        "retrain_seconds": round(time.monotonic() - started, 3),
        "regularisation_c": c,
        "validation_ua_by_c": {str(k): v for k, v in scores.items()},
        "val_ua": scores.get(c),
        "fold": data.fold.fold,
        "test_groups": list(data.fold.test_groups),
        "strategy": CLASSICAL,
        "scope": CLASSICAL,
        "corpus": cfg.corpus.kind,
        "seed": cfg.seed,
    }
    folder.write_metrics(metrics)
    if reporter is not None:
        reporter.report_final(float(metrics["ua"]), wa=metrics["wa"], macro_f1=metrics["macro_f1"])
    log.info("classical control: C=%g test UA %.4f WA %.4f", c, metrics["ua"], metrics["wa"])
    return metrics


def _predict(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities over all ``n_classes`` (a class absent from training gets 0)."""
    probs = np.zeros((len(x), n_classes))
    probs[:, model.classes_] = model.predict_proba(x)
    return probs


def _report(data: Any, probs: np.ndarray) -> dict[str, Any]:
    from emodarts_nni.training.metrics import classification_report

    return classification_report(data.y["test"], probs.argmax(axis=1), data.class_names)


__all__ = ["C_GRID", "CLASSICAL", "fit_classical", "run_classical", "utterance_statistics"]
