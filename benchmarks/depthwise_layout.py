"""Depthwise convolution on CPU: NCHW against channels-last, forward + backward.

The table behind :func:`emodarts_nni.space.ops.channels_last_pays`: for each depthwise kernel
the CNN ops build (3 × 3 and 5 × 5, dilation 1 and 2, stride 1 and 2) at the channel and
map sizes of the paper's search (4 and 8 channels at 128 × 128 down to 32 at 32 × 32, batch 16),
the median time of a forward and backward pass in NCHW, and in channels-last with the
conversions in and out that :class:`~emodarts_nni.space.ops.DepthwiseConv2d` makes. Run it on an
otherwise idle machine; the rule was read off its output on 2 cores (torch 2.13).

    python benchmarks/depthwise_layout.py
    python benchmarks/depthwise_layout.py --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

SIZES = ((4, 128), (8, 128), (16, 64), (32, 32), (16, 128), (32, 64))
KERNELS = tuple(itertools.product((3, 5), (1, 2), (1, 2)))  # kernel, dilation, stride


def _median_seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(channels: int, side: int, kernel: int, dilation: int, stride: int, repeats: int):
    """Median seconds of forward + backward in NCHW and in channels-last (batch 16)."""
    from emodarts_nni.space.ops import channels_last_pays

    pad = dilation * (kernel - 1) // 2
    x = torch.randn(16, channels, side, side, requires_grad=True)
    w = torch.randn(channels, 1, kernel, kernel, requires_grad=True)

    def nchw() -> None:
        F.conv2d(x, w, None, stride, pad, dilation, channels).sum().backward()

    def channels_last() -> None:
        xc = x.contiguous(memory_format=torch.channels_last)
        F.conv2d(xc, w, None, stride, pad, dilation, channels).contiguous().sum().backward()

    a, b = _median_seconds(nchw, repeats), _median_seconds(channels_last, repeats)
    return {
        "channels": channels,
        "side": side,
        "kernel": kernel,
        "dilation": dilation,
        "stride": stride,
        "nchw_s": a,
        "channels_last_s": b,
        "speedup": a / b,
        "rule_uses_channels_last": channels_last_pays(channels, kernel, stride, dilation),
    }


def main(argv: list[str] | None = None) -> None:
    """Print the table; optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    print(
        f"{'C':>3s} {'side':>4s} {'k':>2s} {'d':>2s} {'s':>2s} {'NCHW ms':>8s} "
        f"{'CL ms':>7s} {'speed-up':>8s} rule"
    )
    for (channels, side), (kernel, dilation, stride) in itertools.product(SIZES, KERNELS):
        r = measure(channels, side, kernel, dilation, stride, args.repeats)
        rows.append(r)
        print(
            f"{channels:3d} {side:4d} {kernel:2d} {dilation:2d} {stride:2d} "
            f"{r['nchw_s'] * 1e3:8.1f} {r['channels_last_s'] * 1e3:7.1f} "
            f"{r['speedup']:7.2f}x {'CL' if r['rule_uses_channels_last'] else 'NCHW'}",
            flush=True,
        )
    chosen = [r["nchw_s"] / min(r["nchw_s"], r["channels_last_s"]) for r in rows]
    rule = [
        r["nchw_s"] / (r["channels_last_s"] if r["rule_uses_channels_last"] else r["nchw_s"])
        for r in rows
    ]
    print(
        f"sum over rows: NCHW {sum(r['nchw_s'] for r in rows) * 1e3:.0f} ms, "
        f"rule {sum(r['nchw_s'] / s for r, s in zip(rows, rule, strict=True)) * 1e3:.0f} ms, "
        f"best of both {sum(r['nchw_s'] / s for r, s in zip(rows, chosen, strict=True)) * 1e3:.0f} ms"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
