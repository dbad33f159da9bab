"""Constructor source of standard layers (``nn.Linear(64, 256)``) and the layer that source builds."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..arch_graph import GraphError
from .literals import _call, _compact, _lit


def _ctor_linear(m: nn.Linear) -> str:
    return _call("nn.Linear", str(m.in_features), str(m.out_features), "" if m.bias is not None else "bias=False")


def _ctor_conv(m: nn.modules.conv._ConvNd) -> str | None:
    if m.padding_mode != "zeros":
        return None
    n = len(m.kernel_size)
    parts = [str(m.in_channels), str(m.out_channels), _compact(m.kernel_size)]
    if tuple(m.stride) != (1,) * n:
        parts.append(f"stride={_compact(m.stride)}")
    if isinstance(m.padding, str):
        if m.padding != "valid":
            parts.append(f"padding={_lit(m.padding)}")
    elif tuple(m.padding) != (0,) * n:
        parts.append(f"padding={_compact(m.padding)}")
    if m.transposed and tuple(m.output_padding) != (0,) * n:
        parts.append(f"output_padding={_compact(m.output_padding)}")
    if m.groups != 1:
        parts.append(f"groups={m.groups}")
    if m.bias is None:
        parts.append("bias=False")
    if tuple(m.dilation) != (1,) * n:
        parts.append(f"dilation={_compact(m.dilation)}")
    return _call(f"nn.{type(m).__name__}", *parts)


def _ctor_layer_norm(m: nn.LayerNorm) -> str:
    shape = m.normalized_shape
    parts = [str(shape[0]) if len(shape) == 1 else _lit(tuple(shape))]
    if m.eps != 1e-5:
        parts.append(f"eps={_lit(m.eps)}")
    if not m.elementwise_affine:
        parts.append("elementwise_affine=False")
    elif m.bias is None:
        parts.append("bias=False")
    return _call("nn.LayerNorm", *parts)


def _ctor_rms_norm(m: nn.RMSNorm) -> str:
    shape = m.normalized_shape
    parts = [str(shape[0]) if len(shape) == 1 else _lit(tuple(shape))]
    if m.eps is not None:
        parts.append(f"eps={_lit(m.eps)}")
    if not m.elementwise_affine:
        parts.append("elementwise_affine=False")
    return _call("nn.RMSNorm", *parts)


def _ctor_group_norm(m: nn.GroupNorm) -> str:
    parts = [str(m.num_groups), str(m.num_channels)]
    if m.eps != 1e-5:
        parts.append(f"eps={_lit(m.eps)}")
    if not m.affine:
        parts.append("affine=False")
    elif m.bias is None:
        parts.append("bias=False")
    return _call("nn.GroupNorm", *parts)


def _ctor_batch_norm(m: nn.modules.batchnorm._BatchNorm) -> str:
    parts = [str(m.num_features)]
    if m.eps != 1e-5:
        parts.append(f"eps={_lit(m.eps)}")
    if m.momentum != 0.1:
        parts.append(f"momentum={_lit(m.momentum)}")
    if not m.affine:
        parts.append("affine=False")
    elif m.bias is None:
        parts.append("bias=False")
    if not m.track_running_stats:
        parts.append("track_running_stats=False")
    return _call(f"nn.{type(m).__name__}", *parts)


def _ctor_embedding(m: nn.Embedding) -> str | None:
    if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
        return None
    pad = "" if m.padding_idx is None else f"padding_idx={m.padding_idx}"
    return _call("nn.Embedding", str(m.num_embeddings), str(m.embedding_dim), pad)


def _ctor_prelu(m: nn.PReLU) -> str:
    return _call("nn.PReLU", "" if m.num_parameters == 1 else str(m.num_parameters))


_CTORS: dict[type, Callable[[Any], str | None]] = {
    nn.Linear: _ctor_linear,
    nn.Conv1d: _ctor_conv, nn.Conv2d: _ctor_conv, nn.Conv3d: _ctor_conv,
    nn.ConvTranspose1d: _ctor_conv, nn.ConvTranspose2d: _ctor_conv, nn.ConvTranspose3d: _ctor_conv,
    nn.LayerNorm: _ctor_layer_norm,
    nn.RMSNorm: _ctor_rms_norm,
    nn.GroupNorm: _ctor_group_norm,
    nn.BatchNorm1d: _ctor_batch_norm, nn.BatchNorm2d: _ctor_batch_norm, nn.BatchNorm3d: _ctor_batch_norm,
    nn.Embedding: _ctor_embedding,
    nn.PReLU: _ctor_prelu,
}


def _ctor(m: nn.Module) -> str | None:
    fn = _CTORS.get(type(m))
    return fn(m) if fn is not None else None


def _reconstruct(m: nn.Module) -> nn.Module:
    """Build the layer again from its constructor arguments (mirrors the _ctor_* printers)."""
    if isinstance(m, nn.Linear):
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if isinstance(m, nn.modules.conv._ConvNd):
        kw = {"stride": m.stride, "padding": m.padding, "dilation": m.dilation, "groups": m.groups,
              "bias": m.bias is not None}
        if m.transposed:
            kw["output_padding"] = m.output_padding
        return type(m)(m.in_channels, m.out_channels, m.kernel_size, **kw)
    if isinstance(m, nn.LayerNorm):
        return nn.LayerNorm(m.normalized_shape, eps=m.eps, elementwise_affine=m.elementwise_affine,
                            bias=m.bias is not None or not m.elementwise_affine)
    if isinstance(m, nn.RMSNorm):
        return nn.RMSNorm(m.normalized_shape, eps=m.eps, elementwise_affine=m.elementwise_affine)
    if isinstance(m, nn.GroupNorm):
        return nn.GroupNorm(m.num_groups, m.num_channels, eps=m.eps, affine=m.affine,
                            bias=m.bias is not None or not m.affine)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return type(m)(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                       track_running_stats=m.track_running_stats, bias=m.bias is not None or not m.affine)
    if isinstance(m, nn.Embedding):
        return nn.Embedding(m.num_embeddings, m.embedding_dim, padding_idx=m.padding_idx)
    if isinstance(m, nn.PReLU):
        return nn.PReLU(m.num_parameters)
    raise GraphError(f"to_code: cannot rebuild layer {type(m).__name__}")
