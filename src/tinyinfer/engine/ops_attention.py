"""Op records of the efficient attention variants (FAVOR+, cascaded group attention, ReLU
linear attention, separable self-attention, ...), each beside the networks' kernels in
kernels/. See ops.py for what a record holds and how to add a kind.
"""
from __future__ import annotations

from .op_record import Op

RECORDS: list[Op] = []
