"""``emodarts export``: ONNX and TorchScript files that compute what PyTorch computes.

Parity is checked on three small frozen models that together use every op of both tables
(every CNN op, the strided ``skip_connect`` of a reduction cell, every RNN/LSTM stack and
attention op), on random inputs and on real features, at several batch sizes (the batch
axis is dynamic), and on the quickstart checkpoint end to end.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from quickstart_run import quickstart_checkpoint
from unseen_audio import LONG_TEXT, SHORT_TEXT, write_unseen

from emodarts_nni.cli.main import main
from emodarts_nni.data.audio import load_audio
from emodarts_nni.data.feature_config import FeatureConfig
from emodarts_nni.data.features import compute_features
from emodarts_nni.inference.export import export_model, load_exported, max_difference, sidecar_path
from emodarts_nni.inference.predict import Predictor
from emodarts_nni.space.architecture import freeze, sample_architecture, validate_architecture
from emodarts_nni.space.genotype import input_label, op_label
from emodarts_nni.space.model import resolve_space_args
from emodarts_nni.space.ops import CNN_OPS, NONE_OP, SEQ_OPS

TOLERANCE = 1e-4
N_MFCC, FRAMES = 16, 16
FEATURES = FeatureConfig(
    n_mfcc=N_MFCC,
    n_mels=24,
    frames=128,
    pooled_frames=FRAMES,
    hop_length=1000,
    normalisation="utterance",
)
CNN_NAMES = [op for op in CNN_OPS if op != NONE_OP]
SEQ_NAMES = [op for op in SEQ_OPS if op != NONE_OP]
NODES = (2, 3, 4)  # three nodes per cell: six op slots
#: Which predecessor each slot reads; in a reduction cell a slot reading input 0 or 1 runs
#: at stride 2 (skip_connect becomes FactorizedReduce), the others at stride 1.
INPUTS = {(2, 0): 0, (2, 1): 1, (3, 0): 1, (3, 1): 2, (4, 0): 0, (4, 1): 3}
SLOTS = sorted(INPUTS)
N_MODELS = 3


def _space() -> dict:
    return resolve_space_args(
        "emodarts",
        n_mfcc=N_MFCC,
        frames=FRAMES,
        n_classes=4,
        init_channels=2,
        stem_multiplier=2,
        cnn_cells=3,
        cnn_nodes=3,
        seq_cells=1,
        seq_nodes=3,
        hidden=8,
        dropout=0.0,
    )


def covering_architecture(index: int) -> dict:
    """The ``index``-th of :data:`N_MODELS` architectures that together use every op."""
    space = _space()
    arch = dict(sample_architecture(space, seed=index))
    for s, (node, k) in enumerate(SLOTS):
        arch[op_label("normal", node, k)] = CNN_NAMES[(6 * index + s) % len(CNN_NAMES)]
        arch[op_label("reduce", node, k)] = CNN_NAMES[(6 * index + s + 3) % len(CNN_NAMES)]
        arch[op_label("seq", node, k)] = SEQ_NAMES[(6 * index + s) % len(SEQ_NAMES)]
        for cell in ("normal", "reduce", "seq"):
            arch[input_label(cell, node, k)] = [INPUTS[node, k]]
    return validate_architecture(space, arch)


def covering_model(index: int) -> torch.nn.Module:
    """A frozen model of :func:`covering_architecture` with non-trivial BN statistics and
    logits of a few units (a fresh classifier's would be ~0.1, making any difference small)."""
    torch.manual_seed(index)
    model = freeze(_space(), covering_architecture(index))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.2)
    model.classifier.weight.data.mul_(20)  # logits of a few units, not ~0.1
    return model.eval()


def test_the_models_use_every_op_of_both_tables():
    used: dict[str, set] = {"normal": set(), "reduce": set(), "seq": set()}
    strided = set()
    for index in range(N_MODELS):
        arch = covering_architecture(index)
        for cell in used:
            for node, k in SLOTS:
                op = arch[op_label(cell, node, k)]
                used[cell].add(op)
                if cell == "reduce" and INPUTS[node, k] < 2:
                    strided.add(op)
    assert used["normal"] | used["reduce"] == set(CNN_NAMES)
    assert "skip_connect" in strided  # FactorizedReduce
    assert used["seq"] == set(SEQ_NAMES)


@pytest.fixture(scope="module")
def real_features(tmp_path_factory) -> np.ndarray:
    """MFCCs of recordings no corpus holds: a short one and every window of a long one."""
    folder = tmp_path_factory.mktemp("real")
    short = write_unseen(folder / "short.wav", SHORT_TEXT, 3.0, seed=1)
    long = write_unseen(folder / "long.wav", LONG_TEXT, 26.0, seed=2)
    signal = load_audio(long, FEATURES.sample_rate)
    windows = [
        signal[i : i + FEATURES.n_samples] for i in range(0, len(signal), FEATURES.n_samples)
    ]
    pieces = [load_audio(short, FEATURES.sample_rate), *windows]
    return np.stack([compute_features(piece, FEATURES) for piece in pieces])


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("index", range(N_MODELS))
def test_exported_models_match_pytorch_for_every_op(fmt, index, real_features, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model = covering_model(index)
    path = export_model(model, (N_MFCC, FRAMES), fmt, tmp_path / f"model.{fmt}")
    exported = load_exported(path, fmt)
    rng = np.random.default_rng(index)
    random_diff = max(
        max_difference(model, exported, rng.standard_normal((b, N_MFCC, FRAMES)).astype("f4"))
        for b in (1, 2, 5)
    )
    real_diff = max(
        max_difference(model, exported, real_features),
        max_difference(model, exported, real_features[:1]),
    )
    print(f"parity {fmt} model {index}: random {random_diff:.2e}, real {real_diff:.2e}")
    assert random_diff < TOLERANCE and real_diff < TOLERANCE


def test_onnx_has_one_float_input_with_a_dynamic_batch_axis(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = export_model(covering_model(0), (N_MFCC, FRAMES), "onnx", tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["features"]
    (tensor,) = (i.type.tensor_type for i in graph.input)
    assert tensor.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    assert dims == ["batch", N_MFCC, FRAMES]
    assert [o.name for o in graph.output] == ["logits"]
    ops = {node.op_type for node in graph.node}
    assert {"LSTM", "Softmax"} <= ops or {"RNN", "Softmax"} <= ops  # recurrences + attention


def test_onnx_without_its_extra_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what a missing package looks like
    out = tmp_path / "m.onnx"
    status = main(["export", str(tmp_path / "any.pt"), "--format", "onnx", "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "[export]" in err[0]
    assert not out.exists()


def test_the_cli_offers_the_exporters_formats_without_importing_torch():
    import subprocess

    from emodarts_nni.cli import export as cli_export
    from emodarts_nni.inference import export

    assert cli_export.FORMATS is export.FORMATS  # one list, owned by the exporter
    code = "import sys, emodarts_nni.cli.export; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_quickstart_checkpoint_reproduces_the_predictor(
    fmt, tmp_path_factory, tmp_path, capsys
):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    checkpoint = quickstart_checkpoint(tmp_path_factory.getbasetemp())
    out = tmp_path / f"emotion.{fmt}"
    assert main(["export", str(checkpoint), "--format", fmt, "-o", str(out)]) == 0
    assert "largest logit difference" in capsys.readouterr().out
    sidecar = json.loads(sidecar_path(out).read_text())
    predictor = Predictor.from_checkpoint(checkpoint)
    payload = torch.load(checkpoint, weights_only=True)
    assert sidecar["model_format"] == fmt
    assert sidecar["class_names"] == payload["class_names"] == predictor.class_names
    assert {k: sidecar["features"][k] for k in payload["features"]} == payload["features"]
    for key in ("mean", "std"):
        np.testing.assert_allclose(
            sidecar["normalisation"][key], payload["normalisation"][key], rtol=1e-6
        )
    assert sidecar["input"] == {
        "name": "features",
        "dtype": "float32",
        "shape": ["batch", *predictor.feature_config.shape],
    }
    assert sidecar["parity"]["max_abs_logit_difference"] < TOLERANCE
    # a deployment with only the file and its sidecar: features in, probabilities out
    audio = write_unseen(tmp_path / "new.wav", SHORT_TEXT, 3.0, seed=3)
    x = predictor.features(audio)[None]
    logits = load_exported(out, fmt)(x)
    probabilities = torch.softmax(torch.as_tensor(logits), 1)[0].numpy()
    expected = predictor.predict_file(audio)["probabilities"]
    assert sidecar["class_names"][int(probabilities.argmax())] == max(expected, key=expected.get)
    difference = float(np.abs(probabilities - np.array(list(expected.values()))).max())
    print(
        f"parity {fmt} quickstart: logits {sidecar['parity']['max_abs_logit_difference']:.2e}, "
        f"probabilities on an unseen recording {difference:.2e}"
    )
    assert difference < 1e-5
