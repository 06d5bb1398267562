"""``emodarts report DIR [--out OUT]``: tables (Markdown, CSV) and pictures from finished runs.

A thin layer over :func:`emodarts_nni.reporting.runs.make_report` (``docs/report.md``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from emodarts_nni.common.errors import DataError
from emodarts_nni.common.files import result_folder_of, writable_folder_problem
from emodarts_nni.pipeline.runfolder import RunFolder


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="tables (Markdown, CSV) and pictures (PNG) from finished runs",
        description=f"Collect every run folder (one with a {RunFolder.METRICS}) below DIR, "
        "summarise UA/WA as mean ± std over folds per corpus, strategy and scope, and write "
        "report.md, summary.csv, runs.csv and accuracy.png into OUT (default: DIR). Each run's "
        "pictures (confusion matrix, training curves, α evolution, cells) go into its own folder, "
        "or with --out into OUT/<run>. A study folder's report goes into OUT (default: DIR) too.",
    )
    parser.add_argument("directory", metavar="DIR", help="a run folder or a folder of runs")
    parser.add_argument(
        "--out",
        metavar="OUT",
        default=None,
        help="folder for every report file (default: DIR, and run pictures in each run)",
    )
    parser.set_defaults(func=run_report)


def check_report_folder(out: str | os.PathLike, directory: str | os.PathLike) -> None:
    """Refuse ``--out OUT`` in one line (:class:`DataError`) before any report work.

    OUT must be a folder or a new name whose nearest existing parent is a writable
    folder (:func:`writable_folder_problem`), and must not lie inside a run or study
    folder other than ``directory`` itself (:func:`result_folder_of`, the owners that
    :func:`check_output` asks): those folders hold what their own run wrote.
    """
    from emodarts_nni.reporting.runs import REPORT_MD

    problem = writable_folder_problem(out)
    if problem is None:
        # The folder holding a file in OUT at any depth: OUT itself or one above it.
        holder = result_folder_of(Path(out) / REPORT_MD)
        if holder is not None and not os.path.samefile(holder[0], directory):
            folder, kind = holder
            problem = (
                f"is inside the {kind} {folder}, which only its own run writes; write it elsewhere"
            )
    if problem is not None:
        raise DataError(f"--out {out}: {problem}")


def run_report(args: argparse.Namespace) -> int:
    """Write the report and print its summary table and where the files went."""
    from emodarts_nni.reporting.runs import make_report, summary_table
    from emodarts_nni.study.trial import CELLS_FILE

    if args.out is not None:
        if not Path(args.directory).is_dir():
            raise DataError(f"not a directory: {args.directory}")
        check_report_folder(args.out, args.directory)
    if (Path(args.directory) / CELLS_FILE).is_file():  # a study folder: the study report
        from emodarts_nni.study.report import make_study_report

        files = make_study_report(args.directory, args.out)
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
    if args.out is None:
        print(f"{n_pictures} run picture(s) written into {len(report.records)} run folder(s)")
    else:
        print(
            f"{n_pictures} run picture(s) of {len(report.records)} run(s) written into {args.out}"
        )
    if report.skipped:
        print(f"{len(report.skipped)} run(s) skipped; see the warnings above")
    return 0
