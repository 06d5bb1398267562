"""The mixed cells (NNI ``DifferentiableMixedCell`` subclasses) the DARTS family trains."""
