"""canonicalize(g): one meaning, one op, so that equal architectures look equal.

Captured graphs spell the same computation in several ways (``concat`` or
``cat``, ``x.view`` or ``x.reshape``, ``relu_`` or ``relu``, an attr written
out at its default). Learned models, the WL hash and dedup see those as
different; this pass rewrites them into one form, in place, keeping the
module's outputs equal. Three rewrites, in this order:

1. **Synonyms** (:data:`SYNONYMS`, plus the attr-dependent :data:`REWRITES`)
   become one op: ``concat``/``concatenate`` -> ``cat``; ``multiply`` ->
   ``mul``; ``clip`` -> ``clamp``; ``view``/``_unsafe_view`` -> ``reshape``
   (``size`` -> ``shape``); ``view_as`` -> ``reshape_as``;
   ``lift_fresh_copy`` -> ``clone``; ``and``/``or``/``xor`` (``__and__``...)
   -> ``bitwise_and``/``bitwise_or``/``bitwise_xor``; ``max_other``/
   ``min_other`` (``max.other``) -> ``maximum``/``minimum``; ``div_mode``
   without a rounding mode -> ``div``; ``std_dim``/``var_dim`` ->
   ``std``/``var`` (``unbiased=False`` -> ``correction=0``);
   ``squeeze_dims`` of one dim -> ``squeeze``.
   ``reshape`` returns a view whenever ``view`` succeeds, so
   ``view`` -> ``reshape`` keeps aliasing too. ``_unsafe_view`` returns a new
   tensor and ``reshape`` may not, so it is renamed only where no remaining
   in-place op can write through its output.
   Not merged, because a forward or backward pass can tell them apart:
   ``detach`` (stops gradients), ``alias`` and ``contiguous`` (may return
   their input's storage, which a later in-place op would write through,
   where ``clone`` copies), ``t``/``numpy_t``/``expand_as``/``type_as``/
   ``tile`` (their equivalents need the input's rank or shape), ``sgn`` and
   ``sign`` (differ on complex tensors).
2. **In-place ops** (:data:`INPLACE`: ``add_``, ``mul_``, ``relu_``,
   ``masked_fill_``, ``copy_``, ``zero_`` -> ``fill`` with 0, ...) become
   their out-of-place op where nothing can observe the difference: the
   mutated input (port 0) feeds only this node, is not a graph output, and
   is a tensor the graph made fresh (not a graph input, parameter or buffer,
   and not a view of another tensor), and the out-of-place op gives the same
   dtype and shape (``x.add_(y)`` keeps ``x``'s dtype, ``x + y`` promotes;
   checked on the recorded shapes, so a node without them stays in place).
   Every other in-place op stays, e.g. ``copy_`` into a running statistic.
   ``index_copy_`` has no out-of-place op in the vocabulary and stays.
3. **Default attrs** are dropped: an attr whose value equals the schema
   default (:attr:`AttrSpec.default`) with equal types (``1`` and ``True``,
   ``1`` and ``1.0`` differ) is removed, as is an optional tensor argument
   held as ``None``; ``pin_memory=False`` and ``layout="strided"`` are what a
   default of None means and are dropped too. Required attrs stay, and so
   does an attr whose schema default the spec cannot state (an enum default
   the spec records as None).

The pass is idempotent (a second run changes nothing) and linear in the
graph size. Recorded shapes and dtypes stay valid. Nodes made dead by step 2
(an in-place op whose result nobody reads) are left for a dead-code pass.

Example:
    >>> g = from_module(model, (x,))
    >>> canonicalize(g) is g
    True
"""

from __future__ import annotations

from typing import Any, Callable

from ..aliasing import aliases_input as _aliases_input
from ..aliasing import mutates as _mutates
from ..arch_graph import ArchGraph, Node
from ..ops.registry import get_op, has_op

__all__ = ["canonicalize", "SYNONYMS", "INPLACE", "REWRITES"]

# op -> (canonical op, attr renames); the semantics are identical for every input
SYNONYMS: dict[str, tuple[str, dict[str, str]]] = {
    "concat": ("cat", {}),
    "concatenate": ("cat", {}),
    "multiply": ("mul", {}),
    "clip": ("clamp", {}),
    "view": ("reshape", {"size": "shape"}),
    "view_as": ("reshape_as", {}),
    "lift_fresh_copy": ("clone", {}),
    "and": ("bitwise_and", {}),
    "or": ("bitwise_or", {}),
    "xor": ("bitwise_xor", {}),
    "max_other": ("maximum", {}),
    "min_other": ("minimum", {}),
}

# in-place op -> (out-of-place op, attrs to add)
INPLACE: dict[str, tuple[str, dict[str, Any]]] = {
    "add_": ("add", {}),
    "sub_": ("sub", {}),
    "mul_": ("mul", {}),
    "div_": ("div", {}),
    "masked_fill_": ("masked_fill", {}),
    "copy_": ("copy", {}),
    "fill_": ("fill", {}),
    "fill_tensor_": ("fill_tensor", {}),
    "clamp_": ("clamp", {}),
    "relu_": ("relu", {}),
    "zero_": ("fill", {"value": 0}),
    "index_put_": ("index_put", {}),
    "scatter_": ("scatter", {}),
    "scatter_value_": ("scatter_value", {}),
    "detach_": ("detach", {}),
    "or_": ("bitwise_or", {}),
    "and_": ("bitwise_and", {}),
}


def _div_mode(attrs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    if attrs.get("rounding_mode") is not None:
        return None
    return "div", {k: v for k, v in attrs.items() if k != "rounding_mode"}


def _unbiased(target: str) -> Callable[[dict[str, Any]], tuple[str, dict[str, Any]] | None]:
    def rewrite(attrs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        unbiased = attrs.get("unbiased", True)
        if not isinstance(unbiased, bool):
            return None
        out = {k: v for k, v in attrs.items() if k != "unbiased"}
        if not unbiased:
            out["correction"] = 0
        return target, out

    return rewrite


def _squeeze_dims(attrs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    dims = attrs.get("dim")
    if not (isinstance(dims, list) and len(dims) == 1 and isinstance(dims[0], int)):
        return None
    return "squeeze", {**attrs, "dim": dims[0]}


# attr-dependent synonyms: op -> rewrite(attrs) -> (op, attrs) or None to keep the node
REWRITES: dict[str, Callable[[dict[str, Any]], tuple[str, dict[str, Any]] | None]] = {
    "div_mode": _div_mode,
    "std_dim": _unbiased("std"),
    "var_dim": _unbiased("var"),
    "squeeze_dims": _squeeze_dims,
}


def _fresh(g: ArchGraph, nid: str) -> bool:
    """True when node ``nid``'s output is a tensor no other node's value shares storage with."""
    n = g.nodes[nid]
    if not has_op(n.op) or get_op(n.op).category == "source":
        return False
    if n.op == "getitem":
        preds = g.predecessors(nid)
        return len(preds) == 1 and preds[0] in g.nodes and has_op(g.nodes[preds[0]].op) and not _aliases_input(
            g.nodes[preds[0]].op
        )
    return not _aliases_input(n.op)


def _same(a: Any, b: Any) -> bool:
    """Equal values with equal types, element by element for lists."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


_RESULT_CACHE: dict[str, bool] = {}


def _same_result(g: ArchGraph, node: Node, op_name: str, attrs: dict[str, Any]) -> bool:
    """True when ``op_name`` with ``attrs`` on the node's inputs gives the node's recorded shape and dtype.

    The op runs on ``meta`` tensors (symbolic dims at the graph's example
    sizes); results are cached, since blocks repeat.
    """
    from ..symbolic import evaluate as eval_dim
    from ..interpreter import describe_value, meta_value
    from ..ops.call import call_op

    preds = [g.nodes[p] for p in g.predecessors(node.id)]
    if node.shape is None or node.dtype is None or any(p.shape is None or p.dtype is None for p in preds):
        return False
    sizes = dict(getattr(g, "dims", None) or {})
    key = repr((op_name, attrs, [(p.shape, p.dtype) for p in preds], node.shape, node.dtype, sorted(sizes.items())))
    if key in _RESULT_CACHE:
        return _RESULT_CACHE[key]

    def concrete(shape: Any) -> Any:
        if shape and isinstance(shape[0], list):
            return [concrete(s) for s in shape]
        return [eval_dim(d, sizes) for d in shape]

    try:
        values = [meta_value(concrete(p.shape), p.dtype) for p in preds]
        got = describe_value(call_op(get_op(op_name), attrs, values, {}, device="meta"))
        same = got == (concrete(node.shape), node.dtype)
    except Exception:  # the op rejects these inputs (or a dim has no size): keep the in-place form
        same = False
    if len(_RESULT_CACHE) > 100_000:
        _RESULT_CACHE.clear()
    _RESULT_CACHE[key] = same
    return same


def _rename(node: Node, op: str, renames: dict[str, str]) -> None:
    node.op = op
    if renames:
        node.attrs = {renames.get(k, k): v for k, v in node.attrs.items()}


def _reaches_mutation(g: ArchGraph, nid: str) -> bool:
    """True when a mutating op can write into ``nid``'s output (directly or through views)."""
    stack, seen = [nid], set()
    while stack:
        cur = stack.pop()
        for e in g.out_edges(cur):
            dst = g.nodes.get(e.dst)
            if dst is None or e.dst in seen or not has_op(dst.op):
                continue
            seen.add(e.dst)
            if _mutates(dst.op) and e.port == 0:  # port 0 (``self``) is what an in-place op writes
                return True
            if _aliases_input(dst.op) or dst.op == "getitem":
                stack.append(e.dst)
    return False


def _inplace_to_outplace(g: ArchGraph) -> None:
    """Step 2; a chain ``x.add_(1).mul_(2)`` is walked from its start, so one run suffices."""
    outputs = set(g.outputs)
    done: set[str] = set()

    def source(nid: str) -> str | None:
        e = next((e for e in g.in_edges(nid) if e.port == 0), None)
        return e.src if e is not None and e.src in g.nodes else None

    def convert(nid: str) -> None:
        node = g.nodes[nid]
        target, extra = INPLACE[node.op]
        src = source(nid)
        if src is None or len(g.out_edges(src)) != 1 or src in outputs or not _fresh(g, src):
            return
        attrs = {**node.attrs, **extra}
        if _same_result(g, node, target, attrs):
            node.op, node.attrs = target, attrs

    for nid in list(g.nodes):
        chain = []
        cur: str | None = nid
        while cur is not None and cur not in done and g.nodes[cur].op in INPLACE:
            done.add(cur)
            chain.append(cur)
            cur = source(cur)
        for c in reversed(chain):
            convert(c)


# explicit values that mean what a schema default of None means
_NONE_MEANS: dict[tuple[str, str], Any] = {
    ("pin_memory", "bool"): False,  # None: not pinned
    ("layout", "layout"): "strided",  # None: strided, the only layout of the vocabulary
}


def _drop_defaults(node: Node) -> None:
    op = get_op(node.op)
    drop = []
    for key, value in node.attrs.items():
        spec = op.attrs.get(key)
        if spec is None:
            if value is None and any(a.name == key and a.kind == "optional" for a in op.args):
                drop.append(key)  # an absent optional tensor written out
            continue
        if spec.required or spec.type in ("device", "generator"):
            continue
        if spec.default is None and not spec.optional:
            continue  # the schema has a default the spec cannot state (an enum)
        if _same(value, spec.default) or (spec.default is None and _same(value, _NONE_MEANS.get((key, spec.type)))):
            drop.append(key)
    for key in drop:
        del node.attrs[key]


def canonicalize(g: ArchGraph) -> ArchGraph:
    """Rewrite ``g`` in place into its canonical form (see the module docstring); returns ``g``.

    Nodes whose op is not in the vocabulary are left alone (``validate`` names them).
    """
    for node in g.nodes.values():
        if node.op in SYNONYMS:
            _rename(node, *SYNONYMS[node.op])
        elif node.op in REWRITES:
            got = REWRITES[node.op](node.attrs)
            if got is not None:
                node.op, node.attrs = got
    _inplace_to_outplace(g)
    for nid, node in g.nodes.items():
        if node.op == "_unsafe_view" and not _reaches_mutation(g, nid):
            _rename(node, "reshape", {"size": "shape"})
    for node in g.nodes.values():
        if has_op(node.op):
            _drop_defaults(node)
    return g
