"""A checkpoint from ``experiments/quickstart.yaml`` at test size, made once per test session.

``emodarts run experiments/quickstart.yaml`` (search → export → retrain → evaluate), with
``--set`` overrides that shrink the corpus, the features, the space and the epochs so the
run takes seconds on 2 cores. Shared by the predict and export tests through a folder
under pytest's session base temp: whichever module asks first makes it.
"""

from __future__ import annotations

from pathlib import Path

from emodarts_nni.cli.main import main
from emodarts_nni.common.shipped import EXPERIMENTS, shipped_folder

#: The quickstart at test size: every override is a config key of the quickstart file.
OVERRIDES = {
    "corpus.synth.n_speakers": 6,
    "corpus.synth.n_sessions": 3,
    "splits.n_folds": 3,
    "corpus.synth.utterances_per_class_per_speaker": 4,
    "features.n_mfcc": 16,
    "features.n_mels": 24,
    "features.frames": 128,
    "features.pooled_frames": 16,
    "features.hop_length": 1000,
    "features.workers": 1,
    "space.init_channels": 2,
    "space.hidden": 8,
    "search.epochs": 1,
    "search.batch_size": 16,
    "retrain.epochs": 2,
    "retrain.batch_size": 16,
    "trainer.accelerator": "cpu",
    "trainer.progress": False,
}


def quickstart_checkpoint(base: Path) -> Path:
    """``checkpoint.pt`` of the shrunken quickstart run in ``base/quickstart`` (made once)."""
    run = base / "quickstart"
    checkpoint = run / "checkpoint.pt"
    if not checkpoint.is_file():
        sets = [f"--set={key}={value}" for key, value in OVERRIDES.items()]
        sets += [f"--set=features.cache_dir={base / 'cache'}", f"--set=output.dir={base}"]
        status = main(
            [
                "run",
                str(shipped_folder(EXPERIMENTS) / "quickstart.yaml"),
                "--out",
                str(run),
                "--no-webui",
                *sets,
            ]
        )
        assert status == 0 and checkpoint.is_file()
    return checkpoint
