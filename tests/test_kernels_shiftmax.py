"""Dynamic Shift-Max's mixing kernel (tinyinfer/kernels/shiftmax.py) against the authors'
DYShiftMax (tests/micronet_ref.py) with random weights, and against its NumPy reference."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from tinyinfer.errors import InputError
from tinyinfer.kernels import shiftmax as S
from micronet_ref import DYShiftMax

# out = max of two mixes a*x + b*x2 with |a|, |b| <= act_max + |init| ~ 3 and |x| <= ~4:
# each product and sum is a few float32 ulps of ~10 from torch's (same operations, fused
# multiply-adds possible), so the error stays under ~1e-5.
RTOL, ATOL = 1e-5, 1e-5
SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def channels_and_groups(draw):
    groups = draw(st.integers(1, 4))
    return groups * draw(st.integers(1, 6)), groups


@SETTINGS
@given(st.integers(1, 2), channels_and_groups(), st.integers(1, 6), st.integers(1, 6),
       st.booleans(), st.sampled_from([0.5, 1.0, 2.0]),
       st.lists(st.floats(-1.0, 1.0, width=32), min_size=4, max_size=4),
       st.integers(0, 2**31))
def test_matches_authors_dyshiftmax(N, cg, H, W, two_mixes, act_max, inits, seed):
    """The authors' module on random weights; its own fc (pool, Linear, ReLU, Linear,
    h_sigmoid) gives the coefficients our kernel takes, so the test checks the mixing step
    and the shift index together against the whole forward."""
    C, groups = cg
    torch.manual_seed(seed)
    ref = DYShiftMax(C, C, act_max=act_max, act_relu=two_mixes, init_a=inits[:2],
                     init_b=inits[2:], g=(0, groups)).eval()
    for p in ref.parameters():      # spread the h-sigmoid inputs over its whole range
        torch.nn.init.normal_(p, std=2.0)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((N, C, H, W))
                         .astype(np.float32))
    with torch.no_grad():
        want = ref(x).numpy()
        J = ref.exp
        coef = ref.fc(x.mean((2, 3))).view(N, J, C).numpy()
    index = S.shift_index(C, groups)
    assert np.array_equal(index, ref.index.numpy())
    got = S.shiftmax(x.numpy(), coef, index, ref.act_max, inits[:2], inits[2:])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(S.shiftmax_ref(x.numpy(), coef, index, ref.act_max, inits[:2],
                                              inits[2:]), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("channels,groups", [(12, 1), (12, 3), (16, 4), (8, 4), (6, 2)])
def test_shift_index_equals_authors_expansion_groups(channels, groups):
    """With expansion=True the authors' g[1] is the channels per group: inp // g[1] groups
    (the hypothesis test passes the group count itself, expansion=False)."""
    ref = DYShiftMax(channels, channels, g=(0, channels // groups), expansion=True)
    assert ref.g == groups
    assert np.array_equal(S.shift_index(channels, groups), ref.index.numpy())


def test_cost_counts_by_hand():
    """(1, 8, 5, 5), two mixes: 200 elements, 32 coefficients: 3*32 + 3*2*200 + 200 = 1496
    FLOPs; one mix: 16 coefficients, 3*16 + 3*200 = 648. No MACs, no parameters."""
    two = S.shiftmax_cost((1, 8, 5, 5), mixes=2)
    one = S.shiftmax_cost((1, 8, 5, 5), mixes=1)
    assert (two.macs, two.flops, two.params, two.elems_read, two.elems_written) == \
        (0, 1496, 0, 232, 200)
    assert (one.flops, one.elems_read) == (648, 216)


@pytest.mark.parametrize("coef_shape,index,fragment", [
    ((1, 3, 4), np.arange(4), "coef must have shape (1, 4 or 2, 4)"),
    ((2, 4, 4), np.arange(4), "coef must have shape (1, 4 or 2, 4)"),
    ((1, 4, 4), np.arange(3), "index must be 4 integers in [0, 4)"),
    ((1, 4, 4), np.array([0, 1, 2, 4]), "index must be 4 integers in [0, 4)"),
    ((1, 4, 4), np.arange(4.0), "index must be 4 integers in [0, 4)"),
])
def test_bad_arguments_raise_one_clear_error(coef_shape, index, fragment):
    x = np.zeros((1, 4, 2, 2), np.float32)
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        S.shiftmax(x, np.zeros(coef_shape, np.float32), index, 2.0)


def test_groups_must_divide_channels():
    with pytest.raises(InputError, match="groups must divide the channel count"):
        S.shift_index(10, 3)


def test_op_shape_rule_refuses_coefficients_of_another_width():
    """The dyshiftmax op kind (engine/ops_cells.py) takes (N, 4*C) or (N, 2*C) coefficients."""
    from tinyinfer.engine.graph import Graph
    from tinyinfer.engine.ops import infer_shapes
    g = Graph(4)
    g.add_node("pool", "global_avgpool", ["input"])
    g.add_node("mix", "dyshiftmax", ["input", "pool"],
               {"groups": 1, "act_max": 2.0, "init_a": (1.0, 0.0), "init_b": (0.0, 0.0)})
    with pytest.raises(InputError, match=r"coefficients must be \(N, 4\*C\) or \(N, 2\*C\)"):
        infer_shapes(g, (1, 4, 3, 3))
