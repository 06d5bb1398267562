"""Shared test settings: small sizes, deterministic, CPU."""

from __future__ import annotations

import warnings

import pytest

warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module.*")

#: A CPU-sized space used across tests (the paper's is 128×128, C=4, N=2).
SMALL_SPACE = dict(
    n_mfcc=16,
    frames=16,
    init_channels=2,
    stem_multiplier=2,
    cnn_cells=3,
    cnn_nodes=2,
    seq_cells=1,
    seq_nodes=2,
    hidden=8,
    dropout=0.0,
)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(2)


def pytest_sessionfinish(session, exitstatus):
    """NNI logs to the stdout it found at import; pytest closes that stream at exit, and
    NNI's atexit hooks would then print "Logging error" tracebacks. Detach its handlers."""
    import logging

    for name in ("nni", "nni.nas", "nni.experiment"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        # Not to logging's last-resort handler either: NNI's exit hooks log after pytest's
        # summary ("`training_service` will be ignored…"), which printed them on stderr.
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
