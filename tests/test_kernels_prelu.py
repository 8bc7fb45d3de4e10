"""PReLU (tinyinfer/kernels/prelu.py) against torch's F.prelu on random shapes and slopes of
both signs, its cost by hand, bad input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels import prelu as PR


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.booleans(), st.integers(0, 2**31))
def test_prelu_matches_torch(c, flat, seed):
    """On a map and on features (N, C); slopes of both signs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, c) if flat else (2, c, 3, 4)).astype(np.float32)
    slope = rng.standard_normal(c).astype(np.float32)
    want = F.prelu(torch.from_numpy(x), torch.from_numpy(slope)).numpy()
    np.testing.assert_array_equal(PR.prelu(x, slope), want)
    np.testing.assert_array_equal(PR.prelu_ref(x, slope), want)


def test_cost_by_hand():
    """PReLU on (2, 3, 4, 5): 2 FLOPs per element (a compare and a multiply), 3 slopes."""
    p = PR.prelu_cost((2, 3, 4, 5))
    assert (p.macs, p.flops, p.params, p.elems_written) == (0, 240, 3, 120)


def test_bad_input_is_one_clear_error():
    with pytest.raises(InputError, match="one slope per channel"):
        PR.prelu(np.zeros((1, 2, 3, 3), np.float32), np.zeros(3, np.float32))
