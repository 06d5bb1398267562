"""Seconds and peak memory of one DARTS search step, each configuration of issue 12.

A search step is what the authors' code does per batch: one α update on a validation
batch, then one weight update on a training batch, through NNI's DARTS supernet of our
space. Each row runs in a fresh process, so its peak RSS is its own; the median of the
timed steps after one warm-up. Every row also records what ``emodarts plan`` predicted
(:func:`emodarts_nni.space.sizing.search_estimate`), so the planner's error is measured too.

Rows are ``CONFIG:STEP``. Configurations (equal sizes to the authors': 128 × 128 MFCC,
8 initial channels, 4 CNN cells × 4 nodes, batch 16; the joint space has 2 SeqNN cells
× **4** nodes, the authors' ``n_nodes_rnn=4``, over all 14 SeqNN ops, hidden 128):

* ``cnn_only``, ``joint`` (4 SeqNN nodes), ``joint2`` (2 SeqNN nodes, the size our earlier
  figures used).

Steps (:data:`STEPS`; add a row kind by adding an entry):

* ``frugal`` — our first-order step (:func:`emodarts_nni.strategy.darts.first_order.darts_step`);
* ``nni`` — NNI's own first-order step: NNI's differentiable cell, full backward in both
  phases, every kernel in NCHW, strided kernels at their stride (``FactorizedReduce``'s
  1×1 convolutions, the dilated depthwise ones of reduction edges: the product without
  its speed levers; the row that tells how fast the machine is today);
* ``frugal-nchw`` — ``frugal`` with every :class:`emodarts_nni.space.ops.LayoutSwitch` in NCHW
  (what channels-last adds);
* ``second`` — our second-order step (``darts-2nd``, :func:`emodarts_nni.strategy.darts.second_order.darts_2nd_step`);
* ``lean``, ``second-lean`` — those with ``search.memory: lean`` (:mod:`emodarts_nni.strategy.supermodule.lean`);
* ``pc`` — ``frugal`` on PC-DARTS's partial-channel cells, K = 4.

Row sets (:data:`ROW_SETS`): ``paper`` (the default: issue 12's configurations) and
``levers`` (``frugal-nchw`` and the memory levers).

    python benchmarks/search_step.py --json out.json      # paper set (~10 min, 2 idle cores)
    python benchmarks/search_step.py --rows levers --steps 1 --json levers.json
    python benchmarks/search_step.py --quick               # smoke test at 64 × 64, batch 8
    python benchmarks/search_step.py --rows cnn_only:lean --steps 0   # memory only
    python benchmarks/search_step.py --rows cnn_only:frugal --steps 0 --profile  # where time goes
    python benchmarks/search_step.py --device cuda         # adds peak GPU memory
    python benchmarks/search_step.py --overhead --rounds 3 # Lightning/NNI loop vs plain loop, fresh processes

The authors' figures (issue 12, their code on the project's 2-core machine, batch 16):
first-order CNN-only 23.0 s / 9.75 GiB; second order CNN-only 53.0 s / 13.44 GiB, joint
61.1 s / 18.9 GiB. Timings taken while anything else runs are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PAPER = {"n_mfcc": 128, "frames": 128, "init_channels": 8, "cnn_cells": 4, "cnn_nodes": 4}
CONFIGS: dict[str, dict[str, Any]] = {
    "cnn_only": {"scope": "cnn_only", **_PAPER, "seq_cells": 0},
    "joint": {"scope": "emodarts", **_PAPER, "seq_cells": 2, "seq_nodes": 4, "hidden": 128},
    "joint2": {"scope": "emodarts", **_PAPER, "seq_cells": 2, "seq_nodes": 2, "hidden": 128},
}
#: The authors' code (issue 12): (config, order) → (seconds per step, peak GiB).
REFERENCE = {
    ("cnn_only", "first"): (23.0, 9.75),
    ("cnn_only", "second"): (53.0, 13.44),
    ("joint", "second"): (61.1, 18.9),
}
#: Named sets of rows (``--rows paper,levers`` or single rows). ``paper``: every
#: configuration of issue 12's table at the authors' sizes (10 minutes with 2 timed steps
#: on 2 idle cores, 2026-12-04 evening);
#: ``levers``: our step with every kernel in NCHW (what channels-last adds) and the
#: memory levers (lean recomputation, PC-DARTS K = 4), first and second
#: order (run with ``--steps 1``: their time is indicative).
ROW_SETS: dict[str, tuple[str, ...]] = {
    "paper": (
        "cnn_only:frugal",
        "cnn_only:nni",
        "cnn_only:second",
        "joint:frugal",
        "joint:second",
    ),
    "levers": (
        "cnn_only:frugal-nchw",
        "cnn_only:lean",
        "cnn_only:second-lean",
        "cnn_only:pc",
        "joint:lean",
        "joint:second-lean",
        "joint:pc",
    ),
}
DEFAULT_ROWS = ROW_SETS["paper"]
QUICK_SIZES = {"n_mfcc": 64, "frames": 64}


@dataclass(frozen=True)
class Step:
    """One kind of search step: the DARTS order it implements, the search memory mode the
    planner should assume, the strategy that builds its supernet, and the step itself."""

    order: str
    memory: str
    make_strategy: Callable[[], Any]
    run: Callable[..., None]
    #: What else the planner needs (``partial_channels`` for PC-DARTS).
    plan: dict[str, Any] = field(default_factory=dict)
    #: Every kernel in NCHW (no :class:`~emodarts_nni.space.ops.LayoutSwitch` in channels-last).
    nchw: bool = False
    #: Strided kernels run as they are, not at stride 1 on the subsampled input
    #: (:class:`~emodarts_nni.space.ops.SubsamplesFirst`; as before our speed-ups).
    strided: bool = False


def _frugal_strategy() -> Any:
    from emodarts_nni.strategy.darts.first_order import DARTS

    return DARTS()


def _nni_strategy() -> Any:
    from emodarts_nni.nni_runtime.patches import quiet_nni_import

    with quiet_nni_import():
        from nni.nas.strategy import DARTS

    return DARTS()  # NNI's own DifferentiableMixedCell


def _lean_strategy() -> Any:
    from emodarts_nni.strategy.darts.first_order import DARTS
    from emodarts_nni.strategy.supermodule.lean import lean_mutation_hooks

    return DARTS(mutation_hooks=lean_mutation_hooks())


def _pc_strategy() -> Any:
    from emodarts_nni.strategy.darts.pc import PCDARTS

    return PCDARTS()  # K = 4, the strategy's default


def _second_step(net, loss_fn, batch, a_opt, w_opt, weights) -> None:
    from emodarts_nni.strategy.darts.second_order import darts_2nd_step

    darts_2nd_step(net, loss_fn, batch, batch, a_opt, w_opt, grad_clip=5.0)


def _frugal_step(net, loss_fn, batch, a_opt, w_opt, weights) -> None:
    from emodarts_nni.strategy.darts.first_order import darts_step

    darts_step(net, loss_fn, batch, batch, a_opt, w_opt, grad_clip=5.0)


def _nni_step(net, loss_fn, batch, a_opt, w_opt, weights) -> None:
    import torch

    x, y = batch
    a_opt.zero_grad()  # NNI's DartsLightningModule: full backward in both phases
    loss_fn(net(x), y).backward()
    a_opt.step()
    w_opt.zero_grad()
    loss_fn(net(x), y).backward()
    torch.nn.utils.clip_grad_norm_(weights, 5.0)
    w_opt.step()


#: Step kinds by name.
STEPS: dict[str, Step] = {
    "frugal": Step("first", "normal", _frugal_strategy, _frugal_step),
    # NNI's unmodified step: its cell, full backward in both phases, NCHW throughout and
    # strided kernels at their stride (the reference that tells how fast the machine
    # is today)
    "nni": Step("first", "normal", _nni_strategy, _nni_step, nchw=True, strided=True),
    # our step and cell with every kernel in NCHW: what channels-last adds
    "frugal-nchw": Step("first", "normal", _frugal_strategy, _frugal_step, nchw=True),
    "lean": Step("first", "lean", _lean_strategy, _frugal_step),
    "second": Step("second", "normal", _frugal_strategy, _second_step),
    "second-lean": Step("second", "lean", _lean_strategy, _second_step),
    "pc": Step("first", "normal", _pc_strategy, _frugal_step, {"partial_channels": 4}),
}


def split_parameters(net: Any) -> tuple[list[Any], list[Any]]:
    """A supernet's architecture parameters (α, and PC-DARTS's edge normalisation β: NNI's
    ``_arch_`` names) and its weights."""
    named = list(net.named_parameters())
    arch = [p for n, p in named if n.startswith("_arch_") or "._arch_" in n]
    return arch, [p for n, p in named if not (n.startswith("_arch_") or "._arch_" in n)]


def _rss_bytes() -> int:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux ``VmHWM``: the high-water mark of this
    process's own address space). Not ``getrusage``'s ``ru_maxrss``: Linux carries that over
    from the parent through fork and exec, so a child of a large process (pytest after many
    tests) reports the parent's size as its own peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def torch_step_peak_bytes(fn: Any) -> int:
    """Peak of torch's own CPU allocations while ``fn`` runs, above what was live when it
    started (the torch profiler's memory events, summed in time order). Unlike RSS it does
    not depend on the C allocator's arenas and thresholds, so two runs, or two machines,
    give the same number: what a test can compare."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def space_args(config: str, sizes: dict[str, Any]) -> dict[str, Any]:
    """Resolved space arguments of ``config`` with ``sizes`` overriding (torch-free)."""
    from emodarts_nni.space.args import resolve_space_args

    cfg = {**CONFIGS[config], **sizes}
    scope = cfg.pop("scope")
    return resolve_space_args(scope, **cfg)


def planned(config: str, step: str, sizes: dict[str, Any], batch: int) -> int:
    """What the planner predicts for this row's peak (bytes)."""
    from emodarts_nni.space.sizing import search_estimate

    kind = STEPS[step]
    return search_estimate(
        space_args(config, sizes), batch, memory=kind.memory, order=kind.order, **kind.plan
    ).peak_bytes


@dataclass(frozen=True)
class RowOptions:
    """How each row is measured (the command line's options)."""

    steps: int
    batch: int
    device: str = "cpu"
    threads: int = 2
    sizes: dict[str, Any] = field(default_factory=dict)
    allocations: bool = False
    profile: bool = False

    def child_args(self) -> list[str]:
        """These options as the command line of a ``--child`` process."""
        out = ["--steps", str(self.steps), "--batch", str(self.batch), "--device", self.device]
        out += ["--threads", str(self.threads), "--sizes", json.dumps(self.sizes)]
        return out + ["--allocations"] * self.allocations + ["--profile"] * self.profile


def measure(row: str, options: RowOptions) -> dict[str, Any]:
    """Run ``steps`` steps of ``row`` (after one warm-up) in this process; timings and memory.

    ``peak_growth_bytes``: peak RSS minus the RSS after importing torch, Lightning and NNI's
    one-shot strategies, before the supernet is built (weights, gradients, optimiser state, activations): what the planner
    predicts. With ``options.allocations`` (CPU), one more step runs under the torch
    profiler for ``torch_step_peak_bytes`` (:func:`torch_step_peak_bytes`); with
    ``options.profile``, one more for ``profile``, its operators by total CPU time (a table).
    """
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    import emodarts_nni.strategy.darts.first_order  # noqa: F401 (imported before the baseline RSS is taken)
    from emodarts_nni.space.model import space_from_args
    from emodarts_nni.space.ops import LayoutSwitch, SubsamplesFirst

    steps, batch, device, threads = options.steps, options.batch, options.device, options.threads
    sizes = options.sizes
    config, step_name = row.split(":")
    step = STEPS[step_name]
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    args = space_args(config, sizes)
    x = torch.randn(batch, args["n_mfcc"], args["frames"], device=device)
    y = torch.randint(0, args["n_classes"], (batch,), device=device)
    base = _rss_bytes()
    net = step.make_strategy().mutate_model(space_from_args(args)).to(device)
    if step.nchw:
        for module in net.modules():
            if isinstance(module, LayoutSwitch):
                module.channels_last = False
    if step.strided:
        for module in net.modules():
            if isinstance(module, SubsamplesFirst):
                module.subsample = False
    alphas, weights = split_parameters(net)
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    built = _rss_bytes()

    def run() -> None:
        step.run(net, loss_fn, (x, y), a_opt, w_opt, weights)

    run()  # warm-up (also allocates gradients and optimiser state)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak = _peak_rss_bytes()
    out = {
        "row": row,
        "config": config,
        "step": step_name,
        "order": step.order,
        "memory": step.memory,
        "device": device,
        "threads": threads,
        "batch": batch,
        "sizes": {
            k: args[k]
            for k in (
                "n_mfcc",
                "frames",
                "init_channels",
                "cnn_cells",
                "cnn_nodes",
                "seq_cells",
                "seq_nodes",
                "hidden",
            )
        },
        "supernet_parameters": sum(p.numel() for p in weights),
        "seconds_per_step": statistics.median(times) if times else None,
        "peak_rss_bytes": peak,
        "base_rss_bytes": base,
        "model_rss_bytes": built - base,
        "peak_growth_bytes": peak - base,
        "planned_peak_bytes": planned(config, step_name, sizes, batch),
    }
    if options.allocations and device == "cpu":
        out["torch_step_peak_bytes"] = torch_step_peak_bytes(run)
    if options.profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
        out["profile"] = prof.key_averages().table(sort_by="cpu_time_total", row_limit=20)
    if device.startswith("cuda"):
        out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
        out["gpu"] = torch.cuda.get_device_name()
    return out


def run_child(what: str, args: list[str]) -> Any:
    """This script with ``args`` in a fresh Python process: the JSON of its last line of
    output (``what`` names the work in the error when it fails)."""
    cmd = [sys.executable, __file__, *args]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_repo(), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_row(row: str, options: RowOptions) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (its own peak RSS)."""
    return run_child(row, ["--child", row, *options.child_args()])


def _repo() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _gib(n: float) -> float:
    return n / 2**30


HEADER = (
    f"{'row':21s} {'s/step':>7s} {'peak RSS':>9s} {'growth':>8s} {'planned':>8s} "
    f"{'plan err':>8s} {'authors (same order)':>20s} {'speed':>6s} {'memory':>7s}"
)


def row_line(r: dict[str, Any]) -> str:
    """One result as a table line, against the authors' figure of the same order if any."""
    ref = REFERENCE.get((r["config"], r["order"]))
    seconds = r["seconds_per_step"]
    line = (
        f"{r['row']:21s} {seconds if seconds is not None else float('nan'):7.2f} "
        f"{_gib(r['peak_rss_bytes']):8.2f}G {_gib(r['peak_growth_bytes']):7.2f}G "
        f"{_gib(r['planned_peak_bytes']):7.2f}G "
        f"{r['planned_peak_bytes'] / r['peak_growth_bytes'] - 1:+8.0%}"
    )
    if ref:
        line += f" {ref[0]:9.1f}s {ref[1]:7.2f}G"
        if seconds:
            line += f" {ref[0] / seconds:5.2f}x {_gib(r['peak_rss_bytes']) / ref[1]:6.0%}"
    return line


# --------------------------------------------------------------------------- overhead
def overhead_loop_seconds(
    loop: str, config: str, sizes: dict[str, Any], batch: int, batches: int, threads: int
) -> list[float]:
    """Seconds of each search step after the first, in this process, of one loop over the
    same supernet and data (``batches`` steps, one epoch): ``plain``, a PyTorch loop over
    :func:`emodarts_nni.strategy.darts.first_order.darts_step`, or ``framework``, the product's loop
    (Lightning running :class:`emodarts_nni.strategy.darts.first_order.FrugalDartsModule` through NNI, as
    ``emodarts run`` does)."""
    import warnings

    warnings.filterwarnings("ignore")
    import tempfile

    import numpy as np
    import pytorch_lightning as pl
    import torch

    from emodarts_nni.config.experiment import config_from_dict
    from emodarts_nni.nni_runtime import run_search
    from emodarts_nni.space.model import space_from_args
    from emodarts_nni.strategy.darts.first_order import DARTS, darts_step
    from emodarts_nni.training.module import make_loader, make_training

    torch.set_num_threads(threads)
    args = space_args(config, sizes)
    rng = np.random.default_rng(0)
    n = batch * batches
    x = rng.standard_normal((n, args["n_mfcc"], args["frames"])).astype(np.float32)
    y = rng.integers(0, args["n_classes"], n)
    torch.manual_seed(0)
    if loop == "plain":  # same loaders, same optimisers as SerModule + the strategy
        net = DARTS().mutate_model(space_from_args(args))
        alphas, weights = split_parameters(net)
        w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
        a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        train = make_loader(x, y, batch_size=batch, shuffle=True, seed=0)
        val = make_loader(x, y, batch_size=batch, shuffle=True, seed=1)
        stamps = [time.perf_counter()]
        for trn_batch, val_batch in zip(train, val, strict=True):
            darts_step(net, loss_fn, val_batch, trn_batch, a_opt, w_opt, grad_clip=5.0)
            stamps.append(time.perf_counter())
        return [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]

    class Stamps(pl.Callback):
        def __init__(self) -> None:
            self.times: list[float] = []

        def on_train_batch_end(self, *_: Any) -> None:
            self.times.append(time.perf_counter())

    cfg = config_from_dict(
        {
            "search": {"epochs": 1, "batch_size": batch},
            "trainer": {"accelerator": "cpu", "progress": False},
        }
    )
    stamp = Stamps()
    with tempfile.TemporaryDirectory() as tmp:
        training = make_training(
            cfg.search,
            cfg.trainer,
            (x, y),
            (x, y),
            seed=0,
            callbacks=[stamp],
            root_dir=tmp,
            clip_gradients=False,
            shuffle_validation=True,
            traced=True,
        )
        run_search(
            space_from_args(args),
            training.evaluator(),
            DARTS(gradient_clip_val=5.0),
            experiment_dir=Path(tmp) / "nni",
        )
    return [b - a for a, b in zip(stamp.times, stamp.times[1:], strict=False)]


#: The two loops of :func:`overhead_loop_seconds`.
OVERHEAD_LOOPS = ("plain", "framework")


def measure_overhead(
    config: str, sizes: dict[str, Any], batch: int, batches: int, threads: int, rounds: int = 2
) -> dict[str, Any]:
    """Framework overhead: the product's loop against a plain loop, each loop in a fresh
    process, ``rounds`` times alternately (the second loop of one process ran up to 28 %
    slower than the first, whichever it was). Medians of each loop's steps, then the
    median over the rounds."""
    per_round: dict[str, list[float]] = {loop: [] for loop in OVERHEAD_LOOPS}
    for _ in range(rounds):
        for loop in OVERHEAD_LOOPS:
            spec = json.dumps([loop, config, sizes, batch, batches, threads])
            seconds = run_child(f"the {loop} loop", ["--overhead-child", spec])
            per_round[loop].append(statistics.median(seconds))
    plain = statistics.median(per_round["plain"])
    framework = statistics.median(per_round["framework"])
    return {
        "config": config,
        "sizes": sizes,
        "batch": batch,
        "batches": batches,
        "threads": threads,
        "rounds": rounds,
        "plain_seconds_per_step_each_round": per_round["plain"],
        "framework_seconds_per_step_each_round": per_round["framework"],
        "plain_seconds_per_step": plain,
        "framework_seconds_per_step": framework,
        "overhead": framework / plain - 1,
    }


def main(argv: list[str] | None = None) -> None:
    """Measure each row in a subprocess; print a table; optionally write JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows",
        default="paper",
        help=f"CONFIG:STEP or set names {list(ROW_SETS)}, comma-separated",
    )
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="{}", help="JSON space arguments overriding the rows'")
    parser.add_argument("--quick", action="store_true", help="64 × 64, batch 8, 1 timed step")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="framework overhead: the Lightning/NNI loop vs a plain loop",
    )
    parser.add_argument("--overhead-config", default="cnn_only")
    parser.add_argument("--batches", type=int, default=12, help="steps per loop (--overhead)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="fresh processes per loop (--overhead)"
    )
    parser.add_argument(
        "--allocations",
        action="store_true",
        help="one more step under the torch profiler: torch's own peak (CPU, deterministic)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more step under the torch profiler: where each row's time goes",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--overhead-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = json.loads(args.sizes)
    if args.quick:
        sizes = {**QUICK_SIZES, **sizes}
        args.batch, args.steps = 8, 1
    options = RowOptions(
        args.steps, args.batch, args.device, args.threads, sizes, args.allocations, args.profile
    )
    if args.child:
        print(json.dumps(measure(args.child, options)))
        return
    if args.overhead_child:
        print(json.dumps(overhead_loop_seconds(*json.loads(args.overhead_child))))
        return
    if args.overhead:
        result = measure_overhead(
            args.overhead_config, sizes, args.batch, args.batches, args.threads, args.rounds
        )
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return
    results = []
    rows = [r for name in args.rows.split(",") for r in ROW_SETS.get(name, (name,))]
    for row in rows:
        config, step = row.split(":")
        if config not in CONFIGS or step not in STEPS:
            parser.error(f"unknown row {row!r}: configs {list(CONFIGS)}, steps {list(STEPS)}")
        if not results:
            print(HEADER, flush=True)
        results.append(run_row(row, options))
        print(row_line(results[-1]), flush=True)
        if args.profile:
            print(results[-1]["profile"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
