"""Values known while importing ONNX (constants and sequences) and dtype/number/attribute helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..ops.values import encode_value

_INT64_MAX = 2**63 - 1


@dataclass
class _Const:
    """A value known at import time.

    ``kind`` is ``parameter`` (a learned weight or derived from one),
    ``buffer`` (model state that is not learned) or ``constant``; ``init`` is
    the ONNX initializer it is (unchanged); ``key`` identifies its source and
    the transforms applied, so that one tensor used twice keeps one name.
    """

    value: np.ndarray
    key: str
    init: str | None = None
    kind: str = "constant"

    def derived(self, value: np.ndarray, tag: str) -> "_Const":
        return _Const(np.ascontiguousarray(value), f"{self.key}:{tag}", None, self.kind)


@dataclass
class _Seq:
    """An ONNX sequence: its elements (node ids or constants); ``None`` items are
    pieces of ``split`` (a multi-output node) not read yet, squeezed at
    ``squeeze`` when that is set."""

    items: list
    split: str | None = None
    squeeze: int | None = None


def _np_dtype_to_torch(dt: np.dtype) -> torch.dtype:
    if dt == np.bool_:
        return torch.bool
    try:
        return torch.from_numpy(np.empty(0, dtype=dt)).dtype
    except TypeError:
        if "bfloat16" in str(dt):
            return torch.bfloat16
        raise


def _to_torch(a: np.ndarray) -> torch.Tensor:
    if "bfloat16" in str(a.dtype):
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(a, copy=True))


def _onnx_to_torch_dtype(elem_type: int) -> torch.dtype:
    import onnx

    if elem_type == onnx.TensorProto.BFLOAT16:
        return torch.bfloat16
    return _np_dtype_to_torch(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))


def _py(x: Any) -> Any:
    """A numpy scalar as a plain Python number (JSON-safe for floats).

    Floats take the shortest decimal that round-trips in their own dtype, so
    a float32 ``1e-5`` reads ``1e-05``, not ``9.999999747378752e-06``, and
    casts back to the same float32 value.
    """
    if isinstance(x, np.floating):
        exact = float(x)
        short = float(str(x))
        fits = math.isfinite(exact) and abs(short) <= float(np.finfo(x.dtype).max) and x.dtype.type(short) == x
        return encode_value(short if fits else exact)
    v = x.item() if hasattr(x, "item") else x
    if isinstance(v, float):
        return encode_value(v)
    return v


def _f32(x: Any) -> Any:
    """An ONNX float attribute (stored as float32) as a Python number."""
    return _py(np.float32(x))


def _attrs_of(node) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = numpy_helper.to_array(a.t)
        elif a.type == onnx.AttributeProto.GRAPH or a.type == onnx.AttributeProto.GRAPHS:
            out[a.name] = a
        else:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, list):
                v = [x.decode() if isinstance(x, bytes) else x for x in v]
            out[a.name] = v
    return out


def _broadcast(*shapes: Sequence[int]) -> list[int]:
    return list(np.broadcast_shapes(*[tuple(s) for s in shapes]))


def _dtype(name: str) -> torch.dtype:
    from ..ops.values import dtype_from_name

    return dtype_from_name(name)
