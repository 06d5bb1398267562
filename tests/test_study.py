"""``emodarts study``: study files, cells, the paired report logic, the paper's IEMOCAP folds.

The end-to-end study runs (killed and resumed; in NNI's web UI) are in ``test_study_e2e.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from emodarts_nni.cli.main import main
from emodarts_nni.common.errors import ConfigError, DataError
from emodarts_nni.config.experiment import config_from_dict
from emodarts_nni.data.manifest import Utterance
from emodarts_nni.data.splits import emodarts_pair_groups, make_folds
from emodarts_nni.study.cells import expand_cells
from emodarts_nni.study.config import load_study
from emodarts_nni.study.report import comparisons, summary_rows, wilcoxon_p
from emodarts_nni.study.service import nni_training_service


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
def row(arm: str, fold: int, ua: float, scope: str = "emodarts", params: int = 100) -> dict:
    return {
        "corpus": "synth",
        "scope": scope,
        "arm": arm,
        "fold": fold,
        "seed": 0,
        "ua": ua,
        "wa": ua,
        "macro_f1": ua,
        "params": params,
        "run_dir": f"{arm}-{fold}",
    }


def test_paired_comparison_on_constructed_numbers():
    darts = [0.60, 0.62, 0.64, 0.66, 0.68]
    rows = [row("darts", f, ua) for f, ua in enumerate(darts)]
    # two random architectures per fold: their mean is darts - 0.01 * (fold + 1)
    for f, ua in enumerate(darts):
        rows += [
            row("random-arch", f, ua - 0.01 * (f + 1) - 0.005),
            row("random-arch", f, ua - 0.01 * (f + 1) + 0.005),
        ]
    rows += [row("baseline:cnn", f, 0.50, "-") for f in range(5)]
    rows += [row("baseline:cnn_lstm", f, 0.70 if f == 0 else 0.55, "-") for f in range(5)]
    rows += [row("classical", f, darts[f] + (0.02 if f < 2 else -0.02), "-") for f in range(5)]
    found = {c.reference: c for c in comparisons(rows)}
    assert set(found) == {"random-arch mean", "best baseline (baseline:cnn_lstm)", "classical"}

    random = found["random-arch mean"]
    assert random.folds == (0, 1, 2, 3, 4)
    assert random.differences == pytest.approx((0.01, 0.02, 0.03, 0.04, 0.05))
    assert random.wins == 5 and random.n == 5
    assert random.mean_difference == pytest.approx(0.03)
    assert random.p_value == pytest.approx(0.0625)  # exact: 2 of 2**5 sign patterns

    best = found["best baseline (baseline:cnn_lstm)"]  # mean 0.58 beats cnn's 0.50
    assert best.differences == pytest.approx((-0.10, 0.07, 0.09, 0.11, 0.13))
    assert best.wins == 4

    classical = found["classical"]
    assert classical.wins == 3 and classical.mean_difference == pytest.approx(0.004)

    summary = {r["arm"]: r for r in summary_rows(rows)}
    assert summary["random-arch"]["n_folds"] == 5
    assert summary["random-arch"]["ua_mean"] == pytest.approx(sum(darts) / 5 - 0.03)
    assert summary["darts"]["ua_std"] == pytest.approx(0.0316227766)


def test_wilcoxon_needs_five_pairs_and_handles_ties():
    assert wilcoxon_p([0.1, 0.2, 0.3, 0.4]) is None
    assert wilcoxon_p([0.0] * 5) == 1.0
    p = wilcoxon_p([0.05, -0.01, 0.03, 0.02, 0.04, -0.02])
    from scipy.stats import wilcoxon

    assert p == pytest.approx(wilcoxon([0.05, -0.01, 0.03, 0.02, 0.04, -0.02]).pvalue)


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
