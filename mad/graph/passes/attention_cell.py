"""add_attention: a residual self-attention cell on the feature map of a convolutional network.

The cell reads a ``(B, C, H, W)`` tensor as ``H*W`` tokens of width ``C`` (flatten, transpose), applies a
pre-norm multi-head self-attention with a residual connection, and turns the result back into the feature
map (transpose, reshape), so everything after it is unchanged. With ``tokens=True`` the cell goes on a
``(B, N, D)`` token sequence as it is (after a patch embedding: the network becomes a vision transformer).
:func:`self_attention` is the attention itself, over ``(B, T, D)`` tokens; the random architecture space
builds its transformers with it.
"""

from __future__ import annotations

from typing import Any

from ..arch_graph import ArchGraph, GraphError
from ..builder import GraphBuilder
from ..ops import get_op
from .activation import GATED
from .cut import spine
from .edit import rewire
from .edits import finish_edit, free_scope

__all__ = ["add_attention", "feed_forward", "self_attention"]


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


def feed_forward(b: GraphBuilder, x: str, hidden: int, kind: str, scope: str, bias: bool = True) -> str:
    """A transformer MLP over the last dim of ``x``: ``fc1 -> kind -> fc2``, or for a gated ``kind``
    (``swiglu``, ``geglu``, ``reglu``) ``down_proj(act(gate_proj(x)) * up_proj(x))``; returns the width of ``x``."""
    d = b.shape(x)[-1]
    if kind in GATED:
        gate = b.op("linear", x, out_features=hidden, bias=bias, scope=f"{scope}.gate_proj")
        up = b.op("linear", x, out_features=hidden, bias=bias, scope=f"{scope}.up_proj")
        h = b.op("mul", b.op(GATED[kind], gate, scope=f"{scope}.act"), up, scope=scope)
        return b.op("linear", h, out_features=d, bias=bias, scope=f"{scope}.down_proj")
    h = b.op("linear", x, out_features=hidden, bias=bias, scope=f"{scope}.fc1")
    return b.op("linear", b.op(kind, h, scope=f"{scope}.act"), out_features=d, bias=bias, scope=f"{scope}.fc2")


def _site(g: ArchGraph, max_tokens: int, tokens: bool = False) -> str | None:
    """The latest feature map (``tokens``: token sequence) every path to the output passes through
    (:func:`~.cut.spine`), with concrete sizes and at most ``max_tokens`` positions."""
    best = None
    for nid in spine(g)[1:-1]:
        n = g.nodes[nid]
        positions = _positions(n.shape, tokens)
        if n.op not in ("input", "parameter") and positions is not None and 2 <= positions <= max_tokens:
            best = nid
    return best


def _positions(shape: object, tokens: bool) -> int | None:
    """Positions of a ``(B, C, H, W)`` map (``tokens``: a ``(B, N, D)`` sequence) with concrete sizes, else None."""
    if not isinstance(shape, list) or len(shape) != (3 if tokens else 4) \
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:]):
        return None
    return shape[1] if tokens else shape[2] * shape[3]


def add_attention(g: ArchGraph, node: str | None = None, heads: int | None = None, max_tokens: int = 256,
                  tokens: bool = False, norm: str = "layer_norm", mlp: str | None = None) -> ArchGraph:
    """A copy of ``g`` with a residual self-attention cell after the feature map ``node``.

    Args:
        g: a valid graph (unchanged).
        node: a node of shape ``(B, C, H, W)`` with concrete sizes; default: the latest such node that every
            path to the output passes through, with at most ``max_tokens`` positions.
        heads: attention heads (must divide ``C``); default: the most of 8, 4, 2 that leaves heads of width
            >= 8, else 1.
        tokens: the cell goes on a token sequence ``(B, N, D)`` (concrete ``N`` and ``D``; e.g. after a patch
            embedding) instead of a feature map: a patch-embedding network becomes a vision transformer.
        norm: the cell's pre-norm, ``"layer_norm"`` or ``"rms_norm"``.
        mlp: also a pre-norm residual MLP after the attention (a whole transformer block), of this kind: an
            activation op (``"gelu"``) or a gated kind (``"swiglu"``); hidden width 4x (gated: 8/3x, to a
            multiple of 8) the channels. None: attention only.

    Returns:
        the edited, validated graph; ``meta["edits"][-1]`` records ``node``, ``heads``, ``tokens`` (positions
        attended over) and ``mlp``.

    Raises:
        GraphError: no such feature map, or ``heads`` does not divide its channels.

    Example:
        >>> h = add_attention(cnn)                    # a CNN becomes a hybrid conv-attention network
        >>> h.meta["edits"][-1]["heads"]
        4
    """
    what = "(B, N, D) token sequence" if tokens else "(B, C, H, W) feature map"
    if mlp is not None and mlp not in GATED:
        try:
            get_op(mlp)
        except KeyError:
            raise GraphError(f"add_attention: mlp {mlp!r} is neither an activation op nor one of "
                             f"{sorted(GATED)}") from None
    if norm not in ("layer_norm", "rms_norm"):
        raise GraphError(f"add_attention: norm must be 'layer_norm' or 'rms_norm', got {norm!r}")
    node = node or _site(g, max_tokens, tokens)
    if node is None or node not in g.nodes:
        raise GraphError(f"add_attention: graph {g.name!r} has no {what} with concrete sizes and at most "
                         f"{max_tokens} positions that all paths to the output pass through")
    shape = g.nodes[node].shape
    positions = _positions(shape, tokens)
    if positions is None:
        raise GraphError(f"add_attention: node {node!r} has shape {shape}, not a {what} with concrete sizes")
    c = shape[-1] if tokens else shape[1]
    if heads is None:
        heads = next((k for k in (8, 4, 2) if c % k == 0 and c // k >= 8), 1)
    if heads < 1 or c % heads:
        raise GraphError(f"add_attention: {heads} heads do not divide the {c} channels of {node!r}")
    out = g.copy()
    b = GraphBuilder.extend(out)
    before = set(out.nodes)
    scope = free_scope(out, "attn_cell")
    t = node if tokens else b.op("transpose", b.op("flatten", node, start_dim=2, scope=scope), dim0=1, dim1=2,
                                 scope=scope)
    eps = 1e-6 if norm == "rms_norm" else 1e-5
    a = self_attention(b, b.op(norm, t, eps=eps, scope=f"{scope}.norm"), heads, heads, c // heads, f"{scope}.attn")
    y = b.op("add", t, a, scope=scope)
    if mlp is not None:
        hidden = max(8, round(c * 8 / 3 / 8) * 8) if mlp in GATED else 4 * c
        f = feed_forward(b, b.op(norm, y, eps=eps, scope=f"{scope}.mlp_norm"), hidden, mlp, f"{scope}.mlp")
        y = b.op("add", y, f, scope=scope)
    if not tokens:
        y = b.op("reshape", b.op("transpose", y, dim0=1, dim1=2, scope=scope), shape=[-1, c, *shape[2:]],
                 scope=scope)
    rewire(out, {node: y}, exclude=set(out.nodes) - before)
    return finish_edit(out, "add_attention", node=node, heads=heads, tokens=positions, mlp=mlp)
