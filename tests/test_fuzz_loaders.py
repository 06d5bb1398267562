"""Property-based fuzzing of the architecture JSON loader and the checkpoint loader.

Property: every generated input either loads or fails with our own error type
(:class:`~emodarts_nni.common.errors.ArchitectureError` / :class:`EmodartsError`) and a one-line
message — never another exception (a traceback at the CLI), never a hang.

Budget (examples per target; derandomised, so every run tries the same examples):
  * architecture documents mutated from a valid one (as dicts):        200
  * arbitrary JSON documents (as dicts):                                 150
  * architecture files (mutated documents as JSON text, or raw text):   150
  * checkpoint payloads mutated from a valid one:                         100
  * checkpoint files of raw bytes:                                         50
  * study YAML files through ``load_study`` (random keys, values, grids):  50
Each example has a deadline of 2 s (``deadline``); a hang fails the test.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import torch
from conftest import SMALL_SPACE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emodarts_nni.common.errors import ArchitectureError, EmodartsError
from emodarts_nni.inference.checkpoint import load_checkpoint, save_checkpoint
from emodarts_nni.space.architecture import (
    FORMAT,
    ArchitectureFile,
    freeze,
    read_architecture,
    sample_architecture,
)
from emodarts_nni.space.model import SPACE_DEFAULTS, resolve_space_args
from emodarts_nni.space.ops import CNN_OPS, SEQ_OPS

FUZZ = dict(
    deadline=timedelta(seconds=2),
    derandomize=True,  # the same examples on every run: a failure reproduces
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- values
_INTERESTING = [
    0, -1, 1, 2, 3, 7, 2**31, 2**63, 10**12, -(10**40), 0.5, -0.0, math.inf,
    math.nan, True, False, None, "", "none", "normal/op_2_0", "x" * 5000, [], {}, [0], [1],
    [[1]], [True], ["sep_conv_3x3"], [["lstm_1"]], {"a": 1}, *list(CNN_OPS)[:3],
    *list(SEQ_OPS)[:3],
]  # fmt: skip

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(_INTERESTING)
    # Built, not listed: hypothesis cannot print an integer this long in a strategy's repr.
    | st.builds(lambda: -(10**5000))
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)


@cache
def valid_document() -> dict[str, Any]:
    space = resolve_space_args("emodarts", **SMALL_SPACE)
    return {
        "format": FORMAT,
        "space": space,
        "architecture": sample_architecture(space, seed=0),
        "provenance": {"strategy": "fuzz"},
    }


_SPACE_KEYS = [*SPACE_DEFAULTS, "cnn_ops", "seq_ops", "scope"]


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid architecture document with one to four fields replaced, removed or added."""
    doc = copy.deepcopy(valid_document())
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(["top", "space", "space", "architecture", "architecture"]))
        container = doc if where == "top" else doc.get(where)
        if not isinstance(container, dict):
            continue
        keys = sorted(container) or ["format"]
        if where == "space":
            keys = _SPACE_KEYS
        key = draw(st.sampled_from(keys) | st.text(max_size=15))
        action = draw(st.sampled_from(["replace", "replace", "delete", "ops"]))
        if action == "delete":
            container.pop(key, None)
        elif action == "ops":  # a list mixing op names and junk
            names = st.sampled_from([*CNN_OPS, *SEQ_OPS])
            container[key] = draw(st.lists(names | json_scalars, max_size=6))
        else:
            container[key] = draw(json_values)
    return doc


def assert_one_line(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message, repr(message)


def load_or_fail(source: Any) -> None:
    try:
        read_architecture(source)
    except ArchitectureError as exc:
        assert_one_line(exc)


# --------------------------------------------------------------------------- architecture
@settings(max_examples=200, **FUZZ)
@given(mutated_documents())
def test_fuzz_mutated_architecture_documents(doc):
    load_or_fail(doc)


@settings(max_examples=150, **FUZZ)
@given(json_values)
def test_fuzz_arbitrary_json_documents(doc):
    load_or_fail(doc)
    load_or_fail({"format": FORMAT, "space": doc, "architecture": doc})


def _dumps(doc: dict[str, Any]) -> str:
    try:
        return json.dumps(doc)
    except ValueError:  # an integer too long for Python to print: the file cannot hold it
        return "{}"


@settings(max_examples=150, **FUZZ)
@given(
    mutated_documents().map(_dumps)
    | st.text(max_size=300)
    | st.sampled_from(["\ufeff{}", "{" * 10])
    | st.builds(lambda depth: "[" * depth, st.sampled_from([5000, 100_000]))
    | st.builds(lambda: '{"format": ' + "[" * 5000 + "]" * 5000 + "}")
)
def test_fuzz_architecture_files(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "architecture.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        load_or_fail(path)


# --------------------------------------------------------------------------- checkpoints
@cache
def valid_payload() -> dict[str, Any]:
    doc = valid_document()
    arch = ArchitectureFile(doc["space"], doc["architecture"], doc["provenance"])
    model = freeze(arch.space, arch.architecture)
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(
            Path(folder) / "checkpoint.pt",
            model,
            arch,
            class_names=["neutral", "happy", "sad", "angry"],
            features={"n_mfcc": 16},
            normalisation={"mean": [0.0] * 16, "std": [1.0] * 16},
        )
        return torch.load(path, weights_only=True)


tensors = st.builds(
    lambda shape, dtype: torch.zeros(shape, dtype=dtype),
    st.lists(st.integers(0, 4), max_size=3),
    st.sampled_from([torch.float32, torch.int64, torch.bool, torch.float16]),
)
payload_values = st.recursive(
    json_scalars | tensors,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A valid checkpoint payload with fields (or weights, or its architecture) changed."""
    payload = copy.deepcopy(valid_payload())
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["top", "top", "state_dict", "architecture"]))
        if target == "top":
            key = draw(st.sampled_from(sorted(payload)) | st.text(max_size=10))
            if draw(st.booleans()):
                payload.pop(key, None)
            else:
                payload[key] = draw(payload_values)
        elif target == "state_dict" and isinstance(payload.get("state_dict"), dict):
            state = payload["state_dict"]
            key = draw(st.sampled_from(sorted(state)))
            if draw(st.booleans()):
                state.pop(key)
            else:
                state[key] = draw(tensors | payload_values)
        elif isinstance(payload.get("architecture"), dict):
            payload["architecture"] = draw(
                mutated_documents() | st.dictionaries(st.text(max_size=8), payload_values)
            )
    return payload


def load_checkpoint_or_fail(path: Path) -> None:
    try:
        load_checkpoint(path)
    except EmodartsError as exc:
        assert_one_line(exc)


@settings(max_examples=100, **FUZZ)
@given(mutated_payloads())
def test_fuzz_checkpoint_payloads(payload):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.pt"
        torch.save(payload, path)
        load_checkpoint_or_fail(path)


@settings(max_examples=50, **FUZZ)
@given(st.binary(max_size=2000))
def test_fuzz_checkpoint_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.pt"
        path.write_bytes(data)
        load_checkpoint_or_fail(path)


# --------------------------------------------------------------------------- study files
_STUDY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from([0, 1, -1, "", "darts", "random-oneshot", "cnn", "random-arch",
                       "base.yaml", "missing.yaml", "splits.fold", "local", "remote"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)  # fmt: skip
_GRID_KEYS = ["splits.fold", "search.strategy", "seed", "space.scope", "x"]


@st.composite
def study_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A study mapping: real keys (study, controls, primary, service) and junk, random
    values, and grids of random shape (axes of lists, scalars, empties and repeats)."""
    from emodarts_nni.study.config import CONTROL_KEYS, PRIMARY_KEYS, SERVICE_KEYS, STUDY_KEYS

    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["base"] = draw(st.sampled_from(["base.yaml", "base.yaml", "missing.yaml", 3, None]))
    doc["grid"] = draw(
        st.dictionaries(
            st.sampled_from(_GRID_KEYS) | st.text(max_size=6),
            st.lists(_STUDY_VALUES, max_size=4) | _STUDY_VALUES,
            max_size=3,
        )
        | _STUDY_VALUES
    )
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(STUDY_KEYS) | st.text(max_size=8))
        nested = {"controls": CONTROL_KEYS, "primary": PRIMARY_KEYS,
                  "training_service": SERVICE_KEYS}.get(key)  # fmt: skip
        if nested and draw(st.booleans()):
            doc[key] = draw(
                st.dictionaries(
                    st.sampled_from(nested) | st.text(max_size=6), _STUDY_VALUES, max_size=3
                )  # fmt: skip
            )
        else:
            doc[key] = draw(_STUDY_VALUES)
    return doc


@settings(max_examples=50, **FUZZ)
@given(study_documents(), st.sampled_from(["", "", "huge", "tab", "top"]))
def test_fuzz_study_files(doc, twist):
    """``load_study`` (what ``emodarts study`` reads first) on random study YAML: it loads or
    raises one ConfigError line; never another exception. Nothing is run."""
    import yaml

    from emodarts_nni.common.errors import ConfigError
    from emodarts_nni.study.config import load_study

    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if twist == "huge":  # an integer too long for Python's int() of a string
        text += f"name: {'9' * 5000}\n"
    elif twist == "tab":
        text = "grid:\n\t- 1\n" + text
    elif twist == "top":
        text = yaml.safe_dump(doc.get("grid"))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "base.yaml").write_text("name: base\n")
        path = Path(folder) / "study.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_study(path)
        except ConfigError as exc:
            assert_one_line(exc)
