"""A fixed-length description of a whole graph, for predictors of an architecture's quality.

:func:`structure_features` gives its node count, depth and the share of its nodes in each op family of
:data:`FEATURE_OPS` (the GHN's tree estimator reads it); :func:`graph_features` puts its parameters and FLOPs in
front (the agent's surrogate reads that); :func:`activation_elements` counts the elements of all its outputs for
one example (the search's ``max_activations`` limit).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from .arch_graph import ArchGraph

__all__ = ["FEATURE_OPS", "STRUCTURE_NAMES", "activation_elements", "graph_depth", "graph_features",
           "structure_features"]

# op families counted by graph_features (each: its share of the graph's nodes)
FEATURE_OPS = {
    "conv": ("conv1d", "conv2d", "conv_transpose2d"),
    "linear": ("linear",),
    "batch_norm": ("batch_norm",),
    "layer_norm": ("layer_norm", "rms_norm"),
    "group_norm": ("group_norm",),
    "attention": ("scaled_dot_product_attention", "softmax"),
    "relu": ("relu", "relu6"),
    "gelu": ("gelu",),
    "silu": ("silu",),
    "hardswish": ("hardswish",),
    "pool": ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "mean"),
    "add": ("add",),
    "cat": ("cat",),
    "mul": ("mul",),
    "embedding": ("embedding",),
}
_OP_FAMILY = {op: fam for fam, ops in FEATURE_OPS.items() for op in ops}
# the columns of structure_features
STRUCTURE_NAMES = ("log2_nodes", "log2_depth", *(f"share_{f}" for f in FEATURE_OPS))


def graph_depth(g: ArchGraph) -> int:
    """Nodes on the longest path from an input to an output."""
    depth: dict[str, int] = {}
    for nid in g.topo_order():
        depth[nid] = 1 + max((depth[p] for p in g.predecessors(nid)), default=0)
    return max(depth.values(), default=0)


def structure_features(g: ArchGraph) -> list[float]:
    """Size-free structure (:data:`STRUCTURE_NAMES`): log2 nodes and depth, the share of nodes in each op family."""
    n = max(len(g.nodes), 1)
    fam = Counter(_OP_FAMILY.get(node.op) for node in g.nodes.values())
    return [math.log2(n), math.log2(graph_depth(g) + 1), *[fam[f] / n for f in FEATURE_OPS]]


def graph_features(g: ArchGraph, costs: dict[str, Any] | None = None) -> list[float]:
    """log10 parameters and FLOPs (``costs``' ``num_params``/``flops`` where given, else the graph's own count
    and ``meta["flops"]``), then :func:`structure_features`."""
    costs = costs or {}
    params = costs.get("num_params") or g.num_params
    flops = costs.get("flops") or g.meta.get("flops") or 0
    return [math.log10(params + 1), math.log10(flops + 1), *structure_features(g)]


def activation_elements(g: ArchGraph, dims: dict[str, int] | None = None) -> int:
    """Elements in all nodes' outputs for one example: the batch dim at 1, other symbols at ``dims`` or the graph's
    example sizes (a symbol without a size counts 1). A proxy for activation memory and memory traffic, which
    FLOPs leave out: a graph that concatenates its way to 40,000 channels has few FLOPs and is slow to train."""
    from .feature_codec import example_numel

    sizes = {**g.dims, "B": 1, **(dims or {})}
    total = 0
    for node in g.nodes.values():
        shape = node.shape
        if not isinstance(shape, (list, tuple)):
            continue
        parts = shape if shape and all(isinstance(s, (list, tuple)) for s in shape) else [shape]  # tuple outputs
        total += sum(example_numel(part, sizes) for part in parts)
    return total
