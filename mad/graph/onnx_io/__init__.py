"""ONNX in and out of the ArchGraph IR.

- :func:`to_onnx` exports the module of a graph (``g.to_module()`` or a given
  module with loaded weights) with ``torch.onnx.export(..., dynamo=True)`` on
  ``g.example_inputs()``; input and output names come from the graph.
- :func:`from_onnx` reads an ONNX model back into an ArchGraph: standard
  layers become single nodes that own their weights (``Gemm``/``MatMul`` +
  ``Add`` -> ``linear``, ``Conv`` -> ``conv2d``, ``BatchNormalization`` ->
  ``batch_norm``, ``LayerNormalization`` -> ``layer_norm``, ``Gather`` on a
  weight table -> ``embedding``), every other ONNX op becomes the vocabulary
  primitives that compute the same thing, and subgraphs whose inputs are all
  known at import time (``Shape`` arithmetic, ``Constant``, folded masks) are
  folded into constants. Initializers that no layer owns become ``parameter``
  nodes named after the initializer, so ``from_onnx(path, with_weights=True)``
  (or :func:`load_onnx_weights`) restores the ONNX weights into
  ``g.to_module()``. An ONNX op without a mapping raises
  :class:`OnnxImportError` naming the node and listing every unsupported op
  type; nothing is dropped silently.

Names: a layer's parameters are named ``<scope>.<role>`` where the exporter
recorded the module path (torch's dynamo exporter does), else after the
initializer (``fc.weight`` -> prefix ``fc``), else after the node. Weights are
stored in the vocabulary op's layout, so a ``MatMul`` weight ``[in, out]``
(e.g. GPT-2's ``Conv1D``) is held transposed as ``linear``'s ``[out, in]``.

Shapes are static: an ONNX input with symbolic dims is imported at a concrete
shape (``input_shapes=`` or 1 for each symbolic dim), like every ArchGraph.

Example:
    >>> path = g.to_onnx("model.onnx", check=True)
    >>> g2, weights = from_onnx(path, with_weights=True)
    >>> m = g2.to_module(); m.load_state_dict(weights)
"""

from __future__ import annotations

# the converter modules register their ONNX op types on import
from . import ops_elementwise, ops_indexing, ops_layers, ops_pooling, ops_shape  # noqa: F401
from .errors import OnnxExportError, OnnxImportError
from .export import run_onnx, to_onnx
from .reader import from_onnx, load_onnx_weights
from .registry import supported_onnx_ops

__all__ = [
    "OnnxExportError",
    "OnnxImportError",
    "from_onnx",
    "load_onnx_weights",
    "run_onnx",
    "supported_onnx_ops",
    "to_onnx",
]
