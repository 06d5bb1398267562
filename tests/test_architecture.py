"""Architecture JSON: round trip, validation errors naming the field, NNI export loads."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import SMALL_SPACE

from emodarts_nni import load_architecture
from emodarts_nni.common.errors import ArchitectureError
from emodarts_nni.space.architecture import (
    FORMAT,
    check_matches_data,
    choice_count,
    choice_domains,
    read_architecture,
    sample_architecture,
    save_architecture,
)
from emodarts_nni.space.model import build_space, resolve_space_args

SCOPES = ["emodarts", "lstm_only", "lstm_att_only", "rnn_only", "rnn_att_only", "cnn_only"]


def _doc(scope="emodarts", seed=0):
    space = resolve_space_args(scope, **SMALL_SPACE)
    return {
        "format": FORMAT,
        "space": space,
        "architecture": sample_architecture(space, seed),
        "provenance": {"strategy": "test"},
    }


@pytest.mark.parametrize("scope", SCOPES)
def test_round_trip_of_nni_sampled_architectures(scope, tmp_path):
    space_args = resolve_space_args(scope, **SMALL_SPACE)
    space = build_space(scope, **SMALL_SPACE)
    for seed in range(3):
        torch.manual_seed(seed)
        arch = {label: m.random() for label, m in space.simplify().items()}
        path = save_architecture(tmp_path / f"{seed}.json", space_args, arch, {"seed": seed})
        doc = json.loads(path.read_text())
        assert doc["format"] == FORMAT and doc["architecture"] == arch
        a, b = load_architecture(path), load_architecture(doc)
        assert a.num_parameters == b.num_parameters > 0
        assert {k: v.shape for k, v in a.state_dict().items()} == {
            k: v.shape for k, v in b.state_dict().items()
        }
        b.load_state_dict(a.state_dict())
        a.eval(), b.eval()
        x = torch.randn(2, 16, 16)
        torch.testing.assert_close(a(x), b(x))


def test_saved_file_is_self_contained(tmp_path):
    doc = _doc("lstm_att_only")
    path = save_architecture(tmp_path / "a.json", doc["space"], doc["architecture"])
    loaded = read_architecture(path)
    assert loaded.space["scope"] == "lstm_att_only"
    assert loaded.space["seq_ops"] == ["lstm_att_1", "lstm_att_2", "skip_connect", "none"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file


def _mutate(fn):
    doc = _doc()
    fn(doc)
    return doc


@pytest.mark.parametrize(
    ("mutation", "culprit"),
    [
        (lambda d: d.update(format="emodarts-architecture/2"), "format"),
        (lambda d: d.pop("space"), "space"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["architecture"].update({"normal/op_2_0": "sep_conv_9x9"}), "sep_conv_9x9"),
        (lambda d: d["architecture"].update({"seq/op_2_0": "none"}), "none"),
        (
            lambda d: d["architecture"].update({"normal/input_3_1": [3]}),
            "normal/input_3_1.*out of range",
        ),
        (lambda d: d["architecture"].update({"normal/input_2_0": "1"}), "normal/input_2_0"),
        (lambda d: d["architecture"].pop("reduce/op_2_1"), "missing choice.*reduce/op_2_1"),
        (
            lambda d: d["architecture"].update({"seq/op_9_0": "lstm_1"}),
            "unexpected choice.*seq/op_9_0",
        ),
        (lambda d: d["space"].pop("hidden"), "hidden"),
        (lambda d: d["space"].update(hidden=7), "hidden"),
        (lambda d: d["space"].update(cnn_ops=["sep_conv_3x3", "conv_9x9"]), "conv_9x9"),
        (lambda d: d["space"].update(widht=3), "widht"),
        (lambda d: d.update(architecture=[1, 2]), "architecture"),
    ],
)
def test_malformed_architecture_names_the_field(mutation, culprit):
    with pytest.raises(ArchitectureError, match=culprit):
        load_architecture(_mutate(mutation))


def test_architecture_from_another_space_is_rejected():
    doc = _doc()
    doc["space"]["seq_ops"] = ["lstm_1", "skip_connect"]  # arch may use rnn_*, now unknown
    doc["architecture"]["seq/op_2_0"] = "rnn_2"
    with pytest.raises(ArchitectureError, match="rnn_2"):
        load_architecture(doc)


def test_bad_files(tmp_path):
    with pytest.raises(ArchitectureError, match="not found"):
        load_architecture(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{'format': eval('1')}")
    with pytest.raises(ArchitectureError, match="bad.json.*not valid JSON"):
        load_architecture(bad)
    bad.write_text("[]")
    with pytest.raises(ArchitectureError, match="JSON object"):
        load_architecture(bad)


def test_integer_input_index_is_accepted_and_normalised():
    doc = _doc()
    doc["architecture"]["normal/input_2_0"] = 1
    assert read_architecture(copy.deepcopy(doc)).architecture["normal/input_2_0"] == [1]


def test_one_epoch_darts_search_exports_a_loadable_architecture(tmp_path):
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.experiment import NasExperiment
    from nni.nas.strategy import DARTS
    from torch.utils.data import TensorDataset

    data = TensorDataset(torch.randn(32, 1, 16, 16), torch.randint(0, 4, (32,)))
    evaluator = Classification(
        train_dataloaders=DataLoader(data, batch_size=8),
        val_dataloaders=DataLoader(data, batch_size=8),
        max_epochs=1,
        num_classes=4,
        enable_progress_bar=False,
        logger=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    experiment = NasExperiment(build_space("emodarts", **SMALL_SPACE), evaluator, DARTS())
    experiment.config.experiment_working_directory = str(tmp_path / "nni")
    experiment.run()
    exported = experiment.export_top_models(formatter="dict")[0]
    arch = {str(k): v for k, v in exported.items()}
    space = resolve_space_args("emodarts", **SMALL_SPACE)
    assert set(arch) == set(choice_domains(space))
    assert "none" not in arch.values()
    path = save_architecture(tmp_path / "architecture.json", space, arch, {"strategy": "darts"})
    model = load_architecture(path)
    assert model(torch.randn(3, 16, 16)).shape == (3, 4)


def test_architecture_is_checked_against_the_data(tmp_path):
    doc = _doc()
    path = save_architecture(tmp_path / "arch.json", doc["space"], doc["architecture"])
    assert read_architecture(path, n_classes=4, input_shape=(16, 16)).space["n_classes"] == 4
    with pytest.raises(ArchitectureError, match=r"arch\.json.*n_classes 4.*data has 7 classes"):
        read_architecture(path, n_classes=7)
    with pytest.raises(ArchitectureError, match=r"arch\.json.*n_mfcc 16 × frames 16.*n_mfcc 20"):
        read_architecture(path, n_classes=4, input_shape=(20, 16))
    arch = read_architecture(path)
    with pytest.raises(ArchitectureError, match="data.json.*n_classes 4.*2 classes"):
        check_matches_data(arch, n_classes=2, source="data.json")


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        (_nested(100_000), "nested deeper"),
        ('{"format": ' + _nested(100_000) + "}", "nested deeper"),
        ('{"a": 1' + "0" * 5000 + "}", "not valid JSON"),
    ],
)
def test_hostile_json_fails_with_one_line(tmp_path, text, culprit):
    path = tmp_path / "hostile.json"
    path.write_text(text)
    with pytest.raises(ArchitectureError, match=culprit) as info:
        read_architecture(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("mutation", "culprit"),
    [
        (lambda d: d["space"].update(cnn_ops=[["sep_conv_3x3"], "none"]), "space.cnn_ops"),
        (lambda d: d["space"].update(seq_ops=[{"lstm_1": 1}]), "space.seq_ops"),
        (lambda d: d["space"].update(cnn_ops=["none"]), "cnn_ops"),
        (lambda d: d["space"].update(scope=["emodarts"]), "space.scope"),
        (lambda d: d["space"].update(hidden=-(10**5000)), "space.hidden"),
        (lambda d: d["space"].update(n_classes="4"), "space.n_classes"),
        (lambda d: d["architecture"].update({"normal/input_2_0": [10**5000]}), "input_2_0"),
        (lambda d: d["architecture"].update({"normal/op_2_0": ["x" * 10**6]}), "normal/op_2_0"),
        (lambda d: d.update(provenance={"a": json.loads(_nested(40))}), "nested"),
    ],
)
def test_malformed_values_fail_with_one_short_line(mutation, culprit):
    with pytest.raises(ArchitectureError, match=culprit) as info:
        read_architecture(_mutate(mutation))
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_retrain_of_an_architecture_for_other_classes_stops_before_training(tmp_path, capsys):
    """7 (or 2) classes in the JSON, 4 in the data: exit 2 naming both, no predictions."""
    from test_pipeline import tiny_config

    from emodarts_nni.cli.main import main

    config = tiny_config(tmp_path, tmp_path / "cache")
    for n_classes in (7, 2):
        space = resolve_space_args("emodarts", **{**SMALL_SPACE, "n_classes": n_classes})
        arch = save_architecture(
            tmp_path / f"arch{n_classes}.json", space, sample_architecture(space, 0)
        )
        assert main(["retrain", str(arch), str(config)]) == 2
        # (Gym's import notice may precede it: another issue's defect.)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        [line] = [line for line in err.splitlines() if line.startswith("emodarts: error")]
        assert f"arch{n_classes}.json" in line and f"n_classes {n_classes}" in line
        assert "data has 4 classes" in line
    assert not list(tmp_path.rglob("predictions.csv"))


@pytest.mark.parametrize("cnn_cells", [1, 2, 3, 7])
def test_choice_count_matches_the_listed_choices(cnn_cells):
    for scope in ("emodarts", "cnn_only"):
        space = resolve_space_args(scope, **{**SMALL_SPACE, "cnn_cells": cnn_cells})
        assert choice_count(space) == len(choice_domains(space))


def test_a_huge_space_is_refused_by_the_node_cap_without_listing_its_choices():
    doc = _doc()
    doc["space"]["cnn_nodes"] = 1300  # would be over 10,000 choices: the cap comes first
    with pytest.raises(
        ArchitectureError, match="'cnn_nodes' = 1300: expected an integer >= 1 and <= 32"
    ):
        read_architecture(doc)


def test_an_architecture_json_is_checked_before_torch_loads(tmp_path):
    """Reading and validating a file (and the config it goes with) imports neither torch
    nor NNI, so a bad file is refused in a fraction of a second (docs/troubleshooting.md)."""
    import subprocess
    import sys

    bad = tmp_path / "arch.json"
    bad.write_text(
        '{"format": "emodarts-architecture/1", "space": {"cnn_ops": ["nope"]}, "architecture": {}}'
    )
    code = (
        "import sys\n"
        "from emodarts_nni.config import load_config\n"
        "from emodarts_nni.space.architecture import read_architecture\n"
        "from emodarts_nni.common.errors import ArchitectureError\n"
        "load_config('quickstart')\n"
        f"try:\n    read_architecture({str(bad)!r})\n"
        "except ArchitectureError as exc:\n    print(exc)\n"
        "print(sorted(m for m in ('torch', 'nni') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, modules = out.stdout.strip().splitlines()[-2:]
    assert "unknown op 'nope'" in message
    assert modules == "[]"


def test_the_op_tables_hold_exactly_the_owned_op_names():
    from emodarts_nni.space.op_names import CNN_OP_NAMES, SEQ_OP_NAMES
    from emodarts_nni.space.ops import CNN_OPS, SEQ_OPS

    assert tuple(CNN_OPS) == CNN_OP_NAMES
    assert tuple(SEQ_OPS) == SEQ_OP_NAMES
