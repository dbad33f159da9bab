"""add_rotary: rotary position embeddings (RoPE) on the queries and keys of every self-attention.

Each ``scaled_dot_product_attention`` whose query and key are ``(B, heads, T, head_dim)`` with the same
sequence dim and an even, concrete ``head_dim`` gets ``x * cos + rotate_half(x) * sin`` on both, where
``rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2])`` and the angles are ``position * base^(-2i/d)``
(``arange`` of the sequence dim, so a symbolic ``T`` stays symbolic). The tables are built once per sequence
dim and head width and shared by all attentions. The edit has no parameters: a network that was trained
without position information now sees relative positions in its attention scores.
"""

from __future__ import annotations

import math

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from .edit import rewire
from .edits import finish_edit

__all__ = ["add_rotary"]


def _qk(g: ArchGraph, nid: str) -> tuple[str, str] | None:
    """The query and key nodes of attention ``nid`` when they take rotary embeddings, else None."""
    ins = {e.port: e.src for e in g.edges if e.dst == nid}
    if 0 not in ins or 1 not in ins:
        return None
    q, k = g.nodes[ins[0]].shape, g.nodes[ins[1]].shape
    if not (isinstance(q, list) and isinstance(k, list) and len(q) == len(k) == 4 and q[2] == k[2]):
        return None
    d = q[3]
    if not isinstance(d, int) or d % 2 or k[3] != d:
        return None
    return ins[0], ins[1]


def add_rotary(g: ArchGraph, base: float = 10000.0) -> ArchGraph:
    """A copy of ``g`` with rotary position embeddings on the query and key of every self-attention.

    Args:
        g: a valid graph with ``scaled_dot_product_attention`` nodes (unchanged).
        base: the RoPE frequency base.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``attentions`` (how many) and ``base``.

    Raises:
        GraphError: the graph has no attention whose query and key are ``(B, heads, T, even head_dim)`` of one
            sequence length, or it already computes rotary tables (``sin`` and ``cos``).

    Example:
        >>> h = add_rotary(gpt)                    # learned or no positions -> relative rotary positions
        >>> h.meta["edits"][-1]["attentions"]
        2
    """
    ops = {n.op for n in g.nodes.values()}
    if {"sin", "cos"} <= ops:
        raise GraphError(f"add_rotary: graph {g.name!r} already computes sin and cos tables (rotary positions)")
    sites = [(nid, qk) for nid in g.topo_order() if g.nodes[nid].op == "scaled_dot_product_attention"
             for qk in [_qk(g, nid)] if qk is not None]
    if not sites:
        raise GraphError(f"add_rotary: graph {g.name!r} has no attention whose query and key are "
                         f"(B, heads, T, even head_dim) with one sequence length")
    out = g.copy()
    b = GraphBuilder.extend(out)
    before = set(out.nodes)
    tables: dict[tuple, tuple[str, str]] = {}
    done: dict[str, str] = {}
    for nid, (q, k) in sites:
        for x in (q, k):
            if x in done:
                continue
            seq, d = out.nodes[x].shape[2], out.nodes[x].shape[3]
            if (seq, d) not in tables:
                scope = "rotary"
                pos = b.op("to_dtype", b.op("arange", end=seq, scope=scope), dtype="float32", scope=scope)
                steps = b.op("arange_start_step", start=0, end=d, step=2, scope=scope)
                inv = b.op("exp", b.op("mul", steps, other=-math.log(base) / d, scope=scope), scope=scope)
                angles = b.op("outer", pos, inv, scope=scope)
                angles = b.op("cat", angles, angles, dim=-1, scope=scope)  # (T, d)
                tables[(seq, d)] = (b.op("cos", angles, scope=scope), b.op("sin", angles, scope=scope))
            cos, sin = tables[(seq, d)]
            scope = out.nodes[nid].scope or "rotary"
            lo = b.op("slice", x, dim=-1, start=0, end=d // 2, scope=scope)
            hi = b.op("slice", x, dim=-1, start=d // 2, end=d, scope=scope)
            half = b.op("cat", b.op("neg", hi, scope=scope), lo, dim=-1, scope=scope)
            done[x] = b.op("add", b.op("mul", x, cos, scope=scope), b.op("mul", half, sin, scope=scope), scope=scope)
    rewire(out, done, exclude=set(out.nodes) - before)
    return finish_edit(out, "add_rotary", attentions=len(sites), base=base)
