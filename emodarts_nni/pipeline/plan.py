"""A run's size before anything is built: parameters and peak memory, and the guard.

What ``emodarts plan CONFIG`` prints (:func:`plan`, :func:`render`) and what
``emodarts run | search | retrain | baseline`` check first (:func:`guard_run`). No corpus
is read (:data:`NO_CORPUS`; ``emodarts run`` checks that section). The estimates are
:mod:`emodarts_nni.space.sizing`'s: the search step (the supernet for a differentiable
strategy, ``search.memory`` included) and the retraining step (an upper bound: the
largest candidate on every slot), compared with this machine's memory (CPU RSS) or, when
``trainer.accelerator`` is a GPU, with the GPU's (allocated memory). When it will not
fit, each suggestion is given with its own predicted peak.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from emodarts_nni.common.units import format_bytes, format_count
from emodarts_nni.space import sizing

#: GPU sizes to compare with when the config asks for a GPU and none is visible here.
REFERENCE_GPUS = (("a 24 GiB consumer GPU", 24 * 2**30), ("a 40 GiB A100", 40 * 2**30))
#: Overrides that let a config be planned without its corpus: it is checked as the
#: embedded one (sizes do not depend on it).
NO_CORPUS = {
    "corpus.kind": "synth",
    "corpus.options": {},
    "corpus.manifest": None,
    "corpus.root": None,
    "corpus.synth": None,
}


def _device(accelerator: str) -> tuple[str, int | None, str]:
    """(``"cpu"`` or ``"gpu"``, its memory in bytes or None, a description)."""
    if accelerator in ("gpu", "auto"):
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return "gpu", props.total_memory, f"GPU {props.name}"
        if accelerator == "gpu":
            return "gpu", None, "GPU (none visible here)"
    return "cpu", sizing.physical_memory_bytes(), "CPU"


def _sizes(cfg: Any, args: dict[str, Any]) -> dict[str, sizing.SizeEstimate]:
    from emodarts_nni.strategy.registry import search_sizing

    return {
        "search": sizing.search_estimate(args, cfg.search.batch_size, **search_sizing(cfg)),
        "retrain": sizing.retrain_estimate(args, cfg.retrain.batch_size),
    }


def _peak(sizes: dict[str, sizing.SizeEstimate]) -> int:
    return max(size.peak_bytes for size in sizes.values())


def suggestions(cfg: Any, args: dict[str, Any], budget: int) -> list[dict[str, Any]]:
    """Changes that shrink the run, each with its predicted peak and whether it fits
    ``budget`` bytes: a smaller batch, fewer nodes, a narrower scope, lean memory, PC-DARTS."""
    from emodarts_nni.common.shipped import SCOPES, shipped_names
    from emodarts_nni.space.scopes import load_scope
    from emodarts_nni.strategy.registry import search_sizing, strategy_spec

    out: list[dict[str, Any]] = []

    def add(change: dict[str, Any], peak: int, note: str = "") -> None:
        out.append({"set": change, "peak_bytes": peak, "fits": peak <= budget, "note": note})

    def peak_with(search: dict[str, Any] | None = None, **space: Any) -> int:
        run = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, **(search or {})))
        return _peak(_sizes(run, {**args, **space}))

    spec = strategy_spec(cfg.search.strategy)

    batch = cfg.search.batch_size
    while batch > 1:  # the largest smaller batch that fits (or batch 1)
        batch //= 2
        peak = _peak(
            {
                "search": sizing.search_estimate(args, batch, **search_sizing(cfg)),
                "retrain": sizing.retrain_estimate(args, min(batch, cfg.retrain.batch_size)),
            }
        )
        if peak <= budget or batch == 1:
            change = {"search.batch_size": batch}
            if cfg.retrain.batch_size > batch:
                change["retrain.batch_size"] = batch
            add(change, peak)
            break
    for key in ("cnn_nodes", "seq_nodes"):
        if key == "seq_nodes" and not args["seq_cells"]:
            continue
        for nodes in range(args[key] - 1, 0, -1):
            peak = peak_with(**{key: nodes})
            if peak <= budget or nodes == 1:
                add({f"space.{key}": nodes}, peak)
                break
    current = load_scope(cfg.space.scope)
    for name in shipped_names(SCOPES):
        scope = load_scope(name)
        if name == current.name or set(scope.cnn_ops) - set(current.cnn_ops):
            continue
        if set(scope.seq_ops) - set(current.seq_ops):
            continue  # only narrower scopes
        seq_cells = args["seq_cells"] if scope.has_seq_ops else 0
        ops = {"cnn_ops": list(scope.cnn_ops), "seq_ops": list(scope.seq_ops) if seq_cells else []}
        add({"space.scope": name}, peak_with(seq_cells=seq_cells, **ops))
    if spec.differentiable and cfg.search.memory != "lean":
        add({"search.memory": "lean"}, peak_with(search={"memory": "lean"}))
    if spec.supernet and spec.name != "pc-darts":
        pc = {"strategy": "pc-darts", "memory": "normal", "params": {}}
        add({"search.strategy": "pc-darts"}, peak_with(search=pc), "1/4 of the channels searched")
    return out


def guard_run(cfg: Any, search: bool = True) -> dict[str, Any]:
    """Refuse a run that asks for a GPU this machine does not have, or that the plan says
    will not fit this machine's memory (the CPU's, or a visible GPU's), with a one-line :class:`~emodarts_nni.common.errors.ConfigError` giving the
    estimate and the first change that would fit. ``search`` False: retraining only."""
    from emodarts_nni.common.errors import ConfigError

    result = plan(cfg, search=search)
    if cfg.trainer.accelerator == "gpu" and result["memory_bytes"] is None:
        # Lightning would fail only after the corpus and the run folder are written.
        raise ConfigError(
            "trainer.accelerator = 'gpu': no GPU is visible on this machine (torch sees no "
            "CUDA device); use --set trainer.accelerator=cpu (or auto)"
        )
    if result["fits"] is False:
        need = format_bytes(result["peak_bytes"] + result["runtime_bytes"])
        fixes = [s for s in result["suggestions"] if s["fits"]]
        hint = (
            f"; e.g. {_change(fixes[0]['set'])} (about {format_bytes(fixes[0]['peak_bytes'])})"
            if fixes
            else ""
        )
        raise ConfigError(
            f"this run needs about {need} but the {result['device_name']} has "
            f"{format_bytes(result['memory_bytes'])}; see `emodarts plan`{hint}"
        )
    return result


def plan(cfg: Any, source: str = "", search: bool = True) -> dict[str, Any]:
    """Everything ``emodarts plan`` prints, as one JSON-ready dict (``search`` False: the
    retraining step only, as for ``emodarts retrain``)."""
    from emodarts_nni.config.experiment import space_size_args
    from emodarts_nni.strategy.registry import strategy_spec

    args = space_size_args(cfg)
    supernet = strategy_spec(cfg.search.strategy).supernet
    sizes = _sizes(cfg, args)
    peak = _peak(sizes) if search else sizes["retrain"].peak_bytes
    kind, memory, name = _device(cfg.trainer.accelerator)
    # On the CPU the process also holds Python, torch, Lightning and NNI.
    overhead = sizing.RUNTIME_BYTES if kind == "cpu" else 0
    budget = None if memory is None else max(memory - overhead, 0)
    result: dict[str, Any] = {
        "config": source,
        "strategy": cfg.search.strategy,
        "search_memory": cfg.search.memory,
        "device": kind,
        "device_name": name,
        "memory_bytes": memory,
        "runtime_bytes": overhead,
        "parameters": sizes["search"].parameters,
        "peak_bytes": peak,
        "search": {**dataclasses.asdict(sizes["search"]), "supernet": supernet},
        "retrain": {**dataclasses.asdict(sizes["retrain"]), "upper_bound": True},
        "fits": None if budget is None else peak <= budget,
        "space": {k: v for k, v in args.items() if k not in ("cnn_ops", "seq_ops", "scope")},
    }
    if budget is None:  # a GPU asked for, none here: how it compares with common ones
        result["reference_gpus"] = [
            {"gpu": gpu, "memory_bytes": size, "fits": peak <= size} for gpu, size in REFERENCE_GPUS
        ]
        budget = REFERENCE_GPUS[0][1]
    result["suggestions"] = [] if peak <= budget else suggestions(cfg, args, budget)
    return result


def _change(change: dict[str, Any]) -> str:
    return " ".join(f"--set {key}={value}" for key, value in change.items())


def _readouts(readouts: list[str]) -> str:
    if len(readouts) == 1:
        return f"readout {readouts[0]}"
    return f"readout searched ({', '.join(readouts)})"


def render(result: dict[str, Any]) -> str:
    """The plan as text, a line per fact."""
    space, search, retrain = result["space"], result["search"], result["retrain"]
    seq = (
        f", {space['seq_cells']} SeqNN cells × {space['seq_nodes']} nodes (hidden {space['hidden']})"
        if space["seq_cells"]
        else ", no SeqNN cells"
    )
    what = "supernet" if search["supernet"] else "space weights + one sampled model"
    lines = [
        f"space: {space['n_mfcc']} × {space['frames']} input, {space['init_channels']} initial "
        f"channels, {space['cnn_cells']} CNN cells × {space['cnn_nodes']} nodes{seq}, "
        f"{_readouts(space.get('readouts') or ['mean'])}",
        f"search ({result['strategy']}, batch {search['batch_size']}, memory "
        f"{result['search_memory']}): {what} {format_count(search['parameters'])} parameters, "
        f"peak about {format_bytes(search['peak_bytes'])}",
        f"retrain (batch {retrain['batch_size']}, largest candidates, an upper bound): "
        f"{format_count(retrain['parameters'])} parameters, peak about "
        f"{format_bytes(retrain['peak_bytes'])}",
    ]
    peak = result["peak_bytes"]
    if result["memory_bytes"] is None:
        where = "; ".join(
            f"{g['gpu']}: {'fits' if g['fits'] else 'does not fit'}"
            for g in result.get("reference_gpus", [])
        )
        lines.append(f"{result['device_name']}: peak about {format_bytes(peak)} allocated; {where}")
    else:
        extra = result["runtime_bytes"]
        held = f" + {format_bytes(extra)} for Python, torch and NNI" if extra else " allocated"
        verdict = "fits" if result["fits"] else "does NOT fit"
        lines.append(
            f"{result['device_name']} memory {format_bytes(result['memory_bytes'])}: peak about "
            f"{format_bytes(peak)}{held}: {verdict}"
        )
    if result["suggestions"]:
        lines.append("what would shrink it:")
        for s in result["suggestions"]:
            note = f" ({s['note']})" if s["note"] else ""
            lines.append(
                f"  {_change(s['set']):48s} peak about {format_bytes(s['peak_bytes'])}"
                f"{'  fits' if s['fits'] else ''}{note}"
            )
    return "\n".join(lines)
