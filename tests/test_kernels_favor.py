"""FAVOR+ (kernels/attention_favor.py) against performer-pytorch's FastAttention given the
same projection matrix, its multi-head wrapper against the same in torch, its cost against
torch's FlopCounterMode, and its bad inputs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from performer_pytorch import FastAttention
from torch.utils.flop_counter import FlopCounterMode

from tinyinfer.errors import InputError
from tinyinfer.kernels import attention_favor as Fv

# Outputs are convex combinations of V rows (every feature is > 0), so |out| <= max|v| ~ 4.
# The features are exp of projections summed over <= 32 float32 terms in another order than
# torch's; an error of ~1e-6 in an exponent moves a weight by ~1e-6 relative, as for exact
# attention (test_kernels_attention.py), so the same bounds.
RTOL, ATOL = 1e-4, 2e-5
SETTINGS = settings(max_examples=25, deadline=None)


def _t(a):
    return torch.from_numpy(a)


def fast_attention(D, M, causal, seed):
    """performer-pytorch's module with its own projection (drawn from torch's RNG)."""
    torch.manual_seed(seed)
    return FastAttention(dim_heads=D, nb_features=M, causal=causal)


def performer(fa, q, k, v):
    with torch.no_grad():
        return fa(_t(q), _t(k), _t(v)).numpy()


@SETTINGS
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 80), st.integers(1, 40),
       st.integers(1, 32), st.integers(1, 48), st.booleans(), st.integers(0, 2**31 - 1))
def test_favor_matches_performer(B, H, T, Tq, D, M, causal, seed):
    """T up to 80 crosses the kernel's 32-token blocks (the running key max, the causal
    block boundaries); non-causal queries may be fewer or more than the keys."""
    Tq = T if causal else Tq
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, H, Tq, D)).astype(np.float32)
    k, v = (rng.standard_normal((B, H, T, D)).astype(np.float32) for _ in range(2))
    fa = fast_attention(D, M, causal, seed)
    want = performer(fa, q, k, v)
    projection = fa.projection_matrix.numpy()
    np.testing.assert_allclose(Fv.favor_attention(q, k, v, projection, causal), want,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(Fv.favor_attention_ref(q, k, v, projection, causal), want,
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("causal", [False, True])
def test_growing_keys_rescale_the_sums(causal):
    """Keys that grow along the sequence: every block raises the key max, so the non-causal
    sums are rescaled at every block, and the last keys set the causal stabilizer for all.
    Values from performer-pytorch in float64."""
    rng = np.random.default_rng(5)
    T, D, M = 150, 16, 40
    q = rng.standard_normal((1, 2, T, D)).astype(np.float32)
    k = (rng.standard_normal((1, 2, T, D)) * np.linspace(0.2, 3, T)[:, None]).astype(np.float32)
    v = rng.standard_normal((1, 2, T, 8)).astype(np.float32)
    fa = fast_attention(D, M, causal, 5).double()
    with torch.no_grad():
        want = fa(*(_t(a).double() for a in (q, k, v))).float().numpy()
    got = Fv.favor_attention(q, k, v, fa.projection_matrix.float().numpy(), causal)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def _mha_weights(rng, C):
    w_qkv = (rng.standard_normal((3 * C, C)) / np.sqrt(C)).astype(np.float32)
    w_proj = (rng.standard_normal((C, C)) / np.sqrt(C)).astype(np.float32)
    return w_qkv, rng.standard_normal(3 * C).astype(np.float32) * 0.5, w_proj, \
        rng.standard_normal(C).astype(np.float32) * 0.5


def torch_favor_mhsa(x, w_qkv, b_qkv, w_proj, b_proj, H, fa):
    """timm's Attention.forward with FastAttention where softmax attention was."""
    B, T, C = x.shape
    qkv = F.linear(x, w_qkv, b_qkv).reshape(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
    o = fa(qkv[0], qkv[1], qkv[2])
    return F.linear(o.transpose(1, 2).reshape(B, T, C), w_proj, b_proj)


@pytest.mark.parametrize("B,T,H,C,M,causal", [(1, 40, 4, 32, 12, False), (2, 17, 2, 16, 30, True),
                                              (3, 64, 1, 24, 7, False)])
def test_favor_self_attention_matches_torch(B, T, H, C, M, causal):
    rng = np.random.default_rng(T)
    w = _mha_weights(rng, C)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    fa = fast_attention(C // H, M, causal, T)
    with torch.no_grad():
        want = torch_favor_mhsa(_t(x), *map(_t, w), H, fa).numpy()
    P = fa.projection_matrix.numpy()
    np.testing.assert_allclose(Fv.favor_self_attention(x, *w, H, P, causal), want,
                               rtol=RTOL, atol=3e-5)
    np.testing.assert_allclose(Fv.favor_self_attention_ref(x, *w, H, P, causal), want,
                               rtol=RTOL, atol=3e-5)


def _flop_counter_macs(fn, *args) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(*args)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("causal", [False, True])
def test_cost_macs_equal_flop_counter(causal):
    """MACs = G ((Tq + T) M D + T M Dv + Tq M Dv + Tq M): the feature projections, phi(k)^T v,
    phi(q) C and the denominators, each a matmul (einsum) torch counts as such. Causal,
    performer-pytorch's reference (causal_linear_attention_noncuda) builds phi(k_n) v_n^T as
    an elementwise product and a cumsum, which FlopCounterMode does not count: G T M Dv
    fewer in its count than in the formula (the same work, written without a matmul)."""
    G, T, D, M = (1, 3), 20, 8, 12
    shape = G + (T, D)
    fa = fast_attention(D, M, causal, 0)
    q, k, v = (torch.randn(shape) for _ in range(3))
    cost = Fv.favor_attention_cost(shape, shape, shape, (M, D))
    assert cost.macs == 3 * (2 * T * M * D + 2 * T * M * D + T * M)
    outer = 3 * T * M * D if causal else 0
    assert cost.macs == _flop_counter_macs(fa, q, k, v) + outer
    assert cost.flops == 2 * cost.macs + 3 * (6 * 2 * T * M + 3 * 2 * T * D + T * M
                                              + T * (1 + D))
    assert (cost.elems_read, cost.elems_written) == (3 * 3 * T * D + M * D, 3 * T * D)
    # the multi-head wrapper: the two linears around it, as torch counts them
    B, H, C = 2, 3, 3 * D
    rng = np.random.default_rng(0)
    w = [_t(a) for a in _mha_weights(rng, C)]
    mh = Fv.favor_self_attention_cost((B, T, C), H, M)
    assert mh.macs == _flop_counter_macs(torch_favor_mhsa, torch.randn(B, T, C), *w, H, fa) \
        + (B * H * T * M * D if causal else 0)
    assert mh.params == 4 * C * C + 4 * C
    assert Fv.favor_self_attention_cost((B, T, C), H, M, False, False).params == 4 * C * C


@pytest.mark.parametrize("call,match", [
    (lambda q, p: Fv.favor_attention(q, q, q, p[:, :3]), "same head dim"),
    (lambda q, p: Fv.favor_attention(q, q, q, p[0]), "2-D"),
    (lambda q, p: Fv.favor_attention(q, q, q, p[:0]), "M >= 1"),
    (lambda q, p: Fv.favor_attention(q, q, q[:, :, :2], p), "same number of tokens"),
    (lambda q, p: Fv.favor_attention(q, q[:1], q, p), "leading"),
    (lambda q, p: Fv.favor_attention(q, q[0], q, p), "same number of dims"),
    (lambda q, p: Fv.favor_attention(q, q, q, p, causal="yes"), "causal must be"),
    (lambda q, p: Fv.favor_attention(q[:, :, :3], q, q, p, causal=True), "as many queries"),
    (lambda q, p: Fv.favor_attention(q.astype(int), q, q, p), "floating-point"),
    (lambda q, p: Fv.favor_self_attention(np.ones((1, 5, 8), np.float32),
                                          np.ones((24, 8), np.float32), None,
                                          np.ones((8, 8), np.float32), None, 2, p),
     "same head dim"),
])
def test_bad_input(call, match):
    q = np.ones((2, 2, 5, 6), np.float32)
    p = np.ones((7, 6), np.float32)
    with pytest.raises(InputError, match=match):
        call(q, p)


def test_gaussian_orthogonal_projection():
    """Rows orthogonal within each block of D (performer's construction), of Gaussian-like
    length (scaling=0) or exactly sqrt(D) (scaling=1); seeded."""
    P = Fv.gaussian_orthogonal_projection(20, 8, seed=3)
    assert P.shape == (20, 8) and P.dtype == np.float32
    for block in (P[:8], P[8:16], P[16:]):
        gram = block @ block.T
        np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-5)
    lengths = np.linalg.norm(P, axis=1)           # chi(8): mean ~2.7, std ~0.7
    assert 2 < lengths.mean() < 3.5 and lengths.std() > 0.3
    np.testing.assert_allclose(np.linalg.norm(Fv.gaussian_orthogonal_projection(5, 8, 0, 1),
                                              axis=1), np.sqrt(8), rtol=1e-6)
    np.testing.assert_array_equal(P, Fv.gaussian_orthogonal_projection(20, 8, seed=3))
    with pytest.raises(InputError, match="scaling"):
        Fv.gaussian_orthogonal_projection(4, 4, scaling=2)
    with pytest.raises(InputError, match="features"):
        Fv.gaussian_orthogonal_projection(0, 4)


def test_approximation_error_falls_with_features():
    """The FAVOR+ estimate's error falls like 1/sqrt(M) (x0.5 per 4x features; measured x0.48
    .. x0.55 here, seeds 0-2) for short q, k (entries N(0, 0.35^2), D = 64), and at M = 1024 it
    is well below that of ignoring the queries (the plain average of v: measured 0.059 vs
    0.120). For q, k ~ N(0, 1) the variance is too large (it grows like exp(|q'|^2 + |k'|^2))
    and performer's eps makes every key weigh nearly alike: the error stays at the plain
    average's (measured 0.78 at M = 256 and 1024), whatever M."""
    from tinyinfer.analysis.attention_crossover import approximation_error, uniform_error
    M = (16, 64, 256, 1024)
    short = [r["error"] for r in approximation_error(M, scale=0.35, tokens=128, seeds=3)]
    assert all(a > 1.5 * b for a, b in zip(short, short[1:])), short
    assert short[-1] < 0.6 * uniform_error(0.35, tokens=128, seeds=3)
    long = [r["error"] for r in approximation_error(M[2:], scale=1.0, tokens=128, seeds=3)]
    assert long == pytest.approx([uniform_error(1.0, tokens=128, seeds=3)] * 2, rel=0.05)


def test_crossover_rows_and_first_faster_length():
    from tinyinfer.analysis.attention_crossover import Crossover, crossover
    c = crossover(tokens=(16, 40), dim=8, features=8, repeats=1, min_seconds=0.0)
    assert [r["tokens"] for r in c.rows] == [16, 40] and len(c.load) == 2
    for r in c.rows:
        assert r["exact_ms"] > 0 and r["ratio"] == r["favor_ms"] / r["exact_ms"]
    assert c.to_markdown().count("\n") == 3
    row = lambda T, ratio: {"tokens": T, "exact_ms": 1.0, "favor_ms": ratio, "ratio": ratio}
    made_up = lambda *ratios: Crossover([row(64 * 2 ** i, r) for i, r in enumerate(ratios)],
                                        64, 256, 2, (0.0, 0.0))
    assert made_up(1.2, 0.8, 1.1, 0.9, 0.5).tokens == 64 * 8   # faster from there on
    assert made_up(0.9, 0.8).tokens == 64
    assert made_up(0.9, 1.1).tokens is None
