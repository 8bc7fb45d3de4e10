"""Operation counts: the one record every kernel's cost model returns (``Cost``), and the
record of one operation of the PyTorch reference that the counting tools see (``RefOp``).

Conventions (written once here and in the README):

* MACs   multiply-accumulates of convolutions, linear layers and attention matmuls:
         the papers' "Mult-Adds". Elementwise ops have 0 MACs.
* FLOPs  2 x MACs for conv / linear / matmul (bias adds are not counted, as in the
         papers), plus the elementwise work of everything else, one FLOP per
         arithmetic operation in the op's formula and 1 per transcendental
         (see ``ACT_FLOPS`` in kernels/activations.py).
* params numbers stored in weights and biases (after batch-norm folding, a conv's
         bias holds what the BN's four vectors held; BN itself counts nothing).
* bytes  elements read (inputs and weights) and written (outputs), times the
         element size (4 for float32 unless asked otherwise). Caches are ignored:
         each tensor is read once per op, which is what a roofline wants.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Cost:
    macs: int = 0
    flops: int = 0
    params: int = 0
    elems_read: int = 0      # input activations + weights
    elems_written: int = 0   # output activations

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def bytes_read(self, itemsize: int = 4) -> int:
        return self.elems_read * itemsize

    def bytes_written(self, itemsize: int = 4) -> int:
        return self.elems_written * itemsize

    def bytes_moved(self, itemsize: int = 4) -> int:
        return (self.elems_read + self.elems_written) * itemsize

    def intensity(self, itemsize: int = 4) -> float:
        """Arithmetic intensity, FLOPs per byte moved (the roofline's x axis)."""
        moved = self.bytes_moved(itemsize)
        return self.flops / moved if moved else 0.0


def numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


@dataclass(frozen=True)
class RefOp:
    """One operation of the PyTorch reference, as a counting tool sees it. Each op kind's
    record (ops.py) lowers a node to these; conventions.py's tables count them."""
    op: str                 # conv, linear, batchnorm, an activation name, add, mul,
    #                         max_pool, avg_pool, adaptive_avg_pool, copy
    macs: int = 0
    n_in: int = 0           # elements of its (first) input
    n_out: int = 0          # elements of its output
    bias: int = 0           # bias additions (output elements) if the layer has a bias
    call: str = "module"    # module | functional (F.*) | method (x.mean) | operator (a + b)
