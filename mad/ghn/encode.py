"""What the GHN reads from an ArchGraph: node features, structure, and the parameter slots it must fill.

A :class:`GraphInput` is built once per graph (``encode(g)``) from the IR's own learning features
(:func:`mad.graph.features.to_pyg`): the frozen op id, the ``node_feat`` columns (sizes, attrs, parameter
counts), in/out degree, distance from the inputs, and the forward shortest-path distance between every pair of
nodes (the backward distance is its transpose). Nothing depends on node ids or insertion order: every tensor is
in the graph's topological order, and the GHN itself is permutation invariant (attention over a set with
structure-derived biases), so isomorphic graphs get the same parameters.

:func:`collate` pads a list of them into one batch (node mask, distance buckets).

Parameter slots: every parameter a layer op owns (linear, convolutions, norms, embeddings, PReLU) except
buffers (batch-norm running statistics), and every free ``parameter`` node of kind ``parameter`` with a float
dtype (class tokens, position tables, recurrent-cell weights, layer scales). Each slot has a *kind* that fixes
its normalisation (:data:`KINDS`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch

from mad.graph import ArchGraph
from mad.graph.ops import get_op

__all__ = ["GraphInput", "ParamSlot", "encode", "collate", "param_slots", "KINDS", "MAX_DIST", "ROLE_BUCKETS"]

MAX_DIST = 8            # distances 0..7 are buckets of their own, 8 is ">= 8", 9 is "unreachable"
UNREACHABLE = MAX_DIST + 1
MAX_DEGREE = 15
MAX_DEPTH = 63
ROLE_BUCKETS = 256
KINDS = ("weight", "embedding", "scale", "bias")   # fan-in scaled; unit scale; 1 + small; 0 + small
_NORM_OPS = {"layer_norm", "rms_norm", "group_norm", "batch_norm", "instance_norm", "batch_norm_train"}
_FLOATS = {"float32", "float64", "float16", "bfloat16"}


@dataclass(frozen=True)
class ParamSlot:
    """One tensor the GHN predicts: owner node position, role, state-dict name, shape, kind and role bucket."""

    node: int
    role: str
    fqn: str
    shape: tuple[int, ...]
    kind: int
    role_id: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def fan_in(self) -> int:
        return max(1, math.prod(self.shape[1:])) if len(self.shape) >= 2 else 1


@dataclass
class GraphInput:
    """One encoded graph (tensors in topological order)."""

    name: str
    op: torch.Tensor          # (N,) long, frozen op ids
    feat: torch.Tensor        # (N, F) float32, ``to_pyg(g).node_feat``
    in_deg: torch.Tensor      # (N,) long, clipped
    out_deg: torch.Tensor     # (N,) long, clipped
    depth: torch.Tensor       # (N,) long, shortest distance from an input, clipped
    dist: torch.Tensor        # (N, N) uint8, bucketed forward distance i -> j
    slots: list[ParamSlot] = field(default_factory=list)

    @property
    def num_nodes(self) -> int:
        return int(self.op.shape[0])

    @property
    def num_predicted(self) -> int:
        return sum(s.numel for s in self.slots)


def _kind(op: str, role: str, shape: tuple[int, ...]) -> int:
    if op == "embedding":
        return KINDS.index("embedding")
    if len(shape) >= 2:
        return KINDS.index("weight")
    if "bias" in role:
        return KINDS.index("bias")
    if op in _NORM_OPS or op == "prelu" or role == "weight":
        return KINDS.index("scale")
    return KINDS.index("bias")


def role_bucket(op: str, role: str) -> int:
    """Stable bucket of an (op, role) pair; 0 is never used, so it can stand for 'no role'."""
    return 1 + zlib.crc32(f"{op}.{role}".encode()) % (ROLE_BUCKETS - 1)


def param_slots(g: ArchGraph, order: list[str] | None = None) -> list[ParamSlot]:
    """Every parameter the GHN predicts, in topological order then the op's role order."""
    order = order or g.topo_order()
    out = []
    for i, nid in enumerate(order):
        n = g.nodes[nid]
        if not n.params:
            continue
        opdef = get_op(n.op)
        if n.op == "parameter":
            if n.attrs.get("kind", "parameter") != "parameter" or n.attrs.get("dtype", "float32") not in _FLOATS:
                continue
        for role, shape in n.params.items():
            if role in opdef.buffer_args or not all(isinstance(d, int) for d in shape):
                continue
            shape = tuple(int(d) for d in shape)
            out.append(ParamSlot(i, role, n.param_name(role), shape, _kind(n.op, role, shape), role_bucket(n.op, role)))
    return out


def _distances(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import shortest_path

    if n == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    adj = csr_matrix((np.ones(len(src), dtype=np.float32), (src, dst)), shape=(n, n))
    d = shortest_path(adj, directed=True, unweighted=True)
    out = np.full((n, n), UNREACHABLE, dtype=np.uint8)
    finite = np.isfinite(d)
    out[finite] = np.minimum(d[finite], MAX_DIST).astype(np.uint8)
    return out


def encode(g: ArchGraph) -> GraphInput:
    """Encode ``g`` for the GHN (shapes are inferred if missing)."""
    from mad.graph.features import to_pyg

    data = to_pyg(g)
    order = list(data.node_ids)
    n = len(order)
    ei = data.edge_index.numpy()
    src, dst = ei[0], ei[1]
    in_deg = np.bincount(dst, minlength=n)
    out_deg = np.bincount(src, minlength=n)
    raw = _distances(n, src, dst)
    inputs = [i for i, nid in enumerate(order) if g.nodes[nid].op == "input"]
    if inputs:
        depth = raw[inputs].min(axis=0).astype(np.int64)
        depth[depth == UNREACHABLE] = 0
    else:
        depth = np.zeros(n, dtype=np.int64)
    # depth beyond MAX_DIST: the longest-path position is a cheap, exact alternative in a DAG
    if n:
        longest = np.zeros(n, dtype=np.int64)
        for s, d in sorted(zip(src.tolist(), dst.tolist()), key=lambda e: e[1]):
            longest[d] = max(longest[d], longest[s] + 1)
        depth = np.where(depth >= MAX_DIST, np.maximum(depth, longest), depth)
    return GraphInput(
        name=g.name,
        op=data.x.long().clone(),
        feat=data.node_feat.float().clone(),
        in_deg=torch.from_numpy(np.minimum(in_deg, MAX_DEGREE)).long(),
        out_deg=torch.from_numpy(np.minimum(out_deg, MAX_DEGREE)).long(),
        depth=torch.from_numpy(np.minimum(depth, MAX_DEPTH)).long(),
        dist=torch.from_numpy(raw),
        slots=param_slots(g, order),
    )


@dataclass
class Batch:
    """Padded tensors of several graphs: ``(G, N_max, ...)`` plus the node mask."""

    op: torch.Tensor
    feat: torch.Tensor
    in_deg: torch.Tensor
    out_deg: torch.Tensor
    depth: torch.Tensor
    fwd: torch.Tensor         # (G, N, N) long, bucket of distance i -> j
    bwd: torch.Tensor         # (G, N, N) long, bucket of distance j -> i
    mask: torch.Tensor        # (G, N) bool, True on real nodes
    graphs: list[GraphInput]

    def to(self, device) -> "Batch":
        names = ("op", "feat", "in_deg", "out_deg", "depth", "fwd", "bwd", "mask")
        kw = {k: getattr(self, k).to(device) for k in names}
        return Batch(graphs=self.graphs, **kw)


def collate(graphs: list[GraphInput]) -> Batch:
    """Pad ``graphs`` to the largest one (padding nodes are masked out of attention and pooling)."""
    G = len(graphs)
    N = max(1, max(g.num_nodes for g in graphs))
    F = graphs[0].feat.shape[1]
    op = torch.zeros(G, N, dtype=torch.long)
    feat = torch.zeros(G, N, F)
    ind, outd, dep = (torch.zeros(G, N, dtype=torch.long) for _ in range(3))
    fwd = torch.full((G, N, N), UNREACHABLE, dtype=torch.long)
    mask = torch.zeros(G, N, dtype=torch.bool)
    for k, g in enumerate(graphs):
        n = g.num_nodes
        op[k, :n], feat[k, :n], ind[k, :n], outd[k, :n], dep[k, :n] = g.op, g.feat, g.in_deg, g.out_deg, g.depth
        fwd[k, :n, :n] = g.dist.long()
        mask[k, :n] = True
    return Batch(op, feat, ind, outd, dep, fwd, fwd.transpose(1, 2), mask, graphs)
