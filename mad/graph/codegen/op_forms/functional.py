"""Readable forms as ``torch.nn.functional`` calls: activations, softmax, dropout, pooling, resizing, attention."""
from __future__ import annotations

from ..binding import _Bound
from ..literals import _call, _compact, _lit
from .registry import _EMITTERS, Emitter, _emits


def _functional(fname: str, *attrs: str, positional: tuple[str, ...] = ()) -> Emitter:
    """``F.<fname>(x, <positional attrs>, <keyword attrs>)``; falls back when other attrs are set."""

    def emit(b: _Bound) -> str | None:
        if b.extra(*attrs, *positional):
            return None
        pos = [_lit(b.v(p)) for p in positional]
        return _call(f"F.{fname}", b.x(), *pos, *b.kw(*attrs))

    return emit


_EMITTERS.update({
    "relu": _functional("relu"),
    "relu6": _functional("relu6"),
    "gelu": _functional("gelu", "approximate"),
    "silu": _functional("silu"),
    "mish": _functional("mish"),
    "hardswish": _functional("hardswish"),
    "hardsigmoid": _functional("hardsigmoid"),
    "hardtanh": _functional("hardtanh", "min_val", "max_val"),
    "elu": _functional("elu", "alpha"),
    "selu": _functional("selu"),
    "celu": _functional("celu", "alpha"),
    "leaky_relu": _functional("leaky_relu", "negative_slope"),
    "softplus": _functional("softplus", "beta", "threshold"),
    "glu": _functional("glu", "dim"),
    "softmax": _functional("softmax", "dtype", positional=("dim",)),
    "log_softmax": _functional("log_softmax", "dtype", positional=("dim",)),
    "threshold": _functional("threshold", positional=("threshold", "value")),
    "one_hot": _functional("one_hot", "num_classes"),
    "pixel_shuffle": _functional("pixel_shuffle", positional=("upscale_factor",)),
    "pixel_unshuffle": _functional("pixel_unshuffle", positional=("downscale_factor",)),
    "adaptive_avg_pool1d": _functional("adaptive_avg_pool1d", positional=("output_size",)),
    "adaptive_avg_pool2d": _functional("adaptive_avg_pool2d", positional=("output_size",)),
    "adaptive_avg_pool3d": _functional("adaptive_avg_pool3d", positional=("output_size",)),
})


@_emits("adaptive_max_pool1d", "adaptive_max_pool2d")
def _adaptive_max(b: _Bound) -> str:
    return _call(f"F.{b.op.name}", b.x(), _compact(b.v("output_size")), "return_indices=True")


@_emits("dropout", "alpha_dropout")
def _dropout(b: _Bound) -> str:
    return _call(f"F.{b.op.name}", b.x(), f"p={_lit(b.v('p'))}", "training=self.training")


@_emits("feature_dropout")
def _feature_dropout(b: _Bound) -> str:
    return _call("torch.feature_dropout", b.x(), _lit(b.v("p")), "self.training")


def _pool(kind: str) -> Emitter:
    names = ("stride", "padding", "dilation", "ceil_mode", "count_include_pad", "divisor_override")

    def emit(b: _Bound) -> str | None:
        kws = [f"{n}={_compact(b.v(n))}" for n in names if n in b.op.attrs and b.nondefault(n)]
        if b.nondefault("stride") and not b.v("stride"):
            kws = [k for k in kws if not k.startswith("stride=")]
        return _call(f"F.{b.op.name}", b.x(), _compact(b.v("kernel_size")), *kws)

    return emit


for _name in ("avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d"):
    _EMITTERS[_name] = _pool(_name)


@_emits("upsample_nearest1d", "upsample_nearest2d", "upsample_linear1d", "upsample_bilinear2d",
        "upsample_bicubic2d")
def _upsample(b: _Bound) -> str | None:
    mode = {"nearest": "nearest", "linear": "linear", "bilinear": "bilinear", "bicubic": "bicubic"}[
        b.op.name.removeprefix("upsample_")[:-2]
    ]
    size, scales = b.v("output_size"), b.v("scale_factors")
    if (size is None) == (scales is None):
        return None
    parts = [f"size={_compact(size)}" if size is not None else f"scale_factor={_lit(tuple(scales))}"]
    parts.append(f'mode="{mode}"')
    if "align_corners" in b.op.attrs:
        parts.append(f"align_corners={_lit(b.v('align_corners'))}")
    return _call("F.interpolate", b.x(), *parts)


@_emits("scaled_dot_product_attention")
def _sdpa(b: _Bound) -> str:
    parts = [b.t("query"), b.t("key"), b.t("value")]
    if b.tensor_var("attn_mask"):
        parts.append(f"attn_mask={b.t('attn_mask')}")
    parts += b.kw("dropout_p", "is_causal", "scale", "enable_gqa")
    return _call("F.scaled_dot_product_attention", *parts)
