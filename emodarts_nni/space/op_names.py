"""The op names, apart from the ops themselves (torch-free).

:mod:`emodarts_nni.space.ops` builds its tables from these names (and checks it has one op
for each); the light modules (scopes, sizing, the architecture JSON's validation), the
strategies' cells, the collapse diagnostics and the plots check against them without
importing torch.
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

#: Every CNN op name, in the order of :data:`emodarts_nni.space.ops.CNN_OPS` (paper Table 2).
CNN_OP_NAMES = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_7x1_1x7",
    SKIP_OP,
    NONE_OP,
)
#: The SeqNN's recurrent kinds, their depths, and the depths with attention (paper Table 6).
RECURRENT_KINDS = ("rnn", "lstm")
RECURRENT_LAYERS = (1, 2, 3, 4)
ATTENTION_LAYERS = (1, 2)


def _seq_names() -> tuple[str, ...]:
    names: list[str] = []
    for kind in RECURRENT_KINDS:
        names += [f"{kind}_{n}" for n in RECURRENT_LAYERS]
        names += [f"{kind}_att_{n}" for n in ATTENTION_LAYERS]
    return (*names, SKIP_OP, NONE_OP)


#: Every SeqNN op name, in the order of :data:`emodarts_nni.space.ops.SEQ_OPS`.
SEQ_OP_NAMES = _seq_names()

#: The readout over time (:mod:`emodarts_nni.space.readouts`): the paper's mean over time,
#: statistics pooling (mean ‖ std over time; Snyder et al. 2018, x-vectors) and attentive
#: statistics pooling (attention-weighted mean ‖ std; Okabe et al. 2018).
MEAN_READOUT = "mean"
READOUT_NAMES = (MEAN_READOUT, "stats", "attentive-stats")
#: The readout of a scope that names none, and of an architecture JSON written before
#: readouts were a choice: the paper's.
DEFAULT_READOUTS = (MEAN_READOUT,)
#: Width of the attention's hidden layer in ``attentive-stats`` (ECAPA-TDNN uses 128 on
#: far wider features; ours are 128–256 wide).
ATTENTION_UNITS = 64

__all__ = [
    "ATTENTION_LAYERS",
    "ATTENTION_UNITS",
    "DEFAULT_READOUTS",
    "MEAN_READOUT",
    "READOUT_NAMES",
    "CNN_OP_NAMES",
    "NONE_OP",
    "PARAMETER_FREE_OPS",
    "RECURRENT_KINDS",
    "RECURRENT_LAYERS",
    "SEQ_OP_NAMES",
    "SKIP_OP",
]
