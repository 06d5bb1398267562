"""Which CPU conv kernels misbehave with channels-last on small maps (issue 12, 'Speed').

Channels-last made depthwise-conv backward 2–4× faster on CPU, but test-sized spaces
crashed ("double free or corruption", or a hang) in torch 2.13. This script runs each
kernel shape the space uses — depthwise k × k (k 3, 5; dilation 1, 2; stride 1, 2),
pointwise 1 × 1, the 1 × 7 / 7 × 1 pair, 3 × 3 max and average pooling (stride 1, 2),
batch norm — forward and backward in channels-last on
small maps, and compares output and gradients with the contiguous (NCHW) result. Each
shape runs in a child process that reports before it starts, so a crash names its shape
(the parent restarts the child after the crashing shape).

    python benchmarks/channels_last_repro.py                 # every shape, a table
    python benchmarks/channels_last_repro.py --json out.json
    python benchmarks/channels_last_repro.py --repeats 50     # more tries per shape
    python benchmarks/channels_last_repro.py --supernet       # whole DARTS supernets instead

``--supernet`` runs first-order DARTS steps on small CNN-only supernets (one per CNN
operation, the op alone on every edge, and one with every op; 16 × 16 and 32 × 32 inputs)
with the model in channels-last, against the same steps in NCHW: it looks for the
combinations (layout changes between ops, FactorizedReduce's slices, the mixed edge's sum)
that no single kernel above reproduces.

A shape is ``ok`` (same values), ``WRONG`` (finite but different), ``CRASH`` (the child
died: its signal or exit status) or ``HANG`` (no progress within ``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from typing import Any

SIDES = (1, 2, 3, 4, 5, 8, 16)
CHANNELS = (2, 8, 16)
BATCH = 4


def shapes() -> list[dict[str, Any]]:
    """Every convolution, pooling and batch norm the CNN ops build (ops.py), small maps."""
    out = []
    for side, c in itertools.product(SIDES, CHANNELS):
        for k, dilation, stride in itertools.product((3, 5), (1, 2), (1, 2)):
            pad = dilation * (k - 1) // 2
            out.append(
                dict(
                    kind="depthwise",
                    side=side,
                    c=c,
                    k=(k, k),
                    stride=stride,
                    pad=(pad, pad),
                    dilation=dilation,
                    groups=c,
                )
            )
        out.append(
            dict(
                kind="pointwise",
                side=side,
                c=c,
                k=(1, 1),
                stride=1,
                pad=(0, 0),
                dilation=1,
                groups=1,
            )
        )
        for stride in (1, 2):
            out.append(
                dict(
                    kind="1x7",
                    side=side,
                    c=c,
                    k=(1, 7),
                    stride=(1, stride),
                    pad=(0, 3),
                    dilation=1,
                    groups=1,
                )
            )
            out.append(
                dict(
                    kind="7x1",
                    side=side,
                    c=c,
                    k=(7, 1),
                    stride=(stride, 1),
                    pad=(3, 0),
                    dilation=1,
                    groups=1,
                )
            )
    for side, c in itertools.product(SIDES, CHANNELS):
        for stride in (1, 2):
            out.append(dict(kind="max_pool", side=side, c=c, stride=stride))
            out.append(dict(kind="avg_pool", side=side, c=c, stride=stride))
        out.append(dict(kind="batch_norm", side=side, c=c))
    return out


def supernet_cases() -> list[dict[str, Any]]:
    """One small CNN-only DARTS supernet per CNN op (that op alone) and one with every op."""
    from emodarts_nni.space.ops import CNN_OPS

    ops = [[name] for name in CNN_OPS if name != "none"] + [list(CNN_OPS)]
    return [dict(kind="supernet", ops=o, side=side) for o in ops for side in (16, 32)]


def check_supernet(case: dict[str, Any], repeats: int) -> str:
    """``ok`` or ``WRONG``: ``repeats`` DARTS steps in channels-last against NCHW."""
    import copy

    import torch
    from search_step import split_parameters  # this folder's benchmark

    from emodarts_nni.space.args import resolve_space_args
    from emodarts_nni.space.model import space_from_args
    from emodarts_nni.strategy.darts.first_order import DARTS, darts_step

    torch.manual_seed(0)
    side = case["side"]
    args = resolve_space_args("cnn_only", n_mfcc=side, frames=side, init_channels=2,
                              cnn_cells=3, cnn_nodes=2, seq_cells=0, dropout=0.0)  # fmt: skip
    reference = DARTS().mutate_model(space_from_args({**args, "cnn_ops": case["ops"]}))
    model = copy.deepcopy(reference).to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(4, side, side, generator=g), torch.randint(0, 4, (4,), generator=g))
               for _ in range(2 * repeats)]  # fmt: skip
    loss = torch.nn.CrossEntropyLoss()
    for net in (reference, model):
        alphas, weights = split_parameters(net)
        a_opt = torch.optim.Adam(alphas, 3e-2, betas=(0.5, 0.999))
        w_opt = torch.optim.SGD(weights, lr=0.05, momentum=0.9)
        for i in range(repeats):
            darts_step(net, loss, batches[2 * i], batches[2 * i + 1], a_opt, w_opt)
    for a, b in zip(reference.parameters(), model.parameters(), strict=True):
        if not torch.allclose(a, b.contiguous(), rtol=1e-3, atol=1e-4):
            return "WRONG"
    return "ok"


def check(shape: dict[str, Any], repeats: int) -> str:
    """``ok`` or ``WRONG``: channels-last against contiguous, forward and backward."""
    import torch

    if shape["kind"] == "supernet":
        return check_supernet(shape, repeats)
    torch.manual_seed(0)
    c, side = shape["c"], shape["side"]
    kind = shape["kind"]
    if kind == "max_pool":
        conv: torch.nn.Module = torch.nn.MaxPool2d(3, shape["stride"], 1)
    elif kind == "avg_pool":
        conv = torch.nn.AvgPool2d(3, shape["stride"], 1, count_include_pad=False)
    elif kind == "batch_norm":
        conv = torch.nn.BatchNorm2d(c)
    else:
        conv = torch.nn.Conv2d(c, c, shape["k"], shape["stride"], shape["pad"],
                               dilation=shape["dilation"], groups=shape["groups"], bias=False)  # fmt: skip
    x = torch.randn(BATCH, c, side, side)
    weight = next(iter(conv.parameters()), None)

    def run(memory_format):
        net = conv.to(memory_format=memory_format)
        net.zero_grad()
        xi = x.clone().to(memory_format=memory_format).requires_grad_(True)
        y = net(xi)
        y.backward(torch.ones_like(y))
        grads = [] if weight is None else [weight.grad.contiguous()]
        return [y.contiguous(), xi.grad.contiguous(), *grads]

    reference = run(torch.contiguous_format)
    # Gradients summed over the batch and the map differ by summation order alone (a batch
    # norm's weight gradient is a sum of ~0 values): scale the tolerance with the sum.
    tolerance = 1e-5 * max(1.0, BATCH * side * side / 16)
    for _ in range(repeats):
        got = run(torch.channels_last)
        for a, b in zip(reference, got, strict=True):
            if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-4, atol=tolerance):
                return "WRONG"
    return "ok"


def child(start: int, repeats: int, threads: int, supernet: bool = False) -> None:
    """Check shapes from ``start`` on, printing ``START i`` before and ``DONE i result`` after."""
    import torch

    torch.set_num_threads(threads)
    for i, shape in enumerate((supernet_cases() if supernet else shapes())[start:], start=start):
        print(f"START {i}", flush=True)
        print(f"DONE {i} {check(shape, repeats)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run every shape in children; print the shapes that are not ``ok``; optionally JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json")
    parser.add_argument("--supernet", action="store_true", help="whole small DARTS supernets")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.repeats, args.threads, args.supernet)
        return
    all_shapes = supernet_cases() if args.supernet else shapes()
    results: dict[int, str] = {}
    start = 0
    while start < len(all_shapes):
        cmd = [sys.executable, __file__, "--child", str(start), "--repeats", str(args.repeats),
               "--threads", str(args.threads)] + (["--supernet"] if args.supernet else [])  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  env=dict(os.environ))  # fmt: skip
            out, failure = proc.stdout, (f"CRASH (status {proc.returncode})"
                                         if proc.returncode else None)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            failure = "HANG"
        last = start
        for line in out.splitlines():
            parts = line.split()
            if parts[:1] == ["DONE"]:
                results[int(parts[1])] = parts[2]
                last = int(parts[1]) + 1
            elif parts[:1] == ["START"]:
                last = int(parts[1])
        if failure is None:
            break
        results[last] = failure
        start = last + 1
    bad = {i: r for i, r in results.items() if r != "ok"}
    what = "supernets" if args.supernet else "shapes"
    print(f"{len(results)} {what} checked, {len(bad)} not ok (torch channels-last, CPU)")
    for i, result in sorted(bad.items()):
        print(f"  {result:18s} {json.dumps(all_shapes[i])}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{**all_shapes[i], "result": r} for i, r in sorted(results.items())], fh,
                      indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
