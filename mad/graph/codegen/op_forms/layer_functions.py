"""Readable forms of layer ops that are not module calls (``F.linear``, ``F.conv2d``, norms, embedding), and FFTs."""
from __future__ import annotations

from ..binding import _Bound
from ..literals import _call, _compact, _lit
from .registry import _EMITTERS, Emitter, _emits


@_emits("linear")
def _f_linear(b: _Bound) -> str:
    return _call("F.linear", b.t("input"), b.t("weight"), b.t("bias") if b.tensor_var("bias") else "")


def _f_conv(fname: str, names: tuple[str, ...]) -> Emitter:
    def emit(b: _Bound) -> str:
        parts = [b.t("input"), b.t("weight")]
        if b.tensor_var("bias"):
            parts.append(b.t("bias"))
        return _call(f"F.{fname}", *parts, *[f"{n}={_compact(b.v(n)) if not isinstance(b.v(n), str) else _lit(b.v(n))}"
                                            for n in names if b.nondefault(n)])

    return emit


for _name, _fname, _names in (
    ("conv1d", "conv1d", ("stride", "padding", "dilation", "groups")),
    ("conv2d", "conv2d", ("stride", "padding", "dilation", "groups")),
    ("conv3d", "conv3d", ("stride", "padding", "dilation", "groups")),
    ("conv1d_padding", "conv1d", ("stride", "padding", "dilation", "groups")),
    ("conv2d_padding", "conv2d", ("stride", "padding", "dilation", "groups")),
    ("conv_transpose1d", "conv_transpose1d", ("stride", "padding", "output_padding", "groups", "dilation")),
    ("conv_transpose2d", "conv_transpose2d", ("stride", "padding", "output_padding", "groups", "dilation")),
    ("conv_transpose3d", "conv_transpose3d", ("stride", "padding", "output_padding", "groups", "dilation")),
):
    _EMITTERS[_name] = _f_conv(_fname, _names)


@_emits("layer_norm")
def _f_layer_norm(b: _Bound) -> str:
    parts = [b.t("input"), _lit(tuple(b.v("normalized_shape")))]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    parts += [f"bias={b.t('bias')}"] if b.tensor_var("bias") else []
    return _call("F.layer_norm", *parts, f"eps={_lit(b.v('eps'))}")


@_emits("rms_norm")
def _f_rms_norm(b: _Bound) -> str:
    parts = [b.t("input"), _lit(tuple(b.v("normalized_shape")))]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    return _call("F.rms_norm", *parts, *b.kw("eps"))


@_emits("group_norm")
def _f_group_norm(b: _Bound) -> str:
    parts = [b.t("input"), _lit(b.v("num_groups"))]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    parts += [f"bias={b.t('bias')}"] if b.tensor_var("bias") else []
    return _call("F.group_norm", *parts, f"eps={_lit(b.v('eps'))}")


@_emits("embedding")
def _f_embedding(b: _Bound) -> str | None:
    if b.nondefault("scale_grad_by_freq") or b.nondefault("sparse"):
        return None
    pad = b.v("padding_idx")
    pad_kw = f"padding_idx={pad}" if pad is not None and pad >= 0 else ""
    return _call("F.embedding", b.t("indices"), b.t("weight"), pad_kw)


@_emits("batch_norm")
def _f_batch_norm(b: _Bound) -> str:
    parts = [b.t("input"), b.t("running_mean"), b.t("running_var")]
    parts += [f"weight={b.t('weight')}"] if b.tensor_var("weight") else []
    parts += [f"bias={b.t('bias')}"] if b.tensor_var("bias") else []
    parts += [f"training={_lit(b.v('training'))}", f"momentum={_lit(b.v('momentum'))}", f"eps={_lit(b.v('eps'))}"]
    return _call("F.batch_norm", *parts)


@_emits("instance_norm")
def _f_instance_norm(b: _Bound) -> str:
    parts = [b.t("input")]
    for name in ("running_mean", "running_var", "weight", "bias"):
        parts += [f"{name}={b.t(name)}"] if b.tensor_var(name) else []
    parts += [f"use_input_stats={_lit(b.v('use_input_stats'))}", f"momentum={_lit(b.v('momentum'))}",
              f"eps={_lit(b.v('eps'))}"]
    return _call("F.instance_norm", *parts)


@_emits("fft_fft", "fft_ifft", "fft_rfft", "fft_irfft")
def _fft(b: _Bound) -> str:
    return _call(f"torch.fft.{b.op.name.removeprefix('fft_')}", b.x(), *b.kw("n", "dim", "norm"))


@_emits("prelu")
def _f_prelu(b: _Bound) -> str:
    return _call("F.prelu", b.t("self"), b.t("weight"))
