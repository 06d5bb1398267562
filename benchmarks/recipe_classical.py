"""The classical control under ``train`` vs ``speaker`` normalisation on both recipe corpora.

    PYTHONPATH=. python benchmarks/recipe_classical.py

Prints one JSON line per (corpus, normalisation): validation and test UA per fold of the
logistic regression of :mod:`emodarts_nni.training.classical` (fitted on search + train, C chosen on
validation). The table in docs/recipe.md comes from this.
"""

from __future__ import annotations

import json
import statistics
import warnings

#: (config, number of folds) of the two corpora of docs/recipe.md.
CORPORA = (("benchmarks/espeak_ravdess.yaml", 3), ("experiments/quickstart.yaml", 5))


def main() -> None:
    """Fit and score the classical control on every fold, both normalisations."""
    import numpy as np

    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.data import prepare_fold
    from emodarts_nni.training.classical import fit_classical, utterance_statistics
    from emodarts_nni.training.metrics import unweighted_accuracy

    warnings.filterwarnings("ignore")
    for path, n_folds in CORPORA:
        for norm in ("train", "speaker"):
            vals, tests = [], []
            for fold in range(n_folds):
                overrides = {
                    "splits.fold": fold,
                    "features.normalisation": norm,
                    "trainer.progress": False,
                    "webui.enabled": False,
                }
                data = prepare_fold(load_config(path, overrides), progress=False)
                s = {part: utterance_statistics(data.x[part]) for part in data.x}
                model, c, scores = fit_classical(
                    np.concatenate([s["search"], s["train"]]),
                    np.concatenate([data.y["search"], data.y["train"]]),
                    s["validation"],
                    data.y["validation"],
                )
                vals.append(scores[c])
                tests.append(unweighted_accuracy(data.y["test"], model.predict(s["test"])))
            print(
                json.dumps(
                    {
                        "corpus": path,
                        "norm": norm,
                        "val": [round(v, 3) for v in vals],
                        "test": [round(t, 3) for t in tests],
                        "val_mean": round(statistics.mean(vals), 3),
                        "test_mean": round(statistics.mean(tests), 3),
                        "test_sd": round(statistics.stdev(tests), 3),
                    }
                )
            )


if __name__ == "__main__":
    main()
