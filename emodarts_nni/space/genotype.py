"""Cell labels and α columns: the one module that knows their text format (torch-free).

NNI names the choices of a :class:`~nni.nas.nn.pytorch.Cell` labelled ``normal`` as
``normal/op_<node>_<k>`` (which op the ``k``-th input of ``node`` goes through) and
``normal/input_<node>_<k>`` (which earlier node it reads). Nodes count from 2: 0 and 1 are
the cell's two inputs (``c_{k-2}``, ``c_{k-1}``). NNI's differentiable cell keeps one α
vector per edge ``<cell>/<node>_<source>``; the search history stores their softmax as
columns ``alpha/<cell>/<node>_<source>/<op>``. PC-DARTS's cells also weigh each edge into a
node by ``softmax(β)`` over the node's incoming edges; the history stores that weight as
``beta/<cell>/<node>_<source>``.

Every reader and writer of these strings (the space, architecture JSON validation,
``describe``, the α history, plots and the report) goes through the functions here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emodarts_nni.common.errors import ArchitectureError, suggest

#: Label of the CNN normal cells (all share one architecture).
NORMAL_CELL = "normal"
#: Label of the CNN reduction cells.
REDUCE_CELL = "reduce"
#: Label of the SeqNN cells.
SEQ_CELL = "seq"
#: Label of the readout choice (a plain NNI ``LayerChoice`` when a scope offers several
#: readouts; absent from the architecture when it offers one).
READOUT_LABEL = "readout"
#: Cell kinds in the order they are drawn and described (others follow alphabetically).
CELL_ORDER = (NORMAL_CELL, REDUCE_CELL, SEQ_CELL)
#: Prefix of the α columns of a search history.
ALPHA_PREFIX = "alpha/"
#: Prefix of the probability columns of a plain choice (the readout's ``LayerChoice``):
#: ``prob/readout/stats``, NNI's own name for what its differentiable layers log.
PROB_PREFIX = "prob/"
#: Prefix of the edge-weight (PC-DARTS's normalised β) columns of a search history.
BETA_PREFIX = "beta/"

#: Inputs of every cell (the two previous cells' outputs); nodes are numbered after them.
NUM_PREDECESSORS = 2
#: Inputs (and ops) per node.
OPS_PER_NODE = 2

_CHOICE_LABEL = re.compile(r"^(?P<cell>[^/]+)/(?P<kind>op|input)_(?P<node>\d+)_(?P<k>\d+)$")


@dataclass(frozen=True)
class ChoiceLabel:
    """A parsed cell choice label: ``<cell>/<kind>_<node>_<k>``."""

    cell: str
    kind: str  # "op" or "input"
    node: int
    k: int


@dataclass(frozen=True)
class Edge:
    """One chosen edge of a derived cell: ``node`` reads ``source`` through ``op``."""

    node: int
    k: int
    source: int
    op: str


def op_label(cell: str, node: int, k: int) -> str:
    """The label of the op choice of the ``k``-th input of ``node``: ``normal/op_2_0``."""
    return f"{cell}/op_{node}_{k}"


def input_label(cell: str, node: int, k: int) -> str:
    """The label of the input choice of the ``k``-th input of ``node``: ``normal/input_2_0``."""
    return f"{cell}/input_{node}_{k}"


def parse_label(label: Any) -> ChoiceLabel | None:
    """The parts of a cell choice label, or ``None`` when ``label`` is not one."""
    match = _CHOICE_LABEL.match(str(label))
    if not match:
        return None
    return ChoiceLabel(match["cell"], match["kind"], int(match["node"]), int(match["k"]))


def is_input_label(label: Any) -> bool:
    """Whether ``label`` names an input choice (its value is a predecessor index)."""
    parsed = parse_label(label)
    return parsed is not None and parsed.kind == "input"


def reduction_positions(cnn_cells: int) -> set[int]:
    """Indices of the reduction cells among ``cnn_cells`` CNN cells: ⌊C/3⌋ and ⌊2C/3⌋."""
    return {cnn_cells // 3, 2 * cnn_cells // 3} if cnn_cells > 0 else set()


def cell_sort_key(cell: str) -> tuple[int, str]:
    """Sort key putting cell kinds in :data:`CELL_ORDER`, unknown kinds after, by name."""
    return (CELL_ORDER.index(cell) if cell in CELL_ORDER else len(CELL_ORDER), cell)


def choices(architecture: Mapping[str, Any]) -> Mapping[str, Any]:
    """The label → value mapping, from either a whole architecture JSON or its field."""
    inner = architecture.get("architecture")
    return inner if isinstance(inner, Mapping) else architecture


def cell_kinds(architecture: Mapping[str, Any], *, ordered: bool = True) -> list[str]:
    """Cell kinds with op choices in ``architecture`` (a whole JSON or its field).

    ``ordered``: in :data:`CELL_ORDER`; otherwise in order of first appearance.
    """
    kinds: dict[str, None] = {}
    for label in choices(architecture):
        parsed = parse_label(label)
        if parsed is not None and parsed.kind == "op":
            kinds.setdefault(parsed.cell)
    return sorted(kinds, key=cell_sort_key) if ordered else list(kinds)


def cell_edges(architecture: Mapping[str, Any], cell: str) -> list[Edge]:
    """The chosen edges of ``cell`` sorted by ``(node, k)``.

    Raises :class:`ArchitectureError` when an op has no valid input choice or the
    architecture has no such cell.
    """
    arch = choices(architecture)
    edges: list[Edge] = []
    for label, op in arch.items():
        parsed = parse_label(label)
        if parsed is None or parsed.kind != "op" or parsed.cell != cell:
            continue
        where = input_label(cell, parsed.node, parsed.k)
        source = arch.get(where)
        if isinstance(source, list) and source:
            source = source[0]
        if not isinstance(source, int) or isinstance(source, bool):
            raise ArchitectureError(
                f"architecture: {where} missing or not an input index: {source!r}"
            )
        edges.append(Edge(parsed.node, parsed.k, source, str(op)))
    if not edges:
        raise ArchitectureError(
            f"architecture has no {cell!r} cell{suggest(cell, cell_kinds(arch))}"
        )
    return sorted(edges, key=lambda e: (e.node, e.k, e.source, e.op))


def edge_name(cell: str, node: int, source: int) -> str:
    """NNI's name of the differentiable edge ``source → node`` of ``cell``: ``normal/2_0``."""
    return f"{cell}/{node}_{source}"


def parse_edge(edge: str) -> tuple[int, int] | None:
    """``(node, source)`` of an edge as an α column names it (``2_0``, the part after the
    cell; see :func:`parse_alpha_column`), or ``None`` when ``edge`` is not one."""
    node, _, source = edge.partition("_")
    return (int(node), int(source)) if node.isdigit() and source.isdigit() else None


def alpha_column(edge: str, op: str) -> str:
    """The history column of the softmaxed α of ``op`` on ``edge``: ``alpha/normal/2_0/op``."""
    return f"{ALPHA_PREFIX}{edge}/{op}"


def parse_alpha_column(column: Any) -> tuple[str, str, str] | None:
    """``(cell, edge, op)`` of an α column, or ``None`` when ``column`` is not one.

    ``edge`` is everything between the cell and the op (NNI's ``<node>_<source>``).
    """
    text = str(column)
    if not text.startswith(ALPHA_PREFIX):
        return None
    parts = text.split("/")
    if len(parts) < 4:
        return None
    return parts[1], "/".join(parts[2:-1]), parts[-1]


def alpha_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """``alpha/<cell>/<edge>/<op>`` columns of history ``rows`` grouped as
    ``{cell: {op: [column, ...]}}``, in order of first appearance."""
    grouped: dict[str, dict[str, list[str]]] = {}
    seen: set[str] = set()
    for row in rows:
        for column in row:
            if column in seen:
                continue
            parsed = parse_alpha_column(column)
            if parsed is None:
                continue
            seen.add(column)
            cell, _, op = parsed
            grouped.setdefault(cell, {}).setdefault(op, []).append(column)
    return grouped


def choice_column(label: str, value: str) -> str:
    """The history column of the softmaxed α of ``value`` of the plain choice ``label``:
    ``prob/readout/stats``."""
    return f"{PROB_PREFIX}{label}/{value}"


def parse_choice_column(column: Any) -> tuple[str, str] | None:
    """``(label, value)`` of a plain choice's probability column (``prob/readout/stats``),
    or ``None`` when ``column`` is not one (NNI also logs ``prob/<cell>/<edge>/<op>``)."""
    text = str(column)
    if not text.startswith(PROB_PREFIX):
        return None
    label, _, name = text[len(PROB_PREFIX) :].partition("/")
    return (label, name) if label and name and "/" not in name else None


def choice_columns(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """The plain choices' probability columns of history ``rows`` as ``{label: {value:
    [column]}}`` (the shape of :func:`alpha_columns`), in order of first appearance."""
    grouped: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        for column in row:
            parsed = parse_choice_column(column)
            if parsed is not None:
                grouped.setdefault(parsed[0], {}).setdefault(parsed[1], [str(column)])
    return grouped


def choice_tables(row: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The probabilities of the plain choices (the readout) in one history row as
    ``{label: {value: probability}}``; empty for a search without them."""
    tables: dict[str, dict[str, float]] = {}
    for column, value in row.items():
        parsed = parse_choice_column(column)
        if parsed is not None and value is not None and value != "":
            tables.setdefault(parsed[0], {})[parsed[1]] = float(value)
    return tables


def beta_column(edge: str) -> str:
    """The history column of the normalised β of ``edge`` (PC-DARTS's weight of that edge
    among its node's incoming edges): ``beta/normal/3_1``."""
    return f"{BETA_PREFIX}{edge}"


def parse_beta_column(column: Any) -> tuple[str, str] | None:
    """``(cell, edge)`` of a β column, or ``None`` when ``column`` is not one."""
    text = str(column)
    if not text.startswith(BETA_PREFIX):
        return None
    cell, _, edge = text[len(BETA_PREFIX) :].partition("/")
    return (cell, edge) if cell and parse_edge(edge) is not None else None


def alpha_tables(row: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """The softmaxed α of one history row as ``{cell: {edge: {op: probability}}}``."""
    tables: dict[str, dict[str, dict[str, float]]] = {}
    for column, value in row.items():
        parsed = parse_alpha_column(column)
        if parsed is None or value is None or value == "":
            continue
        cell, edge, op = parsed
        tables.setdefault(cell, {}).setdefault(edge, {})[op] = float(value)
    return tables


def beta_tables(row: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The edge weights (normalised β) of one history row as ``{cell: {edge: weight}}``;
    empty for a strategy without them (every one but PC-DARTS)."""
    tables: dict[str, dict[str, float]] = {}
    for column, value in row.items():
        parsed = parse_beta_column(column)
        if parsed is None or value is None or value == "":
            continue
        cell, edge = parsed
        tables.setdefault(cell, {})[edge] = float(value)
    return tables
