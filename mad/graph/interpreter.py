"""One interpreter walk over a graph: shapes, dtypes, parameter count, FLOPs.

Each op's shape rule is its own run function executed on ``meta`` tensors
(no memory, no compute), so shape rules can never drift from what the op
does. Ops whose output size depends on data (boolean-mask indexing) keep
the shape recorded at capture.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

from .arch_graph import ArchGraph, GraphError, Node
from .ops import get_op
from .ops.call import call_op
from .ops.symbols import attr_symbols, resolve_attrs
from .ops.values import dtype_from_name, dtype_name
from .symbolic import DEFAULT_HINT, concrete, evaluate, fit_dim, probe_bindings, same_dim, shape_symbols

__all__ = ["GraphSummary", "interpret", "infer_node", "node_flops", "op_flops", "example_inputs", "meta_value",
           "describe_value"]


@dataclass
class GraphSummary:
    """What one interpreter walk computes."""

    num_nodes: int
    num_edges: int
    num_params: int
    flops: int
    depth: int
    op_histogram: dict[str, int]
    node_flops: dict[str, int] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "num_nodes": self.num_nodes,
            "num_edges": self.num_edges,
            "num_params": self.num_params,
            "flops": self.flops,
            "depth": self.depth,
            "op_histogram": dict(sorted(self.op_histogram.items(), key=lambda kv: -kv[1])),
        }


def _float_dtype(g: ArchGraph) -> torch.dtype:
    return dtype_from_name(g.meta.get("dtype", "float32"))


def describe_value(value: Any, strict: bool = True) -> tuple[Any, Any]:
    """(shape, dtype) of a tensor or a tuple of tensors, as JSON values.

    ``None`` gives ``(None, None)``; other non-tensors raise unless ``strict`` is off.
    """
    if isinstance(value, torch.Tensor):
        return list(value.shape), dtype_name(value.dtype)
    if isinstance(value, (list, tuple)):
        parts = [describe_value(v, strict) for v in value]
        return [p[0] for p in parts], [p[1] for p in parts]
    if value is None or not strict:
        return None, None
    raise TypeError(f"op returned {type(value).__name__}, not a tensor")


def meta_value(shape: Any, dtype: Any) -> Any:
    """A meta tensor (or tuple of them) with a recorded shape and dtype."""
    if isinstance(dtype, list):
        return tuple(meta_value(s, d) for s, d in zip(shape, dtype))
    if shape is None:
        return None
    return torch.empty(shape, dtype=dtype_from_name(dtype or "float32"), device="meta")


def _data_dependent(e: Exception) -> bool:
    """True when an op failed on meta because its output size depends on values
    (``nonzero``, boolean masks, ``.item()``), not because its inputs are wrong."""
    msg = str(e).lower()
    return isinstance(e, NotImplementedError) or "meta tensor" in msg or "data-dependent" in msg


def param_dtype(g: ArchGraph, node: Node, role: str) -> torch.dtype:
    if node.op == "parameter":
        return dtype_from_name(node.attrs.get("dtype", "float32"))
    return _float_dtype(g)


_SHAPE_CACHE: dict[tuple, tuple[Any, Any]] = {}
_SHAPE_CACHE_MAX = 200_000


def _freeze(x: Any) -> Any:
    return tuple(_freeze(v) for v in x) if isinstance(x, list) else x


def _cache_put(key: tuple, value: tuple[Any, Any]) -> tuple[Any, Any]:
    if len(_SHAPE_CACHE) >= _SHAPE_CACHE_MAX:
        _SHAPE_CACHE.clear()
    _SHAPE_CACHE[key] = value
    return value


def _param_key(g: ArchGraph, node: Node) -> tuple:
    return tuple(sorted((r, tuple(s), str(param_dtype(g, node, r))) for r, s in node.params.items()))


def _concrete_rule(g: ArchGraph, node: Node, op: Any, inputs: list[tuple[Any, Any]], attrs: dict) -> tuple[Any, Any]:
    """(shape, dtype) on concrete input shapes: the op run on meta tensors, cached."""
    key = (node.op, json.dumps(attrs, sort_keys=True), _freeze([[s, d] for s, d in inputs]), _param_key(g, node))
    hit = _SHAPE_CACHE.get(key)
    if hit is not None:
        return hit
    values = [meta_value(s, d) for s, d in inputs]
    params = {r: torch.empty(s, dtype=param_dtype(g, node, r), device="meta") for r, s in node.params.items()}
    return _cache_put(key, describe_value(call_op(op, attrs, values, params, device="meta")))


def _leaves(shape: Any, dtype: Any) -> list[Any]:
    """Dims of a shape, or of each shape of a tuple output (``dtype`` is then a list)."""
    if isinstance(dtype, list):
        return [d for s in shape for d in (s or [])]
    return list(shape or [])


def _refill(template: Any, dtype: Any, dims: list[Any]) -> Any:
    it = iter(dims)
    if isinstance(dtype, list):
        return [None if s is None else [next(it) for _ in s] for s in template]
    return None if template is None else [next(it) for _ in template]


def infer_node(g: ArchGraph, node: Node, inputs: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """(shape, dtype) of ``node`` from its inputs' (shape, dtype); shapes may be symbolic.

    Without symbols this is the op run once on meta tensors. With symbols
    (in input shapes or in size attrs) the op runs at the probe bindings of
    :func:`~mad.graph.symbolic.probe_bindings` and each output dim is fitted
    (see :mod:`mad.graph.symbolic`); dims that no polynomial fits come from
    PyTorch's symbolic shape propagation instead. Results are cached by
    (op, attrs, input shapes, params, hints), since architectures repeat blocks.

    Raises whatever the op raises at the hint sizes.
    """
    op = get_op(node.op)
    syms = shape_symbols(s for s, _ in inputs) | attr_symbols(op, node.attrs)
    if not syms:
        return _concrete_rule(g, node, op, inputs, node.attrs)
    hints = {s: g.dims.get(s, DEFAULT_HINT) for s in sorted(syms)}
    key = ("sym", node.op, json.dumps(node.attrs, sort_keys=True), _freeze([[s, d] for s, d in inputs]),
           _param_key(g, node), tuple(hints.items()))
    hit = _SHAPE_CACHE.get(key)
    if hit is not None:
        return hit
    fit, checks = probe_bindings(syms, hints)
    results = []
    for i, m in enumerate(fit + checks):
        ins = [(concrete(s, m), d) for s, d in inputs]
        try:
            results.append(_concrete_rule(g, node, op, ins, resolve_attrs(op, node.attrs, m)))
        except Exception:
            if i == 0:
                raise  # fails at the hint sizes: a real error
            return _cache_put(key, _fake_rule(g, node, op, inputs, hints))
    shape0, dtype0 = results[0]
    per_binding = [_leaves(s, d) for s, d in results]
    if any(len(v) != len(per_binding[0]) for v in per_binding):  # rank depends on the sizes
        return _cache_put(key, _fake_rule(g, node, op, inputs, hints))
    dims = []
    for j in range(len(per_binding[0])):
        vals = [v[j] for v in per_binding]
        expr = fit_dim(sorted(syms), fit, vals[: len(fit)])
        if expr is None or any(evaluate(expr, m) != v for m, v in zip(checks, vals[len(fit):])):
            return _cache_put(key, _fake_rule(g, node, op, inputs, hints))
        dims.append(expr)
    return _cache_put(key, (_refill(shape0, dtype0, dims), dtype0))


def _fake_rule(g: ArchGraph, node: Node, op: Any, inputs: list[tuple[Any, Any]], hints: dict[str, int]):
    """Exact symbolic shapes through fake tensors over a ShapeEnv (slow; the fallback)."""
    from .symbolic_fake import fake_shape_rule

    return fake_shape_rule(g, node, op, inputs, hints)


def _shape_rule(g: ArchGraph, node: Node, op: Any, inputs: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    return infer_node(g, node, inputs)


def _shapes_agree(a: Any, b: Any, checks: list[dict[str, int]]) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_shapes_agree(x, y, checks) for x, y in zip(a, b))
    if isinstance(a, list) or isinstance(b, list):
        return False
    return same_dim(a, b, checks)


def interpret(g: ArchGraph, update: bool = True, check: bool = False) -> GraphSummary:
    """Walk ``g`` once. ``update`` writes shapes/dtypes into the nodes;
    ``check`` raises :class:`GraphError` where a recorded shape disagrees.

    Shapes may be symbolic (see :mod:`mad.graph.symbolic`); FLOPs are counted
    at the example sizes of ``g.dims``.
    """
    order = g.topo_order()
    env: dict[str, Any] = {}
    specs = {s.name: s for s in g.inputs}
    node_flops: dict[str, int] = {}
    depth: dict[str, int] = {}
    unchecked: list[str] = []
    hints = dict(g.dims)
    bindings = [hints] + probe_bindings(g.dims, g.dims)[1]
    for nid in order:
        node = g.nodes[nid]
        op = get_op(node.op)
        preds = g.predecessors(nid)
        depth[nid] = 1 + max((depth[p] for p in preds), default=0) if op.category != "source" else 0
        if node.op == "input":
            spec = specs.get(node.attrs.get("name"))
            if spec is None:
                raise GraphError(f"node {nid!r}: input {node.attrs.get('name')!r} is not in graph.inputs")
            shape, dtype = list(spec.shape), spec.dtype
        elif node.op == "parameter":
            data = node.params.get("data")
            if data is None:
                raise GraphError(f"node {nid!r}: parameter node must own params['data']")
            shape, dtype = list(data), dtype_name(param_dtype(g, node, "data"))
        else:
            try:
                shape, dtype = infer_node(g, node, [env[p] for p in preds])
            except Exception as e:  # data-dependent ops cannot run on meta
                if node.shape is None or not _data_dependent(e):
                    raise GraphError(f"node {nid!r} ({node.op}): shape rule failed: {e}".split("\n")[0]) from e
                shape, dtype = node.shape, node.dtype
                unchecked.append(nid)
        if check and node.shape is not None and nid not in unchecked:
            if not _shapes_agree(node.shape, shape, bindings):
                raise GraphError(
                    f"node {nid!r} ({node.op}): field 'shape' is {node.shape} but the shape rule gives {shape}"
                )
            if node.dtype is not None and node.dtype != dtype:
                raise GraphError(f"node {nid!r} ({node.op}): field 'dtype' is {node.dtype} but the op gives {dtype}")
        if update:
            node.shape, node.dtype = shape, dtype
        env[nid] = (shape, dtype)
        if op.flops:
            in_shapes = [concrete(env[p][0], hints) for p in preds]
            node_flops[nid] = int(op.flops(in_shapes, concrete(shape, hints), resolve_attrs(op, node.attrs, hints), node.params))
        else:
            node_flops[nid] = 0
    return GraphSummary(
        num_nodes=len(g.nodes),
        num_edges=len(g.edges),
        num_params=g.num_params,
        flops=sum(node_flops.values()),
        depth=max(depth.values(), default=0),
        op_histogram=dict(Counter(n.op for n in g.nodes.values())),
        node_flops=node_flops,
        unchecked=unchecked,
    )


def op_flops(op: Any, in_shapes: list[Any], shape: Any, attrs: dict[str, Any], params: dict[str, Any],
             hints: dict[str, int]) -> int:
    """FLOPs of ``op`` (an op definition) on inputs of ``in_shapes`` giving ``shape``, counted at the example
    sizes ``hints`` of the dim symbols; 0 for an op without a FLOP rule, or one whose rule cannot read these."""
    if not op.flops:
        return 0
    try:
        return int(op.flops([concrete(s, hints) for s in in_shapes], concrete(shape, hints),
                            resolve_attrs(op, attrs, hints), params))
    except Exception:  # noqa: BLE001 - a FLOP rule that cannot read these shapes counts 0
        return 0


def node_flops(g: ArchGraph, nid: str) -> int:
    """FLOPs of node ``nid`` of ``g`` at the example sizes of its dims (:func:`op_flops` on the shapes held)."""
    node = g.nodes[nid]
    return op_flops(get_op(node.op), [g.nodes[p].shape for p in g.predecessors(nid)], node.shape, node.attrs,
                    node.params, g.dims)


def example_inputs(g: ArchGraph, seed: int | None = None, device: Any = None, dims: dict[str, int] | None = None) -> tuple:
    """Random valid inputs: floats ~ N(0, 1), integers uniform in ``range``.

    Symbolic dims take their sizes from ``dims`` (e.g. ``{"B": 8}``), else from ``g.dims``.
    """
    sizes = {**g.dims, **(dims or {})}
    gen = torch.Generator().manual_seed(seed if seed is not None else 0)
    out = []
    for s in g.inputs:
        dtype = dtype_from_name(s.dtype)
        shape = concrete(list(s.shape), sizes)
        if dtype.is_floating_point:
            t = torch.randn(shape, generator=gen, dtype=dtype)
        elif dtype == torch.bool:
            t = torch.randint(0, 2, shape, generator=gen).bool()
        else:
            lo, hi = s.range if s.range else (0, 2)
            t = torch.randint(int(lo), max(int(hi), int(lo) + 1), shape, generator=gen, dtype=dtype)
        out.append(t.to(device) if device is not None else t)
    return tuple(out)
