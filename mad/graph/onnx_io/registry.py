"""The table of ONNX op-type converters: the :func:`_converter` decorator and :func:`supported_onnx_ops`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .importer import _Importer

_CONVERTERS: dict[str, Callable[["_Importer", Any], None]] = {}


def _converter(*op_types: str):
    """Register a converter of ONNX op types (default domain) into vocabulary ops."""

    def deco(fn):
        for t in op_types:
            _CONVERTERS[t] = fn
        return fn

    return deco


def supported_onnx_ops() -> list[str]:
    """ONNX op types (default domain) that :func:`from_onnx` maps onto the vocabulary."""
    return sorted(set(_CONVERTERS) | {"Constant", "Identity"})
