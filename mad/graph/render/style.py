"""Colour families of picture boxes: fill, border and font size per node kind."""

from __future__ import annotations

from ..arch_graph import Node
from ..ops import UnknownOpError, get_op

_STYLE = {  # kind -> (fill, border, font size)
    "layer": ("#d6e6fb", "#3f6fb5", 11),
    "attention": ("#e6dcf6", "#6a4aa8", 11),
    "activation": ("#fde3c4", "#c57a1e", 10),
    "primitive": ("#ffffff", "#8a939e", 10),
    "shape": ("#f1f1f1", "#b4b9bf", 9),
    "input": ("#d3f0d8", "#3d8b4f", 11),
    "output": ("#d3f0d8", "#3d8b4f", 11),
    "parameter": ("#fff4bf", "#c9a92c", 8),
    "block": ("#e8eef8", "#5b6f8f", 11),
    "ref": ("#ffffff", "#9aa3ad", 8),
}
_CLUSTER_FILLS = ("#f6f8fc", "#eef2f9", "#f9f5ee", "#f2f7f2", "#f7f2f7")

_ACTIVATIONS = {
    "relu",
    "relu6",
    "gelu",
    "silu",
    "mish",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "hardtanh",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "softplus",
    "glu",
    "softmax",
    "log_softmax",
    "threshold",
    "prelu",
}
_SHAPE_OPS = {
    "view",
    "reshape",
    "_unsafe_view",
    "permute",
    "transpose",
    "t",
    "unsqueeze",
    "squeeze",
    "squeeze_dims",
    "squeeze_all",
    "flatten",
    "unflatten",
    "expand",
    "expand_as",
    "contiguous",
    "clone",
    "slice",
    "select",
    "narrow",
    "cat",
    "stack",
    "split",
    "split_with_sizes",
    "chunk",
    "unbind",
    "tensor_split",
    "tensor_split_indices",
    "movedim",
    "alias",
    "detach",
    "lift_fresh_copy",
    "_to_copy",
    "to_dtype",
    "to_dtype_layout",
    "type_as",
    "dropout",
    "feature_dropout",
    "alpha_dropout",
    "repeat",
    "flip",
    "roll",
    "getitem",
    "_assert_tensor_metadata",
    "copy",
}


def _kind(n: Node) -> str:
    """Colour family of a node."""
    if n.op == "input":
        return "input"
    if n.op == "parameter":
        return "parameter"
    if n.op == "scaled_dot_product_attention":
        return "attention"
    if n.op in _ACTIVATIONS:
        return "activation"
    if n.op in _SHAPE_OPS:
        return "shape"
    try:
        category = get_op(n.op).category
    except UnknownOpError:
        return "primitive"
    return "layer" if category == "layer" else "primitive"
