"""Embedded corpus generation time and MFCC extraction throughput (cold and cached).

    python benchmarks/data_throughput.py /tmp/emodarts-bench-cache   # an empty folder

Uses the default corpus (10 speakers, 5 sessions, 20 utterances per class per speaker) and
the paper's default features (128 MFCC x 8 s -> 128 x 128), 2 workers.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

import numpy as np

from emodarts_nni.data.features import FeatureConfig, extract_features
from emodarts_nni.data.manifest import read_manifest
from emodarts_nni.data.synth import default_corpus


def main() -> None:
    """Print generation time, corpus statistics and extraction throughput."""
    cache = sys.argv[1]
    print("load average", os.getloadavg())
    t = time.perf_counter()
    manifest = default_corpus(cache, workers=2, progress=False)
    print(f"generation: {time.perf_counter() - t:.1f} s -> {manifest}")
    t = time.perf_counter()
    default_corpus(cache, workers=2, progress=False)
    print(f"reuse: {time.perf_counter() - t:.3f} s")
    utts = read_manifest(manifest)
    durations = np.array([u.duration for u in utts])
    print("utterances", len(utts), "total", round(durations.sum() / 60, 1), "min")
    print("classes", dict(Counter(u.label for u in utts)))
    print("speakers", len({u.speaker for u in utts}), "sessions", len({u.session for u in utts}))
    print(
        "durations min/p10/median/p90/max",
        np.round(np.percentile(durations, [0, 10, 50, 90, 100]), 2),
    )
    t = time.perf_counter()
    features = extract_features(utts, FeatureConfig(), cache_dir=cache, workers=2, progress=False)
    cold = time.perf_counter() - t
    print(
        f"extraction cold: {cold:.1f} s, {len(utts) / cold:.1f} utt/s, shape {features.features.shape}"
    )
    t = time.perf_counter()
    extract_features(utts, FeatureConfig(), cache_dir=cache, workers=2, progress=False)
    hot = time.perf_counter() - t
    print(f"extraction cached: {hot:.3f} s, {len(utts) / hot:.0f} utt/s")


if __name__ == "__main__":
    main()
