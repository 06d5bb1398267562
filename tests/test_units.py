"""How counts and sizes are written: one rule (common/units), the same in every report."""

from __future__ import annotations

from pathlib import Path

import pytest

from emodarts_nni.common.units import MISSING, format_bytes, format_count, number
from emodarts_nni.reporting.runs import RunRecord, summarise, summary_table
from emodarts_nni.space.sizing import SizeEstimate
from emodarts_nni.study.report import markdown, summary_rows


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        (0, "0"),
        (500, "500"),
        (999, "999"),
        (1_000, "1.0 K"),
        (12_345, "12.3 K"),
        (1_234_567, "1.23 M"),
        (2_500_000_000, "2.50 G"),
        (10**16, "~10^16"),
    ],
)
def test_a_count_below_a_thousand_is_written_whole_and_larger_ones_with_a_unit(count, shown):
    assert format_count(count) == shown


def test_a_missing_count_is_the_missing_mark():
    assert format_count(None) == MISSING
    assert format_count(float("nan")) == MISSING


def test_byte_sizes_use_binary_units():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 2**30) == "3.0 GiB"
    assert format_bytes(2**70) == "~2^70 B"


def test_number_reads_a_csv_or_json_value_and_leaves_blanks_text_and_nan_out():
    assert number("0.5") == 0.5
    assert number(3) == 3.0
    for value in ("", None, "nan", "inf", "abc", True):
        assert number(value) is None


def _run_report_table(parameters: int) -> str:
    metrics = {"ua": 0.5, "wa": 0.5, "parameters": parameters, "corpus": "synth"}
    metrics |= {"strategy": "darts", "scope": "emodarts", "fold": 0}
    return summary_table(summarise([RunRecord(Path("run"), "run", metrics)]))


def _study_report(parameters: int) -> str:
    row = {"corpus": "synth", "scope": "emodarts", "arm": "darts", "fold": 0, "seed": 0}
    row |= {"ua": 0.5, "wa": 0.5, "macro_f1": 0.5, "params": parameters, "run_dir": "c"}
    return markdown("study", summary_rows([row]), [], n_cells=1)


@pytest.mark.parametrize(("parameters", "shown"), [(500, "500"), (1_234_567, "1.23 M")])
def test_run_report_study_report_and_plan_write_a_parameter_count_alike(parameters, shown):
    assert format_count(parameters) == shown
    assert f"| {shown} |" in _run_report_table(parameters)
    assert f"| {shown} |" in _study_report(parameters)
    size = SizeEstimate("frozen", parameters, activation_bytes=0, batch_size=1, peak_bytes=0)
    assert size.describe().startswith(f"{shown} parameters")


def test_format_seconds_reads_as_a_person_would_say_it():
    from emodarts_nni.common.units import format_seconds

    assert format_seconds(47.531) == "47.5 s"
    assert format_seconds(219) == "3 min 39 s"
    assert format_seconds(59.96) == "60.0 s"
    assert format_seconds(3600 + 6 * 60 + 29) == "1 h 06 min"
    assert format_seconds(None) == MISSING and format_seconds(float("nan")) == MISSING
