"""Readable forms as tensor methods and indexing (``x.sum(-1)``, ``x.view(2, 8)``, ``x[:, 1:5]``), joins,
padding, dtype casts and tensor creation."""
from __future__ import annotations

import torch

from ...ops.registry import PORT
from ..binding import _Bound
from ..literals import _call, _dim_arg, _ints, _lit
from .registry import _EMITTERS, Emitter, _emits

_INT_MAX = 2**62  # slice ends at or beyond this read as "to the end"


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
    e = "" if end is None or (isinstance(end, int) and end >= _INT_MAX) else _lit(end)
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
