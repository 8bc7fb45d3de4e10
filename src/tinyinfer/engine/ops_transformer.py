"""Op records of the transformer building blocks: layer norm, token reshapes (an NCHW map to
tokens and back, MobileViT's patch unfold / fold) and multi-head self-attention.

Tokens are 3-D arrays (batch, tokens, channels); maps are NCHW. See ops.py for what a record
holds and how to add a kind.
"""
from __future__ import annotations

from .op_record import Op

RECORDS: list[Op] = []
