"""Graph and spectral geometry shared by the functional-map aligner and the geometry metrics."""
