"""Cheap checks of an op and its attr values against the shapes of its inputs, for decoding.

The builder (:class:`~mad.graph.GraphBuilder`) has the last word on a node,
but it runs once the node's tokens are all out: a node it rejects costs those
tokens and a resample. These rules catch the commonest rejections earlier, at
the token that causes them, so the sampler never offers it:

- :func:`op_fits`: a convolution or channel norm needs a concrete channel dim
  at the place its rank says; a binary elementwise op needs broadcastable
  inputs (in place, ``x.div_(y)``: ``y`` broadcasting to ``x``'s shape);
  ``cat``/``stack`` inputs of one rank; attention's query, key and value, a
  linear's weight and a matmul's operands of matching sizes;
- :func:`value_fits`: dim symbols the graph declares; conv kernel, stride,
  padding and dilation lists of the conv's rank, ``groups`` dividing the
  channels; ``normalized_shape`` equal to the input's trailing dims; a
  reshape/view target with the input's number of elements at every batch
  size; an ``expand`` size of at least the input's rank; dim indices within
  the input's rank, and for ``cat``/``stack`` inputs that agree off that dim.

Every rule only rejects what is sure to fail (a shape it cannot evaluate
passes), so a node they admit may still be rejected by the builder.
"""

from __future__ import annotations

from math import prod
from typing import Any, Mapping

from mad.graph import get_op
from mad.graph.ops.symbols import attr_symbols
from mad.graph.symbolic import SymbolError, evaluate, free_symbols

__all__ = ["op_fits", "value_fits", "static_fits", "shape_fits", "node_fits", "SHAPE_RULE_OPS", "CONV_RANK"]

CONV_RANK = {"conv1d": 1, "conv2d": 2, "conv3d": 3, "conv_transpose1d": 1, "conv_transpose2d": 2,
             "conv_transpose3d": 3}
CHANNEL_OPS = {"batch_norm", "instance_norm", "group_norm"}  # norms with parameters per channel (dim 1)
BINARY = {"add", "sub", "mul", "div", "maximum", "minimum", "multiply", "atan2", "fmod_tensor",
          "remainder_tensor", "pow_tensor", "eq_tensor", "ne_tensor", "lt_tensor", "le_tensor", "gt_tensor",
          "ge_tensor"}
LAST_DIM_NORMS = {"layer_norm": "a.normalized_shape", "rms_norm": "a.normalized_shape"}
RESHAPES = {"reshape": "a.shape", "view": "a.size", "_unsafe_view": "a.size"}
DIM_KEYS = ("a.dim", "a.dim0", "a.dim1", "a.start_dim", "a.end_dim")
DIM_OPS = {"transpose", "flatten", "softmax", "log_softmax", "mean", "sum", "amax", "amin", "select", "narrow",
           "cat", "concat", "concatenate", "split", "split_with_sizes", "chunk", "cumsum", "cumprod", "argmax",
           "argmin", "max_dim", "min_dim", "std_dim", "var_dim", "logsumexp", "flip", "roll", "unbind",
           "movedim", "glu", "index_select", "squeeze_dims", "unflatten", "slice", "sort", "topk", "prod"}
NEW_DIM_OPS = {"stack", "unsqueeze"}  # the dim may be one past the input's last
CAT_OPS = {"cat", "concat", "concatenate", "stack"}  # inputs that agree off their dim
MAX_PIECES = 64  # outputs of one split or unbind
SHAPE_RULE_OPS = (set(CONV_RANK) | set(LAST_DIM_NORMS) | set(RESHAPES) | DIM_OPS | NEW_DIM_OPS
                  | {"group_norm", "expand", "permute"})  # ops whose attr values shape_fits checks


def _val(d: Any, bind: Mapping[str, int]) -> int | None:
    """A dim's value under ``bind`` (None when it cannot be evaluated)."""
    if isinstance(d, bool):
        return None
    if isinstance(d, int):
        return d
    if isinstance(d, str):
        try:
            v = evaluate(d, bind)
        except (SymbolError, ArithmeticError, TypeError, ValueError):
            return None
        return v if isinstance(v, int) else None
    return None


def _plain(shape: Any) -> bool:
    """A single tensor's shape (a list of dims, not a list of output shapes)."""
    return isinstance(shape, list) and not any(isinstance(d, list) for d in shape)


def _binds(dims: Mapping[str, int]) -> list[dict[str, int]]:
    """Bindings of the dim symbols: the example sizes at batch 1, 2 and 3 (a check holds at all)."""
    return [{**dims, "B": b} for b in (1, 2, 3)]


def _same(x: Any, y: Any, dims: Mapping[str, int]) -> bool:
    """Whether two dims may be equal (False only when they differ at some batch size)."""
    if x == y:
        return True
    for bind in _binds(dims):
        vx, vy = _val(x, bind), _val(y, bind)
        if vx is not None and vy is not None and vx != vy:
            return False
    return True


def _broadcastable(a: list, b: list, dims: Mapping[str, int]) -> bool:
    for bind in _binds(dims):
        for x, y in zip(reversed(a), reversed(b)):
            vx, vy = _val(x, bind), _val(y, bind)
            if vx is not None and vy is not None and vx != vy and 1 not in (vx, vy):
                return False
    return True


def _fits_into(a: list, b: list, dims: Mapping[str, int]) -> bool:
    """Whether ``b`` broadcasts to ``a`` without growing it (what an in-place ``a.mul_(b)`` needs)."""
    if len(b) > len(a):
        return False
    for bind in _binds(dims):
        for x, y in zip(reversed(a), reversed(b)):
            vx, vy = _val(x, bind), _val(y, bind)
            if vx is not None and vy is not None and vy not in (1, vx):
                return False
    return True


def op_fits(op: str, shapes: list[Any], dims: Mapping[str, int]) -> bool:
    """Whether ``op`` may take inputs of ``shapes`` (False only when it surely cannot)."""
    if op in CONV_RANK and len(shapes) == 1:
        s, r = shapes[0], CONV_RANK[op]
        if not _plain(s) or len(s) not in (r + 1, r + 2):
            return False
        return isinstance(s[len(s) - r - 1], int)  # the channel dim, batched or not
    if op == "linear" and len(shapes) == 1:  # a layer: its in_features must be concrete
        return _plain(shapes[0]) and len(shapes[0]) >= 1 and isinstance(shapes[0][-1], int)
    if op in CHANNEL_OPS and len(shapes) == 1:
        s = shapes[0]
        return _plain(s) and len(s) >= 2 and isinstance(s[1], int)
    if not shapes or not all(_plain(s) for s in shapes):
        return True
    if op in BINARY and len(shapes) == 2:
        return _broadcastable(shapes[0], shapes[1], dims)
    if op.endswith("_") and op[:-1] in BINARY and len(shapes) == 2:  # in place: the result keeps the first shape
        return _fits_into(shapes[0], shapes[1], dims)
    if op in CAT_OPS:
        rank = len(shapes[0]) + (op == "stack")
        return any(value_fits(op, "a.dim", d, shapes, dims, {}) for d in range(rank))
    if op == "scaled_dot_product_attention" and len(shapes) >= 3:
        q, k, v = shapes[:3]
        return min(len(q), len(k), len(v)) >= 2 and _same(q[-1], k[-1], dims) and _same(k[-2], v[-2], dims)
    if op == "linear" and len(shapes) >= 2:
        x, w = shapes[:2]
        return len(w) == 2 and len(x) >= 1 and _same(w[1], x[-1], dims) and (
            len(shapes) < 3 or (len(shapes[2]) == 1 and _same(shapes[2][0], w[0], dims)))
    if op in ("matmul", "mm", "bmm") and len(shapes) == 2:
        a, b = shapes
        if not a or not b:
            return False
        return _same(a[-1], b[-2] if len(b) >= 2 else b[0], dims)
    return True


def _numel_fits(shape: list, target: list, dims: Mapping[str, int]) -> bool:
    for bind in _binds(dims):
        n = [_val(d, bind) for d in shape]
        t = [_val(d, bind) for d in target]
        if None in n or None in t:
            return True  # cannot say
        total, wild = prod(n), t.count(-1)  # type: ignore[arg-type]
        known = prod(v for v in t if v != -1)  # type: ignore[misc]
        if wild > 1 or known <= 0 or any(v < -1 or v == 0 for v in t):  # type: ignore[operator]
            return False
        if (total % known) if wild else (total != known):
            return False
    return True


def _kernel_fits(spatial: list, kernel: Any, attrs: Mapping[str, Any], dims: Mapping[str, int]) -> bool:
    """Whether a conv kernel (with the node's padding and dilation so far) fits in the input's spatial dims."""
    r = len(spatial)

    def per_dim(v: Any, default: int) -> list:
        return v if isinstance(v, list) else [default if v is None else v] * r

    pad, dil = attrs.get("a.padding"), attrs.get("a.dilation")
    if isinstance(pad, str):  # "same" / "valid"
        pad = 0 if pad == "valid" else None
    if pad is None and "a.padding" in attrs:
        return True
    for x, k, p, d in zip(spatial, per_dim(kernel, 1), per_dim(pad, 0), per_dim(dil, 1)):
        vx = _val(x, dims)
        if all(isinstance(v, int) for v in (vx, k, p, d)) and vx + 2 * p < (k - 1) * d + 1:
            return False
    return True


def _pieces_fit(s: list, dim: Any, size: int, dims: Mapping[str, int]) -> bool:
    """Whether cutting dim ``dim`` of shape ``s`` into pieces of ``size`` gives at most :data:`MAX_PIECES`
    outputs at every batch size (a split into one output per element of a 32768-element dim is legal, but its
    shape check alone took minutes). A dim whose size cannot be evaluated (a symbol the graph gives no size, as in
    ``4096*T`` without ``T``) gives an unknown number of outputs and does not fit: splitting it element by element
    kept the shape check busy for over eight minutes."""
    if not isinstance(dim, int) or isinstance(dim, bool) or not _in_range(dim, len(s)) or size < 1:
        return False
    return all(n is not None and -(-n // size) <= MAX_PIECES for n in (_val(s[dim], bind) for bind in _binds(dims)))


def node_fits(op: str, shapes: list[Any], dims: Mapping[str, int], attrs: Mapping[str, Any]) -> bool:
    """Whether a node of ``op`` with all its ``attrs`` may end here: an attr it left out takes its default
    (``cat``'s ``dim`` 0), which must fit too."""
    if op in CAT_OPS and "a.dim" not in attrs:
        return value_fits(op, "a.dim", 0, shapes, dims, attrs)
    return True


def _in_range(d: Any, rank: int) -> bool:
    return not isinstance(d, int) or isinstance(d, bool) or -rank <= d < rank


def static_fits(op: str, key: str, value: Any, dims: Mapping[str, int]) -> bool:
    """The part of :func:`value_fits` that does not read the inputs: the attr's type, and dim symbols
    that the graph declares."""
    if key.startswith("a."):
        d = get_op(op)
        spec = d.attrs.get(key[2:])
        if (spec is not None and spec.check(value) is not None) or not attr_symbols(d, {key[2:]: value}) <= set(dims):
            return False
    return key != "s.shape" or free_symbols(value) <= set(dims)


def value_fits(op: str, key: str, value: Any, shapes: list[Any], dims: Mapping[str, int],
               attrs: Mapping[str, Any]) -> bool:
    """Whether attr/size token ``key=value`` may come next in a node of ``op`` on inputs of ``shapes``
    that already has ``attrs`` (namespaced keys, ``a.groups``). False only when it surely fails."""
    return static_fits(op, key, value, dims) and shape_fits(op, key, value, shapes, dims, attrs)


def shape_fits(op: str, key: str, value: Any, shapes: list[Any], dims: Mapping[str, int],
               attrs: Mapping[str, Any]) -> bool:
    """The part of :func:`value_fits` that reads the inputs' shapes (only ops in :data:`SHAPE_RULE_OPS`
    have such rules)."""
    if op not in SHAPE_RULE_OPS or not shapes or not _plain(shapes[0]):
        return True
    s = shapes[0]
    if op in CONV_RANK and len(shapes) == 1:
        r = CONV_RANK[op]
        if key in ("s.kernel_size", "a.stride", "a.padding", "a.dilation") and isinstance(value, list):
            if len(value) != r:
                return False
        if key == "s.kernel_size" and "transpose" not in op and len(s) in (r + 1, r + 2):
            return _kernel_fits(s[len(s) - r:], value, attrs, dims)
        ch = s[len(s) - r - 1] if len(s) in (r + 1, r + 2) else None
        if key == "a.groups" and isinstance(value, int) and isinstance(ch, int) and "transpose" not in op:
            return value > 0 and ch % value == 0
        g = attrs.get("a.groups")
        if key == "s.out_channels" and isinstance(value, int) and isinstance(g, int) and g > 0:
            return value % g == 0
        return True
    if key == LAST_DIM_NORMS.get(op):
        if not isinstance(value, list) or len(value) > len(s):
            return False
        tail = s[len(s) - len(value):]
        return all(x == y or _val(x, dims) is None or _val(x, dims) == _val(y, dims) for x, y in zip(value, tail))
    if op == "group_norm" and key == "a.num_groups" and isinstance(value, int) and len(s) >= 2:
        return not isinstance(s[1], int) or (value > 0 and s[1] % value == 0)
    if key == RESHAPES.get(op) and isinstance(value, list):
        return _numel_fits(s, value, dims)
    if op == "expand" and key == "a.size" and isinstance(value, list):
        return len(value) >= len(s)
    if (op, key) in (("split", "a.split_size"), ("unbind", "a.dim")) and isinstance(value, int):
        return _pieces_fit(s, value if op == "unbind" else attrs.get("a.dim", 0), value if op == "split" else 1,
                           dims)
    rank = len(s) + (op in NEW_DIM_OPS)
    if key in DIM_KEYS and (op in DIM_OPS or op in NEW_DIM_OPS):
        if not all(_in_range(d, rank) for d in (value if isinstance(value, list) else [value])):
            return False
        if op in CAT_OPS and isinstance(value, int) and all(map(_plain, shapes)):
            keep = [i for i in range(len(s)) if op == "stack" or i != value % len(s)]
            return all(len(o) == len(s) and all(_same(o[i], s[i], dims) for i in keep) for o in shapes[1:])
        return True
    if op == "select" and key == "a.index" and isinstance(value, int) and isinstance(attrs.get("a.dim"), int) \
            and _in_range(attrs["a.dim"], len(s)):  # in range at every batch size (index 1 of a batch of one)
        sizes = [_val(s[attrs["a.dim"]], bind) for bind in _binds(dims)]
        return all(n is None or -n <= value < n for n in sizes)
    if key == "a.dims" and op == "permute" and isinstance(value, list):
        return sorted(d % len(s) if isinstance(d, int) and len(s) else d for d in value) == list(range(len(s)))
    return True
