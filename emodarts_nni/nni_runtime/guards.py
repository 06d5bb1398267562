"""Checks that refuse, up front, what NNI 3.0 cannot do on our stack (they patch nothing)."""

from __future__ import annotations

from typing import Any


def enas_supported() -> bool:
    """nni-notes #1: whether NNI's ENAS works with the installed pytorch-lightning.

    ENAS is verified to work unmodified on the pinned pytorch-lightning 2.0.9 (no patch is
    carried); from 2.1 Lightning drops the dataloader index it relies on.
    """
    from importlib.metadata import version

    major, minor = (int(part) for part in version("pytorch-lightning").split(".")[:2])
    return (major, minor) < (2, 1)


def proxyless_cell_guard(
    module: Any, name: str, memo: dict[str, Any], mutate_kwargs: dict[str, Any]
) -> None:
    """New (not in nni-notes): refuse, up front, cells that NNI's Proxyless cannot search.

    Proxyless has no ``Cell`` hook (its docstring lists ``LayerChoice``, ``InputChoice`` and
    ``Repeat`` only), so it mutates a cell's op and input choices separately, with the ops a
    factory built for ``input_index=None``. In a reduction cell those ops have stride 2 for
    *every* input, and the inputs differ in size, so training fails deep inside with
    "Sizes of tensors must match". DARTS, GumbelDARTS, ENAS and RandomOneShot rebuild the ops
    per input and are unaffected. Used as a Proxyless mutation hook (by
    :func:`emodarts_nni.strategy.registry.make_strategy`); it changes nothing, it only raises.
    """
    from nni.nas.nn.pytorch import Cell
    from nni.nas.nn.pytorch.cell import create_cell_op_candidates

    from emodarts_nni.common.errors import ConfigError

    factory = getattr(module, "op_candidates_factory", None)
    if not isinstance(module, Cell) or factory is None or module.num_nodes < 2:
        return None
    last_node = module.num_predecessors + module.num_nodes - 1
    built = [
        {
            key: repr(op)
            for key, op in create_cell_op_candidates(factory, last_node, 0, index)[0].items()
        }
        for index in (None, last_node - 1)  # while building the space / reading a node
    ]
    if built[0] != built[1]:
        raise ConfigError(
            f"strategy 'proxyless' cannot search cell {module.label!r}: its ops depend on the "
            "input they read (a reduction cell), which NNI 3.0's Proxyless does not support; "
            "use darts or gumbel"
        )
    return None


__all__ = ["enas_supported", "proxyless_cell_guard"]
