"""to_code(): readable PyTorch source of an ``nn.Module`` equivalent to an ArchGraph.

The emitted file imports ``torch`` (and ``base64`` when it carries tensor
values) and defines one ``nn.Module`` subclass:

- ``__init__`` builds the parameter/buffer tree that
  :class:`~mad.graph.module.ArchModule` builds (read off an ArchModule made on
  the ``meta`` device), so ``state_dict()`` has the same keys, in the same
  order, with the same shapes and dtypes, and
  ``load_state_dict(g.to_module().state_dict())`` works strictly. Standard
  layers are literal constructor calls (``nn.Linear(64, 256)``), scopes are
  ``nn.Module()`` containers (commented with the source class where the graph
  records it), numbered children sit in an ``nn.ModuleList``
  (``self.encoder.layer[0].attention``), free tensors are ``nn.Parameter`` /
  ``register_buffer``, tied weights are aliases (a head tied to an embedding
  is an ``nn.Linear`` whose weight is the embedding's), and buffers that no
  state dict restores get their values back (a literal, ``torch.arange(...)``,
  ``torch.ones(...).tril()``..., or base64 text decoded by a small helper at
  the end of the file).
- ``forward`` has one line per node, in topological order, grouped by scope
  under ``# scope`` comments and ending in ``# (shape)`` comments. Layers are
  called as modules; elementwise ops read as operators where that is exact
  (``a + b``, ``x * 0.5``, ``a @ b``); common ops as ``torch``/``F``/tensor
  methods (``x.view(2, 8, 4)``, ``F.gelu(x)``, ``torch.cat([a, b], dim=1)``,
  ``x[:, 1:5]``); every other op as ``torch.ops.aten.<packet>.<overload>(...)``
  with the arguments :func:`~mad.graph.ops.call.call_op` passes (recorded from
  ``call_op`` itself), which is the op and therefore always exact. Ops that
  are not torch ops have their run function copied into the file (or
  imported when it reads module globals).

On purpose, dropout ops and batch-norm layers follow the module's
``train()``/``eval()`` mode, as hand-written code does; in ``eval()`` mode
they agree with the graph captured in eval mode.
"""
from __future__ import annotations

import builtins
import dataclasses
import functools
import inspect
import keyword
import logging
import math
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .arch_graph import ArchGraph, GraphError, Node
from .module import ArchModule, Container, decode_tensor
from .ops import get_op
from .ops.call import call_op
from .ops.registry import PORT, OpDef
from .ops.values import decode_value

__all__ = ["to_code"]

log = logging.getLogger(__name__)

_INT_MAX = 2**62  # slice ends at or beyond this read as "to the end"
# what building a layer, inferring shapes or printing a readable form may raise; each has a fallback
_FAILURES = (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError)
_LITERAL_NUMEL = 16  # tensors up to this size are written out as literals
_B64_LINE = 112


# ===================================================================== literals
def _lit(v: Any) -> str:
    """Python source of a decoded attribute value."""
    if v is None or isinstance(v, bool):
        return repr(v)
    if isinstance(v, int):
        return repr(v)
    if isinstance(v, float):
        if math.isnan(v):
            return 'float("nan")'
        if math.isinf(v):
            return 'float("inf")' if v > 0 else 'float("-inf")'
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, torch.dtype):
        return "torch." + str(v).removeprefix("torch.")
    if isinstance(v, torch.memory_format):
        return "torch." + str(v).removeprefix("torch.")
    if isinstance(v, torch.layout):
        return "torch." + str(v).removeprefix("torch.")
    if isinstance(v, torch.device):
        return f'torch.device("{v}")'
    if isinstance(v, tuple):
        inner = ", ".join(_lit(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, list):
        return "[" + ", ".join(_lit(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_lit(k)}: {_lit(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as Python source")


def _ints(v: Any) -> str:
    """``[2, 8]`` -> ``2, 8`` (for ``x.view(2, 8)``); ``[]`` -> ``()``."""
    if isinstance(v, (list, tuple)):
        return ", ".join(_lit(x) for x in v) if v else "()"
    return _lit(v)


def _compact(v: Any) -> str:
    """An int list whose entries are equal as one int (``[3, 3]`` -> ``3``), else a tuple."""
    if isinstance(v, (list, tuple)):
        if len(v) >= 1 and all(x == v[0] for x in v):
            return _lit(v[0])
        return _lit(tuple(v))
    return _lit(v)


def _dim_arg(v: Any) -> str:
    """A reduction ``dim`` list: one entry as an int, several as a list."""
    if isinstance(v, list) and len(v) == 1:
        return _lit(v[0])
    return _lit(v)


# ===================================================================== argument binding
@dataclass
class _Arg:
    """One schema argument of a node, as Python source."""

    name: str
    tensor: bool
    given: bool
    expr: str | None = None
    value: Any = None  # decoded value for attrs and constant tensor args
    const: bool = False  # a tensor argument given as a number in attrs
    kwarg_only: bool = False
    kind: str = "one"


class _Bound:
    """The arguments of one node, ready to print (see :func:`_bind`)."""

    def __init__(self, op: OpDef, node: Node, args: dict[str, _Arg], device_expr: str,
                 order: list[str] | None = None, n_pos: int = 0) -> None:
        self.op = op
        self.node = node
        self.args = args
        self.device_expr = device_expr
        self.order = order or []  # argument names in the order call_op passes them
        self.n_pos = n_pos  # how many of them go positionally
        self.in_shapes: list[Any] = []  # shapes of the port inputs, where known
        self.inplace_graph = False  # the graph has in-place ops (aliasing becomes visible)

    def rank(self) -> int | None:
        """Rank of the first port input, if known."""
        shape = self.in_shapes[0] if self.in_shapes else None
        return len(shape) if isinstance(shape, list) and all(isinstance(d, int) for d in shape) else None

    def t(self, name: str) -> str:
        """Source of a tensor argument (a variable, a parameter path or a constant)."""
        a = self.args[name]
        return a.expr if a.given else "None"

    def tensor_var(self, name: str) -> bool:
        """True when the argument is a tensor (not a constant number, not absent)."""
        a = self.args.get(name)
        return bool(a and a.given and not a.const and a.expr != "None")

    def v(self, name: str) -> Any:
        """Decoded value of an attribute: the given one, else the schema default."""
        a = self.args.get(name)
        if a is not None and a.given:
            return a.value
        spec = self.op.attrs.get(name)
        return decode_value(spec.default, spec.type) if spec is not None else None

    def nondefault(self, name: str) -> bool:
        a = self.args.get(name)
        if a is None or not a.given or a.tensor:
            return False
        spec = self.op.attrs.get(name)
        if spec is None:
            return True
        if spec.type == "device" or (name == "pin_memory" and not a.value):
            return False
        return a.value != decode_value(spec.default, spec.type)

    def extra(self, *handled: str) -> bool:
        """True when an attribute outside ``handled`` is set to a non-default value."""
        return any(self.nondefault(n) for n in self.op.attrs if n not in handled)

    def kw(self, *names: str) -> list[str]:
        """``name=value`` for each of ``names`` set to a non-default value."""
        return [f"{n}={_lit(self.v(n))}" for n in names if self.nondefault(n)]

    def x(self) -> str:
        """Source of the first tensor argument."""
        return self.t(self.op.args[0].name)


class _Src:
    """Stands for a tensor in a recorded call: prints as its Python source."""

    def __init__(self, expr: str) -> None:
        self.expr = expr


class _Recorded(Exception):
    def __init__(self, args: tuple, kwargs: dict[str, Any]) -> None:
        super().__init__("recorded")
        self.args_, self.kwargs = args, kwargs


def _record(*args: Any, **kwargs: Any) -> None:
    raise _Recorded(args, kwargs)


_DEVICE = torch.device("meta")  # stands for "the device of the inputs" in a recorded call


def _src(v: Any, device_expr: str) -> str:
    if isinstance(v, _Src):
        return v.expr
    if isinstance(v, torch.device):
        return device_expr
    if isinstance(v, (list, tuple)) and any(isinstance(x, _Src) for x in v):
        return "[" + ", ".join(_src(x, device_expr) for x in v) + "]"
    return _lit(v)


def _bind(op: OpDef, node: Node, inputs: list[str], param_exprs: dict[str, str], device_expr: str) -> _Bound:
    """The arguments ``call_op`` would pass for this node, as Python source.

    ``call_op`` itself assigns ports, owned params and attrs to the op's
    arguments (with a run function that only records them), so the source
    always calls the op exactly as :class:`~mad.graph.module.ArchModule` does.
    """
    recorder = dataclasses.replace(op, fn=_record)
    try:
        call_op(recorder, node.attrs, [_Src(e) for e in inputs], {r: _Src(e) for r, e in param_exprs.items()},
                device=_DEVICE)
    except _Recorded as rec:
        pos, kws = rec.args_, rec.kwargs
    else:  # pragma: no cover - call_op always calls fn
        raise GraphError(f"to_code: node {node.id!r} ({node.op}): the op was not called")
    args: dict[str, _Arg] = {}
    given = dict(zip([n for n, _, _ in op.signature], pos)) | kws
    for name, is_tensor, kwarg_only in op.signature:
        kind = op.arg(name).kind if is_tensor else "attr"
        if name not in given:
            args[name] = _Arg(name, is_tensor, False, kwarg_only=kwarg_only, kind=kind)
            continue
        v = given[name]
        const = is_tensor and not isinstance(v, (_Src, list, tuple)) and v is not None
        value = None if isinstance(v, _Src) else v
        if isinstance(v, (list, tuple)) and any(isinstance(x, _Src) for x in v):
            value = [PORT if isinstance(x, _Src) else x for x in v]
        args[name] = _Arg(name, is_tensor, True, _src(v, device_expr), value=value, const=const,
                          kwarg_only=kwarg_only, kind=kind)
    return _Bound(op, node, args, device_expr, order=list(given), n_pos=len(pos))


def _aten_call(b: _Bound, head: str | None = None) -> str:
    """``torch.ops.aten.<packet>.<overload>(...)`` (or ``head(...)``) with the arguments call_op passes."""
    if head is None:
        namespace, packet, overload = str(b.op.target).split(".")[:3]
        head = f"torch.ops.{namespace}.{packet}.{overload}"
        if not packet.isidentifier() or keyword.iskeyword(packet):
            head = f'getattr(torch.ops.{namespace}, "{packet}").{overload}'
    pos = [b.args[n].expr for n in b.order[:b.n_pos]]
    kws = [f"{n}={b.args[n].expr}" for n in b.order[b.n_pos:]]
    return f"{head}({', '.join(pos + kws)})"


# ===================================================================== readable forms of common ops
# Each emitter returns source for the node, or None to fall back to the aten call.
# Every form here is checked against the aten op by tests/graph/test_codegen.py.
Emitter = Callable[[_Bound], "str | None"]
_EMITTERS: dict[str, Emitter] = {}


def _emits(*names: str) -> Callable[[Emitter], Emitter]:
    def deco(fn: Emitter) -> Emitter:
        for n in names:
            _EMITTERS[n] = fn
        return fn

    return deco


def _call(head: str, *parts: str) -> str:
    return f"{head}({', '.join(p for p in parts if p)})"


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


def _functional(fname: str, *attrs: str, positional: tuple[str, ...] = ()) -> Emitter:
    """``F.<fname>(x, <positional attrs>, <keyword attrs>)``; falls back when other attrs are set."""

    def emit(b: _Bound) -> str | None:
        if b.extra(*attrs, *positional):
            return None
        pos = [_lit(b.v(p)) for p in positional]
        return _call(f"F.{fname}", b.x(), *pos, *b.kw(*attrs))

    return emit


_EMITTERS.update({
    "relu": _functional("relu"),
    "relu6": _functional("relu6"),
    "gelu": _functional("gelu", "approximate"),
    "silu": _functional("silu"),
    "mish": _functional("mish"),
    "hardswish": _functional("hardswish"),
    "hardsigmoid": _functional("hardsigmoid"),
    "hardtanh": _functional("hardtanh", "min_val", "max_val"),
    "elu": _functional("elu", "alpha"),
    "selu": _functional("selu"),
    "celu": _functional("celu", "alpha"),
    "leaky_relu": _functional("leaky_relu", "negative_slope"),
    "softplus": _functional("softplus", "beta", "threshold"),
    "glu": _functional("glu", "dim"),
    "softmax": _functional("softmax", "dtype", positional=("dim",)),
    "log_softmax": _functional("log_softmax", "dtype", positional=("dim",)),
    "threshold": _functional("threshold", positional=("threshold", "value")),
    "one_hot": _functional("one_hot", "num_classes"),
    "pixel_shuffle": _functional("pixel_shuffle", positional=("upscale_factor",)),
    "pixel_unshuffle": _functional("pixel_unshuffle", positional=("downscale_factor",)),
    "adaptive_avg_pool1d": _functional("adaptive_avg_pool1d", positional=("output_size",)),
    "adaptive_avg_pool2d": _functional("adaptive_avg_pool2d", positional=("output_size",)),
    "adaptive_avg_pool3d": _functional("adaptive_avg_pool3d", positional=("output_size",)),
})


@_emits("adaptive_max_pool1d", "adaptive_max_pool2d")
def _adaptive_max(b: _Bound) -> str:
    return _call(f"F.{b.op.name}", b.x(), _compact(b.v("output_size")), "return_indices=True")


@_emits("dropout", "alpha_dropout")
def _dropout(b: _Bound) -> str:
    return _call(f"F.{b.op.name}", b.x(), f"p={_lit(b.v('p'))}", "training=self.training")


@_emits("feature_dropout")
def _feature_dropout(b: _Bound) -> str:
    return _call("torch.feature_dropout", b.x(), _lit(b.v("p")), "self.training")


def _pool(kind: str) -> Emitter:
    names = ("stride", "padding", "dilation", "ceil_mode", "count_include_pad", "divisor_override")

    def emit(b: _Bound) -> str | None:
        kws = [f"{n}={_compact(b.v(n))}" for n in names if n in b.op.attrs and b.nondefault(n)]
        if b.nondefault("stride") and not b.v("stride"):
            kws = [k for k in kws if not k.startswith("stride=")]
        return _call(f"F.{b.op.name}", b.x(), _compact(b.v("kernel_size")), *kws)

    return emit


for _name in ("avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d"):
    _EMITTERS[_name] = _pool(_name)


@_emits("upsample_nearest1d", "upsample_nearest2d", "upsample_linear1d", "upsample_bilinear2d",
        "upsample_bicubic2d")
def _upsample(b: _Bound) -> str | None:
    mode = {"nearest": "nearest", "linear": "linear", "bilinear": "bilinear", "bicubic": "bicubic"}[
        b.op.name.removeprefix("upsample_")[:-2]
    ]
    size, scales = b.v("output_size"), b.v("scale_factors")
    if (size is None) == (scales is None):
        return None
    parts = [f"size={_compact(size)}" if size is not None else f"scale_factor={_lit(tuple(scales))}"]
    parts.append(f'mode="{mode}"')
    if "align_corners" in b.op.attrs:
        parts.append(f"align_corners={_lit(b.v('align_corners'))}")
    return _call("F.interpolate", b.x(), *parts)


@_emits("scaled_dot_product_attention")
def _sdpa(b: _Bound) -> str:
    parts = [b.t("query"), b.t("key"), b.t("value")]
    if b.tensor_var("attn_mask"):
        parts.append(f"attn_mask={b.t('attn_mask')}")
    parts += b.kw("dropout_p", "is_causal", "scale", "enable_gqa")
    return _call("F.scaled_dot_product_attention", *parts)


# ----------------------------------------------------------------- reductions (tensor methods)
def _method(meth: str, positional: tuple[str, ...] = (), keywords: tuple[str, ...] = (),
            dims: tuple[str, ...] = ()) -> Emitter:
    """``x.<meth>(<positional attrs>, <keyword attrs>)``; falls back when other attrs are set."""

    def emit(b: _Bound) -> str | None:
        if b.extra(*positional, *keywords) or not b.tensor_var(b.op.args[0].name):
            return None
        pos = []
        for p in positional:
            if b.v(p) is None:
                return None
            pos.append(_dim_arg(b.v(p)) if p in dims else _lit(b.v(p)))
        extra_tensors = [b.t(a.name) for a in b.op.args[1:]]
        return _call(f"{b.x()}.{meth}", *extra_tensors, *pos, *b.kw(*keywords))

    return emit


_EMITTERS.update({
    "mean": _method("mean", ("dim",), ("keepdim", "dtype"), dims=("dim",)),
    "mean_all": _method("mean", (), ("dtype",)),
    "sum": _method("sum", ("dim",), ("keepdim", "dtype"), dims=("dim",)),
    "sum_all": _method("sum", (), ("dtype",)),
    "amax": _method("amax", ("dim",), ("keepdim",), dims=("dim",)),
    "amin": _method("amin", ("dim",), ("keepdim",), dims=("dim",)),
    "max_dim": _method("max", ("dim",), ("keepdim",)),
    "min_dim": _method("min", ("dim",), ("keepdim",)),
    "max_all": _method("max"),
    "min_all": _method("min"),
    "var": _method("var", ("dim",), ("correction", "keepdim"), dims=("dim",)),
    "std": _method("std", ("dim",), ("correction", "keepdim"), dims=("dim",)),
    "prod": _method("prod", ("dim",), ("keepdim", "dtype")),
    "logsumexp": _method("logsumexp", ("dim",), ("keepdim",), dims=("dim",)),
    "cumsum": _method("cumsum", ("dim",), ("dtype",)),
    "cumprod": _method("cumprod", ("dim",), ("dtype",)),
    "any": _method("any", ("dim",), ("keepdim",)),
    "all": _method("all", ("dim",), ("keepdim",)),
    "any_all": _method("any"),
    "all_all": _method("all"),
    "topk": _method("topk", ("k",), ("dim", "largest", "sorted")),
    "sort": _method("sort", (), ("dim", "descending")),
    "argsort": _method("argsort", (), ("dim", "descending")),
    "tril": _method("tril", (), ("diagonal",)),
    "triu": _method("triu", (), ("diagonal",)),
    "transpose": _method("transpose", ("dim0", "dim1")),
    "t": _method("t"),
    "unsqueeze": _method("unsqueeze", ("dim",)),
    "squeeze": _method("squeeze", ("dim",)),
    "squeeze_all": _method("squeeze"),
    "movedim": _method("movedim", ("source", "destination")),
    "narrow": _method("narrow", ("dim", "start", "length")),
    "unfold": _method("unfold", ("dimension", "size", "step")),
    "diagonal": _method("diagonal", (), ("offset", "dim1", "dim2")),
    "detach": _method("detach"),
    "contiguous": _method("contiguous"),
    "clone": _method("clone"),
    "lift_fresh_copy": _method("clone"),
    "expand_as": _method("expand_as"),
    "type_as": _method("type_as"),
    "masked_fill": _method("masked_fill", ("value",)),
    "masked_fill_tensor": _method("masked_fill"),
    "unbind": _method("unbind", ("dim",)),
    "split": _method("split", ("split_size",), ("dim",)),
    "split_with_sizes": _method("split", ("split_sizes",), ("dim",)),
    "chunk": _method("chunk", ("chunks",), ("dim",)),
    "tensor_split": _method("tensor_split", ("sections",), ("dim",)),
    "tensor_split_indices": _method("tensor_split", ("indices",), ("dim",)),
    "repeat_interleave": _method("repeat_interleave", ("repeats",), ("dim", "output_size")),
    "flip": _method("flip", ("dims",)),
    "roll": _method("roll", ("shifts",), ("dims",)),
    "argmax": _method("argmax", (), ("dim", "keepdim")),
    "argmin": _method("argmin", (), ("dim", "keepdim")),
    "clamp_min": _method("clamp_min", ("min",)),
    "clamp_max": _method("clamp_max", ("max",)),
})


@_emits("gather", "scatter", "scatter_add", "scatter_value", "index_select")
def _dim_first(b: _Bound) -> str | None:
    """``x.gather(dim, index)``: the dim goes before the tensor arguments."""
    if b.extra("dim", "value") or not b.tensor_var("self") or b.v("sparse_grad"):
        return None
    meth = b.op.name.removesuffix("_value")
    rest = [b.t(a.name) for a in b.op.args[1:]] + ([_lit(b.v("value"))] if "value" in b.op.attrs else [])
    return _call(f"{b.x()}.{meth}", _lit(b.v("dim")), *rest)


@_emits("view", "reshape", "_unsafe_view", "permute", "expand", "repeat")
def _shape_method(b: _Bound) -> str | None:
    attr = {"view": "size", "reshape": "shape", "_unsafe_view": "size", "permute": "dims", "expand": "size",
            "repeat": "repeats"}[b.op.name]
    if b.extra(attr) or not b.tensor_var("self"):
        return None
    meth = "reshape" if b.op.name == "_unsafe_view" else b.op.name
    return f"{b.x()}.{meth}({_ints(b.v(attr))})"


@_emits("squeeze_dims")
def _squeeze_dims(b: _Bound) -> str:
    return f"{b.x()}.squeeze({_lit(tuple(b.v('dim')))})"


@_emits("flatten")
def _flatten(b: _Bound) -> str:
    start, end = b.v("start_dim"), b.v("end_dim")
    return _call(f"{b.x()}.flatten", *([_lit(start)] if start or end != -1 else []),
                 *([_lit(end)] if end != -1 else []))


@_emits("unflatten")
def _unflatten(b: _Bound) -> str:
    return f"{b.x()}.unflatten({_lit(b.v('dim'))}, {_lit(tuple(b.v('sizes')))})"


@_emits("alias")
def _alias(b: _Bound) -> str:
    return b.x()


def _index_items(dim: int, rank: int | None, item: str) -> str:
    """Subscript that puts ``item`` at ``dim``: ``:, 1:5`` or ``..., :8`` (the last of 3+ dims)."""
    if rank is not None and dim < 0 and rank + dim >= 0:
        dim += rank
    if dim >= 0 and not (rank is not None and rank >= 3 and dim == rank - 1):
        return ", ".join([":"] * dim + [item])
    back = -1 if dim >= 0 else dim
    return ", ".join(["...", item] + [":"] * (-back - 1))


@_emits("slice")
def _slice(b: _Bound) -> str | None:
    if not b.tensor_var("self"):
        return None
    dim, start, end, step = b.v("dim"), b.v("start"), b.v("end"), b.v("step")
    s = "" if start in (None, 0) else _lit(start)
    e = "" if end is None or end >= _INT_MAX else _lit(end)
    item = f"{s}:{e}" + ("" if step in (None, 1) else f":{_lit(step)}")
    return f"{b.x()}[{_index_items(dim, b.rank(), item)}]"


@_emits("select")
def _select(b: _Bound) -> str | None:
    if not b.tensor_var("self"):
        return None
    return f"{b.x()}[{_index_items(b.v('dim'), b.rank(), _lit(b.v('index')))}]"


@_emits("index")
def _index(b: _Bound) -> str | None:
    spec = b.args["indices"].value or []
    if not b.tensor_var("self") or any(e not in (None, PORT) for e in spec) or PORT not in spec:
        return None
    exprs = b.args["indices"].expr[1:-1].split(", ")
    items = [exprs[i] if e == PORT else ":" for i, e in enumerate(spec)]
    while items and items[-1] == ":":
        items.pop()
    return f"{b.x()}[{', '.join(items)}]"


@_emits("cat", "stack")
def _cat(b: _Bound) -> str:
    dim = b.v("dim")
    return _call(f"torch.{b.op.name}", b.t("tensors"), f"dim={dim}" if dim else "")


@_emits("einsum")
def _einsum(b: _Bound) -> str | None:
    if b.v("path") is not None:
        return None
    return _call("torch.einsum", _lit(b.v("equation")), b.t("tensors")[1:-1])


@_emits("constant_pad_nd")
def _constant_pad(b: _Bound) -> str:
    return _call("F.pad", b.x(), _lit(b.v("pad")), *b.kw("value"))


@_emits("pad")
def _pad(b: _Bound) -> str:
    return _call("F.pad", b.x(), _lit(b.v("pad")), *b.kw("mode", "value"))


@_emits("to_dtype", "_to_copy", "to_dtype_layout", "to_device")
def _to(b: _Bound) -> str | None:
    """``x.to(dtype)``; ``copy=True`` where the op copies and an in-place op could tell the difference."""
    if b.extra("dtype", "layout", "copy", "device", "memory_format") or b.v("dtype") is None or b.v("non_blocking"):
        return None
    if b.v("layout") not in (None, torch.strided):
        return None
    copy = b.v("copy") is True or (b.op.name == "_to_copy" and b.inplace_graph)
    fmt = b.v("memory_format")
    return _call(f"{b.x()}.to", _lit(b.v("dtype")), "copy=True" if copy else "",
                 f"memory_format={_lit(fmt)}" if fmt not in (None, torch.preserve_format) else "")


_PURE_CREATION = {"arange": ("end",), "arange_start": ("start", "end"), "arange_start_step": ("start", "end", "step"),
                  "linspace": ("start", "end", "steps"), "eye": ("n",), "scalar_tensor": ("s",)}


@_emits(*_PURE_CREATION, "zeros", "ones", "empty", "full")
def _creation(b: _Bound) -> str | None:
    if b.v("layout") not in (None, torch.strided) or b.v("pin_memory"):
        return None
    if "memory_format" in b.op.attrs and b.v("memory_format") is not None:
        return None
    packet = str(b.op.target).split(".")[1]
    if b.op.name in _PURE_CREATION:
        pos = [_lit(b.v(n)) for n in _PURE_CREATION[b.op.name] if not (n == "step" and not b.args[n].given)]
    elif b.op.name == "full":
        pos = [_lit(tuple(b.v("size"))), _lit(b.v("fill_value"))]
    else:
        pos = [_ints(b.v("size"))]
    return _call(f"torch.{packet}", *pos, *b.kw("dtype"), f"device={b.device_expr}")


@_emits("new_zeros", "new_ones", "new_empty", "new_full")
def _new(b: _Bound) -> str | None:
    if b.extra("size", "fill_value", "dtype") or not b.tensor_var("self"):
        return None
    fill = [_lit(b.v("fill_value"))] if b.op.name == "new_full" else []
    return _call(f"{b.x()}.{b.op.name}", _lit(tuple(b.v("size"))), *fill, *b.kw("dtype"))


@_emits("vector_norm")
def _vector_norm(b: _Bound) -> str:
    return _call("torch.linalg.vector_norm", b.x(), *b.kw("ord", "dim", "keepdim", "dtype"))


# ----------------------------------------------------------------- layers in functional form (not module calls)
@_emits("linear")
def _f_linear(b: _Bound) -> str:
    return _call("F.linear", b.t("input"), b.t("weight"), b.t("bias") if b.tensor_var("bias") else "")


def _f_conv(fname: str, names: tuple[str, ...]) -> Emitter:
    def emit(b: _Bound) -> str:
        parts = [b.t("input"), b.t("weight")]
        if b.tensor_var("bias"):
            parts.append(b.t("bias"))
        return _call(f"F.{fname}", *parts, *[f"{n}={_compact(b.v(n)) if not isinstance(b.v(n), str) else _lit(b.v(n))}"
                                            for n in names if b.nondefault(n)])

    return emit


for _name, _fname, _names in (
    ("conv1d", "conv1d", ("stride", "padding", "dilation", "groups")),
    ("conv2d", "conv2d", ("stride", "padding", "dilation", "groups")),
    ("conv3d", "conv3d", ("stride", "padding", "dilation", "groups")),
    ("conv1d_padding", "conv1d", ("stride", "padding", "dilation", "groups")),
    ("conv2d_padding", "conv2d", ("stride", "padding", "dilation", "groups")),
    ("conv_transpose1d", "conv_transpose1d", ("stride", "padding", "output_padding", "groups", "dilation")),
    ("conv_transpose2d", "conv_transpose2d", ("stride", "padding", "output_padding", "groups", "dilation")),
    ("conv_transpose3d", "conv_transpose3d", ("stride", "padding", "output_padding", "groups", "dilation")),
):
    _EMITTERS[_name] = _f_conv(_fname, _names)


@_emits("layer_norm")
def _f_layer_norm(b: _Bound) -> str:
    parts = [b.t("input"), _lit(tuple(b.v("normalized_shape")))]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    parts += [f"bias={b.t('bias')}"] if b.tensor_var("bias") else []
    return _call("F.layer_norm", *parts, f"eps={_lit(b.v('eps'))}")


@_emits("rms_norm")
def _f_rms_norm(b: _Bound) -> str:
    parts = [b.t("input"), _lit(tuple(b.v("normalized_shape")))]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    return _call("F.rms_norm", *parts, *b.kw("eps"))


@_emits("group_norm")
def _f_group_norm(b: _Bound) -> str:
    parts = [b.t("input"), _lit(b.v("num_groups"))]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    parts += [f"bias={b.t('bias')}"] if b.tensor_var("bias") else []
    return _call("F.group_norm", *parts, f"eps={_lit(b.v('eps'))}")


@_emits("embedding")
def _f_embedding(b: _Bound) -> str | None:
    if b.nondefault("scale_grad_by_freq") or b.nondefault("sparse"):
        return None
    pad = b.v("padding_idx")
    pad_kw = f"padding_idx={pad}" if pad is not None and pad >= 0 else ""
    return _call("F.embedding", b.t("indices"), b.t("weight"), pad_kw)


@_emits("batch_norm")
def _f_batch_norm(b: _Bound) -> str:
    parts = [b.t("input"), b.t("running_mean"), b.t("running_var")]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    parts += [f"bias={b.t('bias')}"] if b.tensor_var("bias") else []
    parts += [f"training={_lit(b.v('training'))}", f"momentum={_lit(b.v('momentum'))}", f"eps={_lit(b.v('eps'))}"]
    return _call("F.batch_norm", *parts)


@_emits("instance_norm")
def _f_instance_norm(b: _Bound) -> str:
    parts = [b.t("input")]
    for name in ("running_mean", "running_var", "weight", "bias"):
        parts += [f"{name}={b.t(name)}"] if b.tensor_var(name) else []
    parts += [f"use_input_stats={_lit(b.v('use_input_stats'))}", f"momentum={_lit(b.v('momentum'))}",
              f"eps={_lit(b.v('eps'))}"]
    return _call("F.instance_norm", *parts)


@_emits("fft_fft", "fft_ifft", "fft_rfft", "fft_irfft")
def _fft(b: _Bound) -> str:
    return _call(f"torch.fft.{b.op.name.removeprefix('fft_')}", b.x(), *b.kw("n", "dim", "norm"))


def _inplace(b: _Bound) -> str | None:
    """``x.add_(y)``: an in-place op as the tensor method of the same name, arguments as call_op passes them."""
    if not b.tensor_var("self") or b.order[:1] != ["self"] or \
            any(isinstance(a.value, list) and None in a.value for a in b.args.values()):
        return None
    packet = str(b.op.target).split(".")[1]
    pos = [b.args[n].expr for n in b.order[1:b.n_pos]]
    kws = [f"{n}={b.args[n].expr}" for n in b.order[b.n_pos:] if b.nondefault(n) or b.args[n].tensor]
    return _call(f"{b.x()}.{packet}", *pos, *kws)


_EMITTERS["index_put"] = _inplace


@_emits("prelu")
def _f_prelu(b: _Bound) -> str:
    return _call("F.prelu", b.t("self"), b.t("weight"))


# ===================================================================== constructor source of standard layers
def _ctor_linear(m: nn.Linear) -> str:
    return _call("nn.Linear", str(m.in_features), str(m.out_features), "" if m.bias is not None else "bias=False")


def _ctor_conv(m: nn.modules.conv._ConvNd) -> str | None:
    if m.padding_mode != "zeros":
        return None
    n = len(m.kernel_size)
    parts = [str(m.in_channels), str(m.out_channels), _compact(m.kernel_size)]
    if tuple(m.stride) != (1,) * n:
        parts.append(f"stride={_compact(m.stride)}")
    if isinstance(m.padding, str):
        if m.padding != "valid":
            parts.append(f"padding={_lit(m.padding)}")
    elif tuple(m.padding) != (0,) * n:
        parts.append(f"padding={_compact(m.padding)}")
    if m.transposed and tuple(m.output_padding) != (0,) * n:
        parts.append(f"output_padding={_compact(m.output_padding)}")
    if m.groups != 1:
        parts.append(f"groups={m.groups}")
    if m.bias is None:
        parts.append("bias=False")
    if tuple(m.dilation) != (1,) * n:
        parts.append(f"dilation={_compact(m.dilation)}")
    return _call(f"nn.{type(m).__name__}", *parts)


def _ctor_layer_norm(m: nn.LayerNorm) -> str:
    shape = m.normalized_shape
    parts = [str(shape[0]) if len(shape) == 1 else _lit(tuple(shape))]
    if m.eps != 1e-5:
        parts.append(f"eps={_lit(m.eps)}")
    if not m.elementwise_affine:
        parts.append("elementwise_affine=False")
    elif m.bias is None:
        parts.append("bias=False")
    return _call("nn.LayerNorm", *parts)


def _ctor_rms_norm(m: nn.RMSNorm) -> str:
    shape = m.normalized_shape
    parts = [str(shape[0]) if len(shape) == 1 else _lit(tuple(shape))]
    if m.eps is not None:
        parts.append(f"eps={_lit(m.eps)}")
    if not m.elementwise_affine:
        parts.append("elementwise_affine=False")
    return _call("nn.RMSNorm", *parts)


def _ctor_group_norm(m: nn.GroupNorm) -> str:
    parts = [str(m.num_groups), str(m.num_channels)]
    if m.eps != 1e-5:
        parts.append(f"eps={_lit(m.eps)}")
    if not m.affine:
        parts.append("affine=False")
    elif m.bias is None:
        parts.append("bias=False")
    return _call("nn.GroupNorm", *parts)


def _ctor_batch_norm(m: nn.modules.batchnorm._BatchNorm) -> str:
    parts = [str(m.num_features)]
    if m.eps != 1e-5:
        parts.append(f"eps={_lit(m.eps)}")
    if m.momentum != 0.1:
        parts.append(f"momentum={_lit(m.momentum)}")
    if not m.affine:
        parts.append("affine=False")
    elif m.bias is None:
        parts.append("bias=False")
    if not m.track_running_stats:
        parts.append("track_running_stats=False")
    return _call(f"nn.{type(m).__name__}", *parts)


def _ctor_embedding(m: nn.Embedding) -> str | None:
    if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
        return None
    pad = "" if m.padding_idx is None else f"padding_idx={m.padding_idx}"
    return _call("nn.Embedding", str(m.num_embeddings), str(m.embedding_dim), pad)


def _ctor_prelu(m: nn.PReLU) -> str:
    return _call("nn.PReLU", "" if m.num_parameters == 1 else str(m.num_parameters))


_CTORS: dict[type, Callable[[Any], str | None]] = {
    nn.Linear: _ctor_linear,
    nn.Conv1d: _ctor_conv, nn.Conv2d: _ctor_conv, nn.Conv3d: _ctor_conv,
    nn.ConvTranspose1d: _ctor_conv, nn.ConvTranspose2d: _ctor_conv, nn.ConvTranspose3d: _ctor_conv,
    nn.LayerNorm: _ctor_layer_norm,
    nn.RMSNorm: _ctor_rms_norm,
    nn.GroupNorm: _ctor_group_norm,
    nn.BatchNorm1d: _ctor_batch_norm, nn.BatchNorm2d: _ctor_batch_norm, nn.BatchNorm3d: _ctor_batch_norm,
    nn.Embedding: _ctor_embedding,
    nn.PReLU: _ctor_prelu,
}


def _ctor(m: nn.Module) -> str | None:
    fn = _CTORS.get(type(m))
    return fn(m) if fn is not None else None


# ===================================================================== names
# names forward reads: an input may not take them (other builtins it may shadow)
_FORWARD_GLOBALS = {"self", "torch", "nn", "F", "float", "next", "base64", "_tensor_from_base64"}
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | _FORWARD_GLOBALS
_GENERIC = {"dense", "proj", "fc", "linear", "conv", "norm", "output", "out", "layer", "lin", "weight", "bias",
            "act", "mlp", "ffn", "block", "module", "net", "head", "layers", "attention", "attn", "dropout", "drop",
            "layer_norm", "ln", "activation", "convolution", "normalization", "bn", "batch_norm"}
_OP_STEMS = {
    "scaled_dot_product_attention": "attn", "_unsafe_view": "view", "_to_copy": "to", "to_dtype": "to",
    "to_dtype_layout": "to", "to_device": "to", "lift_fresh_copy": "clone", "getitem": "item",
    "constant_pad_nd": "pad", "split_with_sizes": "split", "tensor_split_indices": "split",
    "tensor_split": "split", "arange_start": "arange", "arange_start_step": "arange", "max_dim": "max",
    "min_dim": "min", "pow_scalar_base": "pow", "pow_tensor": "pow", "masked_fill_tensor": "masked_fill",
    "repeat_interleave_tensor": "repeat_interleave", "div_mode": "div", "rsub_tensor": "rsub",
}
_TUPLE_NAMES = {"max_dim": ("values", "indices"), "min_dim": ("values", "indices"), "sort": ("values", "indices"),
                "topk": ("values", "indices"), "var_mean": ("var", "mean")}


def _snake(s: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s)
    s = re.sub(r"\W+", "_", s).strip("_").lower()
    return s or "v"


def _scope_stem(path: str) -> str:
    """Variable stem of a module path: its last part (with the parent when that part says little),
    prefixed by the block it sits in (``encoder.layer.1.attention.self.query`` -> ``layer1_query``)."""
    parts = [p for p in path.split(".") if p]
    if not parts:
        return ""
    last = parts[-1]
    stem = last
    if (last.isdigit() or _snake(last) in _GENERIC or len(last) <= 2) and len(parts) > 1:
        parent = parts[-2]
        if parent.isdigit() and len(parts) > 2:
            return _snake(f"{parts[-3]}{parent}_{last}")
        stem = f"{parent}_{last}" if not last.isdigit() else f"{parent}{last}"
    if stem.isdigit():
        return ""  # a numbered child of the model itself: the op names it
    blocks = [i for i, p in enumerate(parts[:-2]) if p.isdigit() and i > 0]
    if blocks and not last.isdigit():
        i = blocks[-1]
        stem = f"{parts[i - 1]}{parts[i]}_{stem}"
    return _snake(stem)


def _op_stem(op: str) -> str:
    stem = _OP_STEMS.get(op, op)
    for suffix in ("_scalar", "_tensor", "_all"):
        stem = stem.removesuffix(suffix)
    return stem.lstrip("_") or "v"


class _Namer:
    """Unique Python identifiers for forward's variables."""

    def __init__(self, taken: set[str]) -> None:
        self.used = set(_RESERVED) | taken

    def __call__(self, stem: str) -> str:
        stem = _snake(stem)
        if not stem[0].isalpha():
            stem = "v_" + stem
        if stem in _RESERVED:
            stem += "_"
        if stem not in self.used:
            self.used.add(stem)
            return stem
        base = stem.rstrip("_") or stem
        i = 1
        while f"{base}_{i}" in self.used:
            i += 1
        self.used.add(f"{base}_{i}")
        return f"{base}_{i}"


def _class_name(name: str) -> str:
    parts = re.split(r"[^0-9A-Za-z]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not out or not out[0].isalpha():
        out = "Model" + out
    return out if not keyword.iskeyword(out) else out + "Model"


@functools.lru_cache(maxsize=4096)
def _safe_attr(owner_kind: str, name: str) -> bool:
    """``name`` can be read and written as ``module.name`` on a module of ``owner_kind``."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
        return False
    fresh = {"plain": nn.Module(), "list": nn.ModuleList(), "dict": nn.ModuleDict()}[owner_kind]
    return not hasattr(fresh, name)


# ===================================================================== the module tree
@dataclass
class _Mod:
    """One module of the tree read off a meta ArchModule."""

    path: str
    module: nn.Module
    kind: str  # "plain", "list", "dict" (containers) or "layer"
    expr: str = ""
    ctor: str | None = None
    children: dict[str, _Mod] = field(default_factory=dict)
    own: set[str] = field(default_factory=set)  # tensors the layer constructor makes
    dropped: list[str] = field(default_factory=list)  # constructor buffers the graph does not have
    dtype: torch.dtype | None = None


def _container_kind(module: nn.Module) -> str:
    """``list`` when the children are numbered (gaps become ``nn.Identity()``), ``dict`` when some
    child name cannot be an attribute, else ``plain``."""
    names = list(module._modules)
    if names and all(n.isdigit() and (n == "0" or not n.startswith("0")) for n in names):
        idx = sorted(int(n) for n in names)
        if idx[-1] + 1 <= max(2 * len(idx), len(idx) + 8):
            return "list"
    if any(not _safe_attr("plain", n) for n in names):
        return "dict"
    return "plain"


def _child_expr(parent: _Mod, name: str) -> str:
    if parent.kind == "list":
        return f"{parent.expr}[{name}]"
    if parent.kind == "dict":
        return f'{parent.expr}["{name}"]' if not _safe_attr("dict", name) else f"{parent.expr}.{name}"
    if parent.kind == "layer" or not _safe_attr(parent.kind, name):
        return f'{parent.expr}._modules["{name}"]'
    return f"{parent.expr}.{name}"


# ===================================================================== tensor values
def _value_expr(t: torch.Tensor) -> tuple[str, str | None]:
    """Source that rebuilds ``t`` exactly; second item is base64 text when a helper is needed."""
    dtype = t.dtype
    dt = "" if dtype == torch.float32 else f", dtype={_lit(dtype)}"
    shape = list(t.shape)
    n = t.numel()
    if dtype.is_complex:
        return "", _b64(t)
    if n == 0:
        return f"torch.empty({_ints(shape)}{dt})", None
    flat = t.reshape(-1)
    if n > 1 and dtype != torch.bool and torch.equal(flat, torch.arange(n, dtype=dtype)):
        base = f"torch.arange({n})" if dtype == torch.int64 else f"torch.arange({n}{dt})"
        return (base if len(shape) == 1 else f"{base}.view({_ints(shape)})"), None
    first = flat[0]
    if n > 1 and (bool((flat == first).all()) or (dtype.is_floating_point and bool(torch.isnan(flat).all()))):
        v = first.item()
        if v in (0, 1) and not (dtype.is_floating_point and math.copysign(1.0, v) < 0):
            return f"torch.{'zeros' if v == 0 else 'ones'}({_ints(shape)}{dt})", None
        return f"torch.full({_lit(tuple(shape))}, {_lit(v)}{dt})", None
    if len(shape) >= 2:
        ones = torch.ones(shape, dtype=dtype)
        for name in ("tril", "triu"):
            if torch.equal(t, getattr(ones, name)()):
                return f"torch.ones({_ints(shape)}{dt}).{name}()", None
    if n <= _LITERAL_NUMEL:
        values = _short_floats(t) if dtype in (torch.float32, torch.float16, torch.bfloat16) else t.tolist()
        implied = {torch.int64, torch.bool, torch.float32}
        return f"torch.tensor({_lit(values)}{'' if dtype in implied else dt})", None
    return "", _b64(t)


def _short_floats(t: torch.Tensor) -> Any:
    """``t.tolist()`` with each float written in the fewest digits that give back the same value."""
    flat = t.reshape(-1)
    out = []
    for v in flat.tolist():
        short = v
        if math.isfinite(v):
            for digits in range(1, 18):
                cand = float(f"{v:.{digits}g}")
                if torch.tensor(cand, dtype=t.dtype).item() == v:
                    short = cand
                    break
        out.append(short)
    return torch.tensor(out, dtype=torch.float64).reshape(t.shape).tolist() if t.dim() else out[0]


def _b64(t: torch.Tensor) -> str:
    from .module import encode_tensor

    return encode_tensor(t)["b64"]


_B64_HELPER = '''

def _tensor_from_base64(text: str, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor from its raw bytes, base64-encoded (buffers that no state dict restores)."""
    raw = bytearray(base64.b64decode(text))
    if not raw:
        return torch.empty(shape, dtype=dtype)
    if dtype == torch.bool:
        return torch.frombuffer(raw, dtype=torch.uint8).bool().reshape(shape).clone()
    return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()
'''


# ===================================================================== the writer
class _Writer:
    """Builds the source text of one graph; see :func:`to_code`."""

    def __init__(self, g: ArchGraph, class_name: str | None) -> None:
        self.g = g
        self.class_name = class_name or _class_name(g.name)
        if not self.class_name.isidentifier() or keyword.iskeyword(self.class_name):
            raise ValueError(f"to_code: class_name {self.class_name!r} is not a Python identifier")
        self.shapes = self._shapes()
        self.meta = ArchModule(g, device="meta")
        self.order = self.meta._order
        self.constants: list[str] = []  # module-level base64 constants
        self.uses_b64 = False
        self.extra_imports: list[str] = []
        self.extra_defs: dict[str, str] = {}  # run functions of ops that are not torch ops, copied in
        # every tensor of the tree: fqn -> (owning module, leaf name), and its source expression
        self.tensor_owner: dict[str, tuple[_Mod, str]] = {}
        self.tensor_expr: dict[str, str] = {}
        self.root = self._read_tree()
        self.aliases = self._aliases()
        self.module_calls = self._module_calls()
        self._scope_cache: dict[str, str] = {}
        self._values: dict[str, Any] | None = None
        self.inplace_graph = any(_is_inplace(get_op(n.op)) for n in g.nodes.values())

    # ------------------------------------------------------------ preparation
    def _shapes(self) -> dict[str, Any]:
        """Output shape/dtype of every node (inferred on a copy; recorded ones where inference fails)."""
        try:
            h = self.g.copy()
            h.infer()
            return {n.id: (n.shape, n.dtype) for n in h.nodes.values()}
        except _FAILURES as e:  # data-dependent graphs keep their recorded shapes
            log.debug("to_code: shape inference failed (%s); using recorded shapes", e)
            return {n.id: (n.shape, n.dtype) for n in self.g.nodes.values()}

    def _read_tree(self) -> _Mod:
        root = _Mod("", self.meta, "plain", expr="self")
        root.kind = _container_kind(self.meta)
        if root.kind == "dict":  # the class itself: numbered children make it an nn.ModuleList subclass
            root.kind = "plain"
        self._walk(root)
        return root

    def _walk(self, mod: _Mod) -> None:
        for leaf, t in list(mod.module._parameters.items()) + list(mod.module._buffers.items()):
            if t is None:
                continue
            fqn = f"{mod.path}.{leaf}" if mod.path else leaf
            self.tensor_owner[fqn] = (mod, leaf)
            if mod.kind == "layer" or _safe_attr(mod.kind, leaf):
                self.tensor_expr[fqn] = f"{mod.expr}.{leaf}"
            else:
                where = "_parameters" if leaf in mod.module._parameters else "_buffers"
                self.tensor_expr[fqn] = f'{mod.expr}.{where}["{leaf}"]'
        for name, child in mod.module._modules.items():
            path = f"{mod.path}.{name}" if mod.path else name
            c = _Mod(path, child, "plain")
            c.expr = _child_expr(mod, name)
            if isinstance(child, (Container, ArchModule)) or _ctor(child) is None:
                if not isinstance(child, (Container, ArchModule)):
                    log.warning("to_code: no constructor source for %s at %r; its tensors are written out one by "
                                "one and its node runs in functional form", type(child).__name__, path)
                c.kind = _container_kind(child)
            else:
                self._layer(c)
            mod.children[name] = c
            self._walk(c)

    def _layer(self, c: _Mod) -> None:
        """Fill constructor source, the tensors it makes and the buffers to drop for a layer module."""
        c.kind = "layer"
        ctor = _ctor(c.module)
        with torch.device("meta"):
            fresh = _reconstruct(c.module)
        fresh_tensors = {n: t for n, t in list(fresh._parameters.items()) + list(fresh._buffers.items())
                         if t is not None}
        have = {n for n, t in list(c.module._parameters.items()) + list(c.module._buffers.items()) if t is not None}
        c.own = have & set(fresh_tensors)
        c.dropped = [n for n in fresh_tensors if n not in have]
        dtypes = {c.module._parameters.get(n, c.module._buffers.get(n)).dtype for n in c.own
                  if fresh_tensors[n].dtype.is_floating_point}
        fresh_dtypes = {fresh_tensors[n].dtype for n in c.own if fresh_tensors[n].dtype.is_floating_point}
        if dtypes and dtypes != fresh_dtypes:
            c.dtype = next(iter(dtypes))
        c.ctor = ctor

    def _module_calls(self) -> dict[str, _Mod]:
        """Layer nodes that read as ``self.<path>(x)``: node id -> the module."""
        out: dict[str, _Mod] = {}
        for nid in self.order:
            node = self.g.nodes[nid]
            op = get_op(node.op)
            if op.module is None or not node.params or node.op == "parameter":
                continue
            fqns = {r: node.param_name(r) for r in node.params}
            mod = self._own_layer(node, op, fqns) or self._tied_layer(node, op, fqns)
            if mod is not None:
                out[nid] = mod
        return out

    def _own_layer(self, node: Node, op: OpDef, fqns: dict[str, str]) -> _Mod | None:
        """The standard layer that holds exactly this node's params, if calling it computes the node."""
        g = self.g
        prefixes = {f.rpartition(".")[0] for f in fqns.values()}
        if len(prefixes) != 1:
            return None
        prefix = prefixes.pop()
        mod = self._find(prefix)
        if mod is None or mod.kind != "layer" or any(fqns[r] != f"{prefix}.{r}" for r in fqns):
            return None
        if not set(fqns) <= mod.own or any(n not in fqns for n in mod.own if n in mod.module._parameters):
            return None
        if len(g.in_edges(node.id)) != 1 or not self._port_is_input(op, node) or not self._module_equivalent(op, node):
            return None
        try:
            with torch.device("meta"):
                built = op.module(node.attrs, node.params, [g.nodes[p].shape for p in g.predecessors(node.id)])
        except _FAILURES:
            return None
        if built is None or type(built) is not type(mod.module) or _ctor(built) != mod.ctor:
            return None
        return mod

    def _tied_layer(self, node: Node, op: OpDef, fqns: dict[str, str]) -> _Mod | None:
        """A layer whose weights are aliases of another layer's (an LM head tied to the embedding).

        ArchModule holds the aliases in a plain container at the node's scope; the code makes that
        container the standard layer (``nn.Linear(..., bias=False)``) and then ties its tensors, which
        keeps the state dict and reads like the source model.
        """
        mod = self._find(node.scope) if node.scope else None
        if mod is None or mod.kind != "plain" or mod.children or mod is self.root:
            return None
        leaves = [n for n, t in list(mod.module._parameters.items()) + list(mod.module._buffers.items())
                  if t is not None]
        if sorted(leaves) != sorted(fqns) or any(self.aliases.get(f"{node.scope}.{r}") != f for r, f in fqns.items()):
            return None
        if len(self.g.in_edges(node.id)) != 1 or not self._port_is_input(op, node) or \
                not self._module_equivalent(op, node):
            return None
        in_shapes = [self.g.nodes[p].shape for p in self.g.predecessors(node.id)]
        try:
            with torch.device("meta"):
                built = op.module(node.attrs, node.params, in_shapes)
        except _FAILURES:
            return None
        ctor = _ctor(built) if built is not None else None
        if ctor is None:
            return None
        made = {n: t for n, t in list(built._parameters.items()) + list(built._buffers.items()) if t is not None}
        if sorted(made) != sorted(fqns) or any(made[r].dtype != self._tensor(f"{node.scope}.{r}").dtype for r in made):
            return None
        mod.kind, mod.ctor, mod.own = "layer", ctor, set(made)
        return mod

    @staticmethod
    def _port_is_input(op: OpDef, node: Node) -> bool:
        """The node's one port feeds the layer's data argument; other tensor args are params or null."""
        data = "indices" if op.name == "embedding" else op.args[0].name
        for a in op.args:
            if a.name == data:
                if a.name in node.params or a.name in node.attrs:
                    return False
            elif a.name not in node.params and (a.kind != "optional" or node.attrs.get(a.name) is not None):
                return False
        return True

    @staticmethod
    def _module_equivalent(op: OpDef, node: Node) -> bool:
        """Attrs that the module call does not reproduce keep the functional form."""
        a = node.attrs
        if op.name == "batch_norm":
            return bool(a.get("training")) == ("running_mean" not in node.params)
        if op.name == "embedding":
            return not a.get("scale_grad_by_freq") and not a.get("sparse")
        return True

    def _find(self, path: str) -> _Mod | None:
        mod = self.root
        if not path:
            return mod
        for part in path.split("."):
            mod = mod.children.get(part)
            if mod is None:
                return None
        return mod

    # ------------------------------------------------------------ __init__
    def init_lines(self) -> list[str]:
        """Body of ``__init__``, starting with the ``super().__init__(...)`` call."""
        aliases = self.aliases
        if self.root.kind == "list":
            items = self._list_items(self.root)
            lines = ["super().__init__(["] + [f"    {it}," for it in items] + ["])"]
            lines += self._dropped_lines(self.root)
            self._emit_tensors(self.root, lines, aliases)
            self._emit_list_members(self.root, lines, aliases)
        else:
            lines = ["super().__init__()"]
            self._emit_tensors(self.root, lines, aliases)
            prev_container = False
            for child in self.root.children.values():
                container = child.kind != "layer" or bool(child.children)
                if (container or prev_container) and len(lines) > 1 and lines[-1] != "":
                    lines.append("")
                prev_container = container
                self._emit_module(child, lines, aliases)
        if aliases:
            lines += ["", "# tied weights: one tensor under several names"]
            for alias, target in aliases.items():
                owner, leaf = self.tensor_owner[alias]
                t = self._tensor(alias)
                src = self.tensor_expr[target]
                as_attr = leaf in owner.own if owner.kind == "layer" else _safe_attr(owner.kind, leaf)
                if isinstance(t, nn.Parameter):
                    if as_attr:
                        lines.append(f"{owner.expr}.{leaf} = {src}")
                    else:
                        lines.append(f'{owner.expr}.register_parameter("{leaf}", {src})')
                else:
                    lines.append(f'{owner.expr}.register_buffer("{leaf}", {src})')
        return lines

    def _aliases(self) -> dict[str, str]:
        """fqn -> fqn of the tensor registered first under another name (tied weights)."""
        seen: dict[int, str] = {}
        out: dict[str, str] = {}
        declared = {a: t for a, t in self.g.meta.get("aliases", {}).items() if a in self.tensor_owner}
        for fqn in self.tensor_owner:
            if fqn in declared and declared[fqn] in self.tensor_owner and \
                    self._tensor(fqn) is self._tensor(declared[fqn]):
                out[fqn] = declared[fqn]
        for fqn in self.tensor_owner:
            if fqn in out:
                continue
            key = id(self._tensor(fqn))
            if key in seen:
                out[fqn] = seen[key]
            else:
                seen[key] = fqn
        return out

    def _tensor(self, fqn: str) -> torch.Tensor:
        owner, leaf = self.tensor_owner[fqn]
        t = owner.module._parameters.get(leaf)
        return t if t is not None else owner.module._buffers[leaf]

    def _emit_module(self, mod: _Mod, lines: list[str], aliases: dict[str, str]) -> None:
        if mod.kind == "layer":
            ctor = mod.ctor + (f".to({_lit(mod.dtype)})" if mod.dtype is not None else "")
            lines.append(self._assign_module(mod, ctor))
            for leaf in mod.dropped:
                lines.append(f"{mod.expr}.{leaf} = None  # not in the source model's state dict")
        elif mod.kind == "list":
            items = self._list_items(mod)
            n = len(items)
            if all(it == "nn.Module()" for it in items):
                types = {self._source_type(c.path) for c in mod.children.values()}
                note = f"  # {types.pop()} blocks" if len(types) == 1 and None not in types else ""
                lines.append(self._assign_module(mod, f"nn.ModuleList([nn.Module() for _ in range({n})])") + note)
            elif sum(len(it) + 2 for it in items) < 80:
                lines.append(self._assign_module(mod, f"nn.ModuleList([{', '.join(items)}])"))
            else:
                lines.append(self._assign_module(mod, "nn.ModuleList(["))
                lines += [f"    {it}," for it in items]
                lines.append("])")
            lines += self._dropped_lines(mod)
        else:
            source_type = self._source_type(mod.path)
            note = f"  # {source_type}" if source_type else ""
            lines.append(self._assign_module(mod, _container_ctor(mod.kind)) + note)
        self._emit_tensors(mod, lines, aliases)
        if mod.kind == "list":
            self._emit_list_members(mod, lines, aliases)
        else:
            for c in mod.children.values():
                self._emit_module(c, lines, aliases)

    def _source_type(self, path: str) -> str | None:
        """Class name of the source model's module at ``path`` (``meta["scope_types"]``), if recorded."""
        types = self.g.meta.get("scope_types")
        name = types.get(path) if isinstance(types, dict) else None
        return name if isinstance(name, str) and name.isidentifier() else None

    @staticmethod
    def _list_items(mod: _Mod) -> list[str]:
        """Constructor source of each slot of an ``nn.ModuleList`` (``nn.Identity()`` in gaps)."""
        n = max([int(k) for k in mod.children] + [-1]) + 1
        items = []
        for i in range(n):
            c = mod.children.get(str(i))
            if c is None:
                items.append("nn.Identity()")
            elif c.kind == "layer":
                items.append(c.ctor + (f".to({_lit(c.dtype)})" if c.dtype is not None else ""))
            else:
                items.append(_container_ctor(c.kind))
        return items

    @staticmethod
    def _dropped_lines(mod: _Mod) -> list[str]:
        return [f"{c.expr}.{leaf} = None  # not in the source model's state dict"
                for c in mod.children.values() if c.kind == "layer" for leaf in c.dropped]

    def _emit_list_members(self, mod: _Mod, lines: list[str], aliases: dict[str, str]) -> None:
        """What goes inside the elements of a list (the list made the elements themselves)."""
        for c in mod.children.values():
            self._emit_tensors(c, lines, aliases)
            for cc in c.children.values():
                self._emit_module(cc, lines, aliases)

    def _assign_module(self, mod: _Mod, ctor: str) -> str:
        parent_path, _, name = mod.path.rpartition(".")
        parent = self._find(parent_path)
        assert parent is not None
        if parent.kind in ("plain",) and _safe_attr("plain", name):
            return f"{parent.expr}.{name} = {ctor}"
        if parent.kind == "dict":
            return f'{parent.expr}["{name}"] = {ctor}'
        return f'{parent.expr}.add_module("{name}", {ctor})'

    def _emit_tensors(self, mod: _Mod, lines: list[str], aliases: dict[str, str]) -> None:
        for leaf in list(mod.module._parameters) + list(mod.module._buffers):
            fqn = f"{mod.path}.{leaf}" if mod.path else leaf
            if fqn not in self.tensor_owner or fqn in aliases or leaf in mod.own:
                continue
            t = self._tensor(fqn)
            init = self._init_expr(fqn, t)
            if leaf in mod.module._parameters:
                grad = "" if t.requires_grad else ", requires_grad=False"
                value = f"nn.Parameter({init}{grad})"
                if mod.kind != "layer" and _safe_attr(mod.kind, leaf):
                    lines.append(f"{mod.expr}.{leaf} = {value}")
                else:
                    lines.append(f'{mod.expr}.register_parameter("{leaf}", {value})')
            else:
                persistent = "" if leaf not in mod.module._non_persistent_buffers_set else ", persistent=False"
                lines.append(f'{mod.expr}.register_buffer("{leaf}", {init}{persistent})')

    def _init_expr(self, fqn: str, t: torch.Tensor) -> str:
        """Source of a tensor's initial value: its stored value, else ArchModule's initialisation rule."""
        value = self._stored_value(fqn)
        if value is not None:
            expr, b64 = _value_expr(value)
            if b64 is None:
                return expr
            self.uses_b64 = True
            const = f"_{_snake(fqn).upper()}"
            while any(c.startswith(f"{const} =") for c in self.constants):
                const += "_"
            chunks = [b64[i:i + _B64_LINE] for i in range(0, len(b64), _B64_LINE)] or [""]
            body = "\n".join(f'    "{c}"' for c in chunks)
            self.constants.append(f"{const} = (\n{body}\n)")
            return f"_tensor_from_base64({const}, {_lit(value.dtype)}, {_lit(tuple(value.shape))})"
        shape = _ints(list(t.shape))
        dt = "" if t.dtype == torch.float32 else f", dtype={_lit(t.dtype)}"
        leaf = fqn.rsplit(".", 1)[-1]
        if not t.dtype.is_floating_point or self._is_extra(fqn):
            return f"torch.zeros({shape}{dt})"
        if "running_var" in leaf or (t.dim() == 1 and leaf == "weight"):
            return f"torch.ones({shape}{dt})"
        if t.dim() <= 1:
            return f"torch.zeros({shape}{dt})"
        std = 1.0 / math.sqrt(max(math.prod(t.shape[1:]), 1))
        return f"torch.randn({shape}{dt}) * {std:.4g}"

    def _stored_value(self, fqn: str) -> torch.Tensor | None:
        if self._values is None:
            self._values = {n.param_name("data"): n.attrs["value"] for n in self.g.nodes.values()
                            if n.op == "parameter" and n.attrs.get("value") is not None}
        value = self._values.get(fqn)
        return decode_tensor(value) if value is not None else None

    def _is_extra(self, fqn: str) -> bool:
        return any(e.get("name") == fqn for e in self.g.meta.get("extra_state", []))

    # ------------------------------------------------------------ forward
    def forward_lines(self, arg_names: dict[str, str]) -> list[str]:
        """Body of ``forward``: one line per node (inputs are arguments, parameters are inlined as
        ``self.<path>``, getitems of a tuple are unpacked), then the return of ``output_kind``."""
        g = self.g
        namer = _Namer(set(arg_names.values()))
        env: dict[str, str] = {}
        unpacked: dict[str, list[str]] = {}
        getitems: dict[str, list[str]] = {}
        for nid in self.order:
            if g.nodes[nid].op == "getitem":
                getitems.setdefault(g.predecessors(nid)[0], []).append(nid)
        device_expr = self._device_expr(arg_names)
        lines: list[str] = []
        scope = ""
        for nid in self.order:
            node = g.nodes[nid]
            op = get_op(node.op)
            if node.op == "input":
                env[nid] = arg_names[node.attrs["name"]]
                continue
            if node.op == "parameter":
                env[nid] = self.tensor_expr[self.meta._param_refs[nid]["data"]]
                continue
            if node.op == "getitem":
                src = g.predecessors(nid)[0]
                if src in unpacked:
                    env[nid] = unpacked[src][node.attrs["index"]]
                    continue
                expr = f"{env[src]}[{node.attrs['index']}]"
            else:
                expr = self._expr(node, op, [env[p] for p in g.predecessors(nid)], device_expr)
            shown = self._display_scope(node.scope)
            if shown != scope:
                scope = shown
                if lines:
                    lines.append("")
                cls = self._source_type(scope)
                lines.append((f"# {scope}" if scope else "# (top level)") + (f" ({cls})" if cls and scope else ""))
            shape, dtype = self.shapes.get(nid, (None, None))
            count = len(shape) if op.multi_output and isinstance(shape, list) else None
            users = getitems.get(nid, [])
            if count and users and len(g.successors(nid)) == len(users) and \
                    all(0 <= g.nodes[u].attrs["index"] < count for u in users):
                names = ["_"] * count
                stems = _TUPLE_NAMES.get(node.op)
                for u in users:
                    i = g.nodes[u].attrs["index"]
                    if names[i] == "_":
                        names[i] = namer(stems[i] if stems and i < len(stems) else f"{self._stem(node, op)}_{i}")
                unpacked[nid] = names
                target = ", ".join(names) + ("," if count == 1 else "")
                lines.append(f"{target} = {expr}" + _shape_comment([s for s, nm in zip(shape, names) if nm != "_"],
                                                                     _pick(dtype, names)))
                continue
            var = namer(self._stem(node, op))
            env[nid] = var
            lines.append(f"{var} = {expr}" + ("" if op.multi_output else _shape_comment(shape, dtype)))
        outs = [env[o] for o in g.outputs]
        lines.append("")
        if g.output_kind == "tensor":
            lines.append(f"return {outs[0]}")
        elif g.output_kind == "dict":
            items = ", ".join(f"{_lit(k)}: {v}" for k, v in zip(g.output_keys or [], outs))
            lines.append(f"return {{{items}}}")
        else:
            lines.append(f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        return lines

    def _device_expr(self, arg_names: dict[str, str]) -> str:
        if self.g.inputs:
            return f"{arg_names[self.g.inputs[0].name]}.device"
        if any(True for _ in self.meta.parameters()):
            return "next(self.parameters()).device"
        return 'torch.device("cpu")'

    def _display_scope(self, scope: str) -> str:
        """The deepest container on ``scope``'s path: ops of a layer or a parameter-free leaf
        module (an activation, a dropout) are listed with the module that holds it."""
        if scope not in self._scope_cache:
            parts = scope.split(".") if scope else []
            best = ""
            for i in range(1, len(parts) + 1):
                mod = self._find(".".join(parts[:i]))
                if mod is None or mod.kind == "layer":
                    break
                best = mod.path
            self._scope_cache[scope] = best
        return self._scope_cache[scope]

    def _stem(self, node: Node, op: OpDef) -> str:
        if node.id in self.module_calls:
            path = self.module_calls[node.id].path
            return _scope_stem(path) or f"{_op_stem(node.op)}_{path}"
        if node.scope and ((op.category == "layer" and node.params) or self._display_scope(node.scope) != node.scope):
            stem = _scope_stem(node.scope)
            return stem or (f"{_op_stem(node.op)}_{node.scope}" if node.scope.isdigit() else _op_stem(node.op))
        return _op_stem(node.op)

    def _expr(self, node: Node, op: OpDef, inputs: list[str], device_expr: str) -> str:
        if node.id in self.module_calls:
            return f"{self.module_calls[node.id].expr}({inputs[0]})"
        if not op.signature:  # call_op runs fn(*inputs, **attrs)
            return _call(self._external_fn(node, op), *inputs, *[f"{k}={_lit(v)}" for k, v in node.attrs.items()])
        params = {r: self.tensor_expr[f] for r, f in self.meta._param_refs.get(node.id, {}).items()}
        b = _bind(op, node, inputs, params, device_expr)
        if not isinstance(op.target, torch._ops.OpOverload):
            return _aten_call(b, head=self._external_fn(node, op))
        b.in_shapes = [self.shapes.get(p, (None, None))[0] for p in self.g.predecessors(node.id)]
        b.inplace_graph = self.inplace_graph
        emit = _EMITTERS.get(node.op)
        if emit is not None:
            try:
                expr = emit(b)
            except _FAILURES as e:  # a form that does not fit these attrs: the aten call is always right
                log.debug("to_code: readable form of %s failed (%s); using the aten call", node.id, e)
                expr = None
            if expr is not None:
                return expr
        return _aten_call(b)

    def _external_fn(self, node: Node, op: OpDef) -> str:
        """Name of the run function of an op that is not a torch op, in the file.

        A module-level function that reads no globals of its module (``torch`` aside) is copied into
        the file, which stays self-contained; any other importable function is imported.
        """
        fn = op.fn
        alias = f"_{_snake(op.name)}_op"
        if alias in self.extra_defs:
            return alias
        mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        code = getattr(fn, "__code__", None)
        try:
            src = textwrap.dedent(inspect.getsource(fn)) if code is not None and qual.isidentifier() else ""
        except (OSError, TypeError):
            src = ""
        module_globals = {n for n in (code.co_names if code else ()) if n in getattr(fn, "__globals__", {})}
        copyable = src.startswith(f"def {fn.__name__}(") and not fn.__closure__
        if copyable and not module_globals - {"torch", "nn", "F"}:
            self.extra_defs[alias] = src.replace(f"def {fn.__name__}(", f"def {alias}(", 1).rstrip()
            return alias
        if not mod or mod == "__main__" or not qual.isidentifier():
            raise GraphError(f"to_code: node {node.id!r} ({node.op}): the op is not a torch op and its function "
                             f"{qual or fn!r} can be neither copied nor imported; register the op with a "
                             "module-level function")
        line = f"from {mod} import {qual} as {alias}"
        if line not in self.extra_imports:
            log.info("to_code: node %r (%s) calls %s.%s; the file imports it", node.id, node.op, mod, qual)
            self.extra_imports.append(line)
        return alias


def _is_inplace(op: OpDef) -> bool:
    """The op writes into its first argument (``add_``, ``relu_``...)."""
    packet = str(op.target).split(".")[1] if op.target is not None else ""
    return packet.endswith("_") and not packet.startswith("_")


def _register_inplace() -> None:
    from .ops import op_names

    for name in op_names():
        op = get_op(name)
        if _is_inplace(op) and op.args and op.args[0].name == "self":
            _EMITTERS.setdefault(name, _inplace)


def _container_ctor(kind: str) -> str:
    return {"plain": "nn.Module()", "dict": "nn.ModuleDict()", "list": "nn.ModuleList()"}[kind]


def _reconstruct(m: nn.Module) -> nn.Module:
    """Build the layer again from its constructor arguments (mirrors the _ctor_* printers)."""
    if isinstance(m, nn.Linear):
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if isinstance(m, nn.modules.conv._ConvNd):
        kw = {"stride": m.stride, "padding": m.padding, "dilation": m.dilation, "groups": m.groups,
              "bias": m.bias is not None}
        if m.transposed:
            kw["output_padding"] = m.output_padding
        return type(m)(m.in_channels, m.out_channels, m.kernel_size, **kw)
    if isinstance(m, nn.LayerNorm):
        return nn.LayerNorm(m.normalized_shape, eps=m.eps, elementwise_affine=m.elementwise_affine,
                            bias=m.bias is not None or not m.elementwise_affine)
    if isinstance(m, nn.RMSNorm):
        return nn.RMSNorm(m.normalized_shape, eps=m.eps, elementwise_affine=m.elementwise_affine)
    if isinstance(m, nn.GroupNorm):
        return nn.GroupNorm(m.num_groups, m.num_channels, eps=m.eps, affine=m.affine,
                            bias=m.bias is not None or not m.affine)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return type(m)(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                       track_running_stats=m.track_running_stats, bias=m.bias is not None or not m.affine)
    if isinstance(m, nn.Embedding):
        return nn.Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx)
    if isinstance(m, nn.PReLU):
        return nn.PReLU(m.num_parameters)
    raise GraphError(f"to_code: cannot rebuild layer {type(m).__name__}")


def _shape_comment(shape: Any, dtype: Any) -> str:
    if shape is None:
        return ""
    if shape and isinstance(shape[0], list):
        parts = [_shape_text(s) for s in shape]
        return "  # " + ", ".join(parts)
    dt = f" {dtype}" if isinstance(dtype, str) and dtype != "float32" else ""
    return f"  # {_shape_text(shape)}{dt}"


def _shape_text(shape: list) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _pick(dtype: Any, names: list[str]) -> Any:
    if isinstance(dtype, list):
        return [d for d, n in zip(dtype, names) if n != "_"]
    return dtype


# ===================================================================== entry point
_register_inplace()

def to_code(g: ArchGraph, class_name: str | None = None) -> str:
    """Readable PyTorch source of an ``nn.Module`` class that computes ``g``.

    Args:
        g: the graph (validated; shapes are inferred on a copy for comments).
        class_name: name of the class; default: the graph name in CamelCase.

    Returns:
        The text of a Python file that imports ``torch`` and defines the
        class. Its ``state_dict()`` has the keys and shapes of
        ``g.to_module().state_dict()``, so that state dict loads strictly,
        and with it ``forward(*inputs)`` returns what ``g.to_module()``
        returns (in ``eval()`` mode; see the module docstring).

    Example:
        >>> src = g.to_code()
        >>> ns = {}
        >>> exec(compile(src, "mlp.py", "exec"), ns)  # or write it to a file and import it
        >>> m = ns["Mlp"]()
        >>> m.load_state_dict(g.to_module().state_dict())
    """
    w = _Writer(g, class_name)
    arg_names: dict[str, str] = {}
    taken: set[str] = set()
    for s in g.inputs:
        name = s.name if s.name.isidentifier() else _snake(s.name)
        if not name[0].isalpha() and name[0] != "_":
            name = "x_" + name
        while name in taken or name in _FORWARD_GLOBALS or keyword.iskeyword(name):
            name += "_"
        taken.add(name)
        arg_names[s.name] = name
    init = w.init_lines()
    fwd = w.forward_lines(arg_names)
    return _assemble(g, w, arg_names, init, fwd)


def _assemble(g: ArchGraph, w: _Writer, arg_names: dict[str, str], init: list[str], fwd: list[str]) -> str:
    """The file: docstring, imports, the class; base64 constants and their decoder go last."""
    out: list[str] = [f'"""{w.class_name}: PyTorch module generated from the architecture graph {g.name!r}.', ""]
    if g.source:
        out += [f"Source: {g.source}.", ""]
    out += ["Its state_dict() matches ArchGraph.to_module(); load weights with load_state_dict().", '"""', ""]
    if w.uses_b64:
        out += ["import base64", ""]
    out += ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", *w.extra_imports]
    for src in w.extra_defs.values():
        out += ["", "", src]
    base = "nn.ModuleList" if w.root.kind == "list" else "nn.Module"
    out += ["", "", f"class {w.class_name}({base}):"]
    out += [f'    """The {g.name!r} architecture ({len(g.nodes)} graph nodes).', "", "    Shapes:"]
    out += [f"        {arg_names[s.name]}: {_shape_text(list(s.shape))} {s.dtype}" for s in g.inputs]
    outs = []
    for o in g.outputs:
        shape = w.shapes.get(o, (None, None))[0]
        single = isinstance(shape, list) and not (shape and isinstance(shape[0], list))
        outs.append(_shape_text(shape) if single else "?")
    kind = {"tensor": "a tensor", "tuple": "a tuple", "dict": "a dict"}[g.output_kind]
    keys = f" with keys {', '.join(g.output_keys)}" if g.output_kind == "dict" and g.output_keys else ""
    out += [f"        output: {kind}{keys}: {', '.join(outs)}", '    """', ""]
    out.append("    def __init__(self) -> None:")
    out += [("        " + ln) if ln else "" for ln in init]
    out.append("")
    out.append(f"    def forward({', '.join(['self', *arg_names.values()])}):")
    out += [("        " + ln) if ln else "" for ln in fwd]
    if w.uses_b64:
        out += ["", "", "# Values of buffers that no state dict restores, as raw bytes in base64."]
        out.append(_B64_HELPER.strip("\n"))
        for const in w.constants:
            out += ["", "", const]
    return "\n".join(out) + "\n"
