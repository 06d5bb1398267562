"""The process NNI runs as the trial of a one-shot ``emodarts run``/``search``.

One-shot strategies never reach NNI's web UI on their own (nni-notes #2): the CLI starts a
one-trial NNI experiment whose trial is ``python -m emodarts_nni.pipeline.trial RUN_DIR``.
This process takes NNI's trial channel first (:class:`~emodarts_nni.nni_runtime.TrialReporter`),
then runs the pipeline in the run folder, reporting validation UA per epoch and the final
test UA (or the search's last validation UA for a search-only run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from emodarts_nni.common.errors import EmodartsError
from emodarts_nni.pipeline.runfolder import STAGES, RunFolder


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stages of the run folder's ``config.yaml`` as an NNI trial."""
    parser = argparse.ArgumentParser(prog="python -m emodarts_nni.pipeline.trial")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--architecture", type=Path, default=None)
    parser.add_argument("--baseline", default=None)
    args = parser.parse_args(argv)

    from emodarts_nni.nni_runtime import TrialReporter

    reporter = TrialReporter()  # before any NasExperiment replaces the channel
    from emodarts_nni.config.experiment import load_config
    from emodarts_nni.pipeline.run import run_pipeline

    try:
        cfg = load_config(RunFolder(args.run_dir).config)
        result = run_pipeline(
            cfg,
            args.run_dir,
            stages=args.stages.split(","),
            resume=True,
            reporter=reporter,
            architecture_path=args.architecture,
            baseline=args.baseline,
        )
    except EmodartsError as exc:
        print(f"emodarts: error: {exc}", file=sys.stderr)
        return 2
    if "ua" not in result:  # search only: the final metric is the search's validation UA
        from emodarts_nni.nni_runtime.reporter import architecture_fields

        arch = Path(result["architecture"]) if "architecture" in result else None
        extra = architecture_fields(arch) if arch is not None and arch.is_file() else {}
        value = reporter.last_value if reporter.last_value is not None else 0.0
        reporter.report_final(value, stage="search", **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
