"""``emodarts run | search | retrain | evaluate | baseline | view``: the main job.

One-shot strategies (DARTS, ENAS, ...) run as the single trial of an NNI experiment so the
web UI shows their per-epoch metrics (nni-notes #2); multi-trial strategies (random,
evolution) are NNI experiments of their own. ``--no-webui`` runs everything in-process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.common.progress import HEARTBEAT_SECONDS, PROCESS_STARTED, clock, follow
from emodarts_nni.common.units import format_seconds
from emodarts_nni.pipeline.runfolder import STAGES, RunFolder

if TYPE_CHECKING:
    from emodarts_nni.config.experiment import ExperimentConfig


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="experiment YAML (see experiments/)")
    parser.add_argument("--strategy", help="search strategy (darts, enas, random, ...)")
    parser.add_argument("--scope", help="search scope name or scope YAML")
    parser.add_argument("--fold", type=int, help="fold to hold out (0-based)")
    parser.add_argument(
        "--out",
        type=Path,
        help="run folder (default: <output.dir>/<name>-<strategy>-<scope>-fold<k>)",
    )
    parser.add_argument("--port", type=int, help="NNI web UI port (bound to 127.0.0.1)")
    parser.add_argument(
        "--resume", action="store_true", help="continue an interrupted run in --out"
    )
    parser.add_argument(
        "--no-webui", action="store_true", help="run in-process, without NNI's web UI"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also print NNI's, Lightning's and other libraries' messages (else in log.txt)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set search.epochs=2 (repeatable)",
    )


def _follow(handle: Any, folder: RunFolder) -> str:
    """Wait for the trial, printing its progress lines (``progress.log``) as they appear,
    and a line of our own while it has none to show (NNI starting the trial, a slow step);
    lines are timed from the command's start (:data:`PROCESS_STARTED`)."""
    started = PROCESS_STARTED
    offset = folder.progress.stat().st_size if folder.progress.is_file() else 0
    last = time.monotonic()

    def show_progress() -> None:
        nonlocal offset, last
        lines, offset = follow(folder.progress, offset)
        now = time.monotonic()
        for line in lines:
            print(f"[{clock(now - started)}] {line}", flush=True)
        if lines:
            last = now
        elif now - last >= HEARTBEAT_SECONDS + 2:  # the trial's own heartbeat comes first
            last = now
            jobs = handle.trial_jobs()
            state = str(jobs[0].get("status", "WAITING")) if jobs else "not submitted yet"
            print(f"[{clock(now - started)}] {'trial':<8} NNI trial: {state}", flush=True)

    return handle.watch(show_progress, every=1.0)


def _ua(value: float | None) -> str:
    """A UA for the summary; none without a validation part (splits.validation_fraction 0)."""
    return "no validation part" if value is None else f"{value:.4f}"


def _trial_log_hint(folder: RunFolder) -> str:
    logs = sorted(folder.nni.glob("*/trials/*/trial.log"))
    return f"; see {logs[-1]}" if logs else ""


def execute(
    args: argparse.Namespace,
    stages: tuple[str, ...],
    architecture: Path | None = None,
    baseline: str | None = None,
    cfg: ExperimentConfig | None = None,
) -> int:
    """Run ``stages`` for the parsed CLI arguments (shared by run, search and retrain).

    The config is checked before torch and NNI are imported, so a bad one fails at once
    (``cfg``: the config already loaded from ``args``). With the web UI on, SIGTERM stops
    NNI's manager like Ctrl-C does.
    """
    from emodarts_nni.config.overrides import load_config_with

    cfg = cfg if cfg is not None else load_config_with(args.config, args.set, vars(args))
    from emodarts_nni.pipeline.plan import guard_run

    guard_run(cfg, search="search" in stages)  # the estimate `emodarts plan` prints
    print(
        f"[{clock(time.monotonic() - PROCESS_STARTED)}] starting: loading torch, Lightning and NNI",
        flush=True,
    )
    from emodarts_nni.nni_runtime.chatter import to_log

    with to_log(verbose=getattr(args, "verbose", False)):
        if not cfg.webui.enabled:
            return _execute(args, cfg, stages, architecture, baseline)
        from emodarts_nni.nni_runtime import terminate_as_interrupt

        with terminate_as_interrupt():
            return _execute(args, cfg, stages, architecture, baseline)


def _execute(
    args: argparse.Namespace,
    cfg: ExperimentConfig,
    stages: tuple[str, ...],
    architecture: Path | None,
    baseline: str | None,
) -> int:
    from emodarts_nni.strategy.registry import is_oneshot

    # Checks a resumed folder's config before anything in it is written.
    folder = RunFolder.for_run(cfg, args.out, resume=args.resume, baseline=baseline)
    folder = RunFolder(folder.path.resolve())
    run_dir = folder.path
    oneshot = is_oneshot(cfg.search.strategy) or "search" not in stages
    if cfg.webui.enabled and oneshot:
        from emodarts_nni.nni_runtime import launch_trial_experiment

        folder.start(cfg)
        command = [
            sys.executable,
            "-m",
            "emodarts_nni.pipeline.trial",
            str(run_dir),
            "--stages",
            ",".join(stages),
        ]
        if architecture is not None:
            command += ["--architecture", str(architecture.resolve())]
        if baseline is not None:
            command += ["--baseline", baseline]
        print(f"run folder: {run_dir}")
        with folder.logging_to_log():  # NNI's messages here go with the trial's records
            handle = launch_trial_experiment(
                command,
                experiment_dir=folder.nni,
                port=cfg.webui.port,
                name=run_dir.name,
                host=cfg.webui.host,
            )
            try:
                status = _follow(handle, folder)
            except KeyboardInterrupt:
                handle.stop()
                print(
                    f"interrupted; finished stages are kept. Continue with: emodarts "
                    f"{args.command} {args.config} --out {run_dir} --resume",
                    file=sys.stderr,
                )
                return 130
            handle.stop()
        if status != "SUCCEEDED":
            raise EmodartsError(f"the NNI trial ended {status}{_trial_log_hint(folder)}")
    else:
        from emodarts_nni.pipeline.run import run_pipeline

        print(f"run folder: {run_dir}")
        run_pipeline(
            cfg,
            run_dir,
            stages=stages,
            resume=args.resume,
            architecture_path=architecture,
            baseline=baseline,
        )
    _finish(folder, stages, webui=cfg.webui.enabled and oneshot)
    return 0


def _finish(folder: RunFolder, stages: tuple[str, ...], *, webui: bool) -> None:
    from emodarts_nni.space.architecture import describe, read_architecture

    if folder.architecture.is_file():
        print("\narchitecture (" + str(folder.architecture) + "):")
        arch_file = read_architecture(folder.architecture)
        print(describe(arch_file.architecture, arch_file.space["readouts"]))
    if "evaluate" in stages and folder.metrics.is_file():
        from emodarts_nni.reporting.runs import render_run

        try:
            pictures = render_run(folder.path)
        except OSError as exc:  # the results are safe; only the pictures are missing
            print(f"warning: could not draw the run's pictures: {exc}", file=sys.stderr)
        else:
            print("pictures: " + ", ".join(p.name for p in pictures))
        print_summary(folder.read_metrics(), folder.path, searched="search" in stages)
        print(next_steps(folder, webui=webui))


def next_steps(folder: RunFolder, *, webui: bool) -> str:
    """What the run's console ends with: that its web UI has stopped (the printed URL is
    dead) and how to reopen it, then the report, predict and export commands with this run's
    own paths."""
    import shlex

    run = shlex.quote(str(folder.path))
    lines = ["", "next:"]
    if webui and folder.nni.is_dir():
        lines.append(f"  the run's web UI has stopped; reopen it:  emodarts view {run}")
    lines.append(f"  tables and pictures:  emodarts report {run}")
    if folder.checkpoint.is_file():
        checkpoint = shlex.quote(str(folder.checkpoint))
        onnx = shlex.quote(str(folder.path / "model.onnx"))
        lines.append(f"  classify audio:       emodarts predict {checkpoint} AUDIO.wav ...")
        lines.append(
            f"  ship the model:       emodarts export --format onnx -o {onnx} {checkpoint}"
        )
    return "\n".join(lines)


def print_summary(
    metrics: dict[str, Any], run_dir: Path | None = None, *, searched: bool = True
) -> None:
    """A short table of a run's results. ``searched`` False: this run did not search (its
    ``search_seconds`` are those of the search that wrote its architecture.json)."""
    best_epoch, search, retrain = (
        metrics.get(k) for k in ("best_epoch", "search_seconds", "retrain_seconds")
    )
    rows = [
        ("test UA", f"{metrics['ua']:.4f}"),
        ("test WA", f"{metrics['wa']:.4f}"),
        ("macro-F1", f"{metrics['macro_f1']:.4f}"),
        ("parameters", f"{metrics.get('parameters', 0):,}"),
    ]
    # a value the run does not have (``emodarts evaluate`` of a checkpoint) is left out
    if best_epoch is not None:
        # counted from 1, as the progress lines count (metrics.json's best_epoch from 0)
        best = f"{int(best_epoch) + 1} ({_ua(metrics.get('val_ua'))})"
        rows.append(("best epoch (validation UA)", best))
    if search is not None and search > 0:
        label = "search" if searched else "search (architecture.json's, not this run)"
        rows.append((label, format_seconds(search)))
    if retrain is not None:
        rows.append(("retrain", format_seconds(retrain)))
    rows.append(("held-out", ", ".join(metrics.get("test_groups", []))))
    if run_dir is not None:
        rows.append(("run folder", str(run_dir)))
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    recall = metrics.get("per_class_recall") or {}
    if recall:
        print(
            "  per-class recall: "
            + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in recall.items())
        )
    for part, key in (("test", "single_class"), ("validation", "val_single_class")):
        if metrics.get(key):
            print(
                f"  WARNING: single-class model: predicts {metrics[key]!r} for nearly every {part} utterance"
            )
    collapsed = [cell for cell, flag in (metrics.get("collapsed") or {}).items() if flag]
    if collapsed:
        print(
            f"  WARNING: the search collapsed ({', '.join(collapsed)} cell: mostly parameter-free ops)"
        )
    if metrics.get("search_stopped_early"):
        print(f"  search stopped early: {metrics['search_stopped_early']}")


def cmd_run(args: argparse.Namespace) -> int:
    """``emodarts run``: search → export → retrain → evaluate."""
    return execute(args, STAGES)


def cmd_search(args: argparse.Namespace) -> int:
    """``emodarts search``: the search half; writes architecture.json."""
    return execute(args, ("search",))


def cmd_retrain(args: argparse.Namespace) -> int:
    """``emodarts retrain ARCH.json CONFIG``: retrain and evaluate a given architecture."""
    from emodarts_nni.config.overrides import load_config_with

    # the config first: it is checked without importing torch
    cfg = load_config_with(args.config, args.set, vars(args))
    from emodarts_nni.space.architecture import read_architecture

    read_architecture(args.architecture)  # fail fast, naming the culprit
    return execute(args, ("retrain", "evaluate"), architecture=args.architecture, cfg=cfg)


def cmd_baseline(args: argparse.Namespace) -> int:
    """``emodarts baseline NAME CONFIG``: a hand-designed model under the same protocol."""
    from emodarts_nni.common.errors import suggest
    from emodarts_nni.training.baselines import BASELINES

    if args.name not in BASELINES:
        raise EmodartsError(f"unknown baseline {args.name!r}{suggest(args.name, list(BASELINES))}")
    return execute(args, ("retrain", "evaluate"), baseline=args.name)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``emodarts evaluate CHECKPOINT``: re-score a saved model on its fold's test speakers."""
    from emodarts_nni.config.experiment import load_config

    config_path = args.config or RunFolder(args.checkpoint.parent).config
    overrides: dict[str, Any] = {"trainer.progress": False}
    if args.fold is not None:
        overrides["splits.fold"] = args.fold
    # A config that exists is checked before torch is imported; a missing one is reported
    # after the checkpoint, so a broken checkpoint is named first.
    cfg = load_config(config_path, overrides) if Path(config_path).is_file() else None

    from emodarts_nni.inference.checkpoint import load_checkpoint
    from emodarts_nni.pipeline.data import prepare_fold
    from emodarts_nni.pipeline.retrain import evaluate
    from emodarts_nni.space.architecture import count_parameters

    checkpoint = load_checkpoint(args.checkpoint)
    if cfg is None:
        raise EmodartsError(f"no config for {args.checkpoint}: pass --config CONFIG.yaml")
    data = prepare_fold(cfg, progress=False)
    expected = checkpoint.features
    actual = data.feature_config
    mismatch = [k for k in expected if k in actual and expected[k] != actual[k]]
    if mismatch:
        raise EmodartsError(f"config features differ from the checkpoint's: {', '.join(mismatch)}")
    if list(data.class_names) != checkpoint.class_names:
        raise EmodartsError(
            f"classes differ: checkpoint {checkpoint.class_names}, data {list(data.class_names)}"
        )
    report, _ = evaluate(checkpoint.model, data, "test")
    report.update(
        parameters=count_parameters(checkpoint.model), test_groups=list(data.fold.test_groups)
    )
    print_summary(report)
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    """``emodarts view DIR``: reopen NNI's web UI for a finished run or study.

    Ctrl-C or SIGTERM, at any moment (also while the manager starts), stops the web UI.
    """
    from emodarts_nni.nni_runtime import stop_views, terminate_as_interrupt, view_experiment

    with terminate_as_interrupt():
        try:
            view_experiment(args.directory, args.port)
            print("press Ctrl-C to stop the web UI", flush=True)
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            # Only the views this process started: an interrupted start-up was already
            # killed, and whatever else listens on the port is not ours to stop.
            stop_views()
    print("web UI stopped", flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the experiment commands."""
    p = subparsers.add_parser("run", help="search → export → retrain → evaluate on one fold")
    _add_common(p)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("search", help="architecture search only; writes architecture.json")
    _add_common(p)
    p.set_defaults(func=cmd_search)

    p = subparsers.add_parser("retrain", help="retrain + evaluate an architecture JSON")
    p.add_argument("architecture", type=Path, help="architecture.json")
    _add_common(p)
    p.set_defaults(func=cmd_retrain)

    p = subparsers.add_parser("baseline", help="train a hand-designed baseline, same protocol")
    p.add_argument("name", help="cnn, cnn_lstm or cnn_lstm_att")
    _add_common(p)
    p.set_defaults(func=cmd_baseline)

    p = subparsers.add_parser("evaluate", help="re-score a saved checkpoint on its test fold")
    p.add_argument("checkpoint", type=Path, help="checkpoint.pt of a run folder")
    p.add_argument(
        "--config", type=Path, help="config (default: config.yaml beside the checkpoint)"
    )
    p.add_argument("--fold", type=int, help="fold to score (default: the config's)")
    p.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("view", help="reopen NNI's web UI for a finished run")
    p.add_argument("directory", type=Path, help="a run folder, study folder or NNI folder")
    p.add_argument("--port", type=int, default=8080, help="web UI port (bound to 127.0.0.1)")
    p.set_defaults(func=cmd_view)
