"""The main job, one stage per module: data → search → retrain → evaluate → run folder (and
``plan``: whether a run fits this machine, before it starts)."""
