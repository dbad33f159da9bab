"""Readable forms of arithmetic, comparison and bitwise ops (``a + b``, ``x @ w``) and ``torch.<func>`` calls."""
from __future__ import annotations

import torch

from ..binding import _Bound
from ..literals import _call, _lit
from .registry import _EMITTERS, Emitter, _emits


def _binary(sym: str, func: str, swap_ok: bool) -> Emitter:
    def emit(b: _Bound) -> str | None:
        a, c = b.args["self"], b.args["other"]
        if a.const and c.const:
            return None
        if "alpha" in b.args and b.nondefault("alpha"):
            return _call(func, a.expr, c.expr, *b.kw("alpha")) if not a.const else None
        if a.const and not swap_ok:
            return None
        return f"{a.expr} {sym} {c.expr}"

    return emit


for _name, _sym, _func, _swap in (
    ("add", "+", "torch.add", True),
    ("sub", "-", "torch.sub", True),
    ("mul", "*", "torch.mul", True),
    ("div", "/", "torch.div", False),
):
    _EMITTERS[_name] = _binary(_sym, _func, _swap)
for _name, _sym in (
    ("remainder", "%"), ("remainder_tensor", "%"), ("floor_divide", "//"), ("matmul", "@"),
    ("pow", "**"), ("pow_tensor", "**"), ("and", "&"), ("or", "|"), ("xor", "^"),
    ("eq_scalar", "=="), ("eq_tensor", "=="), ("ne_scalar", "!="), ("ne_tensor", "!="),
    ("lt_scalar", "<"), ("lt_tensor", "<"), ("le_scalar", "<="), ("le_tensor", "<="),
    ("gt_scalar", ">"), ("gt_tensor", ">"), ("ge_scalar", ">="), ("ge_tensor", ">="),
):
    def _op_emit(b: _Bound, sym=_sym) -> str | None:
        names = [a.name for a in b.op.args] + [n for n in b.op.attrs if n in ("other", "exponent")]
        lhs, rhs = b.args[names[0]], b.args[names[1]]
        if lhs.const:
            return None
        return f"{lhs.expr} {sym} {rhs.expr}"

    _EMITTERS[_name] = _op_emit


@_emits("rsub", "rsub_tensor")
def _rsub(b: _Bound) -> str | None:
    if b.nondefault("alpha") or b.args["self"].const:
        return None
    return f"{b.t('other')} - {b.t('self')}"


@_emits("pow_scalar_base")
def _pow_base(b: _Bound) -> str | None:
    base = b.t("self")
    return f"({base}) ** {b.t('exponent')}" if base.startswith("-") else f"{base} ** {b.t('exponent')}"


@_emits("div_mode")
def _div_mode(b: _Bound) -> str | None:
    if b.args["self"].const:
        return None
    return _call("torch.div", b.t("self"), b.t("other"), *b.kw("rounding_mode"))


@_emits("neg")
def _neg(b: _Bound) -> str:
    return f"-{b.x()}"


@_emits("bitwise_not")
def _invert(b: _Bound) -> str:
    return f"~{b.x()}"


_TORCH_FUNCS = (
    "abs", "exp", "exp2", "expm1", "log", "log2", "log1p", "sqrt", "rsqrt", "reciprocal", "sin", "cos", "tan",
    "atan", "asin", "acos", "sinh", "cosh", "erf", "erfinv", "sign", "sgn", "floor", "ceil", "round", "trunc",
    "frac", "square", "sigmoid", "tanh", "isnan", "isinf", "isfinite", "logical_not", "logical_and", "logical_or",
    "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "maximum", "minimum", "atan2", "mm", "bmm",
    "outer", "dot", "where", "fmod", "fmod_tensor", "where_scalar_self", "where_scalar_other", "where_scalars",
    "lerp", "lerp_tensor", "addcmul", "addcdiv", "addmm", "baddbmm", "nan_to_num", "round_decimals", "clamp",
    "clamp_tensor", "diag_embed", "var_mean", "repeat_interleave_tensor", "zeros_like", "ones_like",
    "full_like", "empty_like", "max_other", "min_other", "view_as_real", "view_as_complex", "bucketize_tensor",
    "searchsorted_tensor", "diff",
)


def _torch_func(b: _Bound) -> str | None:
    """``torch.<packet>(tensors and scalar operands..., other attrs as keywords)``."""
    if b.args[b.op.args[0].name].const:
        return None
    if b.op.creates and (b.extra("dtype", "fill_value", "device") or b.v("layout") not in (None, torch.strided)):
        return None
    packet = str(b.op.target).split(".")[1]
    pos, kws = [], []
    for name, is_tensor, _ in b.op.signature:
        a = b.args[name]
        if is_tensor and a.kind == "optional":
            kws += [f"{name}={a.expr}"] if b.tensor_var(name) else []
        elif is_tensor or name in _OPERANDS:
            pos.append(a.expr if a.given else _lit(b.v(name)))
        elif b.nondefault(name):
            kws.append(f"{name}={a.expr}")
    return _call(f"torch.{packet}", *pos, *kws)


_OPERANDS = ("self", "other", "fill_value", "exponent")


for _name in _TORCH_FUNCS:
    _EMITTERS[_name] = _torch_func
