"""Architecture JSON: the searched architecture, enough to rebuild the model from the file.

Format (``docs/interface.md``)::

    {"format": "emodarts-architecture/1",
     "space": {...the resolved build_space arguments, incl. "scope"...},
     "architecture": {"normal/op_2_0": "sep_conv_3x3", "normal/input_2_0": [1], ...},
     "provenance": {"strategy": ..., "seed": ..., "corpus": ..., "fold": ..., ...}}

The file is validated completely before anything is built: a wrong format version, a
missing or extra choice, an unknown or ``none`` op, an input index out of range or a
malformed space raise :class:`~emodarts_nni.common.errors.ArchitectureError` naming the field.
It is parsed with :func:`json.loads` only — never ``eval``.
"""

from __future__ import annotations

import json
import os
import random
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emodarts_nni.common.errors import ArchitectureError, ConfigError, suggest
from emodarts_nni.common.files import atomic_write_text
from emodarts_nni.space import genotype
from emodarts_nni.space.args import SPACE_DEFAULTS, resolve_space_args
from emodarts_nni.space.genotype import NUM_PREDECESSORS, OPS_PER_NODE, reduction_positions
from emodarts_nni.space.op_names import (
    CNN_OP_NAMES,
    DEFAULT_READOUTS,
    NONE_OP,
    READOUT_NAMES,
    SEQ_OP_NAMES,
)
from emodarts_nni.space.sizing import check_space_fits

if TYPE_CHECKING:  # reading and validating a file needs neither torch nor NNI
    from torch import nn

FORMAT = "emodarts-architecture/1"
_TOP_KEYS = ("format", "space", "architecture", "provenance")
_SPACE_KEYS = (*SPACE_DEFAULTS, "cnn_ops", "seq_ops", "readouts", "scope")
#: Deepest nesting accepted (a valid document is 3–4 levels deep).
MAX_DEPTH = 32
#: Largest architecture file read (a valid one is a few KB).
MAX_FILE_BYTES = 16 * 2**20
#: Spaces with more choices than this are reported missing without listing them all.
_MAX_LISTED_CHOICES = 10_000
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


@dataclass(frozen=True)
class ArchitectureFile:
    """A validated architecture JSON."""

    space: dict[str, Any]
    architecture: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "format": FORMAT,
            "space": self.space,
            "architecture": self.architecture,
            "provenance": self.provenance,
        }


def choice_domains(space: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every choice label of a space and its allowed values (``none`` excluded).

    Op labels map to op names; input labels (``.../input_i_k``) map to the allowed
    predecessor indices ``0..i-1`` (an exported value is a one-element list); the
    ``readout`` label, when the space offers several readouts, maps to their names.
    """
    domains: dict[str, list[Any]] = {}
    readouts = list(space.get("readouts") or DEFAULT_READOUTS)
    if len(readouts) > 1:
        domains[genotype.READOUT_LABEL] = readouts

    def add_cell(label: str, ops: list[str], nodes: int) -> None:
        for i in range(NUM_PREDECESSORS, NUM_PREDECESSORS + nodes):
            for k in range(OPS_PER_NODE):
                domains[genotype.op_label(label, i, k)] = ops
                domains[genotype.input_label(label, i, k)] = list(range(i))

    cnn_ops = [op for op in space["cnn_ops"] if op != NONE_OP]
    reductions = reduction_positions(space["cnn_cells"])
    if any(i not in reductions for i in range(space["cnn_cells"])):
        add_cell(genotype.NORMAL_CELL, cnn_ops, space["cnn_nodes"])
    if reductions:
        add_cell(genotype.REDUCE_CELL, cnn_ops, space["cnn_nodes"])
    if space["seq_cells"] > 0:
        add_cell(
            genotype.SEQ_CELL, [op for op in space["seq_ops"] if op != NONE_OP], space["seq_nodes"]
        )
    return domains


def _short(value: Any) -> str:
    """A bounded one-line repr of a user value for error messages."""
    try:
        return _REPR.repr(value)
    except ValueError:  # an integer with more digits than Python will print
        return f"<{type(value).__name__} too large to print>"


def _name(value: Any) -> str:
    """``value`` as a name to suggest a close match for (only strings are names)."""
    return value[:100] if isinstance(value, str) else ""


def _check_depth(doc: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse documents nested deeper than ``limit`` (or cyclic dicts), without recursion."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children = list(value.values())
        elif isinstance(value, (list, tuple)):
            children = list(value)
        else:
            continue
        if depth > limit:
            raise ArchitectureError(f"the document is nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def choice_count(space: Mapping[str, Any]) -> int:
    """How many choices :func:`choice_domains` would list, without listing them."""
    per_node = 2 * OPS_PER_NODE  # an op and an input choice per slot
    reductions = reduction_positions(space["cnn_cells"])
    kinds = int(any(i not in reductions for i in range(min(space["cnn_cells"], 3))))
    kinds += int(bool(reductions))
    count = kinds * per_node * space["cnn_nodes"]
    count += int(len(space.get("readouts") or DEFAULT_READOUTS) > 1)
    return count + (per_node * space["seq_nodes"] if space["seq_cells"] > 0 else 0)


def _validate_space(space: Any) -> dict[str, Any]:
    if not isinstance(space, Mapping):
        raise ArchitectureError("field 'space' must be an object of build_space arguments")
    for key in space:
        if key not in _SPACE_KEYS:
            raise ArchitectureError(
                f"space: unknown field {_short(key)}{suggest(_name(key), _SPACE_KEYS)}"
            )
    for key in ("cnn_ops", "seq_ops"):
        ops = space.get(key)
        if not isinstance(ops, list):
            raise ArchitectureError(f"space.{key} must be a list of op names")
        table = CNN_OP_NAMES if key == "cnn_ops" else SEQ_OP_NAMES
        for op in ops:
            if not isinstance(op, str) or op not in table:
                raise ArchitectureError(
                    f"space.{key}: unknown op {_short(op)}{suggest(_name(op), list(table))}"
                )
    readouts = space.get("readouts", list(DEFAULT_READOUTS))  # absent: written before readouts
    if not isinstance(readouts, list) or not readouts:
        raise ArchitectureError("space.readouts must be a non-empty list of readout names")
    for name in readouts:
        if not isinstance(name, str) or name not in READOUT_NAMES:
            raise ArchitectureError(
                f"space.readouts: unknown readout {_short(name)}"
                f"{suggest(_name(name), list(READOUT_NAMES))}"
            )
    missing = [k for k in SPACE_DEFAULTS if k not in space]
    if missing:
        raise ArchitectureError(f"space: missing field(s) {', '.join(missing)}")
    sizes = {k: space[k] for k in SPACE_DEFAULTS}
    for key, value in sizes.items():
        number = (int, float) if isinstance(SPACE_DEFAULTS[key], float) else int
        if isinstance(value, bool) or not isinstance(value, number):
            raise ArchitectureError(f"space.{key} must be a number, got {_short(value)}")
        if isinstance(value, int) and abs(value) >= 2**63:
            raise ArchitectureError(f"space.{key} is out of range: {_short(value)}")
    name = space.get("scope", "custom")
    if not isinstance(name, str):
        raise ArchitectureError(f"space.scope must be a scope name, got {_short(name)}")
    from emodarts_nni.space.scopes import scope_from_dict

    try:
        scope = scope_from_dict(
            {
                "name": name,
                "cnn_ops": space["cnn_ops"],
                "seq_ops": space["seq_ops"],
                "readouts": readouts,
            },
            "space",
        )
        resolved = resolve_space_args(scope, **sizes)
        # Refuse what cannot fit before any choice is enumerated or anything built; with
        # no architecture yet ({}), the largest model the space allows.
        check_space_fits(resolved, "the architecture's model", architecture={})
    except ConfigError as exc:
        raise ArchitectureError(f"space: {exc}") from None
    return resolved


def check_matches_data(
    architecture: ArchitectureFile,
    *,
    n_classes: int,
    input_shape: tuple[int, int] | None = None,
    source: str | os.PathLike = "architecture",
) -> None:
    """Refuse an architecture whose ``n_classes`` (or input size) differs from the data's.

    ``input_shape`` is the data's ``(n_mfcc, frames)``. Raises a one-line
    :class:`ArchitectureError` naming ``source``, the architecture's value and the data's.
    """
    space = architecture.space
    if space["n_classes"] != n_classes:
        raise ArchitectureError(
            f"{source}: the architecture has n_classes {space['n_classes']} "
            f"but the data has {n_classes} classes"
        )
    if input_shape is not None:
        n_mfcc, frames = input_shape
        if (space["n_mfcc"], space["frames"]) != (n_mfcc, frames):
            raise ArchitectureError(
                f"{source}: the architecture expects n_mfcc {space['n_mfcc']} × frames "
                f"{space['frames']} but the data has n_mfcc {n_mfcc} × frames {frames}"
            )


def validate_architecture(space: Mapping[str, Any], architecture: Any) -> dict[str, Any]:
    """Check ``architecture`` against the choices of ``space``; return it normalised."""
    if not isinstance(architecture, Mapping):
        raise ArchitectureError("field 'architecture' must be an object of choice label → value")
    expected = choice_count(space)
    if expected > max(len(architecture), _MAX_LISTED_CHOICES):
        # Cannot be complete; say so without enumerating a huge space's choices.
        raise ArchitectureError(
            f"architecture: lists {len(architecture)} choices but this space has {expected}"
        )
    domains = choice_domains(space)
    missing = [k for k in domains if k not in architecture]
    if missing:
        raise ArchitectureError(
            f"architecture: missing choice(s) {', '.join(missing[:6])}"
            + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        )
    out: dict[str, Any] = {}
    for label, value in architecture.items():
        if not isinstance(label, str):  # JSON keys are; a caller's dict may hold others
            raise ArchitectureError(f"architecture: choice label {_short(label)} is not text")
        if label not in domains:
            raise ArchitectureError(
                f"architecture: unexpected choice {_short(label)} for this space"
                f"{suggest(_name(label), list(domains))}"
            )
        allowed = domains[label]
        if genotype.is_input_label(label):
            if isinstance(value, int) and not isinstance(value, bool):
                value = [value]
            if (
                not isinstance(value, list)
                or len(value) != 1
                or not isinstance(value[0], int)
                or isinstance(value[0], bool)
            ):
                raise ArchitectureError(
                    f"architecture[{_short(label)}]: expected [input index], got {_short(value)}"
                )
            if value[0] not in allowed:
                raise ArchitectureError(
                    f"architecture[{label!r}]: input index {_short(value[0])} out of range 0..{allowed[-1]}"
                )
            out[label] = [int(value[0])]
        else:
            if value == NONE_OP:
                raise ArchitectureError(
                    f"architecture[{label!r}]: {NONE_OP!r} is not a valid choice in a derived architecture"
                )
            if not isinstance(value, str) or value not in allowed:
                raise ArchitectureError(
                    f"architecture[{_short(label)}]: op {_short(value)} is not in this space"
                    f"{suggest(_name(value), allowed)}"
                )
            out[label] = value
    return out


def read_architecture(
    source: str | os.PathLike | Mapping[str, Any],
    *,
    n_classes: int | None = None,
    input_shape: tuple[int, int] | None = None,
) -> ArchitectureFile:
    """Read and validate an architecture JSON file (or an already-parsed dict).

    Given ``n_classes`` (and ``input_shape``, the data's ``(n_mfcc, frames)``), also check
    the architecture against the data (:func:`check_matches_data`). Every problem is a
    one-line :class:`ArchitectureError` naming the file.
    """
    where = "architecture"
    if not isinstance(source, (str, os.PathLike)):
        doc: Any = source  # an already-parsed document (checked to be an object below)
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ArchitectureError(f"architecture file not found: {path}")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ArchitectureError(
                f"{path}: {size} bytes is too large for an architecture JSON "
                f"(at most {MAX_FILE_BYTES})"
            )
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, a huge integer
            message = " ".join(str(exc).split())
            raise ArchitectureError(f"{path}: not valid JSON: {message}") from None
        except RecursionError:
            raise ArchitectureError(
                f"{path}: not valid JSON: nested deeper than {MAX_DEPTH} levels"
            ) from None
    try:
        if not isinstance(doc, Mapping):
            raise ArchitectureError("the document must be a JSON object")
        _check_depth(doc)
        for key in doc:
            if key not in _TOP_KEYS:
                raise ArchitectureError(
                    f"unknown top-level field {_short(key)}{suggest(_name(key), _TOP_KEYS)}"
                )
        if doc.get("format") != FORMAT:
            raise ArchitectureError(
                f"field 'format' is {_short(doc.get('format'))}; expected {FORMAT!r}"
            )
        for key in ("space", "architecture"):
            if key not in doc:
                raise ArchitectureError(f"missing field {key!r}")
        space = _validate_space(doc["space"])
        arch = validate_architecture(space, doc["architecture"])
        provenance = doc.get("provenance") or {}
        if not isinstance(provenance, Mapping):
            raise ArchitectureError("field 'provenance' must be an object")
    except ArchitectureError as exc:
        raise ArchitectureError(f"{where}: {exc}") from None
    arch_file = ArchitectureFile(space=space, architecture=arch, provenance=dict(provenance))
    if n_classes is not None:
        check_matches_data(arch_file, n_classes=n_classes, input_shape=input_shape, source=where)
    return arch_file


def save_architecture(
    path: str | os.PathLike,
    space: Mapping[str, Any],
    architecture: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Validate and write an architecture JSON atomically; returns the path."""
    arch_file = read_architecture(
        {
            "format": FORMAT,
            "space": dict(space),
            "architecture": {str(k): v for k, v in architecture.items()},
            "provenance": dict(provenance or {}),
        }
    )
    path = Path(path)
    atomic_write_text(path, json.dumps(arch_file.to_dict(), indent=2, default=str) + "\n")
    return path


def freeze(space: Mapping[str, Any], architecture: Mapping[str, Any]) -> nn.Module:
    """Build a fresh space from ``space`` arguments, frozen to ``architecture``.

    The result is a plain ``torch.nn.Module`` holding only the chosen ops.
    """
    from nni.nas.space import model_context

    from emodarts_nni.space.model import space_from_args

    with model_context(dict(architecture)):
        return space_from_args(dict(space))


def load_architecture(source: str | os.PathLike | Mapping[str, Any]) -> nn.Module:
    """Rebuild the model of an architecture JSON (path or dict) as a plain ``nn.Module``.

    The module is freshly initialised (weights come from a checkpoint, see
    ``emodarts_nni.inference.checkpoint``) and has a ``num_parameters`` attribute.
    """
    arch_file = read_architecture(source)
    model = freeze(arch_file.space, arch_file.architecture)
    model.num_parameters = count_parameters(model)
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def sample_architecture(space: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """A uniformly random architecture of ``space`` (``none`` excluded), as exported by NNI."""
    rng = random.Random(seed)
    arch: dict[str, Any] = {}
    for label, domain in choice_domains(space).items():
        arch[label] = [rng.choice(domain)] if genotype.is_input_label(label) else rng.choice(domain)
    return arch


def readout_of(document: Mapping[str, Any]) -> str:
    """The readout of an architecture JSON document: its ``readout`` choice, else the
    space's one readout (``mean`` for a document written before readouts were a choice)."""
    chosen = genotype.choices(document).get(genotype.READOUT_LABEL)
    if isinstance(chosen, str):
        return chosen
    space = document.get("space")
    readouts = space.get("readouts") if isinstance(space, Mapping) else None
    return str(readouts[0]) if isinstance(readouts, list) and readouts else DEFAULT_READOUTS[0]


def readout_input_cell(space: Mapping[str, Any]) -> str | None:
    """The cell kind whose output the readout pools: ``seq`` with SeqNN cells, else the
    kind of the last CNN cell; ``None`` when ``space`` does not say (a partial document)."""
    if not isinstance(space.get("seq_cells", 0), int) or not isinstance(
        space.get("cnn_cells"), int
    ):
        return None
    if space.get("seq_cells", 0) > 0:
        return genotype.SEQ_CELL
    last = space["cnn_cells"] - 1
    return (
        genotype.REDUCE_CELL
        if last in reduction_positions(space["cnn_cells"])
        else genotype.NORMAL_CELL
    )


def describe(architecture: Mapping[str, Any], readouts: list[str] | None = None) -> str:
    """A compact genotype text, one line per cell kind: ``normal: 2←sep_conv_3x3(1) + ...``,
    then ``readout: stats`` when the readout was searched (the architecture's ``readout``
    choice) or, given the space's ``readouts``, fixed at another than the paper's mean."""
    cells: dict[str, dict[int, list[str]]] = {}
    for kind in genotype.cell_kinds(architecture, ordered=False):
        for edge in genotype.cell_edges(architecture, kind):
            cells.setdefault(kind, {}).setdefault(edge.node, []).append(f"{edge.op}({edge.source})")
    lines = []
    for kind, nodes in cells.items():
        parts = [f"{node}←" + "+".join(ops) for node, ops in sorted(nodes.items())]
        lines.append(f"{kind}: " + ", ".join(parts))
    chosen = genotype.choices(architecture).get(genotype.READOUT_LABEL)
    if isinstance(chosen, str):
        lines.append(f"{genotype.READOUT_LABEL}: {chosen}")
    elif readouts is not None and len(readouts) == 1 and tuple(readouts) != DEFAULT_READOUTS:
        lines.append(f"{genotype.READOUT_LABEL}: {readouts[0]} (fixed)")
    return "\n".join(lines)
