"""FAVOR+ against exact softmax attention, on tinyinfer's own kernels: how far its output is
from the exact one as the number of random features M grows, and from which sequence length
T it is the faster of the two on this machine.

Work per head (kernels/attention.py and kernels/attention_favor.py, cost models):
    exact    2 T^2 D MACs and T^2 exps             (the T x T scores, then their use)
    FAVOR+   ~4 T M D MACs and 2 T M exps (Dv = D)  (features of q and k, C, phi(q) C)
so by the counts alone FAVOR+ is cheaper from T ~ 2M on. Where the measured times cross
depends on how fast each kernel runs its loops; ``crossover`` measures it.

FAVOR+ estimates each similarity exp(q.k / sqrt(D)) by an average over M random features,
so its error shrinks like 1/sqrt(M) for given inputs. The constant in front grows fast with
the lengths of q and k: a feature is exp(w.x' - |x'|^2 / 2), and the variance of such a
product grows like exp(|q'|^2 + |k'|^2), x' = x / D**(1/4) (the paper's Lemma 2). With
performer-pytorch's stabilizers and eps = 1e-4 (kernels/attention_favor.py), inputs so long
that the exp parts of the key features fall far below eps give nearly equal weight to every
key: the output tends to the plain average of v, whatever M. ``approximation_error``
measures the error, ``uniform_error`` that of the plain average, the baseline.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..kernels.attention import scaled_dot_product_attention
from ..kernels.attention_favor import favor_attention, gaussian_orthogonal_projection


def _qkv(rng, heads, tokens, dim, scale=1.0):
    """q, k ~ N(0, scale^2) and v ~ N(0, 1), each (1, heads, tokens, dim)."""
    q, k, v = (rng.standard_normal((1, heads, tokens, dim)).astype(np.float32) for _ in range(3))
    return q * np.float32(scale), k * np.float32(scale), v


def _relative(approx, exact) -> float:
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact))


def approximation_error(features=(16, 64, 256, 1024, 4096), scale: float = 0.5,
                        tokens: int = 256, dim: int = 64, heads: int = 2,
                        seeds: int = 3) -> list[dict]:
    """||FAVOR+ - exact|| / ||exact|| (Frobenius, all heads) for each number of features M,
    over ``seeds`` draws (seeds 0, 1, ...) of the inputs (q, k ~ N(0, scale^2), v ~ N(0, 1);
    at scale 1, q.k / sqrt(D) ~ N(0, 1)) and of the projection
    (gaussian_orthogonal_projection). Returns [{"features", "error", "spread"}]: the mean
    relative error and its standard deviation over the seeds."""
    rows = []
    for M in features:
        errors = []
        for seed in range(seeds):
            q, k, v = _qkv(np.random.default_rng(seed), heads, tokens, dim, scale)
            projection = gaussian_orthogonal_projection(M, dim, seed)
            errors.append(_relative(favor_attention(q, k, v, projection),
                                    scaled_dot_product_attention(q, k, v)))
        rows.append({"features": M, "error": float(np.mean(errors)),
                     "spread": float(np.std(errors))})
    return rows


def uniform_error(scale: float = 0.5, tokens: int = 256, dim: int = 64, heads: int = 2,
                  seeds: int = 3) -> float:
    """The baseline: the same relative error for the plain average of v (every key weighted
    1/T, the queries ignored), on the inputs approximation_error draws."""
    errors = []
    for seed in range(seeds):
        q, k, v = _qkv(np.random.default_rng(seed), heads, tokens, dim, scale)
        exact = scaled_dot_product_attention(q, k, v)
        errors.append(_relative(np.broadcast_to(v.mean(-2, keepdims=True), exact.shape), exact))
    return float(np.mean(errors))


@dataclass(frozen=True)
class Crossover:
    rows: list            # [{"tokens", "exact_ms", "favor_ms", "ratio"}], ratio = favor / exact
    dim: int
    features: int
    heads: int
    load: tuple           # 1-minute load average before and after the measurement

    @property
    def tokens(self) -> int | None:
        """The shortest measured T from which on FAVOR+ is faster at every longer measured
        T; None if it is not faster at the longest."""
        first = None
        for row in self.rows:
            if row["ratio"] >= 1:
                first = None
            elif first is None:
                first = row["tokens"]
        return first

    def to_markdown(self) -> str:
        lines = ["| T | exact ms | FAVOR+ ms | FAVOR+ / exact |", "|---:|---:|---:|---:|"]
        lines += [f"| {r['tokens']} | {r['exact_ms']:.3f} | {r['favor_ms']:.3f} | "
                  f"{r['ratio']:.2f} |" for r in self.rows]
        return "\n".join(lines)


def crossover(tokens=(64, 128, 256, 512, 1024, 2048, 4096, 8192), dim: int = 64,
              features: int = 256, heads: int = 2, repeats: int = 3,
              min_seconds: float = 0.5) -> Crossover:
    """Time exact attention (scaled_dot_product_attention) and FAVOR+ (favor_attention,
    non-causal) on the same q, k, v of shape (1, heads, T, dim) for each T: the fastest run
    of each, the two kernels alternating run by run in this one process so that other load
    slows both alike. At least ``repeats`` runs each, and more until each kernel has run for
    ``min_seconds``: a short sequence takes ~0.1 ms, and under load the best of a few such
    runs still includes waiting for a core. heads = 2 keeps both cores of this machine busy
    in both kernels (FAVOR+ runs one head per core). Both are compiled before the clock
    starts."""
    projection = gaussian_orthogonal_projection(features, dim, seed=0)
    small = _qkv(np.random.default_rng(0), heads, 8, dim)
    scaled_dot_product_attention(*small)
    favor_attention(*small, projection)
    load_before = os.getloadavg()[0]
    rows = []
    for T in tokens:
        q, k, v = _qkv(np.random.default_rng(T), heads, T, dim)
        kernels = {"exact": lambda: scaled_dot_product_attention(q, k, v),
                   "favor": lambda: favor_attention(q, k, v, projection)}
        best = dict.fromkeys(kernels, float("inf"))
        spent = dict.fromkeys(kernels, 0.0)
        runs = 0
        while runs < repeats or min(spent.values()) < min_seconds:
            for name, run in kernels.items():
                start = time.perf_counter()
                run()
                took = time.perf_counter() - start
                best[name] = min(best[name], took)
                spent[name] += took
            runs += 1
        rows.append({"tokens": T, "exact_ms": best["exact"] * 1e3,
                     "favor_ms": best["favor"] * 1e3, "ratio": best["favor"] / best["exact"]})
    return Crossover(rows, dim, features, heads, (load_before, os.getloadavg()[0]))
