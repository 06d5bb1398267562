"""Seconds and peak memory of one DARTS search step at the paper's sizes.

A search step is what the authors' code does per batch (first-order DARTS): one α update
on a validation batch, then one weight update on a training batch, through NNI's DARTS
supernet of our space. Each configuration runs in a fresh process so its peak RSS is its
own. Reference (authors' code, driven on the same 2-core machine, per the project brief):
CNN-only 56 s / 13.8 GB, joint space 73 s / 19.7 GB per step.

    python benchmarks/search_step.py                 # both paper configurations, CPU
    python benchmarks/search_step.py --device cuda   # on a GPU
    python benchmarks/search_step.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CONFIGS = {
    # the paper's CNN-only search: 128×128 MFCC, 8 initial channels, 4 cells × 4 nodes, batch 16
    "cnn_only": {
        "scope": "cnn_only",
        "n_mfcc": 128,
        "frames": 128,
        "init_channels": 8,
        "cnn_cells": 4,
        "cnn_nodes": 4,
        "seq_cells": 0,
    },
    # the full joint space: + 2 SeqNN cells over all 14 SeqNN ops
    "emodarts": {
        "scope": "emodarts",
        "n_mfcc": 128,
        "frames": 128,
        "init_channels": 8,
        "cnn_cells": 4,
        "cnn_nodes": 4,
        "seq_cells": 2,
        "seq_nodes": 2,
        "hidden": 128,
    },
}
REFERENCE = {"cnn_only": (56.0, 13.8), "emodarts": (73.0, 19.7)}


def measure(
    name: str, steps: int, batch: int, device: str, threads: int, frugal: bool = True
) -> dict:
    """Run ``steps`` DARTS steps (after one warm-up) in this process; return timings."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from nni.nas.strategy import DARTS

    from emodarts_nni.oneshot import darts_step
    from emodarts_nni.space import build_space

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = dict(CONFIGS[name])
    scope = cfg.pop("scope")
    net = DARTS().mutate_model(build_space(scope, **cfg)).to(device)
    alphas = [p for n, p in net.named_parameters() if "_arch_alpha" in n]
    weights = [p for n, p in net.named_parameters() if "_arch_alpha" not in n]
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    x = torch.randn(batch, cfg["n_mfcc"], cfg["frames"], device=device)
    y = torch.randint(0, 4, (batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        if frugal:
            darts_step(net, loss_fn, (x, y), (x, y), a_opt, w_opt, grad_clip=5.0)
            return
        a_opt.zero_grad()  # NNI's DartsLightningModule: full backward in both phases
        loss_fn(net(x), y).backward()
        a_opt.step()
        w_opt.zero_grad()
        loss_fn(net(x), y).backward()
        torch.nn.utils.clip_grad_norm_(weights, 5.0)
        w_opt.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    out = {
        "config": name,
        "step": "emodarts (frugal)" if frugal else "NNI DARTS (full backward)",
        "device": device,
        "threads": threads,
        "batch": batch,
        "supernet_parameters": sum(p.numel() for p in weights),
        "seconds_per_step": sorted(times)[len(times) // 2],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    if device.startswith("cuda"):
        out["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 1024**3
        out["gpu"] = torch.cuda.get_device_name()
    return out


def main() -> None:
    """Measure each configuration in a subprocess and print a comparison table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default="cnn_only,emodarts")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--nni-step",
        action="store_true",
        help="measure NNI's own DARTS step (full backward in both phases)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(
                measure(
                    args.child,
                    args.steps,
                    args.batch,
                    args.device,
                    args.threads,
                    frugal=not args.nni_step,
                )
            )
        )
        return
    results = []
    for name in args.configs.split(","):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            name,
            "--steps",
            str(args.steps),
            "--batch",
            str(args.batch),
            "--device",
            args.device,
            "--threads",
            str(args.threads),
        ]
        cmd += ["--nni-step"] if args.nni_step else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(
        f"{'config':10s} {'device':6s} {'s/step':>8s} {'peak RSS GB':>12s} {'ref s/step':>11s} "
        f"{'ref GB':>7s} {'speed-up':>9s} {'memory':>7s}"
    )
    for r in results:
        ref_s, ref_gb = REFERENCE[r["config"]]
        print(
            f"{r['config']:10s} {r['device']:6s} {r['seconds_per_step']:8.2f} {r['peak_rss_gb']:12.2f} "
            f"{ref_s:11.1f} {ref_gb:7.1f} {ref_s / r['seconds_per_step']:8.1f}x "
            f"{r['peak_rss_gb'] / ref_gb:6.0%}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
