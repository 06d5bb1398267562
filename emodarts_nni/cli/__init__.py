"""The ``emodarts`` command line: a thin layer over functions callable from Python."""
