"""ONNX converters of gather and scatter ops."""

from __future__ import annotations

import math

import numpy as np

from ..ops.registry import PORT
from .importer import _Importer
from .registry import _converter
from .values import _attrs_of


def _gather_any(imp: _Importer, data: str, indices: str, axis: int, out: str) -> None:
    """``np.take(data, indices, axis)`` with index_select (+ reshape for n-d indices)."""
    dshape = imp.shape(data)
    ishape = imp.shape(indices)
    ci = imp.const(indices)
    if ci is not None:
        idx = ci.value.astype(np.int64)
        idx = np.where(idx < 0, idx + dshape[axis], idx)
        if idx.ndim == 0:
            imp.emit("select", [imp.tensor(data)], {"dim": axis, "index": int(idx)}, out=out)
            return
        ci = ci.derived(idx, "idx")
        it = imp.materialize(ci, indices)
    else:
        it = imp.tensor(indices)
    flat = it if len(ishape) == 1 else imp.add("reshape", [it], {"shape": [max(math.prod(ishape), 0)]})
    sel = imp.add("index_select", [imp.tensor(data), flat], {"dim": axis},
                  out=out if len(ishape) == 1 else None)
    if len(ishape) != 1:
        sel = imp.add("reshape", [sel], {"shape": dshape[:axis] + ishape + dshape[axis + 1:]}, out=out)
    imp.set(out, sel)


@_converter("Gather")
def _gather(imp: _Importer, node) -> None:
    data, indices = node.input[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    rank = len(imp.shape(data))
    axis = axis + rank if axis < 0 else axis
    dc = imp.const(data)
    if axis == 0 and imp.param_ok(dc, 2) and not imp.is_const(indices):
        imp.emit("embedding", [imp.tensor(indices)], {}, {"weight": dc})
        return
    _gather_any(imp, data, indices, axis, node.output[0])


@_converter("GatherElements")
def _gather_elements(imp: _Importer, node) -> None:
    data, indices = node.input[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    imp.emit("gather", [imp.tensor(data), imp.tensor(indices)], {"dim": axis})


@_converter("GatherND")
def _gather_nd(imp: _Importer, node) -> None:
    data, indices = node.input[:2]
    if int(_attrs_of(node).get("batch_dims", 0)) != 0:
        raise imp.fail("GatherND with batch_dims > 0 is not supported")
    k = imp.shape(indices)[-1]
    ci = imp.const(indices)
    ports = []
    for i in range(k):
        if ci is not None:
            ports.append(imp.materialize(ci.derived(ci.value[..., i].astype(np.int64), f"nd{i}"), f"{indices}_{i}"))
        else:
            ports.append(imp.add("select", [imp.tensor(indices)], {"dim": -1, "index": i}))
    imp.emit("index", [imp.tensor(data)] + ports, {"indices": [PORT] * k})


@_converter("ScatterElements")
def _scatter_elements(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("reduction", "none") not in ("none", "add"):
        raise imp.fail(f"reduction={at['reduction']!r} is not supported")
    data, indices, updates = node.input[:3]
    op = "scatter_add" if at.get("reduction", "none") == "add" else "scatter"
    imp.emit(op, [imp.tensor(data), imp.tensor(indices), imp.tensor(updates)], {"dim": int(at.get("axis", 0))})
