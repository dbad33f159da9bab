"""Label text of picture boxes and edges: op names, key attributes per op, shapes, counts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..arch_graph import Node
from ..ops import UnknownOpError, get_op

log = logging.getLogger(__name__)

_SHORT = {"scaled_dot_product_attention": "sdpa"}
_ARITH = {"add": "+", "sub": "−", "mul": "×", "div": "÷", "pow": "^", "rsub": "−"}
_DTYPE_SHORT = {
    "float32": "",
    "float64": "f64",
    "float16": "f16",
    "bfloat16": "bf16",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
    "bool": "bool",
    "complex64": "c64",
    "complex128": "c128",
}


# ----------------------------------------------------------------- text helpers
def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "(" + ", ".join(_num(x) for x in v) + ")"
    return str(v)


def human(n: float) -> str:
    """``1234567`` -> ``"1.23M"``; small numbers stay exact."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(int(n))


def shape_text(shape: Any, dtype: Any = None) -> str:
    """``[1, 16, 64]`` -> ``"1×16×64"``; a tuple of shapes in parentheses; dtype if not float32."""
    if shape is None:
        return ""
    if shape and isinstance(shape[0], list) or (isinstance(dtype, list)):
        dts = dtype if isinstance(dtype, list) else [None] * len(shape)
        return "(" + ", ".join(shape_text(s, d) for s, d in zip(shape, dts)) + ")"
    text = "×".join(str(d) for d in shape) if shape else "scalar"
    short = _DTYPE_SHORT.get(dtype, dtype) if isinstance(dtype, str) else ""
    return f"{text} {short}" if short else text


def _spatial(v: Any, sep: str = "x") -> str:
    """``[3, 3]`` -> ``"3x3"``; a single value as is."""
    return sep.join(str(x) for x in v) if isinstance(v, list) else str(v)


def _first(v: Any) -> Any:
    if isinstance(v, list) and v and all(x == v[0] for x in v):
        return v[0]
    return v


# ----------------------------------------------------------------- key attributes per op
def _linear(n: Node) -> str:
    w = n.params.get("weight")
    if not w or len(w) != 2:
        return ""
    return f"{w[1]}→{w[0]}" + ("" if "bias" in n.params else " no bias")


def _conv(n: Node) -> str:
    w = n.params.get("weight")
    if not w or len(w) < 3:
        return ""
    groups = n.attrs.get("groups") or 1
    transposed = n.op.startswith("conv_transpose")
    cin, cout = (w[0], w[1] * groups) if transposed else (w[1] * groups, w[0])
    text = f"{cin}→{cout} " + "x".join(str(k) for k in w[2:])
    stride = _first(n.attrs.get("stride", 1))
    if stride not in (1, [1], None):
        text += f"/{_spatial(stride)}"
    if groups > 1:
        text += " dw" if groups == cin and groups == cout else f" g{groups}"
    dilation = _first(n.attrs.get("dilation", 1))
    if dilation not in (1, [1], None):
        text += f" d{_spatial(dilation)}"
    return text


def _embedding(n: Node) -> str:
    w = n.params.get("weight")
    return f"{w[0]}×{w[1]}" if w and len(w) == 2 else ""


def _norm(n: Node) -> str:
    shape = n.attrs.get("normalized_shape")
    return _spatial(shape, "×") if shape else ""


def _batch_norm(n: Node) -> str:
    for role in ("weight", "running_mean"):
        if role in n.params:
            return str(n.params[role][0])
    return ""


def _group_norm(n: Node) -> str:
    return f"{n.attrs.get('num_groups')} groups"


def _sdpa(n: Node) -> str:
    bits = []
    if n.attrs.get("is_causal"):
        bits.append("causal")
    if n.attrs.get("dropout_p"):
        bits.append(f"p={_num(n.attrs['dropout_p'])}")
    if n.attrs.get("scale") is not None:
        bits.append(f"scale={_num(n.attrs['scale'])}")
    if n.attrs.get("enable_gqa"):
        bits.append("gqa")
    return " ".join(bits)


def _dim(n: Node) -> str:
    d = n.attrs.get("dim")
    text = "" if d is None else f"dim={_num(d)}"
    if n.attrs.get("keepdim"):
        text += " keep"
    return text


def _transpose(n: Node) -> str:
    return f"{n.attrs.get('dim0')}↔{n.attrs.get('dim1')}"


def _permute(n: Node) -> str:
    return _num(n.attrs.get("dims", []))


def _pool(n: Node) -> str:
    k = n.attrs.get("kernel_size")
    text = _spatial(k) if k is not None else ""
    s = n.attrs.get("stride")
    if s not in (None, [], 1, [1], [1, 1]):
        text += f"/{_spatial(_first(s))}"
    return text


def _adaptive_pool(n: Node) -> str:
    return "→" + _spatial(n.attrs.get("output_size", ""))


def _getitem(n: Node) -> str:
    return f"[{n.attrs.get('index')}]"


def _select(n: Node) -> str:
    return f"dim={n.attrs.get('dim')} [{n.attrs.get('index')}]"


def _none(n: Node) -> str:
    return ""


def _dropout(n: Node) -> str:
    return f"p={_num(n.attrs.get('p', 0.5))}"


def _cast(n: Node) -> str:
    return str(n.attrs.get("dtype") or "")


_DETAILS: dict[str, Callable[[Node], str]] = {
    "linear": _linear,
    "embedding": _embedding,
    "layer_norm": _norm,
    "rms_norm": _norm,
    "batch_norm": _batch_norm,
    "instance_norm": _batch_norm,
    "group_norm": _group_norm,
    "scaled_dot_product_attention": _sdpa,
    "transpose": _transpose,
    "permute": _permute,
    "getitem": _getitem,
    "dropout": _dropout,
    "to_dtype": _cast,
    "to_dtype_layout": _cast,
    "to_device": _cast,
    "select": _select,
    "view": _none,  # the shape is on the outgoing edge
    "reshape": _none,
    "_unsafe_view": _none,
    "expand": _none,
    "_to_copy": _cast,
}
for _name in (
    "conv1d",
    "conv2d",
    "conv3d",
    "conv1d_padding",
    "conv2d_padding",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
):
    _DETAILS[_name] = _conv
for _name in (
    "softmax",
    "log_softmax",
    "cat",
    "stack",
    "mean",
    "sum",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cumsum",
    "logsumexp",
    "max_dim",
    "min_dim",
    "var",
    "std",
    "flatten",
    "unsqueeze",
    "squeeze",
    "slice",
    "chunk",
    "split",
    "unbind",
    "prod",
    "all",
    "any",
):
    _DETAILS[_name] = _dim
for _name in ("avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d"):
    _DETAILS[_name] = _pool
for _name in (
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
):
    _DETAILS[_name] = _adaptive_pool


_QUIET_ATTRS = {"pin_memory", "layout", "device", "memory_format", "non_blocking", "copy", "train"}


def _generic(n: Node) -> str:
    """Non-default scalar attributes, at most two; constants of arithmetic ops as ``× 0.125``."""
    try:
        op = get_op(n.op)
    except UnknownOpError:
        return ""
    bits = []
    tensor_args = {a.name for a in op.args}
    for key, value in n.attrs.items():
        if key in tensor_args:
            if not isinstance(value, list) and n.op in _ARITH:
                bits.append(f"{_ARITH[n.op]} {_num(value)}")
            elif not isinstance(value, list):
                bits.append(f"{key}={_num(value)}")
            continue
        spec = op.attrs.get(key)
        if (spec is not None and value == spec.default) or key in _QUIET_ATTRS:
            continue
        if key == "alpha" and value == 1:
            continue
        if isinstance(value, (bool, int, float, str)) or (isinstance(value, list) and len(value) <= 4):
            bits.append(f"{key}={_num(value)}")
    return " ".join(bits[:2])


def op_detail(n: Node) -> str:
    """Key attributes of a node as a short text (``"64→128"``, ``"3→16 3x3/2"``, ``"dim=-1"``)."""
    fn = _DETAILS.get(n.op)
    try:
        text = fn(n) if fn else _generic(n)
    except Exception:  # a malformed attr must not stop the picture
        log.debug("no detail for node %s (%s)", n.id, n.op, exc_info=True)
        text = ""
    return text if len(text) <= 40 else text[:39] + "…"
