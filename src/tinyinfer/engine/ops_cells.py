"""Op records that NAS cells (NASNet-A, PNASNet-5, AmoebaNet) and the other searched or
hand-designed CNNs of the seeds need beyond ops.py's CNN kinds. See ops.py for what a record
holds and how to add a kind.
"""
from __future__ import annotations

from .op_record import Op

RECORDS: list[Op] = []
