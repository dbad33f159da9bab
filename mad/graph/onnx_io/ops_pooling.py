"""ONNX converters of pooling, reductions, arg-max/top-k and resize."""

from __future__ import annotations

import math
from typing import Any

from .importer import _Importer
from .ops_layers import _spatial, _torch_pad
from .registry import _converter
from .values import _attrs_of


@_converter("MaxPool", "AveragePool")
def _pool(imp: _Importer, node) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise imp.fail("the Indices output of MaxPool is not supported")
    x = node.input[0]
    at, nsp, kernel, strides, dil, begin, end = _spatial(imp, node, x)
    is_max = node.op_type == "MaxPool"
    xt = imp.tensor(x)
    ceil = bool(at.get("ceil_mode", 0))
    needs_pad = begin != end or any(2 * b > k for b, k in zip(begin, kernel))
    if needs_pad:
        if not is_max and not at.get("count_include_pad", 0) and any(begin + end):
            raise imp.fail("asymmetric padding with count_include_pad=0 is not supported")
        xt = imp.add("constant_pad_nd", [xt], {"pad": _torch_pad(begin, end), "value": "-inf" if is_max else 0})
        begin = [0] * nsp
    if is_max:
        attrs = {"kernel_size": kernel, "stride": strides, "padding": begin, "dilation": dil, "ceil_mode": ceil}
        imp.emit(f"max_pool{nsp}d", [xt], attrs)
    else:
        if any(d != 1 for d in dil):
            raise imp.fail("AveragePool with dilations is not supported")
        attrs = {"kernel_size": kernel, "stride": strides, "padding": begin, "ceil_mode": ceil,
                 "count_include_pad": bool(at.get("count_include_pad", 0))}
        imp.emit(f"avg_pool{nsp}d", [xt], attrs)


@_converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(imp: _Importer, node) -> None:
    x = node.input[0]
    dims = list(range(2, len(imp.shape(x))))
    op = "mean" if node.op_type == "GlobalAveragePool" else "amax"
    imp.emit(op, [imp.tensor(x)], {"dim": dims, "keepdim": True})


_REDUCE = {
    "ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin", "ReduceProd": "prod",
    "ReduceL1": "vector_norm", "ReduceL2": "vector_norm", "ReduceLogSumExp": "logsumexp",
    "ReduceSumSquare": "sum",
}


@_converter(*_REDUCE)
def _reduce(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    t = node.op_type
    x = node.input[0]
    rank = len(imp.shape(x))
    axes_as_input = imp.opset >= 18 or (t == "ReduceSum" and imp.opset >= 13)
    axes = imp.ints_arg(node, 1, "axes", at) if axes_as_input else (list(at["axes"]) if "axes" in at else None)
    keep = bool(at.get("keepdims", 1))
    if not axes:
        if at.get("noop_with_empty_axes", 0):
            imp.set(node.output[0], imp.value(x))
            return
        axes = list(range(rank))
    axes = sorted(a + rank if a < 0 else a for a in axes)
    op = _REDUCE[t]
    xt = imp.tensor(x)
    if t == "ReduceSumSquare":
        xt = imp.add("square", [xt])
    if op == "prod":
        for i, a in enumerate(reversed(axes)):  # one dim at a time, last first so indices stay valid
            last = i == len(axes) - 1
            xt = imp.add("prod", [xt], {"dim": a, "keepdim": keep}, out=node.output[0] if last else None)
        imp.set(node.output[0], xt)
        return
    attrs: dict[str, Any] = {"dim": axes, "keepdim": keep}
    if op == "vector_norm":
        attrs["ord"] = 1 if t == "ReduceL1" else 2
    imp.emit(op, [xt], attrs)


@_converter("ArgMax", "ArgMin")
def _argmax(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("select_last_index", 0):
        raise imp.fail("select_last_index=1 is not supported")
    op = "argmax" if node.op_type == "ArgMax" else "argmin"
    imp.emit(op, [imp.tensor(node.input[0])], {"dim": int(at.get("axis", 0)), "keepdim": bool(at.get("keepdims", 1))})


@_converter("TopK")
def _topk(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    k = imp.ints(node.input[1], "k")[0] if imp.opset >= 10 else int(at["k"])
    tk = imp.add("topk", [imp.tensor(node.input[0])], {"k": k, "dim": int(at.get("axis", -1)),
                                                        "largest": bool(at.get("largest", 1)),
                                                        "sorted": bool(at.get("sorted", 1))})
    for i, o in enumerate(node.output):
        if o:
            imp.emit("getitem", [tk], {"index": i}, out=o)


@_converter("Resize")
def _resize(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    if len(shape) != 4 or imp.opset < 11:
        raise imp.fail("only 4-d Resize (opset >= 11) is supported")
    sizes = imp.ints(node.input[3], "sizes") if len(node.input) > 3 and node.input[3] else None
    if sizes is None:
        sc = imp.const(node.input[2]) if len(node.input) > 2 else None
        if sc is None:
            raise imp.fail("Resize needs constant scales or sizes")
        scales = [float(s) for s in sc.value.reshape(-1)]
        sizes = [int(math.floor(d * s)) for d, s in zip(shape, scales)]
    if sizes[:2] != shape[:2]:
        raise imp.fail("Resize of the batch or channel dims is not supported")
    mode = at.get("mode", "nearest")
    ctm = at.get("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest" and ctm == "asymmetric" and at.get("nearest_mode", "round_prefer_floor") == "floor":
        imp.emit("upsample_nearest2d", [imp.tensor(x)], {"output_size": sizes[2:]})
    elif mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        if ctm == "pytorch_half_pixel" and any(s == 1 for s in sizes[2:]):
            raise imp.fail("pytorch_half_pixel with an output size of 1 is not supported")
        imp.emit("upsample_bilinear2d", [imp.tensor(x)], {"output_size": sizes[2:],
                                                          "align_corners": ctm == "align_corners"})
    else:
        raise imp.fail(f"Resize mode={mode!r} coordinate_transformation_mode={ctm!r} is not supported")
