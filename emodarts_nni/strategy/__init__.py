"""The search strategies: the registry (names → NNI strategies), the DARTS family and the
supernet cells they train, and the collapse diagnostics of a differentiable search.

- :mod:`.registry`: every strategy's name, parameters and config mapping (light);
- :mod:`.defaults`: the defaults the registry and the algorithms share (light);
- :mod:`.darts`: first order, second order, β-DARTS, PC-DARTS, DARTS-, Gumbel (one module
  each);
- :mod:`.supermodule`: the mixed cells the DARTS family trains (summed, lean, partial-channel,
  auxiliary-skip);
- :mod:`.derivation`: DARTS's rule from α (and PC-DARTS's β) to a discrete cell, the one
  every differentiable strategy exports with and the collapse diagnostics read (light);
- :mod:`.collapse`: skip/parameter-free collapse per cell, DARTS+ early stop.
"""
