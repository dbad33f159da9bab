"""Tensor-primitive ops of the vocabulary, defined from ``torch.ops.aten`` schemas.

Each entry of :data:`PRIMITIVES` names an aten overload. Its tensor arguments
become ports, its other arguments typed attributes, its run function is the
overload itself, and its shape rule is execution on the ``meta`` device.
:func:`aten_op` builds such an :class:`OpDef`; ``layers.py`` uses it too.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from .registry import AttrSpec, OpDef, TensorArg, register_op

__all__ = ["aten_op", "PRIMITIVES", "op_name_for"]

_TENSOR_KINDS = {
    "Tensor": "one",
    "Optional[Tensor]": "optional",
    "List[Tensor]": "list",
    "List[Optional[Tensor]]": "optional_list",
}
_ATTR_TYPES = {
    "int": "int",
    "SymInt": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "number": "number",
    "List[int]": "ints",
    "List[SymInt]": "ints",
    "List[float]": "floats",
    "List[bool]": "bools",
    "ScalarType": "dtype",
    "MemoryFormat": "memory_format",
    "Layout": "layout",
    "Device": "device",
    "Generator": "generator",  # always null: the default generator
}

# names that read better than the mechanical packet_overload
_NAMES = {
    "add.Tensor": "add",
    "sub.Tensor": "sub",
    "mul.Tensor": "mul",
    "div.Tensor": "div",
    "div.Tensor_mode": "div_mode",
    "pow.Tensor_Scalar": "pow",
    "pow.Tensor_Tensor": "pow_tensor",
    "pow.Scalar": "pow_scalar_base",
    "rsub.Scalar": "rsub",
    "transpose.int": "transpose",
    "select.int": "select",
    "slice.Tensor": "slice",
    "split.Tensor": "split",
    "mean.dim": "mean",
    "mean.default": "mean_all",
    "sum.dim_IntList": "sum",
    "sum.default": "sum_all",
    "softmax.int": "softmax",
    "log_softmax.int": "log_softmax",
    "unflatten.int": "unflatten",
    "flatten.using_ints": "flatten",
    "squeeze.dim": "squeeze",
    "squeeze.dims": "squeeze_dims",
    "squeeze.default": "squeeze_all",
    "unbind.int": "unbind",
    "index.Tensor": "index",
    "where.self": "where",
    "masked_fill.Scalar": "masked_fill",
    "masked_fill.Tensor": "masked_fill_tensor",
    "arange.default": "arange",
    "arange.start": "arange_start",
    "arange.start_step": "arange_start_step",
    "max.dim": "max_dim",
    "min.dim": "min_dim",
    "max.default": "max_all",
    "min.default": "min_all",
    "var.correction": "var",
    "std.correction": "std",
    "var_mean.correction": "var_mean",
    "repeat_interleave.self_int": "repeat_interleave",
    "repeat_interleave.Tensor": "repeat_interleave_tensor",
    "scatter.src": "scatter",
    "scatter.value": "scatter_value",
    "to.dtype": "to_dtype",
    "to.dtype_layout": "to_dtype_layout",
    "to.device": "to_device",
    "clamp.default": "clamp",
    "clamp.Tensor": "clamp_tensor",
    "upsample_nearest2d.vec": "upsample_nearest2d",
    "upsample_bilinear2d.vec": "upsample_bilinear2d",
    "upsample_bicubic2d.vec": "upsample_bicubic2d",
    "upsample_nearest1d.vec": "upsample_nearest1d",
    "upsample_linear1d.vec": "upsample_linear1d",
    "conv_transpose1d.default": "conv_transpose1d",
    "conv_transpose2d.input": "conv_transpose2d",
    "conv_transpose3d.input": "conv_transpose3d",
    "linalg_vector_norm.default": "vector_norm",
    "tensor_split.sections": "tensor_split",
    "tensor_split.indices": "tensor_split_indices",
    "chunk.default": "chunk",
    "full.default": "full",
    "zeros.default": "zeros",
    "ones.default": "ones",
    "empty.memory_format": "empty",
    "movedim.int": "movedim",
    "norm.ScalarOpt_dim": "norm",
    "any.dim": "any",
    "all.dim": "all",
    "any.default": "any_all",
    "all.default": "all_all",
    "prod.dim_int": "prod",
    "cumsum.default": "cumsum",
    "where.ScalarSelf": "where_scalar_self",
    "where.ScalarOther": "where_scalar_other",
    "where.Scalar": "where_scalars",
    "bitwise_and.Tensor": "bitwise_and",
    "bitwise_or.Tensor": "bitwise_or",
    "bitwise_xor.Tensor": "bitwise_xor",
    "remainder.Scalar": "remainder",
    "remainder.Tensor": "remainder_tensor",
    "fmod.Scalar": "fmod",
    "fmod.Tensor": "fmod_tensor",
    "diagonal.default": "diagonal",
    "fill.Scalar": "fill",
    "fill.Tensor": "fill_tensor",
    "index_put.default": "index_put",
    "topk.default": "topk",
    "sort.default": "sort",
    "argsort.default": "argsort",
    "max_pool2d.default": "max_pool2d",
    "lerp.Scalar": "lerp",
    "lerp.Tensor": "lerp_tensor",
    "unfold.default": "unfold",
    "scatter_add.default": "scatter_add",
    "logsumexp.default": "logsumexp",
    "amax.default": "amax",
    "amin.default": "amin",
    "argmax.default": "argmax",
    "argmin.default": "argmin",
    "new_zeros.default": "new_zeros",
    "new_ones.default": "new_ones",
    "new_full.default": "new_full",
    "new_empty.default": "new_empty",
    "full_like.default": "full_like",
    "zeros_like.default": "zeros_like",
    "ones_like.default": "ones_like",
    "empty_like.default": "empty_like",
    "split_with_sizes.default": "split_with_sizes",
    "constant_pad_nd.default": "constant_pad_nd",
    "pad.default": "pad",
    "expand.default": "expand",
    "view.default": "view",
    "__and__.Tensor": "and",
    "__or__.Tensor": "or",
    "__xor__.Tensor": "xor",
    "diff.default": "diff",
    "add_.Tensor": "add_",
    "sub_.Tensor": "sub_",
    "mul_.Tensor": "mul_",
    "div_.Tensor": "div_",
    "masked_fill_.Scalar": "masked_fill_",
    "copy_.default": "copy_",
    "fill_.Scalar": "fill_",
    "clamp_.default": "clamp_",
    "relu_.default": "relu_",
    "zero_.default": "zero_",
    "index_put_.default": "index_put_",
    "max.other": "max_other",
    "min.other": "min_other",
    "scatter_.value": "scatter_value_",
    "multiply.Tensor": "multiply",
    "broadcast_tensors.default": "broadcast_tensors",
    "scatter_.src": "scatter_",
    "meshgrid.indexing": "meshgrid",
    "std.dim": "std_dim",
    "fill_.Tensor": "fill_tensor_",
    "linalg_norm.default": "linalg_norm",
    "numpy_T.default": "numpy_t",
    "scatter_reduce.two": "scatter_reduce",
    "var.dim": "var_dim",
    "lstm.input": "lstm",
    "gru.input": "gru",
    "__ior__.Tensor": "or_",
    "__iand__.Tensor": "and_",
    "_upsample_bilinear2d_aa.vec": "upsample_bilinear2d_aa",
}

# overloads whose output aliases or reindexes the input: zero FLOPs
_NO_FLOPS = {
    "view", "reshape", "_unsafe_view", "permute", "transpose", "t", "unsqueeze", "squeeze", "squeeze_dims",
    "squeeze_all", "flatten", "unflatten", "expand", "expand_as", "contiguous", "clone", "slice", "select",
    "narrow", "cat", "stack", "split", "split_with_sizes", "chunk", "unbind", "tensor_split",
    "tensor_split_indices", "movedim", "alias", "detach", "lift_fresh_copy", "_to_copy", "to_dtype",
    "to_dtype_layout", "type_as", "dropout", "feature_dropout", "alpha_dropout", "index", "index_select",
    "gather", "arange", "arange_start", "arange_start_step", "zeros", "ones", "full", "empty", "zeros_like",
    "ones_like", "full_like", "empty_like", "new_zeros", "new_ones", "new_full", "new_empty", "scalar_tensor",
    "repeat", "repeat_interleave", "repeat_interleave_tensor", "flip", "roll", "diagonal", "tril", "triu",
    "constant_pad_nd", "pad", "pixel_shuffle", "pixel_unshuffle", "view_as_real", "view_as_complex",
    "as_strided", "copy", "fill", "fill_tensor", "linspace", "eye", "one_hot", "unfold", "diag_embed",
    "masked_fill", "masked_fill_tensor", "index_put", "scatter", "scatter_value", "embedding", "bucketize",
    "searchsorted", "slice_scatter", "select_scatter", "_assert_tensor_metadata",
}


def op_name_for(key: str) -> str:
    """Vocabulary name of an aten overload key such as ``"add.Tensor"``."""
    if key in _NAMES:
        return _NAMES[key]
    packet, overload = key.split(".")
    return packet if overload == "default" else f"{packet}_{overload.lower()}"


def _numel(shape: Any) -> int:
    if not shape or not isinstance(shape[0], (int, list)):
        return 1
    if isinstance(shape[0], list):  # tuple output: count the largest
        return max(_numel(s) for s in shape)
    return math.prod(shape)


def _default_flops(name: str) -> Callable[..., int]:
    if name in _NO_FLOPS:
        return lambda in_shapes, out_shape, attrs, params: 0

    def flops(in_shapes, out_shape, attrs, params):
        # elementwise or reduction: one op per element read or written
        sizes = [_numel(s) for s in in_shapes if s is not None] + [_numel(out_shape)]
        return max(sizes)

    return flops


def aten_op(
    key: str,
    *,
    name: str | None = None,
    category: str = "primitive",
    param_args: tuple[str, ...] = (),
    buffer_args: tuple[str, ...] = (),
    flops: Callable[..., int] | None = None,
    module: Callable[..., Any] | None = None,
    doc: str = "",
    fn: Callable[..., Any] | None = None,
) -> OpDef:
    """Build and register the :class:`OpDef` of aten overload ``key`` (``fn``: what runs in its place, with the
    same signature, e.g. the overload behind an input check its kernel lacks)."""
    packet, overload = key.split(".")
    target = getattr(getattr(torch.ops.aten, packet), overload)
    schema = target._schema
    name = name or op_name_for(key)
    args: list[TensorArg] = []
    attrs: dict[str, AttrSpec] = {}
    signature = []
    creates = False
    for a in schema.arguments:
        rt = str(a.real_type)
        optional = rt.startswith("Optional[")
        inner = rt[len("Optional[") : -1] if optional else rt
        if rt in _TENSOR_KINDS:
            args.append(TensorArg(a.name, _TENSOR_KINDS[rt], a.kwarg_only))
            signature.append((a.name, True, a.kwarg_only))
            continue
        if inner not in _ATTR_TYPES:
            raise TypeError(f"{key}: argument {a.name} has unsupported type {rt}")
        t = _ATTR_TYPES[inner]
        if t == "device":
            creates = creates or inner == "Device"
        default = None
        if a.has_default_value():
            from .values import encode_value

            default = encode_value(a.default_value)
            if t in ("dtype", "memory_format", "layout") and isinstance(a.default_value, int):
                default = None
        attrs[a.name] = AttrSpec(t, optional=optional, default=default, required=not a.has_default_value() and not optional and t != "device")
        signature.append((a.name, False, a.kwarg_only))
    returns = schema.returns
    multi = len(returns) > 1 or (len(returns) == 1 and str(returns[0].type).startswith("List["))
    od = OpDef(
        name=name,
        category=category,
        args=tuple(args),
        attrs=attrs,
        fn=fn or target,
        param_args=param_args,
        buffer_args=buffer_args,
        flops=flops or _default_flops(name),
        module=module,
        multi_output=multi,
        target=target,
        creates=creates,
        signature=tuple(signature),
        doc=doc or f"torch.ops.aten.{key}",
    )
    return register_op(od)


# The primitive vocabulary (layers live in layers.py). Grouped for reading.
PRIMITIVES: tuple[str, ...] = (
    # arithmetic
    "add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor", "div.Tensor_mode", "rsub.Scalar", "rsub.Tensor",
    "pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar", "remainder.Scalar", "remainder.Tensor",
    "fmod.Scalar", "fmod.Tensor", "floor_divide.default", "maximum.default", "minimum.default",
    "atan2.default", "lerp.Scalar", "lerp.Tensor", "addcmul.default", "addcdiv.default",
    # comparison and logic
    "eq.Scalar", "eq.Tensor", "ne.Scalar", "ne.Tensor", "lt.Scalar", "lt.Tensor", "le.Scalar", "le.Tensor",
    "gt.Scalar", "gt.Tensor", "ge.Scalar", "ge.Tensor", "logical_and.default", "logical_or.default",
    "logical_not.default", "logical_xor.default", "bitwise_and.Tensor", "bitwise_or.Tensor",
    "bitwise_xor.Tensor", "bitwise_not.default", "__and__.Tensor", "__or__.Tensor", "__xor__.Tensor", "isnan.default", "isinf.default", "isfinite.default",
    "where.self", "where.ScalarSelf", "where.ScalarOther", "where.Scalar",
    # unary math
    "neg.default", "abs.default", "exp.default", "exp2.default", "expm1.default", "log.default",
    "log2.default", "log1p.default", "sqrt.default", "rsqrt.default", "reciprocal.default", "sin.default",
    "cos.default", "tan.default", "atan.default", "asin.default", "acos.default", "sinh.default", "cosh.default",
    "erf.default", "erfinv.default", "sign.default", "sgn.default", "floor.default", "ceil.default",
    "round.default", "round.decimals", "trunc.default", "frac.default", "square.default",
    "clamp.default", "clamp.Tensor", "clamp_min.default", "clamp_max.default", "nan_to_num.default",
    # activations
    "relu.default", "relu6.default", "gelu.default", "silu.default", "mish.default", "sigmoid.default",
    "tanh.default", "hardswish.default", "hardsigmoid.default", "hardtanh.default", "elu.default",
    "selu.default", "celu.default", "leaky_relu.default", "softplus.default", 
    "glu.default", "softmax.int", "log_softmax.int", "dropout.default",
    "feature_dropout.default", "alpha_dropout.default", "threshold.default",
    # reductions
    "mean.dim", "mean.default", "sum.dim_IntList", "sum.default", "amax.default", "amin.default",
    "max.dim", "min.dim", "max.default", "min.default", "argmax.default", "argmin.default",
    "var.correction", "std.correction", "var_mean.correction", "prod.dim_int", "norm.ScalarOpt_dim",
    "linalg_vector_norm.default", "any.dim", "all.dim", "any.default", "all.default", "logsumexp.default",
    "cumsum.default", "cumprod.default", "diff.default", "topk.default", "sort.default", "argsort.default",
    # linear algebra
    "matmul.default", "mm.default", "bmm.default", "addmm.default", "baddbmm.default", "einsum.default",
    "outer.default", "dot.default",
    # shape and indexing
    "view.default", "reshape.default", "_unsafe_view.default", "permute.default", "transpose.int",
    "t.default", "unsqueeze.default", "squeeze.dim", "squeeze.dims", "squeeze.default",
    "flatten.using_ints", "unflatten.int", "expand.default", "expand_as.default", "contiguous.default",
    "clone.default", "slice.Tensor", "select.int", "narrow.default", "cat.default", "stack.default",
    "split.Tensor", "split_with_sizes.default", "chunk.default", "unbind.int", "tensor_split.sections",
    "tensor_split.indices", "movedim.int", "flip.default", "roll.default", "index.Tensor",
    "index_select.default", "gather.default", "scatter.src", "scatter.value", "scatter_add.default",
    "index_put.default", "masked_fill.Scalar", "masked_fill.Tensor", "tril.default", "triu.default",
    "constant_pad_nd.default", "pad.default", "repeat.default", "repeat_interleave.self_int",
    "repeat_interleave.Tensor", "diagonal.default", "diag_embed.default", "alias.default", "detach.default",
    "lift_fresh_copy.default", "_to_copy.default", "to.dtype", "to.dtype_layout", "to.device", "type_as.default",
    "copy.default", "fill.Scalar", "fill.Tensor", "slice_scatter.default", "select_scatter.default",
    "unfold.default", "view_as_real.default", "view_as_complex.default", "one_hot.default",
    "bucketize.Tensor", "searchsorted.Tensor", "pixel_shuffle.default", "pixel_unshuffle.default",
    # tensor creation
    "arange.default", "arange.start", "arange.start_step", "zeros.default", "ones.default", "full.default",
    "empty.memory_format", "scalar_tensor.default", "zeros_like.default", "ones_like.default",
    "full_like.default", "empty_like.default", "new_zeros.default", "new_ones.default", "new_full.default",
    "new_empty.default", "linspace.default", "eye.default",
    # pooling and resampling
    "avg_pool1d.default", "avg_pool2d.default", "avg_pool3d.default", "max_pool1d.default",
    "max_pool2d.default", "max_pool3d.default", "adaptive_avg_pool1d.default", "adaptive_avg_pool2d.default",
    "adaptive_avg_pool3d.default", "adaptive_max_pool1d.default", "adaptive_max_pool2d.default",
    "upsample_nearest1d.vec", "upsample_nearest2d.vec", "upsample_bilinear2d.vec", "upsample_bicubic2d.vec",
    "upsample_linear1d.vec", "grid_sampler.default", "im2col.default", "col2im.default",
    # in-place forms the training IR keeps; they run in place, as in the source
    "add_.Tensor", "sub_.Tensor", "mul_.Tensor", "div_.Tensor", "masked_fill_.Scalar", "copy_.default",
    "fill_.Scalar", "clamp_.default", "relu_.default", "zero_.default", "index_put_.default",
    "max.other", "min.other", "scatter_.value", "detach_.default",
    # more ops met in the transformers zoo
    "histc.default", "masked_scatter.default", "view_as.default", "reshape_as.default", "multiply.Tensor",
    "broadcast_tensors.default", "mse_loss.default", "polar.default", "scatter_.src", "meshgrid.indexing",
    "tile.default", "numpy_T.default", "fft_fftn.default", "real.default", "std.dim", "_weight_norm.default",
    "clip.default", "linalg_norm.default", "concat.default", "fill_.Tensor", "index_copy_.default",
    "index_add.default", "_upsample_bilinear2d_aa.vec", "__ior__.Tensor", "__iand__.Tensor",
    "scatter_reduce.two", "concatenate.default", "log_sigmoid.default", "var.dim",
    # random ops: same distribution, not the same values as the source's draw
    "rand.default", "randn.default", "randn.generator", "rand_like.default", "randn_like.default",
    # recurrent layers as the export IR keeps them (weights arrive as a list of tensors)
    "lstm.input", "gru.input",
    # fft
    "fft_rfft.default", "fft_irfft.default", "fft_fft.default", "fft_ifft.default",
)



def _mm_flops(in_shapes, out_shape, attrs, params):
    a = in_shapes[-2] if len(in_shapes) == 3 else in_shapes[0]  # addmm/baddbmm: (bias, a, b)
    k = a[-1] if a else 1
    return 2 * _numel(out_shape) * k


def _einsum_flops(in_shapes, out_shape, attrs, params):
    lhs = attrs.get("equation", "").replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, shape in zip(lhs, in_shapes):
        letters = [c for c in term if c.isalpha()]
        if "..." in term:  # broadcast dims: count them once as one extra letter
            lead = len(shape) - len(letters)
            sizes["..."] = max(sizes.get("...", 1), _numel(shape[:lead]) if lead > 0 else 1)
            shape = shape[lead:]
        for c, n in zip(letters, shape):
            sizes[c] = max(sizes.get(c, 1), n)
    return 2 * math.prod(sizes.values()) if sizes else _numel(out_shape)


_FLOPS = {
    "matmul.default": _mm_flops,
    "mm.default": _mm_flops,
    "bmm.default": _mm_flops,
    "addmm.default": _mm_flops,
    "baddbmm.default": _mm_flops,
    "einsum.default": _einsum_flops,
    "outer.default": lambda i, o, a, p: _numel(o),
    "dot.default": lambda i, o, a, p: 2 * _numel(i[0]),
}

def _weight_norm(v: torch.Tensor, g: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``aten._weight_norm`` once ``g`` holds one gain per slice of ``v`` along ``dim`` (one in all for
    ``dim=-1``), in a shape that broadcasts to that layout: the kernel does not check it, and a wrong ``g`` makes
    it write out of bounds (a heap corruption that kills the process), also on the meta device it passes."""
    rank = v.dim()
    if not -1 <= dim < max(rank, 1):
        raise RuntimeError(f"_weight_norm: dim {dim} is out of range for a {rank}-d tensor")
    want = [v.shape[k] if k == dim else 1 for k in range(rank)]
    try:
        fits = list(torch.broadcast_shapes(tuple(g.shape), tuple(want))) == want
    except RuntimeError:
        fits = False
    if not fits or g.numel() != math.prod(want):
        raise RuntimeError(f"_weight_norm: g of shape {list(g.shape)} does not give one gain per slice of v "
                           f"{list(v.shape)} along dim {dim} (expected {want})")
    return torch.ops.aten._weight_norm.default(v, g, dim)


_CHECKED = {"_weight_norm.default": _weight_norm}

for _key in PRIMITIVES:
    aten_op(_key, flops=_FLOPS.get(_key), fn=_CHECKED.get(_key))
