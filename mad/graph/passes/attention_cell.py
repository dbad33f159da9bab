"""add_attention: a residual self-attention cell on the feature map of a convolutional network.

The cell reads a ``(B, C, H, W)`` tensor as ``H*W`` tokens of width ``C`` (flatten, transpose), applies a
pre-norm multi-head self-attention with a residual connection, and turns the result back into the feature
map (transpose, reshape), so everything after it is unchanged. :func:`self_attention` is the attention
itself, over ``(B, T, D)`` tokens; the random architecture space builds its transformers with it.
"""

from __future__ import annotations

from typing import Any

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from .cut import spine
from .edit import rewire
from .edits import finish_edit

__all__ = ["add_attention", "self_attention"]


def self_attention(b: GraphBuilder, x: str, heads: int, kv_heads: int, head_dim: int, scope: str,
                   causal: bool = False, fused: bool = False, bias: bool = True) -> str:
    """Multi-head attention over (B, T, D) with ``kv_heads`` key/value heads; returns (B, T, D).

    ``T`` may be the symbol ``"T"`` (token sequences) or a concrete token count (image patches).
    """
    bs, t, d = b.shape(x)
    qd, kd = heads * head_dim, kv_heads * head_dim
    if fused:
        qkv = b.op("linear", x, out_features=qd + 2 * kd, bias=bias, scope=f"{scope}.qkv_proj")
        split = b.op("split_with_sizes", qkv, split_sizes=[qd, kd, kd], dim=-1, scope=scope)
        q, k, v = (b.op("getitem", split, index=i, scope=scope) for i in range(3))
    else:
        q, k, v = (b.op("linear", x, out_features=n, bias=bias, scope=f"{scope}.{name}")
                   for name, n in (("q_proj", qd), ("k_proj", kd), ("v_proj", kd)))
    split_heads = []
    for y, n in ((q, heads), (k, kv_heads), (v, kv_heads)):
        y = b.op("view", y, size=[bs, t, n, head_dim], scope=scope)  # (B, T, n, head_dim)
        split_heads.append(b.op("transpose", y, dim0=1, dim1=2, scope=scope))  # (B, n, T, head_dim)
    extra: dict[str, Any] = {"enable_gqa": True} if kv_heads != heads else {}
    o = b.op("scaled_dot_product_attention", *split_heads, attn_mask=None, is_causal=causal, scope=scope, **extra)
    o = b.op("transpose", o, dim0=1, dim1=2, scope=scope)  # (B, T, heads, head_dim)
    o = b.op("reshape", o, shape=[bs, t, qd], scope=scope)
    return b.op("linear", o, out_features=d, bias=bias, scope=f"{scope}.o_proj")


def _site(g: ArchGraph, max_tokens: int) -> str | None:
    """The latest feature map every path to the output passes through (:func:`~.cut.spine`), with concrete
    sizes and at most ``max_tokens`` positions."""
    best = None
    for nid in spine(g)[1:-1]:
        n = g.nodes[nid]
        s = n.shape
        if (n.op not in ("input", "parameter") and isinstance(s, list) and len(s) == 4
                and all(isinstance(d, int) and d > 0 for d in s[1:]) and 2 <= s[2] * s[3] <= max_tokens):
            best = nid
    return best


def add_attention(g: ArchGraph, node: str | None = None, heads: int | None = None, max_tokens: int = 256
                  ) -> ArchGraph:
    """A copy of ``g`` with a residual self-attention cell after the feature map ``node``.

    Args:
        g: a valid graph (unchanged).
        node: a node of shape ``(B, C, H, W)`` with concrete sizes; default: the latest such node that every
            path to the output passes through, with at most ``max_tokens`` positions.
        heads: attention heads (must divide ``C``); default: the most of 8, 4, 2 that leaves heads of width
            >= 8, else 1.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``node``, ``heads`` and ``tokens``.

    Raises:
        GraphError: no such feature map, or ``heads`` does not divide its channels.

    Example:
        >>> h = add_attention(cnn)                    # a CNN becomes a hybrid conv-attention network
        >>> h.meta["edits"][-1]["heads"]
        4
    """
    node = node or _site(g, max_tokens)
    if node is None or node not in g.nodes:
        raise GraphError(f"add_attention: graph {g.name!r} has no (B, C, H, W) feature map with concrete sizes "
                         f"and at most {max_tokens} positions that all paths to the output pass through")
    shape = g.nodes[node].shape
    if not (isinstance(shape, list) and len(shape) == 4 and all(isinstance(d, int) for d in shape[1:])):
        raise GraphError(f"add_attention: node {node!r} has shape {shape}, not (B, C, H, W) with concrete sizes")
    _, c, h, w = shape
    if heads is None:
        heads = next((k for k in (8, 4, 2) if c % k == 0 and c // k >= 8), 1)
    if heads < 1 or c % heads:
        raise GraphError(f"add_attention: {heads} heads do not divide the {c} channels of {node!r}")
    out = g.copy()
    b = GraphBuilder.extend(out)
    before = set(out.nodes)
    used = {n.scope.split(".")[0] for n in out.nodes.values()}
    scope = next(f"attn_cell{k or ''}" for k in range(len(used) + 1) if f"attn_cell{k or ''}" not in used)
    t = b.op("transpose", b.op("flatten", node, start_dim=2, scope=scope), dim0=1, dim1=2, scope=scope)
    a = self_attention(b, b.op("layer_norm", t, eps=1e-5, scope=f"{scope}.norm"), heads, heads, c // heads,
                       f"{scope}.attn")
    y = b.op("transpose", b.op("add", t, a, scope=scope), dim0=1, dim1=2, scope=scope)
    y = b.op("reshape", y, shape=[-1, c, h, w], scope=scope)
    rewire(out, {node: y}, exclude=set(out.nodes) - before)
    return finish_edit(out, "add_attention", node=node, heads=heads, tokens=h * w)
