"""How many recordings ``emodarts predict --same-speaker`` needs before a speaker's own
statistics stop hurting (issue #22 item 7).

A model trained with ``features.normalisation: speaker`` saw every speaker z-scored with the
mean and std of all that speaker's utterances. At prediction, ``--same-speaker`` fits those
statistics on the recordings given; with few recordings they are a poor estimate (two
utterances: a mean made of two emotions, or one), and the answer can be worse than with the
training statistics saved in the checkpoint, the fallback without ``--same-speaker``.

For every run folder given (a trained run with a ``checkpoint.pt`` of a per-speaker model,
its ``manifest.csv`` and ``predictions.csv``), each held-out speaker's utterances are scored
three ways, on the very same utterances:

* **own N**: random subsets of N of the speaker's utterances (fixed seeds), each subset
  normalised with its own statistics (:meth:`Predictor.speaker_statistics`'s fit), every
  utterance of the subset scored; for N = 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64 below
  the speaker's count, enough subsets that about ``--draws`` utterances are scored per N
  (at least ``--min-subsets`` subsets);
* **training**: the training statistics saved in the checkpoint (``Predictor.normalisation``);
* **all**: the statistics of all the speaker's utterances (what the run's test saw: their UA
  must equal the run's ``metrics.json`` UA, checked).

Accuracy and UA (mean per-class recall) are pooled over every scored utterance of a run for
one N, then averaged over runs (each run weighs the same). ``no worse in`` counts the runs
(held-out speakers of a run) whose own-statistics accuracy is at least their
training-statistics accuracy; ``subsets lost`` is the share of subsets whose accuracy with
own statistics is below that with the training statistics on the same files.

The rule, fixed before the first measurement: **the minimum is the smallest N of the grid
at which the mean accuracy with own statistics is no worse than with the training
statistics (on the same utterances), and stays so for every larger N measured** (the second
half keeps one lucky N from choosing it; where the curve is monotone both readings agree).

Features come from the feature cache of the runs' manifest (:func:`extract_features`, as
training read them; missing ones would be extracted, one worker); nothing is trained. One
torch thread.

    python benchmarks/same_speaker_minimum.py runs/study_evidence_transductive/darts_fold-*_seed-* \\
        --json benchmarks/results-same-speaker-minimum.json

(the 20 runs of ``emodarts study experiments/study_evidence_transductive.yaml --out
runs/study_evidence_transductive``: leave one speaker out on the embedded corpus, 10 folds
x 2 seeds, 80 utterances a held-out speaker.)

Measured (those 20 runs, about 100 s on one thread of a shared 2-core machine): own
statistics lose 25.6 and 12.6 accuracy points to the training statistics at N = 1 and 2,
tie at 3 (-0.3), gain +1.1 at 4, +9.0 at 6, +12.8 at 12, +18.1 with all 80: the minimum is
4, ``MIN_SPEAKER_RECORDINGS`` in ``emodarts_nni/inference/predict.py``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from emodarts_nni.data.features import (
    apply_normalisation,
    extract_features,
    fit_normalisation,
)
from emodarts_nni.data.manifest import read_manifest
from emodarts_nni.inference.predict import Predictor
from emodarts_nni.training.metrics import unweighted_accuracy

#: Subset sizes tried (those below a speaker's utterance count), then all of them.
GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def raw_features(run: Path, predictor: Predictor) -> dict[str, np.ndarray]:
    """Unnormalised features of every utterance of the run's manifest, by path."""
    utterances = read_manifest(run / "manifest.csv")
    features = extract_features(utterances, predictor.feature_config, workers=1, progress=False)
    return {u.path: np.asarray(features.features[i]) for i, u in enumerate(features.utterances)}


def predictions(predictor: Predictor, x: np.ndarray) -> np.ndarray:
    """The predicted class index of each (already normalised) map."""
    from emodarts_nni.training.module import predict_proba  # what Predictor scores with

    return np.argmax(predict_proba(predictor.model, x, batch_size=256), axis=1)


def speaker_table(
    predictor: Predictor,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    draws: int,
    min_subsets: int,
) -> dict[str, Any]:
    """Accuracy and UA for one speaker: own statistics of N-subsets, training, all."""
    n = len(x)
    if predictor.normalisation is None:
        raise SystemExit("the checkpoint has no training statistics to compare with")
    train = predictions(predictor, apply_normalisation(x, predictor.normalisation))
    everything = predictions(predictor, apply_normalisation(x, fit_normalisation(x, range(n))))
    rows: dict[str, Any] = {}
    for size in [s for s in GRID if s < n] + [n]:
        subsets = 1 if size == n else max(min_subsets, math.ceil(draws / size))
        rng = np.random.default_rng([seed, size])
        chosen = [
            np.arange(n) if size == n else rng.choice(n, size=size, replace=False)
            for _ in range(subsets)
        ]
        maps = [apply_normalisation(x[c], fit_normalisation(x[c], range(size))) for c in chosen]
        own = predictions(predictor, np.concatenate(maps))
        drawn = np.concatenate(chosen)
        truth = y[drawn]
        own_ok = (own == truth).reshape(subsets, size).mean(axis=1)
        train_ok = (train[drawn] == truth).reshape(subsets, size).mean(axis=1)
        rows[str(size)] = {
            "subsets": subsets,
            "scored": int(len(drawn)),
            "own": {"acc": float((own == truth).mean()), "ua": unweighted_accuracy(truth, own)},
            "training": {
                "acc": float((train[drawn] == truth).mean()),
                "ua": unweighted_accuracy(truth, train[drawn]),
            },
            "all": {
                "acc": float((everything[drawn] == truth).mean()),
                "ua": unweighted_accuracy(truth, everything[drawn]),
            },
            "lose": float((own_ok < train_ok).mean()),
        }
    return rows


def run_tables(run: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every held-out speaker of one run folder."""
    predictor = Predictor.from_checkpoint(run / "checkpoint.pt", batch_size=256)
    if predictor.normalisation_mode != "speaker":
        raise SystemExit(f"{run}: trained with {predictor.normalisation_mode!r} normalisation")
    features = raw_features(run, predictor)
    with (run / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    index = {name: i for i, name in enumerate(predictor.class_names)}
    by_speaker: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_speaker[row["speaker"]].append(row)
    speakers = {}
    for speaker, own in sorted(by_speaker.items()):
        x = np.stack([features[row["path"]] for row in own])
        y = np.array([index[row["label"]] for row in own])
        seed = zlib.crc32(f"{run.name}/{speaker}".encode()) + args.seed
        speakers[speaker] = speaker_table(
            predictor, x, y, seed=seed, draws=args.draws, min_subsets=args.min_subsets
        )
    if len(speakers) == 1:  # all the speaker's utterances is what the run's own test saw
        (table,) = speakers.values()
        ua = json.loads((run / "metrics.json").read_text())["ua"]
        full = table[str(max(int(k) for k in table))]["all"]["ua"]
        if abs(full - ua) > 1e-9:
            raise SystemExit(f"{run}: UA with all utterances {full} != metrics.json {ua}")
    return speakers


def summary(runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per N: the mean over runs (and speakers) of each arm's accuracy and UA."""
    sizes = sorted({int(k) for speakers in runs.values() for t in speakers.values() for k in t})
    out = []
    for size in sizes:
        cells = [t[str(size)] for s in runs.values() for t in s.values() if str(size) in t]
        row: dict[str, Any] = {"n": size, "speakers": len(cells)}
        for arm in ("own", "training", "all"):
            for metric in ("acc", "ua"):
                row[f"{arm}_{metric}"] = float(np.mean([c[arm][metric] for c in cells]))
        row["lose"] = float(np.mean([c["lose"] for c in cells]))
        gains = [c["own"]["acc"] - c["training"]["acc"] for c in cells]
        row["no_worse"] = sum(gain >= 0 for gain in gains)  # speakers × runs, of `speakers`
        out.append(row)
    return out


def minimum(table: list[dict[str, Any]]) -> int | None:
    """The rule of the module docstring: the smallest N from which on own ≥ training."""
    chosen = None
    for row in reversed(table):
        if row["own_acc"] >= row["training_acc"]:
            chosen = row["n"]
        else:
            break
    return chosen


def results_json(head: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str:
    """``head`` (one table row a line) and, one line per run folder and speaker, each N's
    ``[own acc, training acc, all acc, own UA, training UA, subsets, subsets lost]``."""
    lines = ["{"]
    for key, value in head.items():
        if key == "table":
            rows = ",\n".join(
                "  "
                + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})
                for r in value
            )
            lines.append(f' "table": [\n{rows}\n ],')
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)},")
    lines.append(
        ' "runs_columns": ["own_acc", "training_acc", "all_acc", "own_ua", "training_ua", '
        '"subsets", "lose"],'
    )
    cells = []
    for run, speakers in runs.items():
        for speaker, table in speakers.items():
            compact = {
                n: [
                    round(c["own"]["acc"], 4),
                    round(c["training"]["acc"], 4),
                    round(c["all"]["acc"], 4),
                    round(c["own"]["ua"], 4),
                    round(c["training"]["ua"], 4),
                    c["subsets"],
                    round(c["lose"], 4),
                ]
                for n, c in table.items()
            }
            cells.append(f"  {json.dumps(f'{Path(run).name}/{speaker}')}: {json.dumps(compact)}")
    lines.append(' "runs": {\n' + ",\n".join(cells) + "\n }")
    return "\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    """Measure, print a markdown table, write the JSON."""
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of per-speaker models")
    parser.add_argument("--draws", type=int, default=100, help="utterances scored per N and run")
    parser.add_argument("--min-subsets", type=int, default=3, help="fewest subsets per N")
    parser.add_argument("--seed", type=int, default=0, help="added to each speaker's seed")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    runs = {}
    for run in args.runs:
        runs[str(run)] = run_tables(run, args)
        print(f"{run}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = summary(runs)
    chosen = minimum(table)
    print(
        "| N | own acc | training acc | all acc | own UA | training UA | all UA "
        "| no worse in | subsets lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(
            f"| {r['n']} | {100 * r['own_acc']:.1f} | {100 * r['training_acc']:.1f} | "
            f"{100 * r['all_acc']:.1f} | {100 * r['own_ua']:.1f} | "
            f"{100 * r['training_ua']:.1f} | {100 * r['all_ua']:.1f} | "
            f"{r['no_worse']}/{r['speakers']} | {100 * r['lose']:.0f} % |"
        )
    print(f"minimum (own ≥ training from this N on): {chosen}")
    if args.json is not None:
        args.json.write_text(
            results_json(
                {
                    "command": "python benchmarks/same_speaker_minimum.py "
                    + " ".join(a for a in sys.argv[1:] if a not in map(str, args.runs))
                    + " RUN...",
                    "run_folders": [str(run) for run in args.runs],
                    "runs_from": "emodarts study experiments/study_evidence_transductive.yaml "
                    "--out runs/study_evidence_transductive (git a06a58f; docs/studies/"
                    "study_evidence_transductive/report.md) when the runs are that study's",
                    "rule": "smallest N at which the mean accuracy with own statistics >= "
                    "with the training statistics on the same utterances, and for every "
                    "larger N measured",
                    "draws": args.draws,
                    "min_subsets": args.min_subsets,
                    "seed": args.seed,
                    "seconds": round(time.perf_counter() - start, 1),
                    "minimum": chosen,
                    "table": table,
                },
                runs,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
