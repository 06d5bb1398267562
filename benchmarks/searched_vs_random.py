"""Does the search pay? A searched architecture vs random architectures of the same space
and the hand-designed baselines, retrained and tested on the same speaker-independent fold.

    python benchmarks/searched_vs_random.py RUN_DIR [--random 3] [--baselines cnn,cnn_lstm_att]

RUN_DIR is a finished ``emodarts run`` folder; its ``config.yaml`` (same corpus, fold,
features, retrain budget and seed) is reused for every competitor. Results go to
``RUN_DIR/comparison/`` (one run folder each) and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path


def main() -> None:
    """Retrain random architectures and baselines next to a searched run; print a table."""
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--random", type=int, default=3, help="number of random architectures")
    parser.add_argument("--baselines", default="cnn,cnn_lstm,cnn_lstm_att")
    args = parser.parse_args()

    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.run import run_pipeline
    from emodarts_nni.space.architecture import (
        read_architecture,
        sample_architecture,
        save_architecture,
    )

    cfg = load_config(
        args.run_dir / "config.yaml", {"webui.enabled": False, "trainer.progress": False}
    )
    searched = json.loads((args.run_dir / "metrics.json").read_text())
    space = read_architecture(args.run_dir / "architecture.json").space
    out = args.run_dir / "comparison"
    rows = [
        (
            "searched (" + searched["strategy"] + ")",
            searched["ua"],
            searched["wa"],
            searched["parameters"],
        )
    ]
    random_ua = []
    for seed in range(args.random):
        run = out / f"random-{seed}"
        arch = save_architecture(
            run / "random-architecture.json",
            space,
            sample_architecture(space, seed=seed),
            {"strategy": "random-sample", "seed": seed},
        )
        metrics = run_pipeline(
            cfg,
            run,
            stages=("retrain", "evaluate"),
            resume=(run / "config.yaml").is_file(),
            architecture_path=arch,
        )
        random_ua.append(metrics["ua"])
        rows.append(
            (f"random architecture {seed}", metrics["ua"], metrics["wa"], metrics["parameters"])
        )
    for name in [b for b in args.baselines.split(",") if b]:
        run = out / f"baseline-{name}"
        metrics = run_pipeline(
            cfg,
            run,
            stages=("retrain", "evaluate"),
            resume=(run / "config.yaml").is_file(),
            baseline=name,
        )
        rows.append((f"baseline {name}", metrics["ua"], metrics["wa"], metrics["parameters"]))
    print("| model | test UA | test WA | parameters |\n|---|---|---|---|")
    for name, ua, wa, params in rows:
        print(f"| {name} | {ua:.4f} | {wa:.4f} | {params:,} |")
    if random_ua:
        print(
            f"\nrandom architectures: UA {statistics.mean(random_ua):.4f} ± "
            f"{statistics.stdev(random_ua) if len(random_ua) > 1 else 0:.4f} (n={len(random_ua)}); "
            f"searched: {searched['ua']:.4f}"
        )


if __name__ == "__main__":
    main()
