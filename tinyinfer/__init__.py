"""tinyinfer: a pure NumPy/Numba inference engine for efficient vision networks."""
