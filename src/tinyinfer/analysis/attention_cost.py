"""What attention costs, counted and measured on tinyinfer's own kernels (notebook 06).

    block_table("mobilevit_xxs", "stages.2.1")   one MobileViT block layer by layer: MACs,
                                                 FLOPs, bytes, ms and shares of the block
    attention_scaling(tokens=(16, ..., 4096))    exact softmax attention against the linear
                                                 forms (ReLU linear, separable, FAVOR+) per head
    memory_bound_share("efficientvit_m0")        time of matmul-like nodes vs memory ops, in the
                                                 graph as built and in the fused graph that runs

Counts come from the kernels' cost models (the same numbers ``model.summary()`` prints);
times are the fastest of several runs, alternating between what is compared, in this one
process, so other load slows each alike. Nothing here asserts a time: the tests check the
counts and the structure.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..engine.ops import OPS, node_costs
from ..engine.runtime import execute
from ..errors import InputError
from ..kernels.attention import scaled_dot_product_attention, scaled_dot_product_attention_cost
from ..kernels.attention_favor import (favor_attention, favor_attention_cost,
                                       gaussian_orthogonal_projection)
from ..kernels.attention_linear import relu_linear_attention, relu_linear_attention_cost
from ..kernels.attention_separable import separable_context_mix, separable_context_mix_cost
from ..kernels.linear import linear, linear_cost

ITEMSIZE = 4                                   # float32: bytes per element moved
MATMUL_CLASSES = ("conv", "linear", "attention")   # op classes whose work is multiply-adds


def _fastest(runs: dict, repeats: int, min_seconds: float) -> dict:
    """Each callable's fastest wall time (s) over at least ``repeats`` calls and until it has
    run ``min_seconds`` in all. Calls go round robin among those not yet done, so what is
    compared shares the same moments of load; a fast kernel is not held back by a slow one
    (it stops when its own time is spent)."""
    best = dict.fromkeys(runs, math.inf)
    spent = dict.fromkeys(runs, 0.0)
    calls = dict.fromkeys(runs, 0)
    done = lambda n: calls[n] >= repeats and spent[n] >= min_seconds  # noqa: E731
    while not all(done(n) for n in runs):
        for name, run in runs.items():
            if done(name):
                continue
            start = time.perf_counter()
            run()
            took = time.perf_counter() - start
            best[name] = min(best[name], took)
            spent[name] += took
            calls[name] += 1
    return best


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):     # 3 significant digits, no exponent for the sizes here
        return "0" if v == 0 else f"{v:,.0f}" if abs(v) >= 100 else \
            f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.1e}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _markdown(columns, rows) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows])


# ---- a: one MobileViT block layer by layer -------------------------------------------------
@dataclass(frozen=True)
class BlockTable:
    """rows: dicts with part, layer, what, macs, flops, bytes, ms, and sub (True for the
    parts of an attention node, counted and timed alone: not added into the totals)."""
    model: str
    block: str
    input_shape: tuple
    rows: list
    load: tuple                # 1-minute load average before and after (None: not measured)

    def _nodes(self):
        return [r for r in self.rows if not r["sub"]]

    @property
    def macs(self) -> int:
        return sum(r["macs"] for r in self._nodes())

    @property
    def ms(self) -> float | None:
        return sum(r["ms"] for r in self._nodes()) if self.rows[0]["ms"] is not None else None

    def share(self, row, key: str) -> float | None:
        """``row``'s % of the block's ``key`` ("macs", "flops", "bytes" or "ms")."""
        whole = sum(r[key] for r in self._nodes()) if row[key] is not None else 0
        return 100 * row[key] / whole if whole else None

    def gaps(self, n: int = 4) -> list:
        """The ``n`` node rows whose share of the time and share of the MACs differ most:
        (layer, % MACs, % time), largest difference first."""
        if self.ms is None:
            raise InputError("gaps() compares measured times: build the table with runs >= 1")
        gap = lambda r: abs(self.share(r, "ms") - self.share(r, "macs"))  # noqa: E731
        rows = sorted(self._nodes(), key=gap, reverse=True)
        return [(r["layer"], self.share(r, "macs"), self.share(r, "ms")) for r in rows[:n]]

    def to_markdown(self) -> str:
        cols = ("part", "layer", "what", "MACs", "% MACs", "FLOPs", "bytes", "ms", "% time")
        rows = [(r["part"], ("&nbsp;&nbsp;" if r["sub"] else "") + r["layer"], r["what"],
                 r["macs"], self.share(r, "macs"), r["flops"], r["bytes"], r["ms"],
                 self.share(r, "ms") if r["ms"] is not None else None) for r in self.rows]
        return _markdown(cols, rows)


def _part(rest: str) -> str:
    """The block's part a node belongs to, from its name after the block's prefix."""
    head = rest.split(".")
    if head[0] in ("conv_kxk", "conv_1x1"):
        return "local"
    if head[0] == "transformer":
        return f"transformer {head[1]}"
    return {"norm": "final norm", "conv_proj": "fuse", "cat": "fuse",
            "conv_fusion": "fuse"}.get(head[0], head[0])


def attention_parts(shape, num_heads: int) -> list:
    """A multi-head self-attention node (input (B, T, C)) as the three pieces of work inside
    it, each with its kernel's cost: [(name, Cost)] for the qkv linear, the T^2 part
    (q k^T, softmax, weights x v) and the output projection."""
    B, T, C = shape
    D = C // num_heads
    heads = (B, num_heads, T, D)
    return [("qkv linear", linear_cost((B, T, C), (3 * C, C))),
            ("T^2 part: q k^T, softmax, x v",
             scaled_dot_product_attention_cost(heads, heads, heads)),
            ("proj linear", linear_cost((B, T, C), (C, C)))]


def _time_attention_parts(shape, num_heads: int, repeats: int) -> list:
    """The pieces of attention_parts timed alone with the public kernels on random inputs."""
    B, T, C = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    w_qkv, w_proj = (rng.standard_normal((o, C)).astype(np.float32) for o in (3 * C, C))
    q = x.reshape(B, T, num_heads, C // num_heads).transpose(0, 2, 1, 3).copy()
    runs = {"qkv": lambda: linear(x, w_qkv, np.zeros(3 * C, np.float32)),
            "core": lambda: scaled_dot_product_attention(q, q, q),
            "proj": lambda: linear(x, w_proj, np.zeros(C, np.float32))}
    best = _fastest(runs, repeats, 0.05)    # 0.05 s of each: a few stalls cannot all win
    return [best["qkv"], best["core"], best["proj"]]


def block_table(model_name: str = "mobilevit_xxs", block: str = "stages.2.1",
                resolution: int | None = None, runs: int = 5) -> BlockTable:
    """The nodes of ``block`` (every node whose name starts with ``block + "."``) in the
    fused graph tinyinfer runs, with their counts and, if ``runs`` > 0, each node's fastest
    time over ``runs`` profiled calls (model.profile, random weights). Each self-attention
    node is followed by its three pieces (attention_parts), timed alone on the same shapes.
    runs=0: counts only (model.summary; nothing is built but shapes)."""
    from ..api import build, load
    if runs < 0:
        raise InputError(f"runs must be >= 0 (0: counts only), got {runs}")
    load_before = os.getloadavg()[0]
    if runs:
        model = load(model_name, weights=None)
        size = resolution or model.spec.input_size
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        with warnings.catch_warnings():   # profile's busy-machine warning: the table
            warnings.simplefilter("ignore", RuntimeWarning)   # carries the load itself
            report = model.profile(x, runs=runs)
    else:
        model = build(model_name)
        report = model.summary(resolution)
    prefix = block + "."
    picked = [r for r in report.rows if r.name.startswith(prefix)]
    if not picked:
        blocks = sorted({r.name[:-len(".unfold")] for r in report.rows
                         if r.name.endswith(".unfold")})
        raise InputError(f"{model_name} has no block {block!r} (no node named {prefix}...); "
                         f"its MobileViT blocks: {', '.join(blocks) or 'none'}")
    rows = []
    for r in picked:
        fused = "".join("+" + f.rsplit(".", 1)[-1] for f in r.fused)
        rows.append(dict(part=_part(r.name[len(prefix):]), layer=r.name[len(prefix):],
                         what=r.type + fused, macs=r.cost.macs, flops=r.cost.flops,
                         bytes=r.cost.bytes_moved(ITEMSIZE), ms=None if r.time is None
                         else r.time * 1e3, sub=False))
        if r.kind == "mhsa":
            heads = model.plan[r.name].attrs["num_heads"]
            parts = attention_parts(r.out_shape, heads)
            times = _time_attention_parts(r.out_shape, heads, runs) if runs else [None] * 3
            for (what, cost), t in zip(parts, times):
                rows.append(dict(part=rows[-1]["part"], layer=what, what="(timed alone)",
                                 macs=cost.macs, flops=cost.flops,
                                 bytes=cost.bytes_moved(ITEMSIZE),
                                 ms=None if t is None else t * 1e3, sub=True))
    load_after = os.getloadavg()[0] if runs else None
    return BlockTable(model_name, block, report.input_shape, rows,
                      (load_before, load_after) if runs else (None, None))


# ---- b: exact attention's T^2 against the linear forms -------------------------------------
METHODS = ("exact", "relu_linear", "separable", "favor")


def method_costs(tokens: int, dim: int, heads: int, features: int) -> dict:
    """Each method's Cost for one image of ``heads`` heads of ``tokens`` x ``dim`` (separable
    attention has no heads: it runs on heads x dim channels at once), from the kernels'
    cost models. The inputs' shapes are those attention_scaling times."""
    T, D, H = tokens, dim, heads
    s = (1, H, T, D)
    return {"exact": scaled_dot_product_attention_cost(s, s, s),
            "relu_linear": relu_linear_attention_cost((1, 3 * H * D, T, 1), D),
            "separable": separable_context_mix_cost((1, 1 + 2 * H * D, T, 1)),
            "favor": favor_attention_cost(s, s, s, (features, D))}


def _method_runs(tokens: int, dim: int, heads: int, projection) -> dict:
    T, D, H = tokens, dim, heads
    rng = np.random.default_rng(T)
    q, k, v = (rng.standard_normal((1, H, T, D)).astype(np.float32) for _ in range(3))
    qkv_map = rng.standard_normal((1, 3 * H * D, T, 1)).astype(np.float32)
    mix_map = rng.standard_normal((1, 1 + 2 * H * D, T, 1)).astype(np.float32)
    return {"exact": lambda: scaled_dot_product_attention(q, k, v),
            "relu_linear": lambda: relu_linear_attention(qkv_map, D),
            "separable": lambda: separable_context_mix(mix_map, (1, 1)),
            "favor": lambda: favor_attention(q, k, v, projection)}


@dataclass(frozen=True)
class Scaling:
    """rows: per T, {"tokens", "macs": {method: MACs per head}, "ms": {method: ms per head},
    "t2_share": % of a whole exact attention layer's MACs (qkv and proj linears included)
    in its T^2 part}. ms is None when not measured."""
    rows: list
    dim: int
    heads: int
    features: int
    load: tuple

    def faster_from(self, method: str, key: str = "macs") -> int | None:
        """The shortest T from which ``method`` costs less than exact attention at every
        longer T here (``key`` "macs": counted, "ms": measured); None if not at the last."""
        first = None
        for row in self.rows:
            if row[key][method] >= row[key]["exact"]:
                first = None
            elif first is None:
                first = row["tokens"]
        return first

    def to_markdown(self, key: str = "macs") -> str:
        unit = "MMACs" if key == "macs" else "ms"
        scale = 1e-6 if key == "macs" else 1.0
        cols = ["T"] + [f"{m} {unit}" for m in METHODS] + ["T^2 share of the layer"]
        rows = [[r["tokens"]] + [float(r[key][m] * scale) for m in METHODS]
                + [f"{r['t2_share']:.0f}%"] for r in self.rows]
        return _markdown(cols, rows)


def attention_scaling(tokens=(16, 64, 256, 1024, 4096), dim: int = 32, heads: int = 4,
                      features: int = 0, repeats: int = 3, min_seconds: float = 0.2,
                      measure: bool = True) -> Scaling:
    """Per head, at each sequence length T: MACs (cost models) and, with ``measure``, the
    fastest wall time of exact softmax attention, ReLU linear attention (EfficientViT-B),
    separable attention's context mix (MobileViTV2) and FAVOR+ with ``features`` random
    features (0: performer's default int(D ln D)), the four alternating in this process.
    Only the token mixing is compared: the qkv and output projections around it are linear
    in T for every method (t2_share says how much of a whole exact layer they are)."""
    from ..kernels.attention import multi_head_self_attention_cost
    if dim < 1 or heads < 1 or features < 0 or min(tokens) < 1:
        raise InputError(f"need dim, heads and every T >= 1 and features >= 0, got dim={dim}, "
                         f"heads={heads}, features={features}, tokens={tokens}")
    M = features or int(dim * math.log(dim))
    projection = gaussian_orthogonal_projection(M, dim, seed=0)
    if measure:            # compile every kernel before the clock starts
        for run in _method_runs(8, dim, heads, projection).values():
            run()
    load_before = os.getloadavg()[0]
    rows = []
    for T in tokens:
        costs = method_costs(T, dim, heads, M)
        layer = multi_head_self_attention_cost((1, T, heads * dim), heads).macs
        row = {"tokens": T, "macs": {m: costs[m].macs / heads for m in METHODS},
               "t2_share": 100 * costs["exact"].macs / layer, "ms": None}
        if measure:
            best = _fastest(_method_runs(T, dim, heads, projection), repeats, min_seconds)
            row["ms"] = {m: best[m] * 1e3 / heads for m in METHODS}
        rows.append(row)
    return Scaling(rows, dim, heads, M, (load_before, os.getloadavg()[0]))


# ---- c: memory-bound ops, by tinyinfer's own profile ---------------------------------------
@dataclass(frozen=True)
class MemoryShare:
    """forms: {"as built": ..., "fused": ...}, each {"ms": total, "groups": {"matmul-like" |
    "memory ops": {"nodes", "ms", "macs", "bytes"}}, "classes": {op class: the same}}."""
    model: str
    forms: dict
    fusion: list      # per node of the fused graph that absorbed others: (name, its ms fused,
                      # its ms as built, ms of the nodes it absorbed, as built)
    load: tuple

    def fusion_totals(self) -> dict:
        """Summed over ``fusion``: the absorbed nodes' time as separate passes, and what the
        epilogues added to their convs (fused ms - as-built ms): fusing gains the difference."""
        return {"absorbed_ms": sum(f[3] for f in self.fusion),
                "epilogue_ms": sum(f[1] - f[2] for f in self.fusion)}

    def table(self, form: str, by: str = "groups") -> list:
        """(group or class, nodes, % time, % MACs, % bytes) rows of ``form``."""
        f = self.forms[form]
        totals = {k: sum(g[k] for g in f[by].values()) for k in ("ms", "macs", "bytes")}
        pct = lambda g, k: 100 * g[k] / totals[k] if totals[k] else 0.0  # noqa: E731
        return [(name, g["nodes"], pct(g, "ms"), pct(g, "macs"), pct(g, "bytes"))
                for name, g in f[by].items() if g["nodes"]]

    def to_markdown(self, by: str = "groups") -> str:
        rows = [(form, *row) for form in self.forms for row in self.table(form, by)]
        return _markdown(("graph", "group" if by == "groups" else "op class", "nodes",
                          "% time", "% MACs", "% bytes"), rows)


def group_of(node) -> str:
    """"matmul-like" for a node whose op class does multiply-adds (conv, linear, attention:
    its fused epilogue included), "memory ops" for the rest (norms, activations, adds,
    pools, reshapes, concats, SE's gate)."""
    return "matmul-like" if OPS[node.kind].op_class in MATMUL_CLASSES else "memory ops"


def _tally(graph, shape, times: dict) -> dict:
    groups = {g: dict(nodes=0, ms=0.0, macs=0, bytes=0) for g in ("matmul-like", "memory ops")}
    classes: dict = {}
    for node, _, cost in node_costs(graph, shape):
        for bucket in (groups[group_of(node)],
                       classes.setdefault(OPS[node.kind].op_class,
                                          dict(nodes=0, ms=0.0, macs=0, bytes=0))):
            bucket["nodes"] += 1
            bucket["ms"] += times[node.name] * 1e3
            bucket["macs"] += cost.macs
            bucket["bytes"] += cost.bytes_moved(ITEMSIZE)
    return {"ms": sum(times.values()) * 1e3, "groups": groups, "classes": classes}


def memory_bound_share(model_name: str = "efficientvit_m0", resolution: int | None = None,
                       runs: int = 5) -> MemoryShare:
    """Profile ``model_name`` (random weights, batch 1) twice per round, alternating: the
    graph as built (one node per module, as PyTorch eager runs it: every BN, activation and
    residual add a node of its own) and the fused graph tinyinfer runs (BN folded,
    activations and adds in the conv epilogues); each node's fastest of ``runs`` calls."""
    from ..api import load
    if runs < 1:
        raise InputError(f"runs must be at least 1, got {runs}")
    model = load(model_name, weights=None)
    size = resolution or model.spec.input_size
    x = model.check_input(np.random.default_rng(0).standard_normal(
        (1, 3, size, size)).astype(np.float32))
    graphs = {"as built": model.graph, "fused": model.plan}
    for g in graphs.values():
        execute(g, x)                               # compile and warm up
    load_before = os.getloadavg()[0]
    best = {form: {} for form in graphs}
    for _ in range(runs):
        for form, g in graphs.items():
            t: dict = {}
            execute(g, x, timings=t)
            for name, s in t.items():
                best[form][name] = min(best[form].get(name, math.inf), s)
    forms = {form: _tally(g, x.shape, best[form]) for form, g in graphs.items()}
    built = best["as built"]
    fusion = [(n.name, best["fused"][n.name] * 1e3, built[n.name] * 1e3,
               sum(built[f] for f in n.fused) * 1e3) for n in model.plan if n.fused]
    return MemoryShare(model_name, forms, fusion, (load_before, os.getloadavg()[0]))
