"""The genotype module: one owner of the cell-label and α-column formats, torch-free."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import SMALL_SPACE

from emodarts_nni.common.errors import ArchitectureError
from emodarts_nni.space import genotype
from emodarts_nni.space.architecture import choice_domains, describe, sample_architecture
from emodarts_nni.space.genotype import Edge


def test_labels_round_trip():
    assert genotype.op_label("normal", 2, 0) == "normal/op_2_0"
    assert genotype.input_label("seq", 3, 1) == "seq/input_3_1"
    parsed = genotype.parse_label("reduce/op_4_1")
    assert parsed == genotype.ChoiceLabel("reduce", "op", 4, 1)
    assert genotype.parse_label(genotype.input_label("seq", 12, 0)).kind == "input"
    for not_a_label in ("normal", "normal/op_2", "normal/opx_2_0", "a/b/op_2_0", 3, None):
        assert genotype.parse_label(not_a_label) is None
    assert genotype.is_input_label("normal/input_2_0")
    assert not genotype.is_input_label("normal/op_2_0")


def test_alpha_columns_round_trip():
    column = genotype.alpha_column(genotype.edge_name("normal", 3, 1), "sep_conv_3x3")
    assert column == "alpha/normal/3_1/sep_conv_3x3"
    assert genotype.parse_alpha_column(column) == ("normal", "3_1", "sep_conv_3x3")
    assert genotype.parse_edge("3_1") == (3, 1)
    assert genotype.parse_edge("x") is None and genotype.parse_edge("3_1_0") is None
    assert genotype.parse_alpha_column("alpha/normal/x") is None
    assert genotype.parse_alpha_column("val_ua") is None
    rows = [{"epoch": 0, column: 0.5, "alpha/seq/2_0/lstm_1": 0.2}, {column: 0.6}]
    assert genotype.alpha_columns(rows) == {
        "normal": {"sep_conv_3x3": [column]},
        "seq": {"lstm_1": ["alpha/seq/2_0/lstm_1"]},
    }


def test_built_space_uses_the_genotype_labels():
    from emodarts_nni.space.model import build_space, resolve_space_args

    space = build_space("emodarts", **SMALL_SPACE)
    labels = set(space.simplify())
    assert labels == set(choice_domains(resolve_space_args("emodarts", **SMALL_SPACE)))
    cells = {genotype.parse_label(label).cell for label in labels}
    assert cells == set(genotype.CELL_ORDER)


def test_differentiable_edges_are_named_as_the_genotype_module_says():
    """``alpha_probabilities`` writes columns the genotype module parses back."""
    from nni.nas.strategy import DARTS

    from emodarts_nni.space.model import build_space
    from emodarts_nni.training.module import alpha_probabilities

    strategy = DARTS()
    supernet = strategy.mutate_model(build_space("emodarts", **SMALL_SPACE))
    columns = alpha_probabilities(supernet)
    assert columns
    parsed = [genotype.parse_alpha_column(c) for c in columns]
    assert all(p is not None for p in parsed)
    edges = {(cell, edge) for cell, edge, _ in parsed}
    nodes = range(2, 2 + SMALL_SPACE["cnn_nodes"])
    expected = {("normal", f"{i}_{j}") for i in nodes for j in range(i)}
    assert expected <= edges


def test_cell_edges_and_kinds():
    space = {"cnn_ops": ["sep_conv_3x3", "max_pool_3x3"], "seq_ops": ["lstm_1"]}
    space.update(cnn_cells=3, cnn_nodes=2, seq_cells=1, seq_nodes=2)
    arch = sample_architecture(space, seed=1)
    assert genotype.cell_kinds(arch) == ["normal", "reduce", "seq"]
    assert genotype.cell_kinds({"architecture": arch}) == ["normal", "reduce", "seq"]
    edges = genotype.cell_edges(arch, "seq")
    assert [(e.node, e.k) for e in edges] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(e.op == "lstm_1" and 0 <= e.source < e.node for e in edges)
    del arch["seq/input_3_1"]
    with pytest.raises(ArchitectureError, match="seq/input_3_1"):
        genotype.cell_edges(arch, "seq")
    with pytest.raises(ArchitectureError, match="'sequence'.*seq"):
        genotype.cell_edges(arch, "sequence")


def test_describe_is_unchanged():
    arch = {
        "normal/op_2_0": "sep_conv_3x3", "normal/input_2_0": [1],
        "normal/op_2_1": "max_pool_3x3", "normal/input_2_1": [0],
        "seq/op_2_0": "lstm_2", "seq/input_2_0": [1],
        "seq/op_2_1": "skip_connect", "seq/input_2_1": [0],
        "seq/op_3_0": "rnn_1", "seq/input_3_0": [2],
        "seq/op_3_1": "lstm_1", "seq/input_3_1": [1],
    }  # fmt: skip
    assert describe(arch) == (
        "normal: 2←sep_conv_3x3(1)+max_pool_3x3(0)\n"
        "seq: 2←lstm_2(1)+skip_connect(0), 3←rnn_1(2)+lstm_1(1)"
    )
    assert Edge(2, 0, 1, "x").source == 1


def test_genotype_module_does_not_import_torch():
    code = "import sys, emodarts_nni.space.genotype; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
