"""Constant folding: ONNX nodes whose inputs are all known at import time are computed into constants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .values import _attrs_of, _Const

# ops that never fold, even with constant inputs (random, control flow)
_NO_FOLD = {
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "If", "Loop", "Scan", "SequenceMap",
}


def _has_subgraph(node) -> bool:
    import onnx

    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


class _Folding:
    """Folds a node with constant inputs into constants for :class:`~.importer._Importer` (a mixin).

    Uses the importer's ``const``, ``set``, ``fail`` and ``opset``.
    """

    def fold(self, node) -> None:
        """Compute a node whose inputs are all known (numpy for common ops, else onnx's reference evaluator)."""
        from onnx.reference import ReferenceEvaluator

        feeds = {x: self.const(x).value for x in node.input if x}
        try:
            fast = _FOLDERS.get(node.op_type)
            if fast is not None:
                outs = fast(node, [feeds.get(x) for x in node.input])
            else:
                outs = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception as e:
            raise self.fail(f"folding constant inputs failed: {e}".split("\n")[0]) from e
        kinds = {self.const(x).kind for x in node.input if x}
        for o, v in zip(node.output, outs):
            if o:
                arr = np.asarray(v)
                kind = "constant"
                if arr.dtype.kind == "f":
                    kind = "parameter" if "parameter" in kinds else "buffer" if "buffer" in kinds else "constant"
                self.set(o, _Const(arr, key=o, kind=kind))


def _fold_gather_elements(node, ins):
    data, idx = ins[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take_along_axis(data, idx.astype(np.int64), axis=axis)]


def _fold_gather(node, ins):
    data, idx = ins[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take(data, idx.astype(np.int64), axis=axis)]


# numpy folds of ops whose reference implementation is slow or fragile
_FOLDERS: dict[str, Callable[[Any, list], list]] = {
    "GatherElements": _fold_gather_elements,
    "Gather": _fold_gather,
}
