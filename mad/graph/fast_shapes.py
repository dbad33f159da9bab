"""Closed-form shape rules for the commonest ops, so that growing a graph skips meta runs.

:func:`~mad.graph.interpreter.infer_node` finds an output shape by running the
op on meta tensors, several times when shapes are symbolic (~1-4 ms a node).
For ops whose output shape is a plain formula of the input shapes (an
activation keeps its input's shape, a linear changes the last dim, a conv
follows the usual size formula) :func:`fast_shape` gives the same answer in
microseconds; :class:`~mad.graph.GraphBuilder` tries it first and falls back
to ``infer_node`` (which also reports errors) whenever it returns ``None``.
``validate()`` re-runs the real shape rules, and
``tests/graph/test_fast_shapes.py`` checks every rule against them.
"""

from __future__ import annotations

from typing import Any, Callable

from .symbolic import SymbolError, format_poly, poly_mul, to_poly

__all__ = ["fast_shape", "FAST_RULES"]

Spec = tuple[Any, Any]  # (shape, dtype)

_FLOATS = ("float32", "float64", "float16", "bfloat16")
# elementwise ops that keep their input's shape and (floating) dtype
_UNARY = (
    "relu", "relu6", "gelu", "silu", "mish", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh", "elu",
    "selu", "celu", "leaky_relu", "softplus", "dropout", "neg", "exp", "sqrt", "rsqrt", "clone", "contiguous",
    "alias", "detach",
)
_NORMS = ("layer_norm", "rms_norm", "group_norm", "batch_norm", "instance_norm")
_SOFTMAX = ("softmax", "log_softmax")
_BINARY = ("add", "sub", "mul", "div")


def _float_in(specs: list[Spec], n: int) -> bool:
    return len(specs) == n and all(isinstance(s, list) and d in _FLOATS for s, d in specs)


def _unary(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if not _float_in(specs, 1):
        return None
    return list(specs[0][0]), specs[0][1]


def _norm(op: str) -> Callable[[list[Spec], dict[str, Any], dict[str, Any]], Spec | None]:
    def rule(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
        if not _float_in(specs, 1):
            return None
        x = specs[0][0]
        if op in ("layer_norm", "rms_norm"):
            ns = attrs.get("normalized_shape")
            if not isinstance(ns, list) or not ns or len(x) < len(ns) or list(x[-len(ns):]) != ns:
                return None
            if any(list(p) != ns for p in params.values()):
                return None
        else:
            if len(x) < 2 or not isinstance(x[1], int) or any(list(p) != [x[1]] for p in params.values()):
                return None
            groups = attrs.get("num_groups", 1)
            if op == "group_norm" and (not isinstance(groups, int) or groups < 1 or x[1] % groups):
                return None
        return list(x), specs[0][1]

    return rule


def _softmax(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if not _float_in(specs, 1) or attrs.get("half_to_float") or not isinstance(attrs.get("dim"), int):
        return None
    return list(specs[0][0]), specs[0][1]


def _binary(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if not _float_in(specs, 2) or specs[0] != specs[1] or set(attrs) - {"alpha"}:
        return None  # only equal shapes and dtypes: no broadcasting to reason about
    return list(specs[0][0]), specs[0][1]


def _linear(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    w = params.get("weight")
    if not _float_in(specs, 1) or w is None or len(w) != 2 or not specs[0][0] or specs[0][0][-1] != w[1]:
        return None
    return list(specs[0][0][:-1]) + [w[0]], specs[0][1]


def _ints(v: Any, n: int) -> list[int] | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return [v] * n
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return v * n if len(v) == 1 else v
    return None


def _conv(n: int) -> Callable[[list[Spec], dict[str, Any], dict[str, Any]], Spec | None]:
    def rule(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
        w = params.get("weight")
        if not _float_in(specs, 1) or w is None or len(w) != n + 2:
            return None
        x = specs[0][0]
        if len(x) != n + 2 or not all(isinstance(d, int) for d in x[1:]):
            return None
        stride, pad = _ints(attrs.get("stride", 1), n), _ints(attrs.get("padding", 0), n)
        dil, groups = _ints(attrs.get("dilation", 1), n), attrs.get("groups", 1) or 1
        if stride is None or pad is None or dil is None or not isinstance(groups, int) or x[1] != w[1] * groups:
            return None
        out = [(x[2 + i] + 2 * pad[i] - dil[i] * (w[2 + i] - 1) - 1) // stride[i] + 1 for i in range(n)]
        if min(out) < 1 or min(stride) < 1:
            return None
        return [x[0], w[0], *out], specs[0][1]

    return rule


def _transpose(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if len(specs) != 1 or not isinstance(specs[0][0], list):
        return None
    shape, r = list(specs[0][0]), len(specs[0][0])
    a, b = attrs.get("dim0"), attrs.get("dim1")
    if not isinstance(a, int) or not isinstance(b, int) or not (-r <= a < r and -r <= b < r):
        return None
    shape[a], shape[b] = shape[b], shape[a]
    return shape, specs[0][1]


def _permute(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    dims = attrs.get("dims")
    if len(specs) != 1 or not isinstance(specs[0][0], list) or not isinstance(dims, list):
        return None
    r = len(specs[0][0])
    norm = [d % r if isinstance(d, int) and -r <= d < r else None for d in dims]
    if None in norm or sorted(norm) != list(range(r)):  # type: ignore[type-var]
        return None
    return [specs[0][0][d] for d in norm], specs[0][1]  # type: ignore[index]


def _sdpa(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if not _float_in(specs, 3) or attrs.get("attn_mask") not in (None,) or attrs.get("dropout_p", 0.0):
        return None
    q, k, v = (s for s, _ in specs)
    if len({len(q), len(k), len(v), 4}) != 1 or len({d for _, d in specs}) != 1:
        return None
    if q[0] != k[0] or k[0] != v[0] or k[2] != v[2] or q[3] != k[3] or k[1] != v[1]:
        return None
    hq, hk = q[1], k[1]
    if hq != hk and not (attrs.get("enable_gqa") and isinstance(hq, int) and isinstance(hk, int) and hq % hk == 0):
        return None
    return [q[0], q[1], q[2], v[3]], specs[0][1]


def _flatten(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if len(specs) != 1 or not isinstance(specs[0][0], list) or not specs[0][0]:
        return None
    x, r = specs[0][0], len(specs[0][0])
    a, b = attrs.get("start_dim", 0), attrs.get("end_dim", -1)
    if not isinstance(a, int) or not isinstance(b, int) or not (-r <= a < r and -r <= b < r):
        return None
    a, b = a % r, b % r
    middle = x[a:b + 1]
    if a > b or not all(isinstance(d, int) for d in middle):
        return None
    n = 1
    for d in middle:
        n *= d
    return [*x[:a], n, *x[b + 1:]], specs[0][1]


def _pool2d(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if not _float_in(specs, 1) or attrs.get("ceil_mode") or len(specs[0][0]) != 4:
        return None
    x = specs[0][0]
    k = _ints(attrs.get("kernel_size"), 2)
    st = _ints(attrs.get("stride") or attrs.get("kernel_size"), 2)
    pad, dil = _ints(attrs.get("padding", 0), 2), _ints(attrs.get("dilation", 1), 2)
    if k is None or st is None or pad is None or dil is None or not all(isinstance(d, int) for d in x[2:]):
        return None
    if any(p > kk // 2 for p, kk in zip(pad, k)) or min(st) < 1:
        return None
    out = [(x[2 + i] + 2 * pad[i] - dil[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(2)]
    return (None if min(out) < 1 else ([x[0], x[1], *out], specs[0][1]))


def _adaptive2d(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    size = _ints(attrs.get("output_size"), 2)
    if not _float_in(specs, 1) or size is None or len(specs[0][0]) != 4 or min(size) < 1:
        return None
    return [*specs[0][0][:2], *size], specs[0][1]


def _mean(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    dims, x = attrs.get("dim"), specs[0][0] if specs else None
    if not _float_in(specs, 1) or not isinstance(dims, list) or not dims or attrs.get("dtype") is not None:
        return None
    r = len(x)
    if not all(isinstance(d, int) and -r <= d < r for d in dims):
        return None
    drop = {d % r for d in dims}
    if attrs.get("keepdim"):
        return [1 if i in drop else d for i, d in enumerate(x)], specs[0][1]
    return [d for i, d in enumerate(x) if i not in drop], specs[0][1]


def _cat(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    tensors, dim = attrs.get("tensors"), attrs.get("dim", 0)
    if not specs or not _float_in(specs, len(specs)) or tensors != ["%"] * len(specs) or not isinstance(dim, int):
        return None
    shapes = [s for s, _ in specs]
    r = len(shapes[0])
    if len({len(s) for s in shapes}) != 1 or len({d for _, d in specs}) != 1 or not -r <= dim < r:
        return None
    dim %= r
    if any(s[:dim] + s[dim + 1:] != shapes[0][:dim] + shapes[0][dim + 1:] for s in shapes):
        return None
    if not all(isinstance(s[dim], int) for s in shapes):
        return None
    out = list(shapes[0])
    out[dim] = sum(s[dim] for s in shapes)
    return out, specs[0][1]


Poly = dict[tuple[str, ...], int]


def _numel(dims: list[Any]) -> Poly:
    out: Poly = {(): 1}
    for d in dims:
        out = poly_mul(out, to_poly(d))
    return out


def _div_monomial(a: Poly, b: Poly) -> Poly | None:
    """``a / b`` when ``b`` is one monomial that divides every term of ``a`` exactly, else None."""
    if len(b) != 1:
        return None
    (mb, cb), = b.items()
    out: Poly = {}
    for ma, ca in a.items():
        rest = list(ma)
        for s in mb:
            if s not in rest:
                return None
            rest.remove(s)
        if cb == 0 or ca % cb:
            return None
        out[tuple(rest)] = ca // cb
    return out


def _reshape(key: str) -> Callable[[list[Spec], dict[str, Any], dict[str, Any]], Spec | None]:
    def rule(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
        target = attrs.get(key)
        if len(specs) != 1 or not isinstance(specs[0][0], list) or not isinstance(specs[0][1], str) \
                or not isinstance(target, list) or [d for d in target if isinstance(d, int) and d < -1 or d == 0]:
            return None
        try:
            total = _numel(specs[0][0])
            known = _numel([d for d in target if d != -1])
            out = [format_poly(to_poly(d)) if isinstance(d, str) else d for d in target]
        except SymbolError:
            return None
        wild = [i for i, d in enumerate(target) if d == -1]
        if not wild:
            return (out, specs[0][1]) if total == known else None
        rest = _div_monomial(total, known) if len(wild) == 1 else None
        if not rest:
            return None
        out[wild[0]] = format_poly(rest)
        return out, specs[0][1]
    return rule


def _slice(specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    if len(specs) != 1 or not isinstance(specs[0][0], list) or not specs[0][0]:
        return None
    shape, r = list(specs[0][0]), len(specs[0][0])
    dim, start, end, step = attrs.get("dim", 0), attrs.get("start"), attrs.get("end"), attrs.get("step", 1)
    start = 0 if start is None else start
    if not all(isinstance(v, int) for v in (dim, start, step)) or not -r <= dim < r or step < 1:
        return None
    n = shape[dim]
    if not isinstance(n, int) or not (end is None or isinstance(end, int)):
        return None  # symbolic sizes or ends: the real rule
    end = n if end is None else end
    lo = min(max(start + n if start < 0 else start, 0), n)
    hi = min(max(end + n if end < 0 else end, 0), n)
    shape[dim] = max(0, (hi - lo + step - 1) // step)
    return shape, specs[0][1]


FAST_RULES: dict[str, Callable[[list[Spec], dict[str, Any], dict[str, Any]], Spec | None]] = {
    **{op: _unary for op in _UNARY},
    **{op: _norm(op) for op in _NORMS},
    **{op: _softmax for op in _SOFTMAX},
    **{op: _binary for op in _BINARY},
    "linear": _linear,
    "conv1d": _conv(1),
    "conv2d": _conv(2),
    "conv3d": _conv(3),
    "transpose": _transpose,
    "scaled_dot_product_attention": _sdpa,
    "flatten": _flatten,
    "max_pool2d": _pool2d,
    "avg_pool2d": _pool2d,
    "adaptive_avg_pool2d": _adaptive2d,
    "mean": _mean,
    "cat": _cat,
    "permute": _permute,
    "reshape": _reshape("shape"),
    "view": _reshape("size"),
    "slice": _slice,
}


def fast_shape(op: str, specs: list[Spec], attrs: dict[str, Any], params: dict[str, Any]) -> Spec | None:
    """(shape, dtype) of ``op`` on inputs ``specs`` by formula, or ``None`` when no formula applies.

    Shapes may hold dim symbols; they pass through unchanged. Any doubt (unusual
    attrs, dtypes, broadcasting, bad sizes) gives ``None``: the caller then runs
    the op's real shape rule, which also reports what is wrong.
    """
    rule = FAST_RULES.get(op)
    if rule is None:
        return None
    try:
        return rule(specs, attrs, params)
    except (TypeError, IndexError, ZeroDivisionError):
        return None
