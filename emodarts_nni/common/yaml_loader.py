"""The YAML loader every emodarts file goes through (experiment configs, scope files, study
files): PyYAML's safe loader, bounded against alias bombs and deep nesting, with duplicate
keys refused and ``3e-4`` read as a number. Torch-free and import-cycle-free: ``config`` and
``scopes`` both import it.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import yaml

from emodarts_nni.common.errors import ConfigError

#: Bounds on a config or scope YAML, checked while composing, before anything is built:
#: values after expanding aliases (a real config has a few hundred) and nesting depth.
YAML_MAX_VALUES = 10_000
YAML_MAX_DEPTH = 50


class _Loader(yaml.SafeLoader):
    """The safe loader, plus fixes: ``3e-4`` is a float (PyYAML's YAML 1.1 reads it as a
    string), a key repeated in one mapping is an error, not silently dropped, and the
    document is bounded while it is composed.

    Anchors and aliases stay allowed (sharing one optimiser block between ``search`` and
    ``retrain`` is legitimate), but every alias counts as the values it expands to: a
    document that would expand to more than :data:`YAML_MAX_VALUES` values (the "billion
    laughs" alias bomb: ~400 bytes, 10^9 values), an alias of a node that contains itself,
    or nesting deeper than :data:`YAML_MAX_DEPTH` is refused with a :class:`ConfigError`
    naming the line, in time linear in the size of the text.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._values = 0  # values composed so far, aliases counted expanded
        self._depth = 0  # nesting depth of the node being composed
        self._open: set[str] = set()  # anchors of collections still being composed
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor} refers to a node that contains it", mark
                )
            node = super().compose_node(parent, index)
            values, depth = self._expanded(node)
            self._check_depth(self._depth + depth, mark)
            self._count(values, mark)
            return node
        self._check_depth(self._depth + 1, mark)
        self._count(1, mark)
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor)

    def _check_depth(self, depth: int, mark: yaml.Mark) -> None:
        if depth > YAML_MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {YAML_MAX_DEPTH} levels", mark
            )

    def _count(self, n: int, mark: yaml.Mark) -> None:
        self._values += n
        if self._values > YAML_MAX_VALUES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {YAML_MAX_VALUES} values once aliases are expanded "
                "(an alias bomb?); write the values out instead of aliasing them",
                mark,
            )

    def _expanded(self, node: yaml.Node) -> tuple[int, int]:
        """Values and depth ``node`` stands for with its aliases expanded (memoised, so
        linear in the composed nodes). A finished node is at most YAML_MAX_DEPTH deep
        expanded (checked at each alias inside it), which bounds this recursion."""
        if isinstance(node, yaml.ScalarNode):
            return 1, 1
        key = id(node)
        if key not in self._sizes:
            children = (
                [child for pair in node.value for child in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
            )
            values, depth = 1, 0
            for child in children:
                child_values, child_depth = self._expanded(child)
                values = min(values + child_values, YAML_MAX_VALUES + 1)
                depth = max(depth, child_depth)
            self._sizes[key] = (values, depth + 1)
        return self._sizes[key]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            with contextlib.suppress(TypeError):  # unhashable keys: the base class reports them
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse a config or scope YAML text with the bounded safe loader (:class:`_Loader`).

    Raises :class:`ConfigError` as one line ``SOURCE:LINE: invalid YAML: ...``.
    """
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(f"{source}{line}: invalid YAML: {_one_line(problem)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())
