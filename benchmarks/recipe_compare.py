"""Which retraining recipe generalises to unseen speakers? Fixed models, recipes varied.

    python benchmarks/recipe_compare.py CONFIG OUT.jsonl [--folds 0,1,2] [--variants a,b]
        [--random 2] [--baselines cnn] [--epochs 15] [--patience 6]
    python benchmarks/recipe_compare.py --table OUT.jsonl [OUT2.jsonl ...]

For every fold of CONFIG (an experiment config) and every recipe variant (:data:`VARIANTS`,
overrides of the config's keys), the same models are retrained and evaluated: the study's
random architectures of the config's space (sample seeds ``seed * 1000 + r + 1``, as
``emodarts study``'s ``random_architectures`` control) and hand-designed baselines. No
search runs, so search noise cannot hide the recipe's effect. Each result (validation UA of
the best epoch, test UA, whether the test predictions collapse to one class) is appended as
one JSON line to OUT.jsonl; a rerun skips what is already there. ``--table`` prints the
Markdown tables of docs/recipe.md. Defaults are chosen by validation UA, never by test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

#: Recipe variants: name → config overrides (dotted keys). ``base`` is the quickstart's.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "speaker": {"features.normalisation": "speaker"},
    "alldata": {"retrain.train_parts": "search+train"},
    # as many gradient steps as the search+train variants, on the train part only
    "base+2xepochs": {"retrain.epochs": 20, "retrain.patience": 10},
    "speaker+2xepochs": {
        "features.normalisation": "speaker",
        "retrain.epochs": 20,
        "retrain.patience": 10,
    },
    "speaker+alldata": {
        "features.normalisation": "speaker",
        "retrain.train_parts": "search+train",
    },
    "speaker+alldata+augment": {
        "features.normalisation": "speaker",
        "retrain.train_parts": "search+train",
        "retrain.augment": {"time_masks": 2, "time_width": 8, "freq_masks": 2, "freq_width": 4},
    },
    "speaker+alldata+smooth": {
        "features.normalisation": "speaker",
        "retrain.train_parts": "search+train",
        "retrain.label_smoothing": 0.1,
    },
    "utterance+alldata": {
        "features.normalisation": "utterance",
        "retrain.train_parts": "search+train",
    },
    "speaker+alldata+reg": {
        "features.normalisation": "speaker",
        "retrain.train_parts": "search+train",
        "retrain.augment": {"time_masks": 2, "time_width": 8, "freq_masks": 2, "freq_width": 4},
        "retrain.label_smoothing": 0.1,
        "retrain.balance": "loss",
    },
}
#: A model "predicts one class" when this share of its predictions is one class.
COLLAPSE_SHARE = 0.95


def collapsed(pred: Any) -> bool:
    """Whether one class takes at least :data:`COLLAPSE_SHARE` of the predictions."""
    import numpy as np

    pred = np.asarray(pred)
    return bool(len(pred) and np.bincount(pred).max() >= COLLAPSE_SHARE * len(pred))


def run(args: argparse.Namespace) -> None:
    """Retrain and evaluate every (fold, variant, model) not yet in ``args.out``."""
    import numpy as np
    import torch

    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.data import prepare_fold
    from emodarts_nni.pipeline.retrain import retrain
    from emodarts_nni.pipeline.search_result import space_arguments
    from emodarts_nni.space.architecture import freeze, sample_architecture
    from emodarts_nni.training.baselines import build_baseline
    from emodarts_nni.training.metrics import unweighted_accuracy
    from emodarts_nni.training.module import predict_proba

    torch.set_num_threads(args.threads)
    done = set()
    if args.out.is_file():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["fold"], row["variant"], row["model"]))
    corpus = Path(args.config).stem
    common = {
        "webui.enabled": False,
        "trainer.progress": False,
        "trainer.accelerator": "cpu",
        "trainer.num_threads": args.threads,
        "retrain.epochs": args.epochs,
        "retrain.patience": args.patience,
    }
    models = [f"random-arch-{r}" for r in range(args.random)] + [
        f"baseline-{b}" for b in args.baselines
    ]
    data_cache: dict[tuple[int, str], Any] = {}
    for fold in args.folds:
        for variant in args.variants:
            overrides = {**common, "splits.fold": fold, **_flat(VARIANTS[variant])}
            cfg = load_config(args.config, overrides)
            key = (fold, cfg.features.normalisation)
            if all((fold, variant, m) in done for m in models):
                continue
            if key not in data_cache:
                data_cache.clear()  # one fold's arrays at a time
                data_cache[key] = prepare_fold(cfg, progress=False)
            data = data_cache[key]
            for model in models:
                if (fold, variant, model) in done:
                    continue
                if model.startswith("random-arch-"):
                    space = space_arguments(cfg, data)
                    arch = sample_architecture(space, cfg.seed * 1000 + int(model[12:]) + 1)

                    def build(space: Any = space, arch: Any = arch) -> Any:
                        return freeze(space, arch)
                else:
                    n_mfcc, frames = data.input_shape
                    sizes = {"n_mfcc": n_mfcc, "frames": frames, "n_classes": len(data.class_names)}

                    def build(name: str = model[len("baseline-") :], sizes: Any = sizes) -> Any:
                        return build_baseline(name, **sizes)

                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = retrain(cfg, build, data, root_dir=str(args.out.parent))
                val_pred = predict_proba(result.model, data.x["validation"]).argmax(axis=1)
                test_pred = predict_proba(result.model, data.x["test"]).argmax(axis=1)
                row = {
                    "corpus": corpus,
                    "fold": fold,
                    "variant": variant,
                    "model": model,
                    "val_ua": float(unweighted_accuracy(data.y["validation"], val_pred)),
                    "test_ua": float(unweighted_accuracy(data.y["test"], test_pred)),
                    "best_epoch": result.best_epoch,
                    "val_collapsed": collapsed(val_pred),
                    "test_collapsed": collapsed(test_pred),
                    "test_pred_counts": np.bincount(
                        test_pred, minlength=len(data.class_names)
                    ).tolist(),
                    "train_examples": int(len(data.training_arrays(cfg.retrain.train_parts)[1])),
                    "seconds": round(time.perf_counter() - started, 1),
                }
                with args.out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)


def _flat(overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested override values (``retrain.augment: {...}``) as dotted keys."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def table(paths: list[Path]) -> str:
    """Markdown: per corpus and model, variant × (val UA, test UA: mean ± sd over folds;
    per-fold test UA; single-class test predictions), then the selection table: validation
    UA per corpus and model, averaged over the corpora (only variants with every fold)."""
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines() if line]
    by: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by[(row["corpus"], row["model"], row["variant"])][row["fold"]] = row
    corpora = sorted({r["corpus"] for r in rows})
    models = sorted({r["model"] for r in rows})
    n_folds = {c: len({r["fold"] for r in rows if r["corpus"] == c}) for c in corpora}
    out = []
    selection: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for corpus in corpora:
        for model in models:
            present = [v for v in VARIANTS if by.get((corpus, model, v))]
            if not present:
                continue
            out.append(f"\n#### {corpus}, {model}\n")
            out.append(
                "| variant | folds | val UA | test UA | per-fold test UA | single-class test |"
            )
            out.append("|---|---|---|---|---|---|")
            for variant in present:
                folds = by[(corpus, model, variant)]
                order = sorted(folds)
                val = [folds[f]["val_ua"] for f in order]
                test = [folds[f]["test_ua"] for f in order]
                collapsed_folds = [str(f) for f in order if folds[f]["test_collapsed"]]
                per_fold = " / ".join(f"{t:.2f}" for t in test)
                out.append(
                    f"| {variant} | {len(order)} | {_ms(val)} | {_ms(test)} | {per_fold} | "
                    f"{', '.join(collapsed_folds) or 'none'} |"
                )
                if len(order) == n_folds[corpus]:
                    selection[(variant, model)][corpus] = statistics.mean(val)
    out.append("\n#### selection: validation UA, all folds, averaged over corpora\n")
    out.append("| variant | model | " + " | ".join(corpora) + " | mean |")
    out.append("|---|---|" + "---|" * (len(corpora) + 1))
    complete = {k: v for k, v in selection.items() if len(v) == len(corpora)}
    for (variant, model), vals in sorted(
        complete.items(), key=lambda kv: (kv[0][1], -statistics.mean(kv[1].values()))
    ):
        cells = " | ".join(f"{vals[c]:.3f}" for c in corpora)
        out.append(f"| {variant} | {model} | {cells} | {statistics.mean(vals.values()):.3f} |")
    return "\n".join(out)


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", nargs="?")
    parser.add_argument("out", nargs="*", type=Path)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--folds", default="0")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--random", type=int, default=2)
    parser.add_argument("--baselines", default="cnn")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.table:
        print(table([Path(args.config), *args.out]))
        return 0
    if len(args.out) != 1:
        parser.error("give CONFIG and one OUT.jsonl")
    args.out = args.out[0]
    args.folds = [int(f) for f in args.folds.split(",")]
    args.variants = args.variants.split(",")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    args.baselines = [b for b in args.baselines.split(",") if b]
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
