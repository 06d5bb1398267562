"""Training: the Lightning module and trainer set-up, metrics, baselines, the linear control.

Importing this package imports neither torch nor NNI (``metrics`` and ``classical`` stay
light too).
"""

from emodarts_nni._compat import forwarding

# the names of release 0.1's ``emodarts_nni/training.py`` (now ``training/module.py``)
__getattr__ = forwarding(
    "emodarts_nni.training",
    (
        "unweighted_accuracy",
        "weighted_accuracy",
        "quiet_nni_import",
        "AugmentConfig",
        "OptimiserConfig",
        "RetrainConfig",
        "TrainerConfig",
        "SerModule",
        "mask_batch",
        "tensor_dataset",
        "make_loader",
        "EpochRecorder",
        "predict_proba",
        "alpha_probabilities",
        "ReraiseInterrupt",
        "make_trainer",
        "Training",
        "make_training",
    ),
)
