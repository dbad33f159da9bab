"""One step of a build: a new node's attrs, params, shape and FLOPs, checked before it is added.

:func:`prepare_node` is what :meth:`GraphBuilder.op <mad.graph.GraphBuilder.op>`
runs for every addition; :func:`admissible` tries it over candidate values
to say which ops and attr values may come next (constrained decoding).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .arch_graph import ArchGraph, GraphError, Node
from .fast_shapes import fast_shape
from .interpreter import infer_node, op_flops
from .layer_params import LAYER_RULES, layer_attrs, layer_params
from .ops import UnknownOpError, get_op, op_names
from .ops.call import count_ports
from .ops.registry import PORT, OpDef
from .ops.symbols import resolve_attrs
from .symbolic import concrete
from .validate import check_node

__all__ = ["Prepared", "prepare_node", "port_count", "admissible", "DEFAULT_CHOICES"]


@dataclass
class Prepared:
    """A node ready to be added: checked attrs and params, inferred shape/dtype, its FLOPs."""

    attrs: dict[str, Any]
    params: dict[str, list[int]]
    shape: Any
    dtype: Any
    flops: int


def _rank_of(op: str) -> int:
    for k in (1, 2, 3):
        if f"{k}d" in op:
            return k
    return 1


def _normalise(opdef: OpDef, op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for k, v in kwargs.items():
        if isinstance(v, tuple):
            v = list(v)
        spec = opdef.attrs.get(k)
        if spec is not None and spec.type == "ints" and isinstance(v, int) and not isinstance(v, bool):
            v = [v] * _rank_of(op)  # stride=2 -> [2, 2] for a 2-d op
        attrs[k] = v
    return attrs


def _fill_ports(opdef: OpDef, attrs: dict[str, Any], params: dict[str, Any], n_inputs: int) -> None:
    """Mark list and optional tensor args as fed by ports so that the node takes ``n_inputs``."""
    lists = [a for a in opdef.args if a.kind in ("list", "optional_list") and a.name not in attrs
             and a.name not in params]
    if len(lists) == 1:
        rest = count_ports(opdef, attrs | {lists[0].name: []}, params)
        if n_inputs >= rest:
            attrs[lists[0].name] = [PORT] * (n_inputs - rest)
    for a in opdef.args:
        if count_ports(opdef, attrs, params) >= n_inputs:
            break
        if a.kind == "optional" and a.name not in attrs and a.name not in params:
            attrs[a.name] = PORT


def _owns(op: str, opdef: OpDef, sizes: dict[str, Any], attrs: dict[str, Any], n_inputs: int) -> bool:
    rule = LAYER_RULES.get(op)
    if rule is None:
        return False
    if sizes:
        return True
    # a lone data input owns the parameters (linear(x) then needs out_features); linear(x, w) does not
    return count_ports(opdef, attrs, {r: [] for r in opdef.param_args}) == n_inputs


def port_count(op: str, n_inputs: int, kwargs: dict[str, Any]) -> int:
    """Input edges a node of ``op`` with keyword attrs/sizes ``kwargs`` takes when given ``n_inputs``:
    the count :func:`prepare_node` checks, without shapes (a layer that owns its parameters takes no
    edges for them). A quick test, before a node is complete, of whether its inputs and attrs agree."""
    opdef = get_op(op)
    rule = LAYER_RULES.get(op)
    sizes = {k: v for k, v in kwargs.items() if rule is not None and k in rule.sizes}
    attrs = _normalise(opdef, op, {k: v for k, v in kwargs.items() if k not in sizes})
    owns = _owns(op, opdef, sizes, attrs, n_inputs)
    params: dict[str, Any] = {r: [] for r in opdef.param_args} if owns else {}
    _fill_ports(opdef, attrs, params, n_inputs)
    return count_ports(opdef, attrs, params)


def prepare_node(g: ArchGraph, op: str, inputs: list[str], kwargs: dict[str, Any],
                 at_hints: bool = False) -> Prepared:
    """Check ``op`` on ``inputs`` with keyword attrs/sizes and infer its output; add nothing.

    ``at_hints`` infers at the example sizes of the dim symbols only (one meta
    run instead of a symbolic fit: a quick admissibility check).

    Raises :class:`GraphError` naming the op and the attr, size or input that is wrong.
    """
    try:
        opdef = get_op(op)
    except UnknownOpError as e:
        raise GraphError(str(e)) from None
    if opdef.category == "source":
        raise GraphError(f"{op}: add graph inputs with input() and free parameters with parameter()")
    if op == "getitem" and inputs and not get_op(g.nodes[inputs[0]].op).multi_output:
        raise GraphError(f"getitem: reads from {inputs[0]!r} ({g.nodes[inputs[0]].op}), which has one output")
    in_specs = [(g.nodes[i].shape, g.nodes[i].dtype) for i in inputs]
    in_shapes = [s for s, _ in in_specs]
    kwargs = dict(kwargs)
    rule = LAYER_RULES.get(op)
    sizes = {k: kwargs.pop(k) for k in list(kwargs) if rule is not None and k in rule.sizes}
    if "bias" in sizes and sizes["bias"] is None:
        sizes["bias"] = False
    attrs = _normalise(opdef, op, kwargs)
    params: dict[str, list[int]] = {}
    if _owns(op, opdef, sizes, attrs, len(inputs)):
        attrs = layer_attrs(op, in_shapes, attrs, sizes)
        params = layer_params(op, in_shapes, attrs, sizes)
    elif sizes:
        raise GraphError(f"{op}: sizes {sorted(sizes)} need the layer to own its parameters, but "
                         f"{len(inputs)} inputs were given; pass only the data input")
    _fill_ports(opdef, attrs, params, len(inputs))
    need = count_ports(opdef, attrs, params)
    if need != len(inputs):
        args = [a.name for a in opdef.args if a.name not in params]
        raise GraphError(f"{op}: takes {need} input(s) here ({', '.join(args) or 'none'}), got {len(inputs)}")
    node = Node(id=f"<new {op}>", op=op, attrs=attrs, params=params)
    check_node(node, g)
    if op == "unbind" and in_shapes and isinstance(in_shapes[0], list):
        dim = attrs.get("dim", 0)
        if isinstance(dim, int) and -len(in_shapes[0]) <= dim < len(in_shapes[0]) \
                and not isinstance(in_shapes[0][dim], int):
            # one output per entry: a size that follows a dim symbol gives no fixed number of outputs (and the
            # symbolic shape rule would make one slice per entry at the example size)
            raise GraphError(f"unbind: dim {dim} of {in_shapes[0]} has the symbolic size {in_shapes[0][dim]!r}; "
                             "unbind needs a fixed size (one output per entry)")
    if at_hints and g.dims:
        in_specs = [(concrete(sh, g.dims), d) for sh, d in in_specs]
        node = Node(id=node.id, op=op, attrs=resolve_attrs(opdef, attrs, g.dims), params=params)
    try:
        fast = fast_shape(op, in_specs, node.attrs, params)
        shape, dtype = fast if fast is not None else infer_node(g, node, in_specs)
    except Exception as e:  # noqa: BLE001 - any failure of the op on these inputs
        msg = str(e).strip().split("\n")[0]
        raise GraphError(f"{op}: cannot take inputs of shapes {in_shapes}{' with ' + json.dumps(attrs) if attrs else ''}"
                         f": {msg}") from None
    return Prepared(attrs, params, shape, dtype, op_flops(opdef, in_shapes, shape, attrs, params, g.dims))


# --------------------------------------------------------------------------- admissible next steps
_WIDTHS = [16, 32, 64, 128, 256]
_CONV = {"out_channels": _WIDTHS, "kernel_size": [1, 3, 5, 7], "stride": [1, 2], "padding": [0, 1, 2, 3],
         "dilation": [1, 2], "groups": [1, 2, 4, 8, 16, 32, 64], "bias": [True, False]}
_POOL = {"kernel_size": [2, 3], "stride": [1, 2], "padding": [0, 1]}
DEFAULT_CHOICES: dict[str, dict[str, list[Any]]] = {
    "linear": {"out_features": _WIDTHS, "bias": [True, False]},
    **{f"conv{k}d": _CONV for k in (1, 2, 3)},
    "embedding": {"num_embeddings": [256, 1024, 4096], "embedding_dim": [32, 64, 128, 256]},
    "layer_norm": {"affine": [True, False]},
    "rms_norm": {"affine": [True, False]},
    "group_norm": {"num_groups": [1, 2, 4, 8, 16, 32], "affine": [True, False]},
    "batch_norm": {"affine": [True, False]},
    **{f"{kind}_pool{k}d": _POOL for kind in ("max", "avg") for k in (1, 2, 3)},
    **{f"adaptive_{kind}_pool{k}d": {"output_size": [1, 2, 4, 7]} for kind in ("avg", "max") for k in (1, 2, 3)},
    "dropout": {"p": [0.0, 0.1, 0.5], "train": [False, True]},
    "leaky_relu": {"negative_slope": [0.01, 0.1, 0.2]},
    "gelu": {"approximate": ["none", "tanh"]},
    "mean": {"dim": [[-1], [1], [2, 3]], "keepdim": [False, True]},
    "sum": {"dim": [[-1], [1], [2, 3]], "keepdim": [False, True]},
}
_DIM_ATTRS = ("dim", "dim0", "dim1", "start_dim", "end_dim")
_CACHE: dict[tuple, dict[str, dict[str, list[Any]]]] = {}


def _axes(opdef: OpDef, op: str, rank: int, choices: dict[str, dict[str, list[Any]]]) -> dict[str, list[Any]]:
    axes = dict(choices.get(op, {}))
    for name, spec in opdef.attrs.items():
        if name in axes:
            continue
        if name in _DIM_ATTRS and spec.type == "int":
            axes[name] = list(range(-rank, rank)) if rank else [0]
        elif spec.type == "bool" and spec.required:
            axes[name] = [False, True]
    return axes


def _try(g: ArchGraph, op: str, inputs: list[str], kwargs: dict[str, Any]) -> bool:
    try:
        prepare_node(g, op, inputs, kwargs, at_hints=True)
        return True
    except Exception:  # noqa: BLE001 - inadmissible, whatever the reason
        return False


def _admissible_op(g: ArchGraph, op: str, inputs: list[str], axes: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
    opdef = get_op(op)
    rule = LAYER_RULES.get(op)
    required = [k for k, s in opdef.attrs.items() if s.required]
    required += [k for k, v in (rule.sizes if rule else {}).items() if v is None]
    if any(not axes.get(k) for k in required):
        return None  # a required attr with no candidate value: not proposed
    base = {k: axes[k][0] for k in required}
    if not _try(g, op, inputs, base):
        for k in required:  # one pass of coordinate search for a working base
            ok = next((v for v in axes[k] if _try(g, op, inputs, base | {k: v})), None)
            if ok is not None:
                base[k] = ok
        if not _try(g, op, inputs, base):
            return None
    return {k: [v for v in vals if _try(g, op, inputs, base | {k: v})] for k, vals in axes.items()}


def admissible(g: ArchGraph, inputs: list[str], ops: list[str] | None = None,
               choices: dict[str, dict[str, list[Any]]] | None = None) -> dict[str, dict[str, list[Any]]]:
    """Ops admissible on ``inputs`` and, per op, the admissible values of each attr/size.

    Each op is tried with every candidate value of one attr at a time, the
    others held at a working base setting (the first admissible value of each
    required attr): a value listed is admissible with that base, and the lists
    are marginal, not a product (``stride=2`` and ``kernel_size=7`` may each
    pass yet fail together on a tiny input; :meth:`GraphBuilder.op` has the
    last word). Candidates come from ``choices`` (op -> attr -> values),
    falling back to :data:`DEFAULT_CHOICES`, every axis for dim attrs
    (``dim``, ``start_dim``...) and ``[False, True]`` for required bools; an
    op whose required attrs have no candidates (``view``'s ``size``,
    ``permute``'s ``dims``) is not proposed.

    Values are tried at the example sizes of the dim symbols (``graph.dims``):
    an op admissible there may still fail symbolically (rare: a size that only
    works at one batch size), which :meth:`GraphBuilder.op` reports.

    Cost: one shape-rule call per op and candidate value, about
    ``sum over ops (1 + number of candidates)`` calls, ~2,000 for the whole
    vocabulary on one input; uncached calls run the op once on meta tensors
    (0.1-2 ms each; common ops have closed-form rules). Measured over the whole
    vocabulary on one core: ~3 s for the first call in a process (PyTorch warms
    its meta kernels), ~0.2 s for later calls on new input shapes, ~3 ms for a
    repeat with the same input shapes/dtypes, ops, choices and dims (results
    are cached by those); ``ops=`` restricts the search proportionally.
    """
    specs = tuple((json.dumps(g.nodes[i].shape), str(g.nodes[i].dtype), get_op(g.nodes[i].op).multi_output)
                  for i in inputs)
    merged = DEFAULT_CHOICES | (choices or {})
    key = (specs, tuple(ops) if ops is not None else None, json.dumps(choices, sort_keys=True, default=str),
           g.meta.get("dtype"), json.dumps(g.dims, sort_keys=True))
    hit = _CACHE.get(key)
    if hit is not None:
        return {k: {a: list(v) for a, v in d.items()} for k, d in hit.items()}
    rank = len(g.nodes[inputs[0]].shape or []) if inputs and isinstance(g.nodes[inputs[0]].shape, list) else 0
    out: dict[str, dict[str, list[Any]]] = {}
    for op in ops if ops is not None else op_names():
        try:
            opdef = get_op(op)
        except UnknownOpError as e:
            raise GraphError(str(e)) from None
        if opdef.category == "source":
            continue
        axes = _axes(opdef, op, rank, merged)
        if op == "getitem" and inputs:
            shape = g.nodes[inputs[0]].shape
            axes["index"] = list(range(len(shape))) if get_op(g.nodes[inputs[0]].op).multi_output else []
        res = _admissible_op(g, op, inputs, axes)
        if res is not None:
            out[op] = res
    if len(_CACHE) > 10_000:
        _CACHE.clear()
    _CACHE[key] = out
    return {k: {a: list(v) for a, v in d.items()} for k, d in out.items()}
