"""The DARTS family, one module per paper (each imports torch and NNI)."""
