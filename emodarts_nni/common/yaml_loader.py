"""The YAML loader every emodarts file goes through (experiment configs, scope files, study
files): PyYAML's safe loader, bounded against alias bombs and deep nesting, with duplicate
keys refused and ``3e-4`` read as a number. Torch-free and import-cycle-free: ``config`` and
``scopes`` both import it.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from typing import Any

import yaml

from emodarts_nni.common.errors import ConfigError

#: Bounds on a config or scope YAML, checked while composing, before anything is built:
#: values after expanding aliases (a real config has a few hundred) and nesting depth.
YAML_MAX_VALUES = 10_000
YAML_MAX_DEPTH = 50
#: The largest config, scope or study file read (a real one is a few KB): ``/dev/zero``
#: given as a config used to be read until memory ran out.
YAML_MAX_BYTES = 1 << 20


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


def read_yaml_text(path: str | os.PathLike, what: str = "config file") -> str:
    """The text of the YAML file ``path``: a regular file of at most :data:`YAML_MAX_BYTES`.

    A device (``/dev/zero``), a FIFO (which would block until someone writes to it), a
    folder, a missing, unreadable, oversized or non-UTF-8 file is refused with a one-line
    :class:`ConfigError` naming ``path`` and ``what`` it was meant to be.
    """
    source = os.fspath(path)
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise ConfigError(f"{source}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {what} ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ConfigError(f"{source}: {what} is {kind}; expected a YAML file")
    if info.st_size > YAML_MAX_BYTES:
        raise ConfigError(
            f"{source}: {what} is {info.st_size} bytes; at most {YAML_MAX_BYTES} are read"
        )
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the check, do not hang on it
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(YAML_MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {what} ({exc.strerror})") from None
    if len(data) > YAML_MAX_BYTES:
        raise ConfigError(f"{source}: {what} is larger than {YAML_MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: {what} is not a UTF-8 text file") from None


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
    except ValueError as exc:  # a scalar its constructor refuses: a 5000-digit int, 2020-13-45
        raise ConfigError(f"{source}: invalid YAML value: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())
