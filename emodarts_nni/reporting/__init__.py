"""Tables and pictures of finished run folders: the run report, its plots, the cell diagram."""
