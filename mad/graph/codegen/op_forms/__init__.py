"""Readable forms of common ops.

Each emitter returns source for a node, or None to fall back to the aten call. The kinds register
into one table, ``_EMITTERS``; in-place ops without a form of their own are added last.
"""
from __future__ import annotations

from . import functional, layer_functions, operators, tensor_methods  # noqa: F401  (they fill the table)
from .inplace import _inplace, _is_inplace, _register_inplace
from .registry import _EMITTERS, Emitter, _emits

_register_inplace()

__all__ = ["_EMITTERS", "Emitter", "_emits", "_inplace", "_is_inplace"]
