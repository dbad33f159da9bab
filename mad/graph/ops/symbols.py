"""Which attributes of a node hold symbolic dims, and their values under a binding.

Size-bearing attributes (``int``, ``ints`` and ``number`` typed, e.g. a
``view``'s ``size`` or an ``arange``'s ``end``) and constant entries of tensor
arguments may hold dim expressions (see :mod:`mad.graph.symbolic`). Strings in
``str``-typed attributes (an einsum equation, a padding mode) never do, nor do
the markers ``"%"`` (fed by a port) and ``"inf"``/``"-inf"``/``"nan"``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..symbolic import evaluate, free_symbols
from .registry import PORT, OpDef

__all__ = ["attr_symbols", "resolve_attrs", "symbolic_attr_keys", "SIZE_TYPES"]

SIZE_TYPES = ("int", "ints", "number")
_MARKERS = (PORT, "inf", "-inf", "nan")


def _is_expr(v: Any) -> bool:
    return isinstance(v, str) and v not in _MARKERS


def _has_expr(v: Any) -> bool:
    if isinstance(v, list):
        return any(_has_expr(x) for x in v)
    return _is_expr(v)


def symbolic_attr_keys(op: OpDef, attrs: dict[str, Any]) -> list[str]:
    """Names of the attrs of a node of ``op`` that hold dim expressions."""
    keys = []
    tensor_args = {a.name for a in op.args}
    for k, v in attrs.items():
        if k in tensor_args or (k in op.attrs and op.attrs[k].type in SIZE_TYPES):
            if _has_expr(v):
                keys.append(k)
    return keys


def _symbols(v: Any) -> frozenset[str]:
    if isinstance(v, list):
        out: frozenset[str] = frozenset()
        for x in v:
            out |= _symbols(x)
        return out
    return free_symbols(v) if _is_expr(v) else frozenset()


def attr_symbols(op: OpDef, attrs: dict[str, Any]) -> frozenset[str]:
    """Dim symbols used by the attrs of a node of ``op``."""
    out: frozenset[str] = frozenset()
    for k in symbolic_attr_keys(op, attrs):
        out |= _symbols(attrs[k])
    return out


def _resolve(v: Any, bindings: Mapping[str, Any]) -> Any:
    if isinstance(v, list):
        return [_resolve(x, bindings) for x in v]
    if _is_expr(v):
        return evaluate(v, bindings)
    return v


def resolve_attrs(op: OpDef, attrs: dict[str, Any], bindings: Mapping[str, Any], keys: list[str] | None = None) -> dict[str, Any]:
    """``attrs`` with every dim expression evaluated under ``bindings`` (a new dict when any changes)."""
    keys = symbolic_attr_keys(op, attrs) if keys is None else keys
    if not keys:
        return attrs
    out = dict(attrs)
    for k in keys:
        out[k] = _resolve(attrs[k], bindings)
    return out
