"""Layer ops: single nodes that own their parameters (``linear``, ``conv2d``...).

A layer node holds its weights as ``params`` (role -> shape, roles named as
in the aten schema and in ``torch.nn``: ``weight``, ``bias``,
``running_mean``...). ``module`` builds the ``torch.nn`` layer that holds
those parameters under the same roles, so that a rebuilt model prints and
names its parameters like the source model.
"""

from __future__ import annotations

import math

from torch import nn

from .aten_ops import aten_op

__all__ = ["LAYERS"]


def _numel(shape) -> int:
    return math.prod(shape) if shape else 1


def _linear_flops(in_shapes, out_shape, attrs, params):
    w = params.get("weight") or (in_shapes[1] if len(in_shapes) > 1 else None)
    k = w[-1] if w else 1
    return 2 * _numel(out_shape) * k + (_numel(out_shape) if "bias" in params else 0)


def _conv_flops(in_shapes, out_shape, attrs, params):
    w = params.get("weight") or in_shapes[1]
    return 2 * _numel(out_shape) * _numel(w[1:])


def _conv_t_flops(in_shapes, out_shape, attrs, params):
    w = params.get("weight") or in_shapes[1]
    return 2 * _numel(in_shapes[0]) * _numel(w[1:])


def _norm_flops(in_shapes, out_shape, attrs, params):
    return 5 * _numel(out_shape)


def _zero(in_shapes, out_shape, attrs, params):
    return 0


def _sdpa_flops(in_shapes, out_shape, attrs, params):
    q, k, v = in_shapes[:3]
    batch = _numel(q[:-2])
    L, E = q[-2], q[-1]
    S, Ev = k[-2], v[-1]
    return batch * (2 * L * S * E + 2 * L * S * Ev + 3 * L * S)


def _linear_module(attrs, params, in_shapes):
    out_f, in_f = params["weight"]
    return nn.Linear(in_f, out_f, bias="bias" in params)


def _conv_module(cls):
    def build(attrs, params, in_shapes):
        w = params["weight"]
        groups = attrs.get("groups") or 1
        transposed = cls in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        cin, cout = (w[0], w[1] * groups) if transposed else (w[1] * groups, w[0])
        padding = attrs.get("padding", 0)
        kw = dict(stride=attrs.get("stride", 1), dilation=attrs.get("dilation", 1), groups=groups, bias="bias" in params)
        if transposed:
            kw["output_padding"] = attrs.get("output_padding", 0)
        if isinstance(padding, str):
            kw["padding"] = padding
        else:
            kw["padding"] = padding
        return cls(cin, cout, tuple(w[2:]), **kw)

    return build


def _layer_norm_module(attrs, params, in_shapes):
    shape = attrs["normalized_shape"]
    if not params:
        return None
    return nn.LayerNorm(shape, eps=attrs.get("eps", 1e-5), elementwise_affine="weight" in params, bias="bias" in params)


def _rms_norm_module(attrs, params, in_shapes):
    return nn.RMSNorm(attrs["normalized_shape"], eps=attrs.get("eps"), elementwise_affine="weight" in params)


def _group_norm_module(attrs, params, in_shapes):
    channels = in_shapes[0][1]
    return nn.GroupNorm(attrs["num_groups"], channels, eps=attrs.get("eps", 1e-5), affine="weight" in params)


def _batch_norm_module(attrs, params, in_shapes):
    rank = len(in_shapes[0])
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}.get(rank)
    if cls is None:
        return None
    c = in_shapes[0][1]
    return cls(
        c,
        eps=attrs.get("eps", 1e-5),
        momentum=attrs.get("momentum", 0.1),
        affine="weight" in params,
        track_running_stats="running_mean" in params,
    )


def _embedding_module(attrs, params, in_shapes):
    n, d = params["weight"]
    pad = attrs.get("padding_idx", -1)
    return nn.Embedding(n, d, padding_idx=None if pad is None or pad < 0 else pad)


def _prelu_module(attrs, params, in_shapes):
    return nn.PReLU(params["weight"][0])


LAYERS = {
    "linear": aten_op("linear.default", category="layer", param_args=("weight", "bias"), flops=_linear_flops,
                      module=_linear_module, doc="y = x W^T + b (torch.nn.Linear)"),
    "conv1d": aten_op("conv1d.default", category="layer", param_args=("weight", "bias"), flops=_conv_flops,
                      module=_conv_module(nn.Conv1d), doc="1-d convolution (torch.nn.Conv1d)"),
    "conv2d": aten_op("conv2d.default", category="layer", param_args=("weight", "bias"), flops=_conv_flops,
                      module=_conv_module(nn.Conv2d), doc="2-d convolution (torch.nn.Conv2d)"),
    "conv3d": aten_op("conv3d.default", category="layer", param_args=("weight", "bias"), flops=_conv_flops,
                      module=_conv_module(nn.Conv3d), doc="3-d convolution (torch.nn.Conv3d)"),
    "conv1d_padding": aten_op("conv1d.padding", category="layer", param_args=("weight", "bias"),
                              flops=_conv_flops, module=_conv_module(nn.Conv1d), doc="1-d convolution, padding by name"),
    "conv2d_padding": aten_op("conv2d.padding", category="layer", param_args=("weight", "bias"),
                              flops=_conv_flops, module=_conv_module(nn.Conv2d), doc="2-d convolution, padding by name"),
    "conv_transpose1d": aten_op("conv_transpose1d.default", category="layer", param_args=("weight", "bias"),
                                flops=_conv_t_flops, module=_conv_module(nn.ConvTranspose1d)),
    "conv_transpose2d": aten_op("conv_transpose2d.input", category="layer", param_args=("weight", "bias"),
                                flops=_conv_t_flops, module=_conv_module(nn.ConvTranspose2d)),
    "conv_transpose3d": aten_op("conv_transpose3d.input", category="layer", param_args=("weight", "bias"),
                                flops=_conv_t_flops, module=_conv_module(nn.ConvTranspose3d)),
    "layer_norm": aten_op("layer_norm.default", category="layer", param_args=("weight", "bias"),
                          flops=_norm_flops, module=_layer_norm_module, doc="layer normalisation (torch.nn.LayerNorm)"),
    "rms_norm": aten_op("rms_norm.default", category="layer", param_args=("weight",), flops=_norm_flops,
                        module=_rms_norm_module, doc="RMS normalisation (torch.nn.RMSNorm)"),
    "group_norm": aten_op("group_norm.default", category="layer", param_args=("weight", "bias"),
                          flops=_norm_flops, module=_group_norm_module, doc="group normalisation (torch.nn.GroupNorm)"),
    "batch_norm": aten_op("batch_norm.default", category="layer",
                          param_args=("weight", "bias", "running_mean", "running_var"),
                          buffer_args=("running_mean", "running_var"), flops=_norm_flops,
                          module=_batch_norm_module, doc="batch normalisation (torch.nn.BatchNorm*d)"),
    "instance_norm": aten_op("instance_norm.default", category="layer",
                             param_args=("weight", "bias", "running_mean", "running_var"),
                             buffer_args=("running_mean", "running_var"), flops=_norm_flops),
    "embedding": aten_op("embedding.default", category="layer", param_args=("weight",), flops=_zero,
                         module=_embedding_module, doc="table lookup (torch.nn.Embedding)"),
    "prelu": aten_op("prelu.default", category="layer", param_args=("weight",), flops=_norm_flops,
                     module=_prelu_module),
    "scaled_dot_product_attention": aten_op("scaled_dot_product_attention.default", category="layer",
                                            flops=_sdpa_flops, doc="softmax(Q K^T / sqrt(d) + mask) V"),
}


def _grouped_mm(input, weight, offs):
    """Rows ``offs[i-1]:offs[i]`` of ``input`` times ``weight[i]`` (mixture-of-experts matmul).

    Shapes: input (S, K), weight (E, K, N), offs (E,) cumulative row counts -> (S, N).
    """
    import torch

    out = torch.zeros(input.shape[0], weight.shape[2], dtype=input.dtype, device=input.device)
    if input.device.type == "meta":
        return out
    start = 0
    for i, end in enumerate(offs.tolist()):
        if end > start:
            out[start:end] = input[start:end] @ weight[i]
        start = end
    return out


def _grouped_mm_flops(in_shapes, out_shape, attrs, params):
    return 2 * _numel(out_shape) * in_shapes[0][-1]


# the grouped matmul of transformers' mixture-of-experts layers (a custom op in its export)
from .registry import OpDef, TensorArg, register_op  # noqa: E402

LAYERS["grouped_mm"] = register_op(
    OpDef(
        name="grouped_mm",
        category="primitive",
        args=(TensorArg("input"), TensorArg("weight"), TensorArg("offs")),
        attrs={},
        fn=_grouped_mm,
        flops=_grouped_mm_flops,
        target="transformers.grouped_mm_fallback.default",
        signature=(("input", True, False), ("weight", True, False), ("offs", True, False)),
        doc="grouped matmul by row offsets (mixture-of-experts)",
    )
)
