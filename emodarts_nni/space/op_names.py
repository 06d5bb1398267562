"""The op names other code reasons about, apart from the ops themselves (torch-free).

:mod:`emodarts_nni.space.ops` builds the op tables under these names; the light modules
(scopes, sizing), the strategies' cells, the collapse diagnostics and the plots compare
against them without importing torch.
"""

from __future__ import annotations

#: The op every DARTS edge already has implicitly in NNI (the extra α slot); it is
#: never exported and never built into a frozen model.
NONE_OP = "none"
#: The identity (``FactorizedReduce`` on a stride-2 CNN edge); in both op tables.
SKIP_OP = "skip_connect"
#: Ops without learnable weights (FactorizedReduce aside): a cell made mostly of them is
#: DARTS's collapse (Sec. VI-B of the paper; Liang et al. 2019). Read by ``collapse``.
PARAMETER_FREE_OPS = frozenset({SKIP_OP, "max_pool_3x3", "avg_pool_3x3", NONE_OP})

__all__ = ["NONE_OP", "PARAMETER_FREE_OPS", "SKIP_OP"]
