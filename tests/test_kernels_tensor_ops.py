"""add / mul / concat / split / channel_shuffle / flatten against torch."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torchvision.models.shufflenetv2 import channel_shuffle as tv_channel_shuffle

from tinyinfer.errors import InputError
from tinyinfer.kernels import activations as A
from tinyinfer.kernels import tensor_ops as O

# add + activation: the add is exact in both; exp/erf-based activations may differ from
# torch's vectorized versions by a few ulps.
ADD_RTOL, ADD_ATOL = 1e-5, 1e-6
SETTINGS = settings(max_examples=30, deadline=None)

TORCH_ACT = {
    A.NONE: lambda t: t, A.RELU: F.relu, A.RELU6: F.relu6, A.SIGMOID: torch.sigmoid,
    A.HSIGMOID: F.hardsigmoid, A.HSWISH: F.hardswish, A.SWISH: F.silu, A.GELU: F.gelu,
}

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4).map(tuple)


def _data(seed, shape, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@SETTINGS
@given(shapes, st.sampled_from(sorted(TORCH_ACT)), st.integers(0, 2**31))
def test_add_with_fused_activation(shape, act, seed):
    a, b = _data(seed, shape), _data(seed + 1, shape)
    want = TORCH_ACT[act](torch.from_numpy(a) + torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(O.add(a, b, act), want, rtol=ADD_RTOL, atol=ADD_ATOL)


def test_add_in_place_and_by_name():
    a, b = _data(0, (2, 3, 4, 5)), _data(1, (2, 3, 4, 5))
    want = F.relu6(torch.from_numpy(a) + torch.from_numpy(b)).numpy()
    out = O.add(a, b, "relu6", out=a)
    assert out is a
    np.testing.assert_allclose(a, want, rtol=ADD_RTOL, atol=ADD_ATOL)


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 7), st.integers(1, 7),
       st.booleans(), st.integers(0, 2**31))
def test_mul_gate_broadcast(N, C, H, W, gate_first, seed):
    x, g = _data(seed, (N, C, H, W)), _data(seed + 1, (N, C, 1, 1))
    want = (torch.from_numpy(x) * torch.from_numpy(g)).numpy()
    got = O.mul(g, x) if gate_first else O.mul(x, g)
    np.testing.assert_array_equal(got, want)      # one float32 multiply: exact
    np.testing.assert_array_equal(O.mul(x, x), (torch.from_numpy(x) ** 2).numpy())


@SETTINGS
@given(st.integers(1, 3), st.lists(st.integers(1, 5), min_size=1, max_size=4),
       st.integers(0, 3), st.integers(0, 2**31))
def test_concat_and_split_match_torch(ndim_extra, sizes, axis_pick, seed):
    base = [2, 3, 4][:ndim_extra] + [1]
    axis = axis_pick % len(base)
    xs = []
    for i, s in enumerate(sizes):
        shape = list(base)
        shape[axis] = s
        xs.append(_data(seed + i, tuple(shape)))
    got = O.concat(xs, axis)
    want = torch.cat([torch.from_numpy(x) for x in xs], axis).numpy()
    np.testing.assert_array_equal(got, want)
    pieces = O.split(got, sizes, axis)
    for p, w in zip(pieces, torch.split(torch.from_numpy(got), sizes, axis)):
        np.testing.assert_array_equal(p, w.numpy())
        assert np.shares_memory(p, got)            # views, no copies
    for p, w in zip(O.split(got, 2, axis), torch.split(torch.from_numpy(got), 2, axis)):
        np.testing.assert_array_equal(p, w.numpy())


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 4), st.integers(1, 6), st.integers(1, 5),
       st.integers(1, 5), st.integers(0, 2**31))
def test_channel_shuffle_matches_torchvision(N, groups, cpg, H, W, seed):
    x = _data(seed, (N, groups * cpg, H, W))
    want = tv_channel_shuffle(torch.from_numpy(x), groups).numpy()
    np.testing.assert_array_equal(O.channel_shuffle(x, groups), want)
    np.testing.assert_array_equal(O.channel_shuffle(x[:, :, ::-1], groups),
                                  tv_channel_shuffle(torch.from_numpy(x[:, :, ::-1].copy()),
                                                     groups).numpy())


def test_channel_shuffle_closed_form():
    # 6 channels, 2 groups: [0 1 2 | 3 4 5] -> [0 3 1 4 2 5]
    x = np.arange(6, dtype=np.float32).reshape(1, 6, 1, 1)
    assert O.channel_shuffle(x, 2).ravel().tolist() == [0, 3, 1, 4, 2, 5]


def test_flatten():
    x = _data(0, (2, 3, 4, 5))
    f = O.flatten(x)
    np.testing.assert_array_equal(f, torch.flatten(torch.from_numpy(x), 1).numpy())
    assert np.shares_memory(f, x)
    xt = x.transpose(0, 2, 3, 1)                   # non-contiguous: a copy, right order
    np.testing.assert_array_equal(O.flatten(xt),
                                  torch.flatten(torch.from_numpy(xt.copy()), 1).numpy())


def test_costs():
    n = 2 * 16 * 8 * 8
    assert O.add_cost((2, 16, 8, 8)).flops == n
    c = O.add_cost((2, 16, 8, 8), A.RELU6)
    assert (c.flops, c.elems_read, c.elems_written) == (3 * n, 2 * n, n)
    m = O.mul_cost((2, 16, 8, 8), (2, 16, 1, 1))
    assert (m.flops, m.elems_read, m.elems_written) == (n, n + 32, n)
    s = O.channel_shuffle_cost((2, 16, 8, 8), 2)
    assert (s.flops, s.bytes_read(), s.bytes_written()) == (0, 4 * n, 4 * n)
    k = O.concat_cost([(1, 3, 4, 4), (1, 5, 4, 4)])
    assert (k.flops, k.elems_read, k.elems_written) == (0, 128, 128)
    assert O.split_cost((1, 8, 4, 4), [3, 5]).bytes_moved() == 0
    assert O.flatten_cost((1, 8, 4, 4)).bytes_moved() == 0


@pytest.mark.parametrize("call,match", [
    (lambda x: O.add(x, x[:, :1]), "same shape"),
    (lambda x: O.add(x, x, "mish"), "unknown activation"),
    (lambda x: O.add(x, x, out=np.empty(3, np.float32)), "out must be"),
    (lambda x: O.mul(x, x[:, :, :1]), r"\(N,C,1,1\)"),
    (lambda x: O.concat([x, x[:, :, :2]], 1), "all dims except"),
    (lambda x: O.concat([], 1), "non-empty"),
    (lambda x: O.concat([x], 4), "out of range"),
    (lambda x: O.split(x, [1, 1], 1), "sum to"),
    (lambda x: O.channel_shuffle(x, 3), "divisible"),
    (lambda x: O.channel_shuffle(x, 0), ">= 1"),
    (lambda x: O.add(x.astype(np.int64), x.astype(np.int64)), "floating"),
])
def test_bad_input_raises_input_error(call, match):
    x = _data(0, (1, 4, 3, 3))
    with pytest.raises(InputError, match=match):
        call(x)
