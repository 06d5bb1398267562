"""``emodarts study``: study files, cells, the paired report, the paper's IEMOCAP folds.

The report's statistics on their own are in ``test_study_statistics.py``.

The end-to-end study runs (killed and resumed; in NNI's web UI) are in ``test_study_e2e.py``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import ConfigError, DataError
from emodarts_nni.config.experiment import config_from_dict
from emodarts_nni.data.manifest import Utterance
from emodarts_nni.data.splits import emodarts_pair_groups, make_folds
from emodarts_nni.pipeline.runfolder import RunFolder
from emodarts_nni.study.cells import expand_cells, resolve_primary
from emodarts_nni.study.checklist import same_pipeline
from emodarts_nni.study.comparisons import best_baseline, comparisons
from emodarts_nni.study.config import Primary, load_study
from emodarts_nni.study.report import make_study_report, summary_rows
from emodarts_nni.study.runner import code_version
from emodarts_nni.study.service import nni_training_service
from emodarts_nni.study.statistics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, holm
from emodarts_nni.training.classical import C_GRID


def write_study(tmp_path: Path, **study) -> Path:
    """A study file over a small base config (the base's corpus is never read here)."""
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"name": "base", "splits": {"protocol": "session"}}))
    data = {
        "name": "s",
        "base": "base.yaml",
        "grid": {"splits.fold": [0, 1], "search.strategy": ["darts", "random-oneshot"]},
        "controls": {"random_architectures": 1, "baselines": ["cnn"], "classical": True},
    }
    for key, value in study.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ------------------------------------------------------------------------- cells
def test_cells_are_the_grid_plus_controls_per_fold_with_stable_ids(tmp_path):
    study = load_study(write_study(tmp_path))
    cells = expand_cells(study)
    assert [c.id for c in cells] == [
        "darts_fold-0",
        "random-oneshot_fold-0",
        "darts_fold-1",
        "random-oneshot_fold-1",
        "random-arch-0_fold-0",
        "random-arch-0_fold-1",
        "baseline-cnn_fold-0",
        "classical_fold-0",
        "baseline-cnn_fold-1",
        "classical_fold-1",
    ]
    assert [c.id for c in expand_cells(load_study(tmp_path / "study.yaml"))] == [
        c.id for c in cells
    ]
    first = cells[1].parameters()
    assert first["cell"] == "random-oneshot_fold-0"
    assert (first["arm"], first["strategy"], first["fold"], first["scope"], first["seed"]) == (
        "random-oneshot",
        "random-oneshot",
        0,
        "emodarts",
        0,
    )
    assert cells[1].config.search.strategy == "random-oneshot"
    assert cells[3].config.splits.fold == 1
    baseline = cells[6]
    assert (baseline.arm, baseline.baseline, baseline.scope) == ("baseline:cnn", "cnn", "-")
    # random architectures: the same sample on every fold (every fold retrains it)
    assert cells[4].sample_seed == cells[5].sample_seed


def test_study_overrides_reach_every_cell(tmp_path):
    study = load_study(write_study(tmp_path, overrides={"retrain.epochs": 3}))
    assert {c.config.retrain.epochs for c in expand_cells(study)} == {3}


@pytest.mark.parametrize(
    ("study", "culprit"),
    [
        ({"grids": {"seed": [0]}}, "'grids'"),
        ({"controls": {"random_arch": 2}}, "'controls.random_arch'"),
        ({"grid": {}}, "grid: empty"),
        ({"grid": None}, "grid: empty"),
        ({"grid": {"search.stratgy": ["darts"]}}, "'search.stratgy'"),
        ({"grid": {"splits.fold": 0}}, "grid 'splits.fold'"),
        ({"grid": {"search.strategy": ["darts", "dartz"]}}, "search.strategy"),
        ({"grid": {"splits.fold": [-1]}}, "splits.fold"),
        ({"controls": {"baselines": ["cnn", "lstm"]}}, "'lstm'"),
        ({"training_service": {"platform": "kubeflow"}}, "training_service.platform"),
        ({"training_service": {"trial_concurrency": 0}}, "training_service.trial_concurrency"),
        ({"base": "missing.yaml"}, "base = 'missing.yaml'"),
        ({"primary": "darts"}, "primary: expected a mapping"),
        ({"primary": {"arm": "darts"}}, "primary.against: missing"),
        ({"primary": {"arm": "darts", "against": "random-arch", "scop": "x"}}, "'primary.scop'"),
        ({"primary": {"arm": "enas", "against": "random-arch"}}, "primary.arm = 'enas'"),
        ({"primary": {"arm": "darts", "against": "darts"}}, "primary.against = 'darts'"),
        ({"primary": {"arm": "darts", "against": "baseline:lstm"}}, "primary.against"),
        (
            {"primary": {"arm": "darts", "against": "classical"}, "controls": {"baselines": []}},
            "primary.against = 'classical'",
        ),
        (
            {"primary": {"arm": "darts", "against": "random-arch", "scope": "lstm_only"}},
            "primary.scope = 'lstm_only'",
        ),
        (
            {
                "grid": {"splits.fold": [0], "space.scope": ["emodarts", "lstm_only"]},
                "primary": {"arm": "darts", "against": "classical"},
            },
            "primary.scope",
        ),
        (
            {"grid": {"splits.fold": [0]}, "primary": {"arm": "enas", "against": "classical"}},
            "primary.arm = 'enas'",  # the base config's strategy: checked with the cells
        ),
    ],
)
def test_bad_study_files_fail_before_any_work_naming_the_key(tmp_path, capsys, study, culprit):
    path = write_study(tmp_path, **study)
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out), "--no-webui"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert culprit in error and str(path) in error, error
    assert not out.exists()  # nothing was laid out, nothing ran


def test_training_service_becomes_nnis_config(tmp_path):
    study = load_study(
        write_study(
            tmp_path,
            training_service={"platform": "local", "trial_concurrency": 2, "trial_gpu_number": 1},
        )
    )
    service = study.training_service
    assert (service.trial_concurrency, service.trial_gpu_number) == (2, 1)
    local = nni_training_service(service)
    assert (local.platform, local.use_active_gpu) == ("local", True)
    key = tmp_path / "id_test"
    key.write_text("not used: nothing connects here\n")
    remote = load_study(
        write_study(
            tmp_path,
            training_service={
                "platform": "remote",
                "machine_list": [
                    {"host": "127.0.0.1", "port": 2222, "user": "me", "ssh_key_file": str(key)}
                ],
            },
        )
    ).training_service
    config = nni_training_service(remote)
    assert config.platform == "remote" and config.machine_list[0].port == 2222
    bad = load_study(
        write_study(tmp_path, training_service={"platform": "local", "gpu_indices": "x"})
    ).training_service
    with pytest.raises(ConfigError, match="training_service"):
        nni_training_service(bad)


# ------------------------------------------------------------------------- report
def row(arm: str, fold: int, k: int, *, seed: int = 0, scope: str = "emodarts", **extra) -> dict:
    """A folds.csv row whose test UA is exactly k/20 (two classes of ten utterances)."""
    ua = Fraction(k, 20)
    scope = scope if arm in ("darts", "enas", "random-arch") else "-"
    cell = f"{arm}_fold-{fold}_seed-{seed}_{extra.pop('index', 0)}"
    return {
        "corpus": "synth",
        "scope": scope,
        "arm": arm,
        "fold": fold,
        "seed": seed,
        "ua": float(ua),
        "ua_exact": ua,
        "wa": float(ua),
        "macro_f1": float(ua),
        "params": 100,
        "run_dir": cell,
        "cell": cell,
        **extra,
    }


def only(found, reference):
    (match,) = [c for c in found if c.reference == reference]
    return match


def test_a_tie_is_an_equal_exact_ua_not_an_equal_float_mean():
    # fold 0: darts's two seeds score 2/20 and 4/20, the random architectures 3/20 each.
    # The float means differ in the 17th digit, which used to count as a win.
    assert np.mean([0.1, 0.2]) > np.mean([0.15, 0.15, 0.15, 0.15])
    rows = [row("darts", 0, 2, seed=0), row("darts", 0, 4, seed=1)]
    rows += [row("random-arch", 0, 3, seed=s, index=r) for s in (0, 1) for r in (0, 1)]
    for fold, k in ((1, 11), (2, 12), (3, 7)):  # random-arch: 10 -> +1, +2, -3
        rows += [row("darts", fold, k, seed=s) for s in (0, 1)]
        rows += [row("random-arch", fold, 10, seed=s, index=r) for s in (0, 1) for r in (0, 1)]
    c = only(comparisons(rows), "random-arch")
    assert c.folds == (0, 1, 2, 3)
    assert (c.wins, c.ties, c.losses) == (2, 1, 1)
    assert c.differences == (0.0, 0.05, 0.1, -0.15)
    assert c.differences[0] == 0  # exactly, so the report prints it as "tie"
    # the tie is dropped from the Wilcoxon test: ranks 1, 2 positive, 3 negative: W+ = 3
    # is the centre of the null distribution, p = 1
    assert c.p_value == 1.0
    assert c.result.p_floor == pytest.approx(2 / 2**3)


def test_seeds_are_averaged_within_a_fold_and_folds_are_the_pairs():
    rows = []
    for fold in range(3):
        rows += [row("darts", fold, 10 + fold + 2 * s, seed=s) for s in (0, 1, 2)]
        rows += [
            row("random-arch", fold, 9 + r, seed=s, index=r) for s in (0, 1, 2) for r in (0, 1)
        ]
    c = only(comparisons(rows), "random-arch")
    assert c.n == 3  # folds, not fold x seed (9) or fold x seed x architecture
    # darts: mean of (10+f, 12+f, 14+f)/20 = (12+f)/20; random: mean of 9, 10 = 9.5/20
    assert c.differences == pytest.approx([(2.5 + f) / 20 for f in range(3)])
    summary = {r["arm"]: r for r in summary_rows(rows)}
    darts = summary["darts"]
    assert (darts["n_folds"], darts["n_seeds"]) == (3, 3)
    assert darts["ua_mean"] == pytest.approx(13 / 20)
    assert darts["ua_std"] == pytest.approx(np.std([12 / 20, 13 / 20, 14 / 20], ddof=1))
    # within every fold the seeds score 0, 2 and 4 twentieths above the lowest: sd 0.1
    assert darts["ua_seed_std"] == pytest.approx(0.1)
    assert summary["random-arch"]["ua_seed_std"] is None or summary["random-arch"][
        "ua_seed_std"
    ] == pytest.approx(0.0)


def test_the_best_baseline_is_chosen_on_validation_ua_never_on_test():
    rows = [row("darts", f, 13) for f in range(3)]
    rows += [row("baseline:cnn", f, 12, val_ua=0.6) for f in range(3)]
    rows += [row("baseline:cnn_lstm", f, 14, val_ua=0.5) for f in range(3)]  # better on test
    rows += [row("baseline:cnn_lstm_att", f, 15, val_ua=0.9 if f else None) for f in range(3)]
    choice = best_baseline(rows, "synth")
    assert choice.best == "baseline:cnn"
    assert choice.validation_ua["baseline:cnn_lstm_att"] is None  # a cell without one
    assert "left out for lacking a validation UA: baseline:cnn_lstm_att" in choice.describe()
    assert only(comparisons(rows), "baseline:cnn").label == "best baseline (baseline:cnn)"
    none = [r | {"val_ua": None} for r in rows]
    assert best_baseline(none, "synth").best is None
    assert "not chosen" in best_baseline(none, "synth").describe()
    assert not [c for c in comparisons(none) if c.reference.startswith("baseline:")]


def test_the_primary_comparison_is_unadjusted_and_the_rest_holm_adjusted():
    rows = []
    for f in range(6):
        rows += [row("darts", f, 12), row("enas", f, 10), row("random-arch", f, 10)]
        rows += [row("classical", f, 15)]
    primary = {"arm": "darts", "against": "random-arch", "scope": "emodarts", "corpus": "synth"}
    found = comparisons(rows, primary)
    first, *exploratory = found
    assert (first.primary, first.arm, first.reference) == (True, "darts", "random-arch")
    assert first.p_value == pytest.approx(2 / 2**6) and first.p_adjusted is None
    assert first.result.can_reach_alpha
    # darts vs classical (6 losses), enas vs random-arch (all tied), enas vs classical
    assert [(c.arm, c.reference) for c in exploratory] == [
        ("darts", "classical"),
        ("enas", "random-arch"),
        ("enas", "classical"),
    ]
    assert exploratory[1].p_value is None  # nothing to test: counts as p = 1
    # Holm by hand, m = 3: 3 x 1/32, then max(that, 2 x 1/32), then max(that, 1 x 1)
    assert [c.p_adjusted for c in exploratory] == pytest.approx([3 / 32, 1.0, 3 / 32])
    assert holm([1 / 32, None, 1 / 32]) == pytest.approx([2 / 32, None, 2 / 32])
    # against another searched arm: same scope; darts vs random-arch becomes exploratory
    other = comparisons(rows, {"arm": "darts", "against": "enas"})
    assert (other[0].primary, other[0].reference, other[0].wins) == (True, "enas", 6)
    assert ("darts", "random-arch") in [(c.arm, c.reference) for c in other[1:]]


# ------------------------------------------------------------------------- report files
#: Test UA k (of 20), validation UA, search and retrain seconds of each arm: darts ties the
#: random architectures' mean on fold 0 exactly (its seeds 2 and 4, theirs 3 and 3) and
#: beats it on folds 1-5; baseline:cnn_lstm is better on test, baseline:cnn on validation.
def fake_scores(arm: str, fold: int, seed: int, index: int) -> tuple[int, float, float, float]:
    if arm == "darts":
        k = (2, 4)[seed] if fold == 0 else 10 + fold + 2 * seed
        return k, 0.5, 100.0, 50.0
    if arm == "random-arch":
        return (3 if fold == 0 else (10, 8)[index]), 0.4, 0.0, 40.0
    if arm == "classical":
        return 16, 0.7, 0.0, 2.0
    return (
        {"baseline:cnn": 12, "baseline:cnn_lstm": 14}[arm],
        (0.6 if arm == "baseline:cnn" else 0.5),
        0.0,
        30.0,
    )


def fake_study(tmp_path: Path, scores=fake_scores, **study) -> Path:
    """A finished study folder laid out as ``emodarts study`` does, each cell's
    ``metrics.json`` written from ``scores`` (two classes of ten test utterances)."""
    from emodarts_nni.study.runner import layout_study

    path = write_study(tmp_path, **study)
    base = {"name": "base", "splits": {"protocol": "session"}}
    (tmp_path / "base.yaml").write_text(
        yaml.safe_dump(base | {"features": {"normalisation": "speaker"}})
    )
    config = load_study(path)
    out = tmp_path / "study"
    for cell in layout_study(config, expand_cells(config), out):
        k, val_ua, search, retrain = scores(cell.arm, cell.config.splits.fold, cell.config.seed,
                                            cell.index)  # fmt: skip
        right = [min(k, 10), k - min(k, 10)]
        RunFolder(out / cell.id).write_metrics(
            {
                "ua": float(np.mean([right[0] / 10, right[1] / 10])),  # as scikit-learn does
                "wa": k / 20,
                "macro_f1": k / 20,
                "confusion_matrix": [[right[0], 10 - right[0]], [10 - right[1], right[1]]],
                "parameters": 100,
                "val_ua": val_ua,
                "search_seconds": search,
                "retrain_seconds": retrain,
                "fold": cell.config.splits.fold,
                "seed": cell.config.seed,
                **(
                    {
                        "regularisation_c": 0.1 if cell.config.splits.fold % 2 else 1.0,
                        "validation_ua_by_c": {str(c): 0.5 for c in C_GRID},
                    }
                    if cell.arm == "classical"
                    else {}
                ),
            }
        )
    return out


def read_folds(out: Path) -> list[dict]:
    with (out / "folds.csv").open() as fh:
        return list(csv.DictReader(fh))


def folds_by(rows: list[dict], arm: str) -> dict[int, Fraction]:
    """A reviewer's recomputation: each fold's exact mean UA of ``arm`` from folds.csv."""
    by_fold: dict[int, list[Fraction]] = {}
    for r in rows:
        if r["arm"] == arm:
            by_fold.setdefault(int(r["fold"]), []).append(Fraction(r["ua_exact"]))
    return {f: sum(v, Fraction(0)) / len(v) for f, v in sorted(by_fold.items())}


def bootstrap(differences: list[float]) -> tuple[float, float]:
    values = np.asarray(differences)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    low, high = np.quantile(values[draws].mean(axis=1), [0.025, 0.975])
    return float(low), float(high)


STUDY = {
    "grid": {"splits.fold": [0, 1, 2, 3, 4, 5], "search.strategy": ["darts"], "seed": [0, 1]},
    "controls": {"random_architectures": 2, "baselines": ["cnn", "cnn_lstm"], "classical": True},
    "primary": {"arm": "darts", "against": "random-arch"},
}


def test_the_report_can_be_recomputed_from_its_own_folds_csv(tmp_path):
    out = fake_study(tmp_path, **STUDY)
    make_study_report(out)
    text = (out / "report.md").read_text()
    rows = read_folds(out)
    assert len(rows) == 72  # 6 folds x 2 seeds x (darts + 2 random + 2 baselines + classical)
    for r in rows:  # the exact UA is the mean of the per-class correct/support
        counts = [Fraction(c) for c in r["recall_counts"].split()]
        assert Fraction(r["ua_exact"]) == sum(counts, Fraction(0)) / len(counts)
        assert float(Fraction(r["ua_exact"])) == pytest.approx(float(r["ua"]), abs=1e-12)
        assert r["normalisation"] == "speaker"

    # the primary comparison: darts against the random architectures' mean, by fold
    darts, random = folds_by(rows, "darts"), folds_by(rows, "random-arch")
    exact = [darts[f] - random[f] for f in darts]
    wins, ties = sum(d > 0 for d in exact), sum(d == 0 for d in exact)
    assert (wins, ties, len(exact) - wins - ties) == (5, 1, 0)  # fold 0 ties exactly
    mean = float(sum(exact, Fraction(0)) / len(exact))
    low, high = bootstrap([float(d) for d in exact])
    primary = text.split("## Primary comparison")[1].split("## Table 3")[0]
    assert "**darts against the random-arch mean** (synth, scope emodarts)" in primary
    assert "wins / ties / losses: 5 / 1 / 0" in primary
    assert f"{100 * mean:+.2f} points, 95 % bootstrap CI [{100 * low:+.2f}, {100 * high:+.2f}]" in (
        primary
    )
    assert "Wilcoxon signed-rank p = 0.0625" in primary  # 5 non-tied folds, all positive
    assert "2/2^5 = 0.0625: p < 0.05 cannot be reached" in primary
    assert "0: tie, 1: +15.00, 2: +20.00" in primary
    assert text.index("## Primary comparison") < text.index("## Table 3")

    # exploratory: the best baseline on validation UA (cnn 0.6 > cnn_lstm 0.5), though
    # cnn_lstm scores higher on test; Holm over the two exploratory comparisons
    val = {
        arm: np.mean([float(r["val_ua"]) for r in rows if r["arm"] == arm])
        for arm in ("baseline:cnn", "baseline:cnn_lstm")
    }
    assert max(val, key=val.get) == "baseline:cnn"
    assert folds_by(rows, "baseline:cnn_lstm")[1] > folds_by(rows, "baseline:cnn")[1]
    exploratory = text.split("## Exploratory comparisons")[1]
    assert "Best baseline, chosen on mean validation UA (never on test): synth: baseline:cnn" in (
        exploratory
    )
    # darts vs cnn: -9, tie, +1, +2, +3, +4 -> p = 20/32; vs classical: 5 losses -> 2/32
    assert "| synth | darts | emodarts | best baseline (baseline:cnn) | 6 | 4 / 1 / 1 |" in (
        exploratory
    )
    assert "| 0.6250 † | 0.6250 |" in exploratory  # Holm: max(2 x 0.0625, 0.625)
    assert "| synth | darts | emodarts | classical | 6 | 0 / 1 / 5 |" in exploratory
    assert "| 0.0625 † | 0.1250 |" in exploratory

    # seeds: two per fold, their spread beside the mean (darts: 2/20 apart on every fold)
    assert "| synth | darts | emodarts | 6 | 2 |" in text
    assert f"| {100 * np.std([0, 0.1], ddof=1):.2f} |" in text
    assert "**Transductive normalisation**: darts, random-arch, baseline:cnn" in text

    # the checklist ends the report, filled in from the records
    assert text.rstrip().splitlines()[-1] == "| synth | classical | - | 12 | 0 | 2 | 24 |"
    checklist = text.split("## NAS best-practices checklist")[1]
    assert "## " not in checklist
    assert "yes: the 72 finished cells' resolved `config.yaml` agree" in checklist
    assert "2 (seed 0, 1) on each of the 6 folds, every arm" in checklist
    assert "yes: 2 random architectures per fold, scope and seed (24 of 24" in checklist
    assert "| synth | darts | emodarts | 12 | 100 | 50 | 1,800 |" in checklist
    assert "one corpus (synth)" in checklist and "no hyper-parameter tuning" in checklist
    # 5 non-tied folds at most, in every comparison
    assert "too few non-tied folds for any comparison to reach p < 0.05" in checklist
    assert "C chosen per cell on validation UA from 6 candidates (chosen: 0.1 ×6, 1 ×6)" in (
        checklist
    )
    commit = code_version()["git_commit"]
    assert (f"git commit `{commit}`" if commit else "no git commit") in checklist

    # `emodarts report STUDY_DIR` writes the same report again
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == text


def test_a_study_without_a_primary_comparison_says_so(tmp_path):
    out = fake_study(tmp_path, **{**STUDY, "primary": None})
    study = json.loads((out / "study.json").read_text())
    assert study["primary"] is None
    del study["primary"], study["code"]  # a study folder laid out before either was recorded
    (out / "study.json").write_text(json.dumps(study))
    make_study_report(out)
    text = (out / "report.md").read_text()
    assert "No primary comparison was named in the study file (`primary:`)" in text
    assert "| synth | darts | emodarts | random-arch mean | 6 | 5 / 1 / 0 |" in text
    assert "`study.json` records none" in text and "package version emodarts-nni" in text


def test_the_checklist_names_a_pipeline_setting_that_differs_between_cells(tmp_path):
    out = fake_study(tmp_path, **STUDY)
    rows = [{"run_dir": p.parent.name, "cell": p.parent.name, "arm": "darts"}
            for p in sorted(out.glob("*/config.yaml"))]  # fmt: skip
    assert same_pipeline(out, rows, ["splits.fold"]).startswith("yes")
    config = RunFolder(out / "classical_fold-0_seed-0").config
    data = yaml.safe_load(config.read_text())
    epochs, data["retrain"]["epochs"] = data["retrain"]["epochs"], 7
    config.write_text(yaml.safe_dump(data))
    answer = same_pipeline(out, rows, ["splits.fold"])
    assert answer.startswith("no:")
    assert f"`retrain.epochs` ({epochs} in 71 cells; 7 in 1 cells)" in answer


def test_a_primary_comparison_is_resolved_to_one_corpus_and_scope(tmp_path):
    study = load_study(write_study(tmp_path, primary={"arm": "darts", "against": "classical"}))
    assert study.primary == Primary("darts", "classical")
    resolved = resolve_primary(study, expand_cells(study))
    assert dataclasses.asdict(resolved) == {
        "arm": "darts",
        "against": "classical",
        "scope": "emodarts",
        "corpus": "synth",
        "against_scope": None,
    }
    assert load_study(write_study(tmp_path)).primary is None


# ------------------------------------------------------------------------- folds
def iemocap_like(sessions: int = 5) -> list[Utterance]:
    return [
        Utterance(f"/c/Ses0{s}{g}/{label}_{n}.wav", label, f"Ses0{s}{g}", f"Session{s}", 1.0)
        for s in range(1, sessions + 1)
        for g in "MF"
        for label in ("ang", "hap", "neu", "sad")
        for n in range(6)
    ]


def test_emodarts_pairs_hold_out_the_male_of_session_k_and_the_female_of_k_plus_1():
    utts = iemocap_like()
    assert emodarts_pair_groups(utts) == [
        ("Ses01M", "Ses02F"),
        ("Ses02M", "Ses03F"),
        ("Ses03M", "Ses04F"),
        ("Ses04M", "Ses05F"),
        ("Ses05M", "Ses01F"),
    ]
    folds = make_folds(utts, protocol="emodarts_pairs")
    assert len(folds) == 5
    fold = folds[0]
    assert fold.test_groups == ("Ses01M", "Ses02F")
    test_speakers = {utts[i].speaker for i in fold.test}
    assert test_speakers == {"Ses01M", "Ses02F"}
    training = {
        utts[i].speaker for part in ("search", "train", "validation") for i in fold.part(part)
    }
    # speaker-independent, but not session-independent: the partners are in training
    assert not test_speakers & training
    assert {"Ses01F", "Ses02M"} <= training


def test_emodarts_pairs_refuse_other_corpora_and_are_a_config_protocol():
    odd = [Utterance(f"/x/{i}.wav", "ang", f"spk{i % 4}", "", 1.0) for i in range(20)]
    with pytest.raises(DataError, match="IEMOCAP speakers"):
        make_folds(odd, protocol="emodarts_pairs")
    with pytest.raises(DataError, match="n_folds"):
        make_folds(iemocap_like(), protocol="emodarts_pairs", n_folds=3)
    cfg = config_from_dict({"splits": {"protocol": "emodarts_pairs"}})
    assert cfg.splits.protocol == "emodarts_pairs"


# ------------------------------------------------------------------------- classical
def test_utterance_statistics_are_per_coefficient_mean_then_std_over_frames():
    from emodarts_nni.training.classical import utterance_statistics

    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    stats = utterance_statistics(x)
    assert stats.shape == (2, 6)
    assert stats[1, :3] == pytest.approx(x[1].mean(axis=1))
    assert stats[1, 3:] == pytest.approx(x[1].std(axis=1))


def test_classical_regularisation_is_chosen_on_validation_only():
    from emodarts_nni.training.classical import C_GRID, fit_classical
    from emodarts_nni.training.metrics import unweighted_accuracy

    rng = np.random.default_rng(0)
    y_fit = np.repeat([0, 1, 2], 20)
    x_fit = rng.normal(size=(60, 8)) + y_fit[:, None] * 0.8
    y_val = np.repeat([0, 1, 2], 8)
    x_val = rng.normal(size=(24, 8)) + y_val[:, None] * 0.8
    model, c, scores = fit_classical(x_fit, y_fit, x_val, y_val, seed=0)
    assert set(scores) == set(C_GRID)
    assert scores[c] == max(scores.values())
    assert c == min(k for k, v in scores.items() if v == scores[c])  # ties: stronger penalty
    assert scores[c] == pytest.approx(unweighted_accuracy(y_val, model.predict(x_val)))
    _, c_none, none = fit_classical(x_fit, y_fit, x_val[:0], y_val[:0])
    assert (c_none, none) == (1.0, {})


def test_the_console_prints_a_line_per_finished_cell_and_closes_with_the_primary(tmp_path):
    """Issue 22 item 4: one line per finished cell (cell, UA, wall time), then UA per arm
    and the primary comparison as report.md states it."""
    from emodarts_nni.study.report import console_summary
    from emodarts_nni.study.runner import finished_line

    out = fake_study(tmp_path, **STUDY)
    cells = expand_cells(load_study(tmp_path / "study.yaml"))
    darts = next(c for c in cells if c.arm == "darts" and c.config.seed == 1)
    line = finished_line(out, darts, 3, 72)
    assert line.startswith(f"[3/72] {darts.id}  UA ")
    assert "2 min 30 s (search 1 min 40 s + retrain 50.0 s)" in line  # fake: 100 s + 50 s
    classical = next(c for c in cells if c.arm == "classical")
    assert finished_line(out, classical, 1, 72).endswith("  2.0 s")  # no search part

    make_study_report(out)
    lines = console_summary(out)
    text = "\n".join(lines)
    assert "darts" in text and "classical" in text and "(seeds ± " in text
    primary = next(line for line in lines if "primary comparison" in line)
    report = (out / "report.md").read_text()
    wtl = report.split("- wins / ties / losses: ")[1].split(" (")[0]
    assert f"wins / ties / losses {wtl}" in primary
    ci = report.split("95 % bootstrap CI ")[1].split(" (")[0]
    assert f"95 % CI {ci}" in primary


def test_the_report_embeds_its_pictures(tmp_path):
    out = fake_study(tmp_path, **STUDY)
    make_study_report(out)
    text = (out / "report.md").read_text()
    pictures = text.split("## Pictures")[1].split("\n## ")[0]
    linked = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", pictures)
    assert "ua_boxes.png" in linked and "accuracy_scatter.png" in linked
    for name in linked:
        assert (out / name).is_file(), name


def test_a_study_whose_only_comparison_is_its_primary_says_so(tmp_path):
    out = fake_study(
        tmp_path,
        grid={"splits.fold": [0, 1], "search.strategy": ["darts"]},
        controls={"random_architectures": 0, "baselines": [], "classical": True},
        primary={"arm": "darts", "against": "classical"},
    )
    make_study_report(out)
    text = (out / "report.md").read_text()
    assert "**darts against the classical**" in text
    assert "None: the primary comparison is the study's only comparison." in text
    assert "over these 0 comparisons" not in text
