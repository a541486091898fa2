"""Number formats and the operations on codes: casts, stochastic rounding, MX scaling, x4 packing, sparsity."""
