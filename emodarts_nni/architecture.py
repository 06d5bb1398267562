"""Architecture JSON: the searched architecture, enough to rebuild the model from the file.

Format (``docs/interface.md``)::

    {"format": "emodarts-architecture/1",
     "space": {...the resolved build_space arguments, incl. "scope"...},
     "architecture": {"normal/op_2_0": "sep_conv_3x3", "normal/input_2_0": [1], ...},
     "provenance": {"strategy": ..., "seed": ..., "corpus": ..., "fold": ..., ...}}

The file is validated completely before anything is built: a wrong format version, a
missing or extra choice, an unknown or ``none`` op, an input index out of range or a
malformed space raise :class:`~emodarts_nni.errors.ArchitectureError` naming the field.
It is parsed with :func:`json.loads` only — never ``eval``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from emodarts_nni import genotype
from emodarts_nni.errors import ArchitectureError, ConfigError, suggest
from emodarts_nni.files import atomic_write_text
from emodarts_nni.ops import CNN_OPS, NONE_OP, SEQ_OPS
from emodarts_nni.space import (
    NUM_PREDECESSORS,
    OPS_PER_NODE,
    SPACE_DEFAULTS,
    reduction_positions,
    resolve_space_args,
    space_from_args,
)

FORMAT = "emodarts-architecture/1"
_TOP_KEYS = ("format", "space", "architecture", "provenance")
_SPACE_KEYS = (*SPACE_DEFAULTS, "cnn_ops", "seq_ops", "scope")


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
    predecessor indices ``0..i-1`` (an exported value is a one-element list).
    """
    domains: dict[str, list[Any]] = {}

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


def _validate_space(space: Any) -> dict[str, Any]:
    if not isinstance(space, Mapping):
        raise ArchitectureError("field 'space' must be an object of build_space arguments")
    for key in space:
        if key not in _SPACE_KEYS:
            raise ArchitectureError(f"space: unknown field {key!r}{suggest(str(key), _SPACE_KEYS)}")
    for key in ("cnn_ops", "seq_ops"):
        ops = space.get(key)
        if not isinstance(ops, list):
            raise ArchitectureError(f"space.{key} must be a list of op names")
        table = CNN_OPS if key == "cnn_ops" else SEQ_OPS
        for op in ops:
            if op not in table:
                raise ArchitectureError(
                    f"space.{key}: unknown op {op!r}{suggest(str(op), list(table))}"
                )
    sizes = {k: space[k] for k in SPACE_DEFAULTS if k in space}
    missing = [k for k in SPACE_DEFAULTS if k not in space]
    if missing:
        raise ArchitectureError(f"space: missing field(s) {', '.join(missing)}")
    from emodarts_nni.scopes import Scope

    scope = Scope(
        name=str(space.get("scope", "custom")),
        cnn_ops=tuple(space["cnn_ops"]),
        seq_ops=tuple(space["seq_ops"]),
    )
    try:
        return resolve_space_args(scope, **sizes)
    except ConfigError as exc:
        raise ArchitectureError(f"space: {exc}") from None


def validate_architecture(space: Mapping[str, Any], architecture: Any) -> dict[str, Any]:
    """Check ``architecture`` against the choices of ``space``; return it normalised."""
    if not isinstance(architecture, Mapping):
        raise ArchitectureError("field 'architecture' must be an object of choice label → value")
    domains = choice_domains(space)
    missing = [k for k in domains if k not in architecture]
    if missing:
        raise ArchitectureError(
            f"architecture: missing choice(s) {', '.join(missing[:6])}"
            + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        )
    out: dict[str, Any] = {}
    for label, value in architecture.items():
        label = str(label)
        if label not in domains:
            raise ArchitectureError(
                f"architecture: unexpected choice {label!r} for this space{suggest(label, list(domains))}"
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
                    f"architecture[{label!r}]: expected [input index], got {value!r}"
                )
            if value[0] not in allowed:
                raise ArchitectureError(
                    f"architecture[{label!r}]: input index {value[0]} out of range 0..{allowed[-1]}"
                )
            out[label] = [int(value[0])]
        else:
            if value == NONE_OP:
                raise ArchitectureError(
                    f"architecture[{label!r}]: 'none' is not a valid choice in a derived architecture"
                )
            if not isinstance(value, str) or value not in allowed:
                raise ArchitectureError(
                    f"architecture[{label!r}]: op {value!r} is not in this space{suggest(str(value), allowed)}"
                )
            out[label] = value
    return out


def read_architecture(source: str | os.PathLike | Mapping[str, Any]) -> ArchitectureFile:
    """Read and validate an architecture JSON file (or an already-parsed dict)."""
    where = "architecture"
    if isinstance(source, Mapping):
        doc: Any = source
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ArchitectureError(f"architecture file not found: {path}")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArchitectureError(f"{path}: not valid JSON: {exc}") from None
    try:
        if not isinstance(doc, Mapping):
            raise ArchitectureError("the document must be a JSON object")
        for key in doc:
            if key not in _TOP_KEYS:
                raise ArchitectureError(
                    f"unknown top-level field {key!r}{suggest(str(key), _TOP_KEYS)}"
                )
        if doc.get("format") != FORMAT:
            raise ArchitectureError(f"field 'format' is {doc.get('format')!r}; expected {FORMAT!r}")
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
    return ArchitectureFile(space=space, architecture=arch, provenance=dict(provenance))


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

    with model_context(dict(architecture)):
        return space_from_args(dict(space))


def load_architecture(source: str | os.PathLike | Mapping[str, Any]) -> nn.Module:
    """Rebuild the model of an architecture JSON (path or dict) as a plain ``nn.Module``.

    The module is freshly initialised (weights come from a checkpoint, see
    ``emodarts_nni.checkpoint``) and has a ``num_parameters`` attribute.
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


def describe(architecture: Mapping[str, Any]) -> str:
    """A compact genotype text, one line per cell kind: ``normal: 2←sep_conv_3x3(1) + ...``."""
    cells: dict[str, dict[int, list[str]]] = {}
    for kind in genotype.cell_kinds(architecture, ordered=False):
        for edge in genotype.cell_edges(architecture, kind):
            cells.setdefault(kind, {}).setdefault(edge.node, []).append(f"{edge.op}({edge.source})")
    lines = []
    for kind, nodes in cells.items():
        parts = [f"{node}←" + "+".join(ops) for node, ops in sorted(nodes.items())]
        lines.append(f"{kind}: " + ", ".join(parts))
    return "\n".join(lines)
