"""ONNX converters of elementwise ops: unary math, arithmetic, comparisons, casts, clips and activations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..ops.registry import PORT
from ..ops.values import dtype_name
from .importer import _Importer
from .registry import _converter
from .values import _attrs_of, _f32, _onnx_to_torch_dtype

_UNARY = {
    "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Erf": "erf", "Sqrt": "sqrt", "Exp": "exp", "Log": "log",
    "Neg": "neg", "Abs": "abs", "Reciprocal": "reciprocal", "Floor": "floor", "Ceil": "ceil", "Sin": "sin",
    "Cos": "cos", "Tan": "tan", "Atan": "atan", "Asin": "asin", "Acos": "acos", "Sinh": "sinh", "Cosh": "cosh",
    "Not": "logical_not", "IsNaN": "isnan", "Sign": "sign", "Round": "round", "Mish": "mish",
    "HardSwish": "hardswish", "BitwiseNot": "bitwise_not",
}


@_converter(*_UNARY)
def _unary(imp: _Importer, node) -> None:
    imp.emit(_UNARY[node.op_type], [imp.tensor(node.input[0])])


@_converter("IsInf")
def _isinf(imp: _Importer, node) -> None:
    a = _attrs_of(node)
    x = imp.tensor(node.input[0])
    pos, neg = a.get("detect_positive", 1), a.get("detect_negative", 1)
    if pos and neg:
        imp.emit("isinf", [x])
    else:
        imp.emit("eq_scalar", [x], {"other": "inf" if pos else "-inf"})


_ARITH = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}


@_converter(*_ARITH)
def _arith(imp: _Importer, node) -> None:
    a, b = node.input[:2]
    t = node.op_type
    op, attrs = _ARITH[t], {}
    if t == "Div" and not (imp.dtype(a).is_floating_point or imp.dtype(a).is_complex):
        op, attrs = "div_mode", {"rounding_mode": "trunc"}
    sb = imp.scalar(b, a) if not imp.is_const(a) else None
    if sb is not None:
        imp.emit(op, [imp.tensor(a)], {**attrs, "other": sb})
        return
    sa = imp.scalar(a, b) if not imp.is_const(b) else None
    if sa is not None and t in ("Add", "Mul"):
        imp.emit(op, [imp.tensor(b)], {"other": sa})
    elif sa is not None and t == "Sub":
        imp.emit("rsub", [imp.tensor(b)], {"other": sa})
    else:
        imp.emit(op, [imp.tensor(a), imp.tensor(b)], attrs)


@_converter("Pow")
def _pow(imp: _Importer, node) -> None:
    a, b = node.input[:2]
    se = imp.scalar(b, a)
    if se is not None and (imp.dtype(a).is_floating_point or isinstance(se, int)):
        imp.emit("pow", [imp.tensor(a)], {"exponent": se})
        return
    sb = imp.scalar(a, b)
    if sb is not None and imp.dtype(b).is_floating_point:
        imp.emit("pow_scalar_base", [imp.tensor(b)], {"self": sb})
        return
    imp.emit("pow_tensor", [imp.tensor(a), imp.tensor(b)])


_COMPARE = {"Equal": "eq", "Less": "lt", "Greater": "gt", "LessOrEqual": "le", "GreaterOrEqual": "ge"}
_FLIPPED = {"eq": "eq", "lt": "gt", "gt": "lt", "le": "ge", "ge": "le"}


@_converter(*_COMPARE)
def _compare(imp: _Importer, node) -> None:
    a, b = node.input[:2]
    op = _COMPARE[node.op_type]
    sb = imp.scalar(b, a) if not imp.is_const(a) else None
    if sb is not None:
        imp.emit(f"{op}_scalar", [imp.tensor(a)], {"other": sb})
        return
    sa = imp.scalar(a, b) if not imp.is_const(b) else None
    if sa is not None:
        imp.emit(f"{_FLIPPED[op]}_scalar", [imp.tensor(b)], {"other": sa})
        return
    imp.emit(f"{op}_tensor", [imp.tensor(a), imp.tensor(b)])


_BINARY = {
    "And": "logical_and", "Or": "logical_or", "Xor": "logical_xor", "BitwiseAnd": "bitwise_and",
    "BitwiseOr": "bitwise_or", "BitwiseXor": "bitwise_xor",
}


@_converter(*_BINARY)
def _binary(imp: _Importer, node) -> None:
    imp.emit(_BINARY[node.op_type], [imp.tensor(node.input[0]), imp.tensor(node.input[1])])


@_converter("Max", "Min", "Sum", "Mean")
def _variadic(imp: _Importer, node) -> None:
    op = {"Max": "maximum", "Min": "minimum", "Sum": "add", "Mean": "add"}[node.op_type]
    ins = [x for x in node.input if x]
    if len(ins) == 1 and node.op_type != "Mean":
        imp.set(node.output[0], imp.value(ins[0]))
        return
    acc = imp.tensor(ins[0])
    last = len(ins) - 1
    for i, x in enumerate(ins[1:], 1):
        out = node.output[0] if i == last and node.op_type != "Mean" else None
        acc = imp.add(op, [acc, imp.tensor(x)], out=out)
    if node.op_type == "Mean":
        acc = imp.add("div", [acc], {"other": len(ins)}, out=node.output[0])
    imp.set(node.output[0], acc)


@_converter("Mod")
def _mod(imp: _Importer, node) -> None:
    a, b = node.input[:2]
    fmod = _attrs_of(node).get("fmod", 0)
    s = imp.scalar(b, a) if not imp.is_const(a) else None
    name = "fmod" if fmod else "remainder"
    if s is not None:
        imp.emit(name, [imp.tensor(a)], {"other": s})
    else:
        imp.emit(f"{name}_tensor", [imp.tensor(a), imp.tensor(b)])


@_converter("Where")
def _where(imp: _Importer, node) -> None:
    c, x, y = node.input[:3]
    cond = imp.tensor(c)
    sx, sy = imp.scalar(x, c, y), imp.scalar(y, c, x)
    if sx is not None and sy is not None and imp.dtype(x) in (torch.float32, torch.int64, torch.bool):
        imp.emit("where_scalars", [cond], {"self": sx, "other": sy})
    elif sx is not None:
        imp.emit("where_scalar_self", [cond, imp.tensor(y)], {"self": sx})
    elif sy is not None:
        imp.emit("where_scalar_other", [cond, imp.tensor(x)], {"other": sy})
    else:
        imp.emit("where", [cond, imp.tensor(x), imp.tensor(y)])


@_converter("Cast", "CastLike")
def _cast(imp: _Importer, node) -> None:
    x = node.input[0]
    if node.op_type == "Cast":
        to = _onnx_to_torch_dtype(_attrs_of(node)["to"])
    else:
        to = imp.dtype(node.input[1])
    if imp.dtype(x) == to:
        imp.set(node.output[0], imp.value(x))
        return
    imp.emit("to_dtype", [imp.tensor(x)], {"dtype": dtype_name(to)})


@_converter("Clip")
def _clip(imp: _Importer, node) -> None:
    a = _attrs_of(node)
    x = node.input[0]
    bounds: dict[str, Any] = {}
    tensors: dict[str, str] = {}
    for i, key in ((1, "min"), (2, "max")):
        name = node.input[i] if len(node.input) > i else ""
        if name:
            s = imp.scalar(name)
            if s is None:
                tensors[key] = imp.tensor(name)
            else:
                bounds[key] = s
        elif key in a and imp.opset < 11:
            bounds[key] = _f32(a[key])
    if tensors:
        ports = [imp.tensor(x)]
        attrs: dict[str, Any] = {}
        for key in ("min", "max"):
            if key in tensors:
                ports.append(tensors[key])
                attrs[key] = PORT
        imp.emit("clamp_tensor", ports, attrs)
    elif not bounds:
        imp.set(node.output[0], imp.value(x))
    else:
        imp.emit("clamp", [imp.tensor(x)], bounds)


@_converter("Softmax", "LogSoftmax")
def _softmax(imp: _Importer, node) -> None:
    op = "softmax" if node.op_type == "Softmax" else "log_softmax"
    x = node.input[0]
    shape = imp.shape(x)
    rank = len(shape)
    axis = _attrs_of(node).get("axis", -1 if imp.opset >= 13 else 1)
    axis = axis + rank if axis < 0 else axis
    if imp.opset >= 13 or axis == rank - 1:
        imp.emit(op, [imp.tensor(x)], {"dim": axis - rank if imp.opset >= 13 else -1})
        return
    # opsets < 13 flatten to 2-D at `axis`
    flat = imp.add("reshape", [imp.tensor(x)], {"shape": [math.prod(shape[:axis]), math.prod(shape[axis:])]})
    s = imp.add(op, [flat], {"dim": 1})
    imp.emit("reshape", [s], {"shape": shape})


@_converter("Gelu")
def _gelu(imp: _Importer, node) -> None:
    imp.emit("gelu", [imp.tensor(node.input[0])], {"approximate": _attrs_of(node).get("approximate", "none")})


@_converter("LeakyRelu", "Elu", "Celu", "Selu", "Softplus", "HardSigmoid", "Softsign", "ThresholdedRelu")
def _param_act(imp: _Importer, node) -> None:
    a = _attrs_of(node)
    x = imp.tensor(node.input[0])
    t = node.op_type
    f32 = _f32
    if t == "LeakyRelu":
        imp.emit("leaky_relu", [x], {"negative_slope": f32(a.get("alpha", 0.01))})
    elif t == "Elu":
        imp.emit("elu", [x], {"alpha": f32(a.get("alpha", 1.0))})
    elif t == "Celu":
        imp.emit("celu", [x], {"alpha": f32(a.get("alpha", 1.0))})
    elif t == "Selu":
        alpha, gamma = a.get("alpha", 1.67326319217681884765625), a.get("gamma", 1.05070102214813232421875)
        if np.float32(alpha) == np.float32(1.67326319217681884765625) and np.float32(gamma) == np.float32(
            1.05070102214813232421875
        ):
            imp.emit("selu", [x])
        else:
            imp.emit("elu", [x], {"alpha": f32(alpha), "scale": f32(gamma)})
    elif t == "Softplus":
        imp.emit("softplus", [x])
    elif t == "HardSigmoid":
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
            imp.emit("hardsigmoid", [x])
        else:
            h = imp.add("mul", [x], {"other": f32(alpha)})
            h = imp.add("add", [h], {"other": f32(beta)})
            imp.emit("clamp", [h], {"min": 0.0, "max": 1.0})
    elif t == "Softsign":
        d = imp.add("abs", [x])
        d = imp.add("add", [d], {"other": 1.0})
        imp.emit("div", [x, d])
    else:  # ThresholdedRelu: x if x > alpha else 0
        imp.emit("threshold", [x], {"threshold": f32(a.get("alpha", 1.0)), "value": 0.0})


@_converter("PRelu")
def _prelu(imp: _Importer, node) -> None:
    x, slope = node.input[:2]
    c = imp.const(slope)
    shape = imp.shape(x)
    if c is not None and imp.param_ok(c) and len(shape) >= 2:
        padded = [1] * (len(shape) - c.value.ndim) + list(c.value.shape)
        per_channel = padded[1] == shape[1] and all(d == 1 for i, d in enumerate(padded) if i != 1)
        if c.value.size == 1 or per_channel:
            imp.emit("prelu", [imp.tensor(x)], params={"weight": c.derived(c.value.reshape(-1), "flat")})
            return
    xt = imp.tensor(x)
    neg = imp.add("mul", [xt, imp.tensor(slope)])
    pos = imp.add("gt_scalar", [xt], {"other": 0})
    imp.emit("where", [pos, xt, neg])
