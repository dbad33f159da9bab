"""What the kernels check when a graph runs and shape inference on meta tensors does not see.

A node admitted by the builder has the right output shape, but a few ops also fail on things that shapes
alone do not carry. The sampler takes such a node back (:func:`kernel_fault`, part of its node checks):

* **index values**: ``x[i]`` with ``i`` from an ``arange``, a cast mask or the positions a top-k or arg-max
  found (through views, copies and scalar arithmetic) whose values run past the indexed dim at some batch size
  (``arange(14)`` picking rows of a batch of one);
* **strides**: a ``view`` of a tensor that a transpose, permute or chunk left non-contiguous (views and
  elementwise ops pass that layout on), when the new sizes span its strides (meta tensors carry strides, but
  the builder infers each node from fresh, contiguous ones): the chain is replayed on meta tensors from the
  last node that makes a new tensor;
* **arguments**: a ``select`` entry within its dim at every batch size; ``bucketize`` boundaries of one dim;
  a convolution given its weight as an input needs as many output channels as a multiple of ``groups``.

Every rule only rejects what is sure to fail at batch 1, 2 or 3 (the sizes the sampler checks at).
"""

from __future__ import annotations

from typing import Any, Mapping

from mad.graph import ArchGraph, get_op
from mad.graph.interpreter import meta_value
from mad.graph.ops.call import call_op
from mad.graph.ops.symbols import resolve_attrs
from mad.graph.passes.activation import ACTIVATIONS
from mad.graph.symbolic import SymbolError, concrete

from .fits import _binds, _val, shape_fits

__all__ = ["argument_fault", "index_bounds", "index_value_fault", "kernel_fault", "picked_dims", "view_fault"]

# ops whose output holds the same integer values as their first input (another layout, a part, a copy)
_VALUES_PASS = frozenset({"view", "reshape", "_unsafe_view", "flatten", "unflatten", "unsqueeze", "squeeze",
                          "squeeze_all", "contiguous", "clone", "to_device", "alias", "detach", "select", "slice",
                          "expand", "expand_as", "repeat", "getitem", "lift_fresh_copy", "permute", "transpose",
                          "movedim", "t", "flip", "roll", "to_dtype", "to_dtype_layout", "_to_copy", "type_as"})
# ops whose output has the layout (strides) of their first input: views, and elementwise ops of one tensor
# (PyTorch keeps a dense input's layout); a reshape or flatten may copy, which the replay finds out
_STRIDED = frozenset({"view", "reshape", "flatten", "unflatten", "unsqueeze", "squeeze", "squeeze_all", "select",
                      "slice", "expand", "expand_as", "permute", "transpose", "movedim", "t", "alias", "detach",
                      "type_as", "to_dtype", "to_dtype_layout", "to_device", "narrow", "diagonal", "split",
                      "split_with_sizes", "chunk", "unbind", "getitem"})
_ELEMENTWISE = frozenset(ACTIVATIONS) | {"dropout", "clone", "neg", "exp", "log", "sqrt", "rsqrt", "abs", "softmax",
                                         "log_softmax", "pow", "sin", "cos", "erf", "reciprocal", "square", "add",
                                         "sub", "rsub", "mul", "div", "clamp", "clamp_min"}
# ops that make a new tensor, contiguous whatever their inputs' layout (layers, products, reductions) or for
# inputs in the default layout (convolutions, channel norms and pools keep a channels-last layout, which only a
# permute there and back would give)
_FRESH = frozenset({"input", "parameter", "linear", "matmul", "bmm", "mm", "addmm", "baddbmm", "embedding",
                    "contiguous", "layer_norm", "mean", "sum", "repeat", "tile", "conv1d", "conv2d", "conv3d",
                    "batch_norm", "group_norm", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d",
                    "adaptive_avg_pool1d", "adaptive_avg_pool2d"})
_LAYOUT_MOVES = frozenset({"permute", "transpose", "movedim", "t", "expand", "expand_as", "diagonal", "select",
                           "slice", "narrow", "split", "split_with_sizes", "chunk", "unbind"})
_FOLLOWED = _STRIDED | _ELEMENTWISE
_MAX_CHAIN = 32


def _is_int(dtype: Any) -> bool:
    return isinstance(dtype, str) and dtype.startswith(("int", "uint"))


def index_bounds(g: ArchGraph, nid: str, bind: Mapping[str, int]) -> tuple[int, int] | None:
    """``(lowest, highest)`` value of integer tensor ``nid`` under the dim sizes ``bind`` when it follows from
    an ``arange``, a cast boolean mask or positions along a dim (``argmax``, ``topk``...) through value-keeping
    ops and arithmetic with a number; None when not known."""
    shift, scale, seen = 0, 1, 0
    while seen < _MAX_CHAIN:
        node = g.nodes[nid]
        if node.dtype == "bool" and seen:  # a mask cast to integers: 0 and 1
            return tuple(sorted((shift, scale + shift)))  # type: ignore[return-value]
        n = _positions_along(g, nid, bind)
        if n is not None:  # positions along a dim of n entries: 0..n-1
            return tuple(sorted((shift, scale * (n - 1) + shift)))  # type: ignore[return-value]
        if not _is_int(node.dtype):
            return None
        preds = g.predecessors(nid)
        if node.op.startswith("arange"):
            try:
                a = resolve_attrs(get_op(node.op), node.attrs, bind)
                vals = range(int(a.get("start") or 0), int(a["end"]), int(a.get("step") or 1))
            except (SymbolError, ArithmeticError, TypeError, ValueError, KeyError):
                return None
            if not vals:
                return None
            lo, hi = sorted((vals[0] * scale + shift, vals[-1] * scale + shift))
            return lo, hi
        other = node.attrs.get("other")
        if node.op in ("add", "sub", "rsub", "mul") and len(preds) == 1 and isinstance(other, int) \
                and not isinstance(other, bool) and node.attrs.get("alpha", 1) == 1:
            # the tensor read so far is scale * (this node's values) + shift; fold this node in
            if node.op == "mul":
                scale *= other
            elif node.op == "rsub":  # other - x
                shift, scale = shift + scale * other, -scale
            else:
                shift += scale * other if node.op == "add" else -scale * other
        elif node.op not in _VALUES_PASS or not preds:
            return None
        nid, seen = preds[0], seen + 1
    return None


def _positions_along(g: ArchGraph, nid: str, bind: Mapping[str, int]) -> int | None:
    """The size of the dim along which node ``nid`` holds positions (an ``argmax``/``argsort``, or the indices
    of a ``topk``/``sort``/``max_dim``), or None."""
    node, preds = g.nodes[nid], g.predecessors(nid)
    if node.op == "getitem" and node.attrs.get("index") == 1 and preds \
            and g.nodes[preds[0]].op in ("topk", "sort", "max_dim", "min_dim"):
        node, preds = g.nodes[preds[0]], g.predecessors(preds[0])
    elif node.op not in ("argmax", "argmin", "argsort"):
        return None
    shape = g.nodes[preds[0]].shape if preds else None
    dim = node.attrs.get("dim", -1 if node.op in ("topk", "sort", "argsort") else None)
    if not isinstance(shape, list) or not shape or not isinstance(dim, int) or not -len(shape) <= dim < len(shape):
        return None
    return _val(shape[dim], bind)


def picked_dims(g: ArchGraph, node: Any) -> tuple[list, list[tuple[int, str | None]]]:
    """The shape of what an ``index``, ``index_select`` or ``gather`` reads, and ``(dim, index tensor)`` for each
    dim it picks along (the tensor None when the port is missing); ``([], [])`` for other nodes."""
    preds = g.predecessors(node.id)
    shape = g.nodes[preds[0]].shape if preds else None
    if node.op not in ("index", "index_select", "gather") or not isinstance(shape, list):
        return [], []
    if node.op == "index":
        spec = node.attrs.get("indices")
        ports = iter(preds[1:])
        return shape, [(k, next(ports, None)) for k, e in enumerate(spec) if e is not None] \
            if isinstance(spec, list) else []
    dim = node.attrs.get("dim")
    return shape, [(dim % len(shape), preds[1] if len(preds) > 1 else None)] if isinstance(dim, int) and shape \
        else []


def index_value_fault(g: ArchGraph, node: Any) -> str | None:
    """Why an ``index``, ``index_select`` or ``gather`` cannot run: positions whose bounds
    (:func:`index_bounds`) run past the picked dim at batch 1, 2 or 3."""
    shape, picked = picked_dims(g, node)
    for k, src in picked:
        if src is None or k >= len(shape) or not _is_int(g.nodes[src].dtype):
            continue  # a boolean mask is no list of positions
        for bind in _binds(g.dims):
            n, bounds = _val(shape[k], bind), index_bounds(g, src, bind)
            if n is not None and bounds is not None and (bounds[0] < -n or bounds[1] >= n):
                return (f"{node.op} picks positions {bounds[0]}..{bounds[1]} of dim {k}, of size {n} at batch "
                        f"{bind['B']}")
    return None


def view_fault(g: ArchGraph, node: Any) -> str | None:
    """Why a ``view`` cannot run: its input has strides the new sizes do not follow (a transpose or permute
    upstream, passed on by views and elementwise ops). The chain back to the last node that makes a new tensor
    is replayed on meta tensors (strides included) at batch 1, 2 and 3; None when the view runs there or the
    chain cannot be followed (a node of two tensor inputs, an op of unknown layout)."""
    if node.op != "view":
        return None
    chain, preds = [node.id], g.predecessors(node.id)
    nid = preds[0] if preds else None
    while nid is not None and g.nodes[nid].op not in _FRESH and get_op(g.nodes[nid].op).category != "source":
        op, preds = g.nodes[nid].op, g.predecessors(nid)
        if len(chain) >= _MAX_CHAIN or not preds or op not in _FOLLOWED \
                or (op in _ELEMENTWISE and len(preds) > 1):
            return None  # a layout this rule does not follow
        chain.append(nid)
        nid = preds[0]
    if nid is None or not any(g.nodes[c].op in _LAYOUT_MOVES for c in chain[1:]):
        return None  # a contiguous tensor, or views of it that keep it so
    for bind in _binds(g.dims):
        try:
            base = g.nodes[nid]
            x = meta_value(concrete(base.shape, bind), base.dtype)
            for c in reversed(chain):
                cn = g.nodes[c]
                opdef = get_op(cn.op)
                rest = [meta_value(concrete(g.nodes[p].shape, bind), g.nodes[p].dtype)
                        for p in g.predecessors(c)[1:]]
                try:
                    x = call_op(opdef, resolve_attrs(opdef, cn.attrs, bind), [x, *rest], {}, device="meta")
                except RuntimeError as e:
                    if c == node.id and "view" in str(e):
                        return f"view of a non-contiguous tensor ({str(e).splitlines()[0][:120]})"
                    return None  # something else: not this rule's to say
        except (SymbolError, ArithmeticError, TypeError, ValueError, KeyError):
            return None
    return None


def argument_fault(g: ArchGraph, node: Any) -> str | None:
    """Why a node's arguments fail a kernel's own check: a ``select`` of an entry past its dim at batch 1, 2 or 3;
    ``bucketize`` boundaries of more than one dim; a convolution's weight input with output channels that are
    no multiple of ``groups``."""
    preds = g.predecessors(node.id)
    shapes = [g.nodes[p].shape for p in preds]
    if node.op == "select" and not shape_fits("select", "a.index", node.attrs.get("index"), shapes, g.dims,
                                               {"a.dim": node.attrs.get("dim")}):
        # the attr check the sampler makes at the index token, which it skips when the index comes first
        return f"select of entry {node.attrs.get('index')} of dim {node.attrs.get('dim')}: not there at batch 1, 2 or 3"
    if node.op == "bucketize_tensor" and len(shapes) == 2 and isinstance(shapes[1], list) and len(shapes[1]) != 1:
        return f"bucketize boundaries of {len(shapes[1])} dims (one needed)"
    if node.op.startswith("conv") and len(shapes) >= 2 and isinstance(shapes[1], list) and shapes[1]:
        groups = node.attrs.get("groups", 1)
        out = shapes[1][1] if "transpose" in node.op and len(shapes[1]) > 1 else shapes[1][0]
        if isinstance(groups, int) and groups > 1 and isinstance(out, int) and "transpose" not in node.op \
                and out % groups:
            return f"{node.op}: a weight of {out} output channels in {groups} groups"
    return None


def kernel_fault(g: ArchGraph, node: Any) -> str | None:
    """Why node ``node`` just added to ``g`` would fail when the graph runs although its shape was inferred:
    index values out of range, a view across strides, a wrong argument rank or count (see the module)."""
    return argument_fault(g, node) or index_value_fault(g, node) or view_fault(g, node)
