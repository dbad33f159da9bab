"""Whole-graph descriptors: fixed length, sizes at one example."""

import math

import torch
from torch import nn

from mad.code2graph import from_module
from mad.graph.descriptors import (
    FEATURE_OPS, STRUCTURE_NAMES, activation_elements, graph_depth, graph_features, structure_features)


def _mlp():
    return from_module(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), (torch.randn(3, 4),))


def test_activation_elements_count_every_output_at_one_example():
    g = _mlp()
    assert g.dims["B"] == 3  # captured at batch 3, counted at batch 1
    assert activation_elements(g) == 4 + 8 + 8 + 2
    seq = from_module(nn.Sequential(nn.Conv1d(2, 5, 3, padding=1)), (torch.randn(2, 2, 7),))
    assert activation_elements(seq) == 2 * 7 + 5 * 7
    assert activation_elements(seq, dims={"B": 4}) == 4 * (2 * 7 + 5 * 7)


def test_structure_and_graph_features():
    g = _mlp()
    s = structure_features(g)
    assert len(s) == len(STRUCTURE_NAMES) == 2 + len(FEATURE_OPS)
    assert graph_depth(g) == 4 and s[:2] == [math.log2(4), math.log2(5)]
    shares = dict(zip(STRUCTURE_NAMES[2:], s[2:]))
    assert shares["share_linear"] == 0.5 and shares["share_relu"] == 0.25 and sum(shares.values()) == 0.75
    f = graph_features(g, {"num_params": 58, "flops": 99})
    assert f[:2] == [math.log10(59), math.log10(100)] and f[2:] == s
