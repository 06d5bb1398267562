"""The main job, one stage per module: data → search → retrain → evaluate → run folder."""
