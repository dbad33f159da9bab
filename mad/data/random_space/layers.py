"""Layers the random space is made of, written on :class:`~mad.graph.GraphBuilder`.

Each function adds a few nodes under absolute scopes (state-dict paths such
as ``stages.0.cells.1.n0.conv``) and returns the output node id; shapes come
from the builder.
"""

from __future__ import annotations

from typing import Any

from mad.graph import GraphBuilder
from mad.graph.passes import self_attention

__all__ = ["conv", "linear", "act", "binary", "seq_norm", "norm2d", "pool", "attention"]


def conv(b: GraphBuilder, x: str, cout: int, k: int, scope: str, stride: int = 1, dilation: int = 1,
         groups: int = 1, bias: bool = False, pad: int | None = None) -> str:
    """(B, C, H, W) -> (B, cout, H', W'); "same" padding unless ``pad`` is given."""
    pad = dilation * (k - 1) // 2 if pad is None else pad
    return b.op("conv2d", x, out_channels=cout, kernel_size=k, stride=stride, padding=pad, dilation=dilation,
                groups=groups, bias=bias, scope=scope)


def linear(b: GraphBuilder, x: str, out: int, scope: str, bias: bool = True, tie: dict[str, str] | None = None) -> str:
    return b.op("linear", x, out_features=out, bias=bias, scope=scope, tie=tie)


def act(b: GraphBuilder, x: str, kind: str, scope: str) -> str:
    return b.op(kind, x, scope=scope)


def binary(b: GraphBuilder, op: str, x: str, y: str, scope: str) -> str:
    return b.op(op, x, y, scope=scope)


def seq_norm(b: GraphBuilder, x: str, kind: str, scope: str) -> str:
    """layer_norm (eps 1e-5, scale and shift) or rms_norm (eps 1e-6, scale) over the last dim."""
    return b.op(kind, x, eps=1e-6 if kind == "rms_norm" else 1e-5, scope=scope)


def norm2d(b: GraphBuilder, x: str, kind: str, scope: str) -> str:
    """Normalise (B, C, H, W) features: batch norm, group norm, or layer norm over channels."""
    c = b.shape(x)[1]
    if kind == "batch_norm":
        return b.op("batch_norm", x, scope=scope)
    if kind == "group_norm":
        groups = next(gr for gr in (32, 16, 8, 4, 2, 1) if c % gr == 0 and (c // gr >= 2 or gr == 1))
        return b.op("group_norm", x, num_groups=groups, eps=1e-5, scope=scope)
    t = b.op("permute", x, dims=[0, 2, 3, 1], scope=scope)
    t = seq_norm(b, t, "layer_norm", scope)
    return b.op("permute", t, dims=[0, 3, 1, 2], scope=scope + ".out")


def pool(b: GraphBuilder, x: str, kind: str, k: int, stride: int, scope: str) -> str:
    pad = k // 2 if stride == 1 else 0
    extra: dict[str, Any] = {"count_include_pad": False} if kind == "avg_pool2d" and pad else {}
    return b.op(kind, x, kernel_size=k, stride=stride, padding=pad, scope=scope, **extra)


def attention(b: GraphBuilder, x: str, heads: int, kv_heads: int, head_dim: int, scope: str, causal: bool = False,
              fused: bool = False, bias: bool = True) -> str:
    """Multi-head attention over (B, T, D) with ``kv_heads`` key/value heads; returns (B, T, D)
    (:func:`mad.graph.passes.self_attention`)."""
    return self_attention(b, x, heads, kv_heads, head_dim, scope, causal=causal, fused=fused, bias=bias)
