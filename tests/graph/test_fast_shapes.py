"""Closed-form shape rules agree with the ops' real shape rules, symbols included, and decline when unsure."""

from __future__ import annotations

import pytest

from mad.graph import ArchGraph, Node
from mad.graph.fast_shapes import FAST_RULES, fast_shape
from mad.graph.interpreter import infer_node

F = "float32"
CASES = [
    ("relu", [(["B", 3, 4], F)], {}, {}),
    ("gelu", [([2, 5], F)], {"approximate": "tanh"}, {}),
    ("dropout", [(["B", "T", 8], F)], {"p": 0.1, "train": False}, {}),
    ("softmax", [(["B", 4, "T", "T"], F)], {"dim": -1}, {}),
    ("add", [(["B", 3], F), (["B", 3], F)], {}, {}),
    ("mul", [([2, 3, 4], F), ([2, 3, 4], F)], {}, {}),
    ("layer_norm", [(["B", "T", 8], F)], {"normalized_shape": [8], "eps": 1e-5}, {"weight": [8], "bias": [8]}),
    ("rms_norm", [(["B", "T", 8], F)], {"normalized_shape": [8], "eps": 1e-6}, {"weight": [8]}),
    ("group_norm", [(["B", 8, 5, 5], F)], {"num_groups": 4, "eps": 1e-5}, {"weight": [8], "bias": [8]}),
    ("batch_norm", [(["B", 8, 5, 5], F)], {"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True},
     {"weight": [8], "bias": [8], "running_mean": [8], "running_var": [8]}),
    ("linear", [(["B", "T", 8], F)], {}, {"weight": [3, 8], "bias": [3]}),
    ("conv2d", [(["B", 3, 9, 7], F)], {"stride": [2, 1], "padding": [1, 0], "dilation": [1, 2], "groups": 1},
     {"weight": [4, 3, 3, 3]}),
    ("conv2d", [([2, 8, 9, 9], F)], {"stride": [1, 1], "padding": [2, 2], "dilation": [2, 2], "groups": 8},
     {"weight": [8, 1, 3, 3], "bias": [8]}),
    ("conv1d", [(["B", 4, 11], F)], {"stride": [3], "padding": [0], "dilation": [1], "groups": 2},
     {"weight": [6, 2, 2]}),
    ("transpose", [(["B", "T", 4, 2], F)], {"dim0": 1, "dim1": -2}, {}),
    ("permute", [(["B", 3, 4, 5], F)], {"dims": [0, 2, 3, 1]}, {}),
    ("scaled_dot_product_attention", [(["B", 4, "T", 8], F), (["B", 2, "T", 8], F), (["B", 2, "T", 6], F)],
     {"attn_mask": None, "is_causal": True, "enable_gqa": True}, {}),
    ("scaled_dot_product_attention", [(["B", 4, 7, 8], F)] * 3, {"attn_mask": None, "is_causal": False}, {}),
    ("flatten", [(["B", 3, 4, 5], F)], {"start_dim": 2}, {}),
    ("flatten", [(["B", 3, 1, 1], F)], {"start_dim": 1}, {}),
    ("max_pool2d", [(["B", 3, 9, 8], F)], {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1]}, {}),
    ("avg_pool2d", [(["B", 3, 9, 8], F)], {"kernel_size": [2, 2], "stride": [2, 2], "padding": [0, 0]}, {}),
    ("avg_pool2d", [(["B", 3, 9, 8], F)], {"kernel_size": [3, 3], "stride": [1, 1], "padding": [1, 1],
                                            "count_include_pad": False}, {}),
    ("adaptive_avg_pool2d", [(["B", 3, 9, 8], F)], {"output_size": [1, 1]}, {}),
    ("mean", [(["B", 3, 9, 8], F)], {"dim": [2, 3]}, {}),
    ("mean", [(["B", "T", 8], F)], {"dim": [-1], "keepdim": True}, {}),
    ("cat", [(["B", 3, 5], F), (["B", 4, 5], F)], {"tensors": ["%", "%"], "dim": 1}, {}),
    ("reshape", [(["B", 64, 4], F)], {"shape": ["B", -1]}, {}),
    ("reshape", [(["B", "T", 64], F)], {"shape": ["T", -1]}, {}),
    ("reshape", [(["B", "T", 64], F)], {"shape": ["B", "T", 4, 16]}, {}),
    ("reshape", [(["B", "T", 64], F)], {"shape": ["4*B", -1, 16]}, {}),
    ("reshape", [([2, 64], "int64")], {"shape": [-1]}, {}),
    ("view", [(["B", "T", 4, 16], F)], {"size": ["B", "T", -1]}, {}),
    ("view", [(["B", 3, 8, 8], F)], {"size": [-1, 192]}, {}),
    ("slice", [(["B", 10, 4], F)], {"dim": 1, "start": 2, "end": 9223372036854775807, "step": 3}, {}),
    ("slice", [(["B", 10, 4], F)], {"dim": -2, "start": -4, "end": -1}, {}),
    ("slice", [(["B", 10, 4], F)], {"dim": 1, "start": 12, "end": 20}, {}),
]


@pytest.mark.parametrize("op, specs, attrs, params", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_fast_rule_agrees_with_the_op(op, specs, attrs, params):
    g = ArchGraph(dims={"B": 2, "T": 5})
    node = Node(id="n", op=op, attrs=attrs, params=params)
    assert fast_shape(op, specs, attrs, params) == infer_node(g, node, specs)


def test_every_fast_rule_has_a_case():
    assert set(FAST_RULES) - {c[0] for c in CASES} <= {
        "relu6", "mish", "sigmoid", "tanh", "hardswish", "hardsigmoid", "hardtanh", "elu", "selu", "celu",
        "leaky_relu", "softplus", "neg", "exp", "sqrt", "rsqrt", "clone", "contiguous", "alias", "detach",
        "instance_norm", "log_softmax", "sub", "div", "conv3d", "silu",
    }


@pytest.mark.parametrize(
    "op, specs, attrs, params",
    [
        ("add", [(["B", 3], F), ([1, 3], F)], {}, {}),  # broadcasting: left to the real rule
        ("relu", [(["B", 3], "int64")], {}, {}),  # integer dtypes
        ("linear", [(["B", 7], F)], {}, {"weight": [3, 8]}),  # wrong in_features
        ("conv2d", [(["B", 3, 2, 2], F)], {"padding": [0, 0]}, {"weight": [4, 3, 3, 3]}),  # kernel > input
        ("layer_norm", [(["B", 7], F)], {"normalized_shape": [8]}, {"weight": [8]}),
        ("group_norm", [(["B", 6, 2, 2], F)], {"num_groups": 4}, {}),
        ("scaled_dot_product_attention", [(["B", 4, 5, 8], F)] * 3, {"attn_mask": "%"}, {}),
        ("max_pool2d", [(["B", 3, 8, 8], F)], {"kernel_size": [2, 2], "padding": [2, 2]}, {}),
        ("flatten", [(["B", "T", 4], F)], {"start_dim": 0, "end_dim": 1}, {}),
        ("cat", [(["B", 3, 5], F), (["B", 4, 6], F)], {"tensors": ["%", "%"], "dim": 1}, {}),
        ("view", [(["B", 3], F)], {"size": ["B", 4]}, {}),  # another number of elements
        ("reshape", [([4, 64], F)], {"shape": ["B", -1]}, {}),  # 256 / B is no polynomial
        ("slice", [(["B", "T", 4], F)], {"dim": 1, "start": 0, "end": 2}, {}),  # a symbolic size
    ],
)
def test_fast_rule_declines_when_unsure(op, specs, attrs, params):
    assert fast_shape(op, specs, attrs, params) is None
