"""The search space: ops, the one NNI model space, its arguments, scopes, labels, sizing, the JSON.

Light: importing this package (and ``args``, ``scopes``, ``genotype``, ``sizing``) imports
neither torch nor NNI; ``ops``, ``model`` and ``architecture`` do.
"""

from emodarts_nni._compat import forwarding

# the names of release 0.1's ``emodarts_nni/space.py`` (now ``space/model.py``)
__getattr__ = forwarding(
    "emodarts_nni.space",
    (
        "NORMAL_CELL",
        "NUM_PREDECESSORS",
        "OPS_PER_NODE",
        "REDUCE_CELL",
        "SEQ_CELL",
        "reduction_positions",
        "quiet_nni_import",
        "CNN_OPS",
        "NONE_OP",
        "SEQ_OPS",
        "FactorizedReduce",
        "ReLUConvBN",
        "DEFAULT_SCOPE",
        "Scope",
        "check_space_fits",
        "SPACE_DEFAULTS",
        "resolve_space_args",
        "CnnPreprocessor",
        "SeqPreprocessor",
        "CellPostprocessor",
        "TimeBridge",
        "CnnCellOpFactory",
        "SeqCellOpFactory",
        "EmoDartsSpace",
        "space_from_args",
        "build_space",
    ),
)
