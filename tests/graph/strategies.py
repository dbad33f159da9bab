"""Hypothesis strategies that generate random valid ArchGraphs.

A graph starts from one of three input families and grows by a random
sequence of steps; each step picks an op and a tensor (or several with
compatible shapes) already in the graph:

- ``seq``: one or two float inputs ``(B, T, C)``;
- ``image``: one or two float inputs ``(B, C, H, W)``;
- ``tokens``: an int64 ``(B, T)`` input with a value range, read by an
  ``embedding`` layer.

Steps: ``linear``, ``conv2d`` (groups, stride, padding), ``layer_norm``,
``batch_norm``, ``relu``, ``gelu``, ``softmax``, ``add``/``mul``/``sub``
(with a tensor or a constant), ``cat``, ``transpose``, ``reshape``,
``matmul`` (with its transpose or with a free ``parameter``), a free
``parameter`` or non-persistent buffer (with its value) added to a tensor,
``split`` followed by ``getitem``, ``scaled_dot_product_attention``, and a
``linear`` that ties its weights to an earlier one (same state-dict names).

Each node's output shape is computed while building by running the op on
``meta`` tensors and recorded on the node, so ``validate()`` also checks
the recorded shapes against the interpreter.

Also here: :func:`relabel`, which renames node ids and reorders nodes and
edges without changing the architecture (for invariance tests).
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch
from hypothesis import strategies as st

from mad.graph import ArchGraph, TensorSpec
from mad.graph.module import encode_tensor
from mad.graph.ops import get_op
from mad.graph.ops.call import call_op
from mad.graph.serialize import from_dict, to_dict

__all__ = ["arch_graphs", "relabel", "STEPS"]


class _Builder:
    """Grows a graph and tracks the meta value of every single-output node."""

    def __init__(self, g: ArchGraph) -> None:
        self.g = g
        self.env: dict[str, Any] = {}
        self.pool: list[str] = []  # float single-output nodes a step may read
        self.linears: list[str] = []  # linear nodes a tied linear may copy
        self.count = 0

    def scope(self, draw, kind: str) -> dict[str, Any]:
        """Scope / param_names for a new parameter-owning node."""
        self.count += 1
        style = draw(st.sampled_from(["scoped", "scoped", "id", "named"]))
        if style == "scoped":
            return {"scope": f"layers.{self.count}.{kind}"}
        if style == "named":
            return {"scope": f"blk{self.count}", "names": True}
        return {}

    def add(self, op: str, inputs: list[str], attrs=None, params=None, scope: dict | None = None) -> str:
        scope = scope or {}
        params = params or {}
        param_names = None
        if scope.get("names"):
            param_names = {r: f"{scope['scope']}_{op}.{r}" for r in params}
        nid = self.g.add_node(
            op, inputs, attrs=attrs or {}, params=params, param_names=param_names, scope=scope.get("scope", "")
        )
        node = self.g.nodes[nid]
        opdef = get_op(op)
        if op == "input":
            spec = next(s for s in self.g.inputs if s.name == node.attrs["name"])
            value = torch.empty(spec.shape, dtype=getattr(torch, spec.dtype), device="meta")
        elif op == "parameter":
            dtype = getattr(torch, node.attrs.get("dtype", "float32"))
            value = torch.empty(params["data"], dtype=dtype, device="meta")
        else:
            metas = {r: torch.empty(s, device="meta") for r, s in params.items()}
            value = call_op(opdef, node.attrs, [self.env[i] for i in inputs], metas, device="meta")
        self.env[nid] = value
        if isinstance(value, torch.Tensor):
            node.shape, node.dtype = list(value.shape), str(value.dtype).removeprefix("torch.")
            if value.dtype.is_floating_point and op != "parameter":  # free tensors are read by their own step
                self.pool.append(nid)
        else:
            node.shape = [list(v.shape) for v in value]
            node.dtype = [str(v.dtype).removeprefix("torch.") for v in value]
        return nid

    def shape(self, nid: str) -> list[int]:
        return list(self.env[nid].shape)

    def same_shape(self, nid: str) -> list[str]:
        s = self.shape(nid)
        return [p for p in self.pool if self.shape(p) == s]


def _pick(draw, b: _Builder) -> str:
    # favour recent tensors so graphs grow deep as well as wide
    k = len(b.pool)
    i = draw(st.integers(0, k - 1) | st.integers(max(0, k - 3), k - 1))
    return b.pool[i]


def _dim(draw, rank: int) -> int:
    return draw(st.integers(-rank, rank - 1))


def _linear(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    s = b.shape(x)
    if not s:
        return False
    out = draw(st.integers(1, 8))
    params = {"weight": [out, s[-1]]}
    if draw(st.booleans()):
        params["bias"] = [out]
    nid = b.add("linear", [x], params=params, scope=b.scope(draw, "fc"))
    b.linears.append(nid)
    return True


def _tied_linear(draw, b: _Builder) -> bool:
    """A linear layer that shares its weights with an earlier one."""
    if not b.linears:
        return False
    src = b.g.nodes[draw(st.sampled_from(b.linears))]
    k = src.params["weight"][1]
    cands = [p for p in b.pool if b.shape(p) and b.shape(p)[-1] == k]
    if not cands:
        return False
    x = draw(st.sampled_from(cands))
    names = {r: src.param_name(r) for r in src.params}
    nid = b.g.add_node("linear", [x], params=src.params, param_names=names, scope=f"tied{b.count}")
    b.count += 1
    value = call_op(get_op("linear"), {}, [b.env[x]], {r: torch.empty(s, device="meta") for r, s in src.params.items()})
    b.env[nid] = value
    b.g.nodes[nid].shape, b.g.nodes[nid].dtype = list(value.shape), "float32"
    b.pool.append(nid)
    return True


def _conv2d(draw, b: _Builder) -> bool:
    cands = [p for p in b.pool if len(b.shape(p)) == 4]
    if not cands:
        return False
    x = draw(st.sampled_from(cands))
    cin = b.shape(x)[1]
    groups = draw(st.sampled_from([d for d in range(1, cin + 1) if cin % d == 0]))
    cout = groups * draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3]))
    attrs: dict[str, Any] = {}
    if k == 3 or draw(st.booleans()):
        attrs["padding"] = [k // 2, k // 2]
    if draw(st.booleans()):
        attrs["stride"] = [draw(st.integers(1, 2))] * 2
    if groups > 1 or draw(st.booleans()):
        attrs["groups"] = groups
    params = {"weight": [cout, cin // groups, k, k]}
    if draw(st.booleans()):
        params["bias"] = [cout]
    b.add("conv2d", [x], attrs=attrs, params=params, scope=b.scope(draw, "conv"))
    return True


def _layer_norm(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    c = b.shape(x)[-1]
    affine = draw(st.sampled_from(["both", "weight", "none"]))
    params = {"weight": [c], "bias": [c]} if affine == "both" else ({"weight": [c]} if affine == "weight" else {})
    attrs: dict[str, Any] = {"normalized_shape": [c]}
    if draw(st.booleans()):
        attrs["eps"] = draw(st.sampled_from([1e-5, 1e-6, 0.001]))
    b.add("layer_norm", [x], attrs=attrs, params=params, scope=b.scope(draw, "norm") if params else None)
    return True


def _batch_norm(draw, b: _Builder) -> bool:
    cands = [p for p in b.pool if 2 <= len(b.shape(p)) <= 4]
    if not cands:
        return False
    x = draw(st.sampled_from(cands))
    c = b.shape(x)[1]
    params = {"weight": [c], "bias": [c], "running_mean": [c], "running_var": [c]}
    attrs = {"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True}
    b.add("batch_norm", [x], attrs=attrs, params=params, scope=b.scope(draw, "bn"))
    return True


def _unary(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    op = draw(st.sampled_from(["relu", "gelu", "softmax"]))
    attrs: dict[str, Any] = {}
    if op == "gelu" and draw(st.booleans()):
        attrs["approximate"] = draw(st.sampled_from(["none", "tanh"]))
    if op == "softmax":
        attrs["dim"] = _dim(draw, len(b.shape(x)))
    b.add(op, [x], attrs=attrs)
    return True


def _binary(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    op = draw(st.sampled_from(["add", "mul", "sub"]))
    if draw(st.booleans()):
        other = draw(st.sampled_from([0.5, 2.0, -1.0, 3]))
        b.add(op, [x], attrs={"other": other})
    else:
        y = draw(st.sampled_from(b.same_shape(x)))
        b.add(op, [x, y])
    return True


def _cat(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    ys = draw(st.lists(st.sampled_from(b.same_shape(x)), min_size=1, max_size=2))
    ins = [x, *ys]
    b.add("cat", ins, attrs={"tensors": ["%"] * len(ins), "dim": _dim(draw, len(b.shape(x)))})
    return True


def _transpose(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    r = len(b.shape(x))
    if r < 2:
        return False
    b.add("transpose", [x], attrs={"dim0": _dim(draw, r), "dim1": _dim(draw, r)})
    return True


def _reshape(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    s = b.shape(x)
    kind = draw(st.sampled_from(["merge", "split"]))
    if kind == "merge" and len(s) >= 2:
        i = draw(st.integers(0, len(s) - 2))
        new = s[:i] + [s[i] * s[i + 1]] + s[i + 2 :]
    else:
        splittable = [i for i, d in enumerate(s) if d >= 4 and d % 2 == 0]
        if not splittable or len(s) >= 5:
            return False
        i = draw(st.sampled_from(splittable))
        new = s[:i] + [2, s[i] // 2] + s[i + 1 :]
    if draw(st.booleans()):
        new[draw(st.integers(0, len(new) - 1))] = -1
    b.add("reshape", [x], attrs={"shape": new})
    return True


def _matmul(draw, b: _Builder) -> bool:
    cands = [p for p in b.pool if len(b.shape(p)) >= 2]
    if not cands:
        return False
    x = draw(st.sampled_from(cands))
    s = b.shape(x)
    if draw(st.booleans()):
        xt = b.add("transpose", [x], attrs={"dim0": -1, "dim1": -2})
        b.add("matmul", [x, xt])
    else:
        w = b.add("parameter", [], params={"data": [s[-1], draw(st.integers(1, 6))]}, scope=b.scope(draw, "proj"))
        b.add("matmul", [x, w])
    return True


def _free_tensor(draw, b: _Builder) -> bool:
    """x + p for a free parameter p, or x * buffer with a stored value."""
    x = _pick(draw, b)
    c = b.shape(x)[-1]
    if draw(st.booleans()):
        p = b.add("parameter", [], params={"data": [c]}, scope=b.scope(draw, "scale"))
        b.add("add", [x, p])
    else:
        seed = draw(st.integers(0, 2**16))
        value = torch.randn(c, generator=torch.Generator().manual_seed(seed))
        attrs = {"kind": "buffer", "persistent": False, "value": encode_tensor(value)}
        p = b.add("parameter", [], attrs=attrs, params={"data": [c]}, scope=b.scope(draw, "buf"))
        b.add("mul", [x, p])
    return True


def _split(draw, b: _Builder) -> bool:
    x = _pick(draw, b)
    s = b.shape(x)
    dims = [i for i, d in enumerate(s) if d >= 2]
    if not dims:
        return False
    d = draw(st.sampled_from(dims))
    size = draw(st.integers(1, s[d] - 1))
    chunks = math.ceil(s[d] / size)
    sp = b.add("split", [x], attrs={"split_size": size, "dim": d})
    for i in sorted(draw(st.sets(st.integers(0, chunks - 1), min_size=1, max_size=2))):
        b.add("getitem", [sp], attrs={"index": i})
    return True


def _sdpa(draw, b: _Builder) -> bool:
    cands = [p for p in b.pool if len(b.shape(p)) >= 3]
    if not cands:
        return False
    q = draw(st.sampled_from(cands))
    k = draw(st.sampled_from(b.same_shape(q)))
    attrs = {"is_causal": True} if draw(st.booleans()) else {}
    b.add("scaled_dot_product_attention", [q, k, k], attrs=attrs)
    return True


# the first entry is what hypothesis shrinks towards
STEPS = {
    "unary": _unary,
    "linear": _linear,
    "tied_linear": _tied_linear,
    "conv2d": _conv2d,
    "layer_norm": _layer_norm,
    "batch_norm": _batch_norm,
    "binary": _binary,
    "cat": _cat,
    "transpose": _transpose,
    "reshape": _reshape,
    "matmul": _matmul,
    "free_tensor": _free_tensor,
    "split": _split,
    "sdpa": _sdpa,
}


@st.composite
def arch_graphs(draw, max_steps: int = 10, families: tuple[str, ...] = ("seq", "image", "tokens")) -> ArchGraph:
    """A random valid :class:`ArchGraph` with shapes recorded on every node.

    Args:
        max_steps: at most this many growth steps (each adds 1-3 nodes).
        families: input families to draw from (see the module docstring).
    """
    family = draw(st.sampled_from(families))
    batch = draw(st.integers(1, 2))
    g = ArchGraph(name=f"random_{family}", source="random")
    b = _Builder(g)
    if family == "tokens":
        t, vocab, c = draw(st.integers(1, 5)), draw(st.integers(2, 11)), draw(st.integers(2, 8))
        g.inputs.append(TensorSpec("ids", [batch, t], "int64", range=[0, vocab], dims=["batch", "seq"]))
        ids = b.add("input", [], attrs={"name": "ids"})
        b.add("embedding", [ids], params={"weight": [vocab, c]}, scope=b.scope(draw, "embed"))
    else:
        if family == "seq":
            shape = [batch, draw(st.integers(1, 5)), draw(st.integers(2, 8))]
            dims = ["batch", "seq", "channel"]
        else:
            shape = [batch, draw(st.integers(1, 4)), draw(st.integers(2, 6)), draw(st.integers(2, 6))]
            dims = ["batch", "channel", "height", "width"]
        for name in ["x", "y"][: draw(st.integers(1, 2))]:
            g.inputs.append(TensorSpec(name, list(shape), "float32", dims=dims if draw(st.booleans()) else None))
            b.add("input", [], attrs={"name": name})
    for _ in range(draw(st.integers(1, max_steps))):
        step = draw(st.sampled_from(list(STEPS)))
        STEPS[step](draw, b)
    last = b.pool[-1]
    extra = draw(st.lists(st.sampled_from(b.pool), max_size=2, unique=True))
    outs = [last] + [o for o in extra if o != last]
    kinds = ["tensor", "tuple", "dict"] if len(outs) == 1 else ["tuple", "dict"]
    kind = draw(st.sampled_from(kinds))
    keys = [f"out{i}" for i in range(len(outs))] if kind == "dict" else None
    g.set_outputs(outs, kind=kind, keys=keys)
    return g


def relabel(g: ArchGraph, seed: int = 0, prefix: str = "n") -> ArchGraph:
    """The same architecture with new node ids and shuffled node and edge order.

    Parameter names are frozen first (written into ``param_names``) so the
    relabelled graph has the same state dict as ``g``.
    """
    rng = random.Random(seed)
    d = to_dict(g)
    ids = [n["id"] for n in d["nodes"]]
    fresh = [f"{prefix}{i}" for i in range(len(ids))]
    rng.shuffle(fresh)
    mapping = dict(zip(ids, fresh))
    for n in d["nodes"]:
        node = g.nodes[n["id"]]
        if node.params:
            n["param_names"] = {r: node.param_name(r) for r in node.params}
        n["id"] = mapping[n["id"]]
    rng.shuffle(d["nodes"])
    d["edges"] = [[mapping[s], mapping[t], p] for s, t, p in d["edges"]]
    rng.shuffle(d["edges"])
    d["outputs"]["nodes"] = [mapping[o] for o in d["outputs"]["nodes"]]
    return from_dict(d)
