"""``emodarts report DIR [--out OUT]``: tables (Markdown, CSV) and pictures from finished runs.

A thin layer over :func:`emodarts_nni.reporting.runs.make_report` (``docs/report.md``).
"""

from __future__ import annotations

import argparse

from emodarts_nni.pipeline.runfolder import RunFolder


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="tables (Markdown, CSV) and pictures (PNG) from finished runs",
        description=f"Collect every run folder (one with a {RunFolder.METRICS}) below DIR, "
        "summarise UA/WA as mean ± std over folds per corpus, strategy and scope, and write "
        "report.md, summary.csv, runs.csv and accuracy.png into OUT (default: DIR). Each run's "
        "pictures (confusion matrix, training curves, α evolution, cells) go into its own folder.",
    )
    parser.add_argument("directory", metavar="DIR", help="a run folder or a folder of runs")
    parser.add_argument(
        "--out", metavar="OUT", default=None, help="folder for the report files (default: DIR)"
    )
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Write the report and print its summary table and where the files went."""
    from pathlib import Path

    from emodarts_nni.reporting.runs import make_report, summary_table
    from emodarts_nni.study.trial import CELLS_FILE

    if (Path(args.directory) / CELLS_FILE).is_file():  # a study folder: the study report
        from emodarts_nni.study.report import make_study_report

        files = make_study_report(args.directory)
        print(f"study report: {files['report']}")
        print(f"tables: {files['folds']}, {files['report_csv']}")
        return 0

    report = make_report(args.directory, args.out)
    print(summary_table(report.summary))
    print()
    files = report.files
    print(f"report:  {files['report']}")
    print(f"tables:  {files['summary']}, {files['runs']}")
    if "accuracy" in files:
        print(f"scatter: {files['accuracy']}")
    n_pictures = sum(1 for key in files if "/" in key)
    print(f"{n_pictures} run picture(s) written into {len(report.records)} run folder(s)")
    if report.skipped:
        print(f"{len(report.skipped)} run(s) skipped; see the warnings above")
    return 0
