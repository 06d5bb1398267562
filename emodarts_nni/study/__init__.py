"""``emodarts study``: a grid of experiment cells plus controls as one NNI experiment.

- :mod:`.config`: the study file (``experiments/study_*.yaml``) and its validation;
- :mod:`.cells`: grid + controls → cells with stable ids (their run-folder names);
- :mod:`.service`: the ``training_service`` section → NNI's training-service config;
- :mod:`.runner`: lay out the study folder, extract features once, run the unfinished cells;
- :mod:`.trial`: one cell as an NNI trial (``python -m emodarts_nni.study.trial STUDY_DIR``);
- :mod:`.report` and :mod:`.plots`: ``folds.csv``, ``report.csv``, ``report.md``, PNGs.

Importing this package imports neither torch nor NNI.
"""
