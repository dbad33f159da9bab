"""Conversion of attribute values between torch objects and JSON values.

Attributes are stored as plain JSON: dtypes as names (``"float32"``),
non-finite floats as strings (``"inf"``, ``"-inf"``, ``"nan"``), memory
formats and layouts as names, devices as null (a graph is device-free; the
module supplies its device at run time).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["encode_value", "decode_value", "dtype_name", "dtype_from_name", "NON_JSON"]

_DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float32,
        torch.float64,
        torch.float16,
        torch.bfloat16,
        torch.int64,
        torch.int32,
        torch.int16,
        torch.int8,
        torch.uint8,
        torch.bool,
        torch.complex64,
        torch.complex128,
    )
}
_MEMORY_FORMATS = {
    "contiguous_format": torch.contiguous_format,
    "preserve_format": torch.preserve_format,
    "channels_last": torch.channels_last,
    "channels_last_3d": torch.channels_last_3d,
}
_LAYOUTS = {"strided": torch.strided}


class _NonJson:
    """Marker returned by :func:`encode_value` for values JSON cannot hold."""


NON_JSON = _NonJson()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def dtype_from_name(name: str) -> torch.dtype:
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; known: {sorted(_DTYPES)}") from None


def encode_value(v: Any) -> Any:
    """Torch/Python value -> JSON value (``NON_JSON`` if impossible)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, torch.dtype):
        return dtype_name(v)
    if isinstance(v, torch.device):
        return None
    if isinstance(v, torch.memory_format):
        for k, f in _MEMORY_FORMATS.items():
            if f == v:
                return k
        return NON_JSON
    if isinstance(v, torch.layout):
        return "strided" if v == torch.strided else NON_JSON
    if isinstance(v, (list, tuple)):
        out = [encode_value(x) for x in v]
        return NON_JSON if any(x is NON_JSON for x in out) else out
    if isinstance(v, torch.SymInt | torch.SymFloat | torch.SymBool):
        return NON_JSON
    return NON_JSON


def decode_value(v: Any, type_: str) -> Any:
    """JSON value -> the torch/Python value an op expects for ``type_``."""
    if v is None:
        return None
    if type_ == "dtype":
        return dtype_from_name(v)
    if type_ == "memory_format":
        return _MEMORY_FORMATS[v]
    if type_ == "layout":
        return _LAYOUTS[v]
    if isinstance(v, str) and v in ("inf", "-inf", "nan") and type_ in ("float", "number", "any", "floats"):
        return float(v)
    if isinstance(v, list):
        return [decode_value(x, type_) for x in v]
    return v
