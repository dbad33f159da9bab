"""Python source text of decoded attribute values and of calls, and the errors after which a form falls back;
shared by every part of the code writer."""
from __future__ import annotations

import math
from typing import Any

import torch

# what building a layer, inferring shapes or printing a readable form may raise; each has a fallback
_FAILURES = (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError)


class SymExpr(str):
    """A dim expression (``"B * T"``) written into the source as code, not as a string."""


def _lit(v: Any) -> str:
    """Python source of a decoded attribute value."""
    if isinstance(v, SymExpr):
        return str(v) if str(v).isidentifier() else f"({v})"
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


def _call(head: str, *parts: str) -> str:
    return f"{head}({', '.join(p for p in parts if p)})"
