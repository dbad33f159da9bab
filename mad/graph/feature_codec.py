"""Exact integer codes of attribute values and dims, used by :mod:`mad.graph.features`.

A *cell* codes one JSON value of a node's attrs as ``(kind, c0, cB, cT, cBT)``
integers plus one float64 ``real``. :data:`KINDS`:

============  ==================================================================
``absent``    the key is not in ``attrs`` (also every unused cell)
``null``      ``None``
``port``      ``"%"``: a tensor argument fed through the next input port
``bool``      ``c0`` = 0 or 1
``int``       ``c0`` = the int (int64)
``float``     ``real`` = the float
``nonfinite`` a non-finite float stored as text (``"inf"``, ``"-inf"``, ``"nan"``); ``real`` holds it
``enum``      ``c0`` = id in the vocabulary table of the slot's type (``dtype``,
              ``memory_format``, ``layout``, ``str``; see :mod:`mad.graph.ops.vocab`)
``sym``       a symbolic int ``c0 + cB*B + cT*T + cBT*B*T`` (printed by
              :func:`mad.graph.symbolic.format_poly`)
``list``      a list of ``c0`` entries, coded one cell each in the slot's list area
``ports``     a list of ``c0`` entries that are all ``"%"`` (any length, no list area)
``side``      the value is carried in the side band (free text, ``any`` values,
              long or nested lists, non-canonical dim expressions)
============  ==================================================================

A dim codes the same way as ``(c0, cB, cT, cBT)``: an int ``d`` is ``(d, 0, 0,
0)``; a str expression codes when it is a polynomial in the symbols
:data:`DIM_SYMBOLS` with no power above one and prints back to the same text.
"""

from __future__ import annotations

import math
from typing import Any

from .symbolic import SymbolError, evaluate, format_poly, to_poly
from .ops.vocab import enum_from_id, enum_id

__all__ = [
    "KINDS",
    "DIM_SYMBOLS",
    "SideBand",
    "dim_code",
    "dim_decode",
    "value_code",
    "value_decode",
    "slog",
    "example_dim",
    "example_numel",
]

KINDS: tuple[str, ...] = (
    "absent", "null", "port", "bool", "int", "float", "nonfinite", "enum", "sym", "list", "ports", "side",
)
ABSENT, NULL, PORT, BOOL, INT, FLOAT, NONFINITE, ENUM, SYM, LIST, PORTS, SIDE = range(len(KINDS))
DIM_SYMBOLS: tuple[str, ...] = ("B", "T")
_MONOMIALS: tuple[tuple[str, ...], ...] = ((), ("B",), ("T",), ("B", "T"))
_ENUM_TYPES = ("dtype", "memory_format", "layout", "str")
_FLOATISH = ("float", "number", "floats", "tensor", "tensor_list", "any")
_INTISH = ("int", "ints", "number", "tensor", "tensor_list")
_I64 = (-(2**63), 2**63 - 1)
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}

Code = tuple[int, int, int, int, int, float]


class SideBand:
    """The non-tensor part of a feature ``Data``: a dict kept whole when PyG batches graphs.

    (PyG merges plain dicts key by key when it batches; an object of this
    class is collected into a list instead, one per graph.)
    """

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SideBand) and other.data == self.data

    def __repr__(self) -> str:
        return f"SideBand({sorted(self.data)})"


def dim_code(d: Any) -> tuple[int, int, int, int] | None:
    """``(c0, cB, cT, cBT)`` of a dim, or None when it has no exact code."""
    if isinstance(d, int) and not isinstance(d, bool):
        return (d, 0, 0, 0) if _I64[0] <= d <= _I64[1] else None
    if not isinstance(d, str):
        return None
    try:
        poly = to_poly(d)
    except SymbolError:
        return None
    if any(m not in _MONOMIALS for m in poly) or format_poly(poly) != d:
        return None
    c = tuple(poly.get(m, 0) for m in _MONOMIALS)
    return c if all(_I64[0] <= v <= _I64[1] for v in c) else None  # type: ignore[return-value]


def dim_decode(c: Any) -> int | str:
    """Inverse of :func:`dim_code`: an int when only ``c0`` is set, else the canonical text."""
    c0, cb, ct, cbt = c
    if not (cb or ct or cbt):
        return int(c0)
    return format_poly({m: v for m, v in zip(_MONOMIALS, (c0, cb, ct, cbt)) if v})


def value_code(v: Any, t: str) -> Code | None:
    """Cell code of one scalar value in a slot of type ``t``; None when it needs the side band."""
    if v is None:
        return (NULL, 0, 0, 0, 0, 0.0)
    if isinstance(v, bool):
        return (BOOL, int(v), 0, 0, 0, 0.0)
    if isinstance(v, int):
        return (INT, v, 0, 0, 0, 0.0) if _I64[0] <= v <= _I64[1] else None
    if isinstance(v, float):
        return (FLOAT, 0, 0, 0, 0, v)
    if not isinstance(v, str) or t == "any":
        return None
    if v == "%" and t in ("tensor", "tensor_list"):
        return (PORT, 0, 0, 0, 0, 0.0)
    if t in _ENUM_TYPES:
        i = enum_id(t, v)
        return (ENUM, i, 0, 0, 0, 0.0) if i else None
    if v in _NONFINITE and t in _FLOATISH:
        return (NONFINITE, 0, 0, 0, 0, _NONFINITE[v])
    if t in _INTISH:
        c = dim_code(v)
        if c is not None and any(c[1:]):
            return (SYM, *c, 0.0)
    return None


def value_decode(kind: int, c: Any, real: float, t: str) -> Any:
    """Inverse of :func:`value_code` for the scalar kinds."""
    if kind == NULL:
        return None
    if kind == PORT:
        return "%"
    if kind == BOOL:
        return bool(c[0])
    if kind == INT:
        return int(c[0])
    if kind == FLOAT:
        return float(real)
    if kind == NONFINITE:
        return "nan" if math.isnan(real) else ("inf" if real > 0 else "-inf")
    if kind == ENUM:
        return enum_from_id(t, int(c[0]))
    if kind == SYM:
        return dim_decode(c[:4])
    raise ValueError(f"cell kind {kind} ({KINDS[kind] if 0 <= kind < len(KINDS) else '?'}) is not a scalar")


def slog(x: float) -> float:
    """``sign(x) * log1p(|x|)``: a scale-free view of a size or a hyperparameter."""
    if x != x or math.isinf(x):
        return 0.0
    return math.copysign(math.log1p(abs(x)), x)


def example_dim(d: Any, sizes: dict[str, int]) -> int:
    """A dim's value at the example sizes (1 when a symbol has no size)."""
    if type(d) is int:
        return d
    try:
        return evaluate(d, sizes) if isinstance(d, str) else 1
    except SymbolError:
        return 1


def example_numel(shape: Any, sizes: dict[str, int]) -> int:
    """Elements of a shape at the example sizes (:func:`example_dim` of each dim)."""
    out = 1
    for d in shape:
        out *= example_dim(d, sizes)
    return out
