"""The teaching layer: per-layer reports, liveness memory, counting conventions, comparison with
PyTorch, scaling rules, the papers' tables, this machine's roofline."""
