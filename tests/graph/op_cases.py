"""Sample applications of every op of the vocabulary, for the conformance tests.

:data:`CASES` maps an op name to a builder that returns a list of
:class:`OpCase` (usually one). A case names its tensor arguments by their
aten schema names:

- ``inputs``: arguments fed through ports (a tensor, or a list of tensors
  for list arguments such as ``cat``'s ``tensors``);
- ``params``: arguments the node owns as parameters (``weight``, ``bias``...);
- ``attrs``: the node's JSON attrs: non-tensor arguments, constant numbers
  for tensor arguments, and for list arguments the entries (``"%"`` for a
  port); when a list argument appears in ``inputs`` without attrs, every
  entry is a port.

An optional tensor argument in ``inputs`` is marked ``"%"`` in the node's
attrs (fed by a port); one a case leaves out is null.

Builders draw from a generator reset by :func:`build_cases`, so a case's
tensors are the same whatever order tests run in.

Example:
    >>> [case] = build_cases("sub")
    >>> sorted(case.inputs)
    ['other', 'self']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = ["OpCase", "CASES", "build_cases", "STRUCTURAL"]

# ops whose one-op graph is not "inputs -> op": built by hand in the tests
STRUCTURAL = ("input", "parameter", "getitem")


@dataclass
class OpCase:
    """One sample application of an op.

    Args:
        op: vocabulary name.
        inputs: schema name -> tensor (or list of tensors) fed through ports.
        attrs: node attrs (JSON values).
        params: role -> tensor owned by the node.
        check_values: compare values with the eager aten call; False for random or
            uninitialised outputs (dropout in train mode, ``empty*``), where
            only shape and dtype are compared.
        tag: distinguishes several cases of one op in test ids.
    """

    op: str
    inputs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, torch.Tensor] = field(default_factory=dict)
    check_values: bool = True
    tag: str = ""

    @property
    def id(self) -> str:
        return f"{self.op}-{self.tag}" if self.tag else self.op


_GEN = torch.Generator()


def _randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=_GEN, dtype=dtype)


def _pos(*shape: int) -> torch.Tensor:
    """Values in [0.5, 1.5): inside the domain of log, sqrt, reciprocal."""
    return torch.rand(shape, generator=_GEN) + 0.5


def _unit(*shape: int) -> torch.Tensor:
    """Values in (-0.9, 0.9): inside the domain of asin, acos, erfinv."""
    return torch.rand(shape, generator=_GEN) * 1.8 - 0.9


def _ints(low: int, high: int, *shape: int) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=_GEN)


def _bools(*shape: int) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=_GEN).bool()


def _special(*shape: int) -> torch.Tensor:
    """Normal values with a nan, an inf and a -inf in the first row."""
    x = _randn(*shape)
    x.view(-1)[:3] = torch.tensor([float("nan"), float("inf"), float("-inf")])
    return x


def _complex(*shape: int) -> torch.Tensor:
    return torch.complex(_randn(*shape), _randn(*shape))


def _c(op: str, check_values: bool = True, tag: str = "", params: dict | None = None, **kw: Any) -> OpCase:
    """Short form: tensor arguments as keywords, ``attrs`` as a keyword dict."""
    attrs = kw.pop("attrs", {})
    return OpCase(op, inputs=kw, attrs=attrs, params=params or {}, check_values=check_values, tag=tag)


CASES: dict[str, Callable[[], list[OpCase]]] = {}


def _add(name: str, build: Callable[[], OpCase | list[OpCase]]) -> None:
    if name in CASES:
        raise ValueError(f"two case builders for op {name!r}")

    def wrapped() -> list[OpCase]:
        out = build()
        return out if isinstance(out, list) else [out]

    CASES[name] = wrapped


# ----------------------------------------------------------------- unary
for _name in (
    "abs", "neg", "exp", "exp2", "expm1", "sin", "cos", "tan", "atan", "sinh", "cosh", "erf", "sign", "sgn",
    "floor", "ceil", "round", "trunc", "frac", "square", "relu", "relu6", "silu", "mish", "sigmoid", "tanh",
    "hardswish", "hardsigmoid", "selu", "alias", "detach", "lift_fresh_copy", "contiguous", "clone", "sum_all",
    "mean_all", "max_all", "min_all", "t",
):
    _add(_name, lambda n=_name: _c(n, self=_randn(3, 4)))
for _name in ("log", "log2", "log1p", "sqrt", "rsqrt", "reciprocal"):
    _add(_name, lambda n=_name: _c(n, self=_pos(3, 4)))
for _name in ("asin", "acos", "erfinv"):
    _add(_name, lambda n=_name: _c(n, self=_unit(3, 4)))
for _name in ("isnan", "isinf", "isfinite"):
    _add(_name, lambda n=_name: _c(n, self=_special(3, 4)))
for _name in ("logical_not", "any_all", "all_all"):
    _add(_name, lambda n=_name: _c(n, self=_bools(3, 4)))
_add("bitwise_not", lambda: _c("bitwise_not", self=_ints(-8, 8, 3, 4)))
_add("squeeze_all", lambda: _c("squeeze_all", self=_randn(3, 1, 4, 1)))
_add("gelu", lambda: _c("gelu", self=_randn(3, 4), attrs={"approximate": "tanh"}))
_add("round_decimals", lambda: _c("round_decimals", self=_randn(3, 4) * 10, attrs={"decimals": 2}))
_add("clamp", lambda: _c("clamp", self=_randn(3, 4), attrs={"min": -0.5, "max": 0.5}))
_add("clamp_min", lambda: _c("clamp_min", self=_randn(3, 4), attrs={"min": 0.1}))
_add("clamp_max", lambda: _c("clamp_max", self=_randn(3, 4), attrs={"max": -0.1}))
_add("clamp_tensor", lambda: _c("clamp_tensor", self=_randn(3, 4), min=-_pos(3, 4), max=_pos(1, 4)))
_add("nan_to_num", lambda: _c("nan_to_num", self=_special(3, 4), attrs={"nan": 0.5, "posinf": 9.0, "neginf": -9.0}))
_add("hardtanh", lambda: _c("hardtanh", self=_randn(3, 4), attrs={"min_val": -0.5, "max_val": 0.25}))
_add("elu", lambda: _c("elu", self=_randn(3, 4), attrs={"alpha": 0.5, "scale": 1.5, "input_scale": 2}))
_add("celu", lambda: _c("celu", self=_randn(3, 4), attrs={"alpha": 2.0}))
_add("leaky_relu", lambda: _c("leaky_relu", self=_randn(3, 4), attrs={"negative_slope": 0.2}))
_add("softplus", lambda: _c("softplus", self=_randn(3, 4) * 5, attrs={"beta": 2, "threshold": 4}))
_add("glu", lambda: _c("glu", self=_randn(3, 4), attrs={"dim": 1}))
_add("softmax", lambda: _c("softmax", self=_randn(2, 3, 4), attrs={"dim": -1}))
_add("log_softmax", lambda: _c("log_softmax", self=_randn(2, 3, 4), attrs={"dim": 1, "dtype": "float64"}))
_add("threshold", lambda: _c("threshold", self=_randn(3, 4), attrs={"threshold": 0.1, "value": 20}))
_add("dropout", lambda: [
    _c("dropout", input=_randn(4, 5), check_values=False, tag="train", attrs={"p": 0.5, "train": True}),
    _c("dropout", input=_randn(4, 5), tag="eval", attrs={"p": 0.5, "train": False}),
])
_add("feature_dropout", lambda: [
    _c("feature_dropout", input=_randn(2, 3, 4, 4), check_values=False, tag="train", attrs={"p": 0.5, "train": True}),
    _c("feature_dropout", input=_randn(2, 3, 4, 4), tag="eval", attrs={"p": 0.5, "train": False}),
])
_add("alpha_dropout", lambda: [
    _c("alpha_dropout", input=_randn(4, 5), check_values=False, tag="train", attrs={"p": 0.3, "train": True}),
    _c("alpha_dropout", input=_randn(4, 5), tag="eval", attrs={"p": 0.3, "train": False}),
])

# ----------------------------------------------------------------- binary and ternary
for _name in ("div", "maximum", "minimum", "atan2", "floor_divide", "remainder_tensor", "fmod_tensor"):
    _add(_name, lambda n=_name: _c(n, self=_randn(3, 4), other=_pos(4)))
_add("mul", lambda: [
    _c("mul", self=_randn(3, 4), other=_randn(3, 1)),
    _c("mul", self=_randn(3, 4), tag="const", attrs={"other": 0.5}),
])
_add("add", lambda: [
    _c("add", self=_randn(3, 4), other=_randn(4), attrs={"alpha": 2}),
    _c("add", self=_randn(3, 4), tag="const", attrs={"other": "inf"}),
])
_add("sub", lambda: _c("sub", self=_randn(3, 4), other=_randn(3, 4), attrs={"alpha": 0.5}))
_add("div_mode", lambda: _c("div_mode", self=_randn(3, 4) * 4, other=_pos(3, 4), attrs={"rounding_mode": "floor"}))
_add("rsub", lambda: _c("rsub", self=_randn(3, 4), attrs={"other": 1.5, "alpha": 2}))
_add("rsub_tensor", lambda: _c("rsub_tensor", self=_randn(3, 4), other=_randn(3, 4), attrs={"alpha": 3}))
_add("pow", lambda: _c("pow", self=_pos(3, 4), attrs={"exponent": 2.5}))
_add("pow_tensor", lambda: _c("pow_tensor", self=_pos(3, 4), exponent=_randn(3, 4)))
_add("pow_scalar_base", lambda: _c("pow_scalar_base", exponent=_randn(3, 4), attrs={"self": 2.0}))
_add("remainder", lambda: _c("remainder", self=_randn(3, 4) * 4, attrs={"other": 1.5}))
_add("fmod", lambda: _c("fmod", self=_randn(3, 4) * 4, attrs={"other": 1.5}))
_add("lerp", lambda: _c("lerp", self=_randn(3, 4), end=_randn(3, 4), attrs={"weight": 0.3}))
_add("lerp_tensor", lambda: _c("lerp_tensor", self=_randn(3, 4), end=_randn(3, 4), weight=_unit(3, 4)))
_add("addcmul", lambda: _c("addcmul", self=_randn(3, 4), tensor1=_randn(3, 4), tensor2=_randn(4), attrs={"value": 0.5}))
_add("addcdiv", lambda: _c("addcdiv", self=_randn(3, 4), tensor1=_randn(3, 4), tensor2=_pos(3, 4), attrs={"value": 2}))
for _cmp in ("eq", "ne", "lt", "le", "gt", "ge"):
    _add(f"{_cmp}_scalar", lambda n=f"{_cmp}_scalar": _c(n, self=_ints(0, 3, 3, 4).float(), attrs={"other": 1}))
    _add(f"{_cmp}_tensor", lambda n=f"{_cmp}_tensor": _c(n, self=_ints(0, 3, 3, 4), other=_ints(0, 3, 4)))
for _name in ("logical_and", "logical_or", "logical_xor"):
    _add(_name, lambda n=_name: _c(n, self=_bools(3, 4), other=_bools(3, 4)))
for _name in ("bitwise_and", "bitwise_or", "bitwise_xor", "and", "or", "xor"):
    _add(_name, lambda n=_name: _c(n, self=_ints(0, 64, 3, 4), other=_ints(0, 64, 3, 4)))
for _name in ("max_other", "min_other"):
    _add(_name, lambda n=_name: _c(n, self=_randn(3, 4), other=_randn(3, 4)))
_add("where", lambda: _c("where", condition=_bools(3, 4), self=_randn(3, 4), other=_randn(4)))
_add("where_scalar_self", lambda: _c("where_scalar_self", condition=_bools(3, 4), other=_randn(3, 4),
                                     attrs={"self": 1.5}))
_add("where_scalar_other", lambda: _c("where_scalar_other", condition=_bools(3, 4), self=_randn(3, 4),
                                      attrs={"other": "-inf"}))
_add("where_scalars", lambda: _c("where_scalars", condition=_bools(3, 4), attrs={"self": 1.0, "other": 0.0}))

# ----------------------------------------------------------------- reductions
_add("mean", lambda: _c("mean", self=_randn(2, 3, 4), attrs={"dim": [1], "keepdim": True}))
_add("sum", lambda: _c("sum", self=_randn(2, 3, 4), attrs={"dim": [0, 2]}))
_add("amax", lambda: _c("amax", self=_randn(2, 3, 4), attrs={"dim": [1]}))
_add("amin", lambda: _c("amin", self=_randn(2, 3, 4), attrs={"dim": [-1], "keepdim": True}))
_add("max_dim", lambda: _c("max_dim", self=_randn(2, 3, 4), attrs={"dim": 1}))
_add("min_dim", lambda: _c("min_dim", self=_randn(2, 3, 4), attrs={"dim": 2, "keepdim": True}))
_add("argmax", lambda: _c("argmax", self=_randn(2, 3, 4), attrs={"dim": 1}))
_add("argmin", lambda: _c("argmin", self=_randn(2, 3, 4)))
_add("var", lambda: _c("var", self=_randn(2, 3, 4), attrs={"dim": [1], "correction": 0}))
_add("std", lambda: _c("std", self=_randn(2, 3, 4), attrs={"dim": [1, 2], "keepdim": True}))
_add("var_mean", lambda: _c("var_mean", self=_randn(2, 3, 4), attrs={"dim": [2], "correction": 1}))
_add("prod", lambda: _c("prod", self=_randn(2, 3, 4), attrs={"dim": 1}))
_add("norm", lambda: _c("norm", self=_randn(2, 3, 4), attrs={"p": 3, "dim": [1]}))
_add("vector_norm", lambda: _c("vector_norm", self=_randn(2, 3, 4), attrs={"ord": "inf", "dim": [2]}))
_add("any", lambda: _c("any", self=_bools(2, 3, 4), attrs={"dim": 1}))
_add("all", lambda: _c("all", self=_bools(2, 3, 4), attrs={"dim": 0, "keepdim": True}))
_add("logsumexp", lambda: _c("logsumexp", self=_randn(2, 3, 4), attrs={"dim": [1]}))
_add("cumsum", lambda: _c("cumsum", self=_randn(2, 3, 4), attrs={"dim": 1}))
_add("cumprod", lambda: _c("cumprod", self=_randn(2, 3, 4), attrs={"dim": 2, "dtype": "float64"}))
_add("topk", lambda: _c("topk", self=_randn(2, 5), attrs={"k": 2, "largest": False}))
_add("sort", lambda: _c("sort", self=_randn(2, 5), attrs={"descending": True}))
_add("diff", lambda: [
    _c("diff", self=_randn(2, 5), attrs={"n": 2}),
    _c("diff", self=_randn(2, 5), prepend=_randn(2, 1), append=_randn(2, 3), tag="ends", attrs={"dim": 1}),
])
_add("argsort", lambda: _c("argsort", self=_randn(2, 5), attrs={"dim": 0}))

# ----------------------------------------------------------------- linear algebra
_add("matmul", lambda: _c("matmul", self=_randn(2, 3, 4), other=_randn(4, 5)))
_add("mm", lambda: _c("mm", self=_randn(3, 4), mat2=_randn(4, 5)))
_add("bmm", lambda: _c("bmm", self=_randn(2, 3, 4), mat2=_randn(2, 4, 5)))
_add("addmm", lambda: _c("addmm", self=_randn(5), mat1=_randn(3, 4), mat2=_randn(4, 5),
                         attrs={"beta": 0.5, "alpha": 2}))
_add("baddbmm", lambda: _c("baddbmm", self=_randn(2, 3, 5), batch1=_randn(2, 3, 4), batch2=_randn(2, 4, 5),
                           attrs={"beta": 2}))
_add("einsum", lambda: _c("einsum", tensors=[_randn(2, 3, 4), _randn(2, 4, 5)], attrs={"equation": "bij,bjk->bik"}))
_add("outer", lambda: _c("outer", self=_randn(3), vec2=_randn(4)))
_add("dot", lambda: _c("dot", self=_randn(5), tensor=_randn(5)))

# ----------------------------------------------------------------- shape and indexing
_add("view", lambda: _c("view", self=_randn(3, 4), attrs={"size": [2, 6]}))
_add("reshape", lambda: _c("reshape", self=_randn(3, 4), attrs={"shape": [-1, 2]}))
_add("_unsafe_view", lambda: _c("_unsafe_view", self=_randn(3, 4), attrs={"size": [12]}))
_add("permute", lambda: _c("permute", self=_randn(2, 3, 4), attrs={"dims": [2, 0, 1]}))
_add("transpose", lambda: _c("transpose", self=_randn(2, 3, 4), attrs={"dim0": 0, "dim1": -1}))
_add("unsqueeze", lambda: _c("unsqueeze", self=_randn(3, 4), attrs={"dim": 1}))
_add("squeeze", lambda: _c("squeeze", self=_randn(3, 1, 4), attrs={"dim": 1}))
_add("squeeze_dims", lambda: _c("squeeze_dims", self=_randn(1, 3, 1, 4), attrs={"dim": [0, 2]}))
_add("flatten", lambda: _c("flatten", self=_randn(2, 3, 4), attrs={"start_dim": 1}))
_add("unflatten", lambda: _c("unflatten", self=_randn(3, 4), attrs={"dim": 1, "sizes": [2, -1]}))
_add("expand", lambda: _c("expand", self=_randn(3, 1), attrs={"size": [2, 3, 4]}))
_add("expand_as", lambda: _c("expand_as", self=_randn(1, 4), other=_randn(3, 4)))
_add("slice", lambda: _c("slice", self=_randn(3, 6), attrs={"dim": 1, "start": 1, "end": 5, "step": 2}))
_add("select", lambda: _c("select", self=_randn(3, 6), attrs={"dim": 1, "index": -2}))
_add("narrow", lambda: _c("narrow", self=_randn(3, 6), attrs={"dim": 1, "start": 2, "length": 3}))
_add("cat", lambda: [
    _c("cat", tensors=[_randn(3, 2), _randn(3, 4)], attrs={"dim": 1}),
    _c("cat", tensors=[_randn(2, 4), _randn(1, 4), _randn(3, 4)], tag="three"),
])
_add("stack", lambda: _c("stack", tensors=[_randn(3, 4), _randn(3, 4)], attrs={"dim": 1}))
_add("split", lambda: _c("split", self=_randn(3, 5), attrs={"split_size": 2, "dim": 1}))
_add("split_with_sizes", lambda: _c("split_with_sizes", self=_randn(3, 5), attrs={"split_sizes": [1, 4], "dim": 1}))
_add("chunk", lambda: _c("chunk", self=_randn(4, 3), attrs={"chunks": 2}))
_add("unbind", lambda: _c("unbind", self=_randn(3, 4), attrs={"dim": 1}))
_add("tensor_split", lambda: _c("tensor_split", self=_randn(7, 2), attrs={"sections": 3}))
_add("tensor_split_indices", lambda: _c("tensor_split_indices", self=_randn(3, 6), attrs={"indices": [1, 4], "dim": 1}))
_add("movedim", lambda: _c("movedim", self=_randn(2, 3, 4), attrs={"source": 0, "destination": 2}))
_add("flip", lambda: _c("flip", self=_randn(2, 3, 4), attrs={"dims": [0, 2]}))
_add("roll", lambda: _c("roll", self=_randn(3, 4), attrs={"shifts": [1], "dims": [1]}))
_add("index", lambda: [
    _c("index", self=_randn(3, 4), indices=[_ints(0, 4, 2)], attrs={"indices": [None, "%"]}),
    _c("index", self=_randn(3, 4), indices=[_ints(0, 3, 2, 2), _ints(0, 4, 2)], tag="two"),
])
_add("index_select", lambda: _c("index_select", self=_randn(3, 4), index=_ints(0, 4, 5), attrs={"dim": 1}))
_add("gather", lambda: _c("gather", self=_randn(3, 4), index=_ints(0, 4, 3, 2), attrs={"dim": 1}))
_add("scatter", lambda: _c("scatter", self=_randn(3, 4), index=torch.tensor([[0, 1], [2, 3], [3, 0]]),
                           src=_randn(3, 2), attrs={"dim": 1}))
_add("scatter_value", lambda: _c("scatter_value", self=_randn(3, 4), index=torch.tensor([[0], [2], [3]]),
                                 attrs={"dim": 1, "value": -1.0}))
_add("scatter_add", lambda: _c("scatter_add", self=_randn(3, 4), index=_ints(0, 3, 2, 4), src=_randn(2, 4),
                               attrs={"dim": 0}))
_add("index_put", lambda: _c("index_put", self=_randn(5, 3), indices=[_ints(0, 5, 4)], values=_randn(4, 3),
                             attrs={"accumulate": True}))
_add("masked_fill", lambda: _c("masked_fill", self=_randn(3, 4), mask=_bools(3, 4), attrs={"value": "-inf"}))
_add("masked_fill_tensor", lambda: _c("masked_fill_tensor", self=_randn(3, 4), mask=_bools(4), value=_randn()))
_add("tril", lambda: _c("tril", self=_randn(4, 4), attrs={"diagonal": -1}))
_add("triu", lambda: _c("triu", self=_randn(2, 4, 4), attrs={"diagonal": 1}))
_add("constant_pad_nd", lambda: _c("constant_pad_nd", self=_randn(3, 4), attrs={"pad": [1, 2, 0, 1], "value": 0.5}))
_add("pad", lambda: [
    _c("pad", self=_randn(1, 2, 5), attrs={"pad": [2, 1], "mode": "reflect"}),
    _c("pad", self=_randn(3, 4), tag="constant", attrs={"pad": [1, 1], "value": -1.0}),
])
_add("repeat", lambda: _c("repeat", self=_randn(2, 3), attrs={"repeats": [2, 1, 2]}))
_add("repeat_interleave", lambda: _c("repeat_interleave", self=_randn(2, 3), attrs={"repeats": 2, "dim": 1}))
_add("repeat_interleave_tensor", lambda: _c("repeat_interleave_tensor", repeats=torch.tensor([1, 0, 3]),
                                            attrs={"output_size": 4}))
_add("diagonal", lambda: _c("diagonal", self=_randn(2, 4, 4), attrs={"offset": 1, "dim1": 1, "dim2": 2}))
_add("diag_embed", lambda: _c("diag_embed", self=_randn(2, 3), attrs={"offset": -1}))
_add("_to_copy", lambda: _c("_to_copy", self=_randn(3, 4), attrs={"dtype": "float64"}))
_add("to_dtype", lambda: _c("to_dtype", self=_randn(3, 4) * 10, attrs={"dtype": "int32"}))
_add("to_dtype_layout", lambda: _c("to_dtype_layout", self=_randn(3, 4),
                                   attrs={"dtype": "float16", "layout": "strided"}))
_add("to_device", lambda: _c("to_device", self=_randn(3, 4), attrs={"dtype": "float64", "copy": True}))
_add("type_as", lambda: _c("type_as", self=_randn(3, 4) * 10, other=_ints(0, 2, 2)))
_add("copy", lambda: _c("copy", self=_randn(3, 4), src=_ints(0, 9, 4)))
_add("fill", lambda: _c("fill", self=_randn(3, 4), attrs={"value": 2.5}))
_add("fill_tensor", lambda: _c("fill_tensor", self=_randn(3, 4), value=_randn()))
_add("slice_scatter", lambda: _c("slice_scatter", self=_randn(4, 6), src=_randn(4, 2),
                                 attrs={"dim": 1, "start": 2, "end": 4}))
_add("select_scatter", lambda: _c("select_scatter", self=_randn(4, 6), src=_randn(4), attrs={"dim": 1, "index": 0}))
_add("unfold", lambda: _c("unfold", self=_randn(3, 7), attrs={"dimension": 1, "size": 3, "step": 2}))
_add("view_as_real", lambda: _c("view_as_real", self=_complex(3, 4)))
_add("view_as_complex", lambda: _c("view_as_complex", self=_randn(3, 4, 2)))
_add("one_hot", lambda: _c("one_hot", self=_ints(0, 5, 2, 3), attrs={"num_classes": 6}))
_add("bucketize_tensor", lambda: _c("bucketize_tensor", self=_randn(3, 4), boundaries=torch.tensor([-1.0, 0.0, 0.5]),
                                    attrs={"right": True}))
_add("searchsorted_tensor", lambda: _c("searchsorted_tensor", sorted_sequence=torch.tensor([-1.0, 0.0, 0.5, 2.0]),
                                       self=_randn(3, 4), attrs={"out_int32": True}))
_add("pixel_shuffle", lambda: _c("pixel_shuffle", self=_randn(1, 8, 2, 3), attrs={"upscale_factor": 2}))
_add("pixel_unshuffle", lambda: _c("pixel_unshuffle", self=_randn(1, 2, 4, 6), attrs={"downscale_factor": 2}))

# ----------------------------------------------------------------- in-place forms (the result is the updated self)
_add("add_", lambda: _c("add_", self=_randn(3, 4), other=_randn(4), attrs={"alpha": -1}))
_add("sub_", lambda: _c("sub_", self=_randn(3, 4), other=_randn(3, 4), attrs={"alpha": 2}))
_add("mul_", lambda: _c("mul_", self=_randn(3, 4), attrs={"other": 3}))
_add("div_", lambda: _c("div_", self=_randn(3, 4), other=_pos(3, 1)))
_add("masked_fill_", lambda: _c("masked_fill_", self=_randn(3, 4), mask=_bools(3, 4), attrs={"value": 0.0}))
_add("copy_", lambda: _c("copy_", self=_randn(3, 4), src=_randn(4)))
_add("fill_", lambda: _c("fill_", self=_randn(3, 4), attrs={"value": -3}))
_add("clamp_", lambda: _c("clamp_", self=_randn(3, 4), attrs={"min": -0.2}))
_add("relu_", lambda: _c("relu_", self=_randn(3, 4)))
_add("zero_", lambda: _c("zero_", self=_randn(3, 4)))
_add("index_put_", lambda: _c("index_put_", self=_randn(5, 3), indices=[_ints(0, 3, 4)], values=_randn(1),
                              attrs={"indices": [None, "%"]}))
_add("scatter_value_", lambda: _c("scatter_value_", self=_randn(3, 4), index=torch.tensor([[0], [2], [3]]),
                                   attrs={"dim": 1, "value": 2.0}))
_add("detach_", lambda: _c("detach_", self=_randn(3, 4)))
_add("histc", lambda: _c("histc", self=_randn(20), attrs={"bins": 5, "min": -2.0, "max": 2.0}))
_add("masked_scatter", lambda: _c("masked_scatter", self=_randn(3, 4), mask=_bools(3, 4), source=_randn(12)))
_add("view_as", lambda: _c("view_as", self=_randn(3, 4), other=_randn(4, 3)))
_add("reshape_as", lambda: _c("reshape_as", self=_randn(3, 4), other=_randn(2, 6)))
_add("multiply", lambda: _c("multiply", self=_randn(3, 4), other=_randn(4)))
_add("broadcast_tensors", lambda: _c("broadcast_tensors", tensors=[_randn(3, 1), _randn(1, 4)]))
_add("grouped_mm", lambda: _c("grouped_mm", input=_randn(6, 4), weight=_randn(3, 4, 5),
                               offs=torch.tensor([2, 2, 6]), check_values=False))
_add("polar", lambda: _c("polar", abs=_pos(3, 4), angle=_randn(3, 4)))
_add("scatter_", lambda: _c("scatter_", self=_randn(3, 4), index=torch.tensor([[0, 1], [2, 3], [3, 0]]),
                             src=_randn(3, 2), attrs={"dim": 1}))
_add("meshgrid", lambda: _c("meshgrid", tensors=[_randn(3), _randn(4)], attrs={"indexing": "ij"}))
_add("tile", lambda: _c("tile", self=_randn(2, 3), attrs={"dims": [2, 1]}))
_add("numpy_t", lambda: _c("numpy_t", self=_randn(2, 3, 4)))
_add("fft_fftn", lambda: _c("fft_fftn", self=_randn(4, 6), attrs={"dim": [0, 1]}))
_add("real", lambda: _c("real", self=torch.complex(_randn(3, 4), _randn(3, 4))))
_add("std_dim", lambda: _c("std_dim", self=_randn(3, 4), attrs={"dim": [1], "unbiased": True, "keepdim": True}))
_add("_weight_norm", lambda: _c("_weight_norm", v=_randn(4, 3, 2), g=_pos(1, 3, 1), attrs={"dim": 1}))
_add("clip", lambda: _c("clip", self=_randn(3, 4), attrs={"min": -0.5, "max": 0.5}))
_add("linalg_norm", lambda: _c("linalg_norm", self=_randn(3, 4), attrs={"dim": [1], "keepdim": True}))
_add("concat", lambda: _c("concat", tensors=[_randn(2, 3), _randn(2, 2)], attrs={"dim": 1}))
_add("fill_tensor_", lambda: _c("fill_tensor_", self=_randn(3, 4), value=torch.tensor(2.5)))
_add("index_copy_", lambda: _c("index_copy_", self=_randn(5, 3), index=torch.tensor([0, 3]), source=_randn(2, 3),
                               attrs={"dim": 0}))
_add("index_add", lambda: _c("index_add", self=_randn(5, 3), index=torch.tensor([0, 3, 0]), source=_randn(3, 3),
                              attrs={"dim": 0}))
_add("upsample_bilinear2d_aa", lambda: _c("upsample_bilinear2d_aa", input=_randn(1, 2, 8, 8),
                                           attrs={"output_size": [4, 4], "align_corners": False}))
_add("or_", lambda: _c("or_", self=_bools(3, 4), other=_bools(3, 4)))
_add("and_", lambda: _c("and_", self=_bools(3, 4), other=_bools(3, 4)))
_add("scatter_reduce", lambda: _c("scatter_reduce", self=_randn(3, 4), index=torch.tensor([[0, 1], [2, 3], [3, 0]]),
                                   src=_randn(3, 2), attrs={"dim": 1, "reduce": "amax"}))
_add("concatenate", lambda: _c("concatenate", tensors=[_randn(2, 3), _randn(2, 2)], attrs={"dim": 1}))
_add("log_sigmoid", lambda: _c("log_sigmoid", self=_randn(3, 4)))
_add("var_dim", lambda: _c("var_dim", self=_randn(3, 4), attrs={"dim": [1], "keepdim": True}))
_add("rand", lambda: _c("rand", attrs={"size": [3, 4]}, check_values=False))
_add("randn", lambda: _c("randn", attrs={"size": [3, 4]}, check_values=False))
_add("randn_generator", lambda: _c("randn_generator", attrs={"size": [2, 5]}, check_values=False))
_add("rand_like", lambda: _c("rand_like", self=_randn(3, 4), check_values=False))
_add("randn_like", lambda: _c("randn_like", self=_randn(3, 4), check_values=False))
_RNN_ATTRS = {"has_biases": True, "num_layers": 1, "dropout": 0.0, "train": False, "bidirectional": False,
              "batch_first": True}
# the schema argument "params" (the weight list) clashes with _c's keyword, so these cases are built directly
_add("lstm", lambda: OpCase("lstm", inputs={
    "input": _randn(2, 5, 3), "hx": [torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)],
    "params": [_randn(16, 3), _randn(16, 4), _randn(16), _randn(16)]}, attrs=dict(_RNN_ATTRS)))
_add("gru", lambda: OpCase("gru", inputs={
    "input": _randn(2, 5, 3), "hx": torch.zeros(1, 2, 4),
    "params": [_randn(12, 3), _randn(12, 4), _randn(12), _randn(12)]}, attrs=dict(_RNN_ATTRS)))
_add("mse_loss", lambda: _c("mse_loss", self=_randn(3, 4), target=_randn(3, 4)))

# ----------------------------------------------------------------- creation
_add("arange", lambda: _c("arange", attrs={"end": 5}))
_add("arange_start", lambda: _c("arange_start", attrs={"start": 1, "end": 7, "dtype": "float32"}))
_add("arange_start_step", lambda: _c("arange_start_step", attrs={"start": 0, "end": 2, "step": 0.25}))
_add("zeros", lambda: _c("zeros", attrs={"size": [2, 3]}))
_add("ones", lambda: _c("ones", attrs={"size": [2, 3], "dtype": "int64"}))
_add("full", lambda: _c("full", attrs={"size": [2, 3], "fill_value": 1.5}))
_add("empty", lambda: _c("empty", check_values=False, attrs={"size": [2, 3], "dtype": "float16"}))
_add("scalar_tensor", lambda: _c("scalar_tensor", attrs={"s": 3.0}))
_add("linspace", lambda: _c("linspace", attrs={"start": 0, "end": 1, "steps": 5}))
_add("eye", lambda: _c("eye", attrs={"n": 3}))
_add("zeros_like", lambda: _c("zeros_like", self=_randn(3, 4)))
_add("ones_like", lambda: _c("ones_like", self=_randn(3, 4), attrs={"dtype": "bool"}))
_add("full_like", lambda: _c("full_like", self=_randn(3, 4), attrs={"fill_value": 7}))
_add("empty_like", lambda: _c("empty_like", self=_randn(3, 4), check_values=False))
_add("new_zeros", lambda: _c("new_zeros", self=_randn(3, 4), attrs={"size": [2]}))
_add("new_ones", lambda: _c("new_ones", self=_ints(0, 3, 3), attrs={"size": [2, 2]}))
_add("new_full", lambda: _c("new_full", self=_randn(3, 4), attrs={"size": [2], "fill_value": -2.0}))
_add("new_empty", lambda: _c("new_empty", self=_randn(3, 4), check_values=False, attrs={"size": [5]}))

# ----------------------------------------------------------------- pooling and resampling
_add("avg_pool1d", lambda: _c("avg_pool1d", self=_randn(1, 2, 8), attrs={"kernel_size": [3], "stride": [2],
                                                                          "padding": [1]}))
_add("avg_pool2d", lambda: _c("avg_pool2d", self=_randn(1, 2, 6, 6), attrs={
    "kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "count_include_pad": False, "ceil_mode": True}))
_add("avg_pool3d", lambda: _c("avg_pool3d", self=_randn(1, 2, 4, 4, 4), attrs={"kernel_size": [2, 2, 2],
                                                                                "divisor_override": 3}))
_add("max_pool1d", lambda: _c("max_pool1d", self=_randn(1, 2, 8), attrs={"kernel_size": [2]}))
_add("max_pool2d", lambda: _c("max_pool2d", self=_randn(1, 2, 6, 6), attrs={
    "kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "dilation": [1, 1]}))
_add("max_pool3d", lambda: _c("max_pool3d", self=_randn(1, 2, 4, 4, 4), attrs={"kernel_size": [2, 2, 2]}))
_add("adaptive_avg_pool1d", lambda: _c("adaptive_avg_pool1d", self=_randn(1, 2, 9), attrs={"output_size": [4]}))
_add("adaptive_avg_pool2d", lambda: _c("adaptive_avg_pool2d", self=_randn(1, 2, 5, 7), attrs={"output_size": [2, 3]}))
_add("adaptive_avg_pool3d", lambda: _c("adaptive_avg_pool3d", self=_randn(1, 2, 4, 5, 6),
                                       attrs={"output_size": [2, 2, 3]}))
_add("adaptive_max_pool1d", lambda: _c("adaptive_max_pool1d", self=_randn(1, 2, 9), attrs={"output_size": [4]}))
_add("adaptive_max_pool2d", lambda: _c("adaptive_max_pool2d", self=_randn(1, 2, 5, 7), attrs={"output_size": [2, 3]}))
_add("upsample_nearest1d", lambda: _c("upsample_nearest1d", input=_randn(1, 2, 5), attrs={"output_size": [10]}))
_add("upsample_nearest2d", lambda: _c("upsample_nearest2d", input=_randn(1, 2, 3, 4),
                                      attrs={"scale_factors": [2.0, 1.5]}))
_add("upsample_bilinear2d", lambda: _c("upsample_bilinear2d", input=_randn(1, 2, 3, 4),
                                       attrs={"output_size": [5, 7], "align_corners": True}))
_add("upsample_bicubic2d", lambda: _c("upsample_bicubic2d", input=_randn(1, 2, 3, 4),
                                      attrs={"align_corners": False, "scale_factors": [2.0, 2.0]}))
_add("upsample_linear1d", lambda: _c("upsample_linear1d", input=_randn(1, 2, 5),
                                     attrs={"output_size": [8], "align_corners": False}))
_add("grid_sampler", lambda: _c("grid_sampler", input=_randn(1, 2, 4, 4), grid=_unit(1, 3, 3, 2),
                                attrs={"interpolation_mode": 0, "padding_mode": 1, "align_corners": False}))
_add("im2col", lambda: _c("im2col", self=_randn(1, 2, 5, 5), attrs={"kernel_size": [2, 2], "dilation": [1, 1],
                                                                    "padding": [1, 0], "stride": [2, 1]}))
_add("col2im", lambda: _c("col2im", self=_randn(1, 8, 16), attrs={"output_size": [5, 5], "kernel_size": [2, 2],
                                                                  "dilation": [1, 1], "padding": [0, 0],
                                                                  "stride": [1, 1]}))

# ----------------------------------------------------------------- fft
_add("fft_rfft", lambda: _c("fft_rfft", self=_randn(3, 8), attrs={"norm": "ortho"}))
_add("fft_irfft", lambda: _c("fft_irfft", self=_complex(3, 5), attrs={"n": 8}))
_add("fft_fft", lambda: _c("fft_fft", self=_randn(3, 8), attrs={"dim": 0}))
_add("fft_ifft", lambda: _c("fft_ifft", self=_complex(3, 8), attrs={"n": 6, "norm": "forward"}))

# ----------------------------------------------------------------- layers
_add("linear", lambda: [
    _c("linear", input=_randn(2, 3, 4), params={"weight": _randn(5, 4), "bias": _randn(5)}),
    _c("linear", input=_randn(3, 4), tag="nobias", params={"weight": _randn(5, 4)}),
])
_add("conv1d", lambda: _c("conv1d", input=_randn(2, 3, 10), params={"weight": _randn(4, 3, 3), "bias": _randn(4)},
                          attrs={"stride": [2], "padding": [1]}))
_add("conv2d", lambda: _c("conv2d", input=_randn(2, 4, 8, 8), params={"weight": _randn(6, 2, 3, 3), "bias": _randn(6)},
                          attrs={"stride": [1, 2], "padding": [1, 1], "dilation": [1, 1], "groups": 2}))
_add("conv3d", lambda: _c("conv3d", input=_randn(1, 2, 5, 5, 5), params={"weight": _randn(3, 2, 3, 3, 3)},
                          attrs={"stride": [2, 2, 2]}))
_add("conv1d_padding", lambda: _c("conv1d_padding", input=_randn(2, 3, 9),
                                  params={"weight": _randn(4, 3, 4), "bias": _randn(4)}, attrs={"padding": "same"}))
_add("conv2d_padding", lambda: _c("conv2d_padding", input=_randn(1, 2, 7, 7),
                                  params={"weight": _randn(4, 2, 3, 3), "bias": _randn(4)},
                                  attrs={"padding": "same", "dilation": [2, 2]}))
_add("conv_transpose1d", lambda: _c("conv_transpose1d", input=_randn(2, 3, 6),
                                    params={"weight": _randn(3, 4, 3), "bias": _randn(4)},
                                    attrs={"stride": [2], "padding": [1], "output_padding": [1]}))
_add("conv_transpose2d", lambda: _c("conv_transpose2d", input=_randn(1, 4, 3, 3),
                                    params={"weight": _randn(4, 3, 3, 3), "bias": _randn(6)},
                                    attrs={"stride": [2, 1], "groups": 2}))
_add("conv_transpose3d", lambda: _c("conv_transpose3d", input=_randn(1, 2, 3, 3, 3),
                                    params={"weight": _randn(2, 3, 2, 2, 2)}, attrs={"stride": [2, 2, 2]}))
_add("layer_norm", lambda: _c("layer_norm", input=_randn(2, 3, 4), params={"weight": _randn(4), "bias": _randn(4)},
                              attrs={"normalized_shape": [4], "eps": 1e-6}))
_add("rms_norm", lambda: _c("rms_norm", input=_randn(2, 3, 4), params={"weight": _randn(3, 4)},
                            attrs={"normalized_shape": [3, 4], "eps": 1e-6}))
_add("group_norm", lambda: _c("group_norm", input=_randn(2, 4, 3, 3), params={"weight": _randn(4), "bias": _randn(4)},
                              attrs={"num_groups": 2, "eps": 1e-5}))
_add("batch_norm", lambda: [
    _c("batch_norm", input=_randn(4, 3, 5),
       params={"weight": _randn(3), "bias": _randn(3), "running_mean": _randn(3), "running_var": _pos(3)},
       attrs={"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": False}),
    _c("batch_norm", input=_randn(4, 3, 2, 2), tag="train",
       params={"weight": _randn(3), "bias": _randn(3), "running_mean": _randn(3), "running_var": _pos(3)},
       attrs={"training": True, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": False}),
])
_add("instance_norm", lambda: _c("instance_norm", input=_randn(2, 3, 5),
                                 params={"weight": _randn(3), "bias": _randn(3)},
                                 attrs={"use_input_stats": True, "momentum": 0.1, "eps": 1e-5,
                                        "cudnn_enabled": False}))
_add("embedding", lambda: _c("embedding", indices=_ints(0, 10, 2, 3), params={"weight": _randn(10, 4)},
                             attrs={"padding_idx": 0}))
_add("prelu", lambda: _c("prelu", self=_randn(2, 3, 4), params={"weight": _randn(3)}))
_add("scaled_dot_product_attention", lambda: [
    _c("scaled_dot_product_attention", query=_randn(2, 3, 5, 8), key=_randn(2, 3, 6, 8), value=_randn(2, 3, 6, 4),
       attrs={"scale": 0.5}),
    _c("scaled_dot_product_attention", query=_randn(1, 2, 4, 8), key=_randn(1, 2, 4, 8), value=_randn(1, 2, 4, 8),
       tag="causal", attrs={"is_causal": True}),
    _c("scaled_dot_product_attention", query=_randn(1, 2, 4, 8), key=_randn(1, 2, 5, 8), value=_randn(1, 2, 5, 8),
       attn_mask=_bools(4, 5) | torch.eye(4, 5, dtype=torch.bool), tag="mask"),
])


def build_cases(op: str) -> list[OpCase]:
    """The cases of ``op``, drawn from a generator seeded by the op name."""
    _GEN.manual_seed(sum(op.encode()) * 7919)
    return CASES[op]()
