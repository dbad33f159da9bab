"""ONNX converters of layers that own weights: MatMul/Gemm -> linear, Conv, ConvTranspose and normalisations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ops.registry import PORT
from .importer import _Importer
from .registry import _converter
from .values import _attrs_of, _broadcast, _Const, _f32


def _fuse_bias(imp: _Importer, out: str, n_out: int) -> tuple[_Const | None, str]:
    """If ``out`` feeds only an ``Add`` of a constant ``[n_out]`` vector, absorb that Add."""
    idx = imp.only_consumer(out)
    if idx is None:
        return None, out
    add = imp.onnx_graph.node[idx]
    if add.op_type != "Add" or len(add.input) != 2:
        return None, out
    other = add.input[1] if add.input[0] == out else add.input[0]
    if other == out:
        return None, out
    c = imp.const(other)
    if not imp.param_ok(c) or c.value.size != n_out or c.value.ndim != 1:
        return None, out
    imp.absorbed.add(idx)
    return c, add.output[0]



def _weight_and_bias(imp, ports: list, attrs: dict[str, Any], w: str, wc: Any, b: str | None) -> dict[str, _Const]:
    """Owned ``weight``/``bias`` params where they are initializers; else ports (bias marked ``"%"``)."""
    params: dict[str, _Const] = {}
    if imp.param_ok(wc):
        params["weight"] = wc
    else:
        ports.append(imp.tensor(w))
    bc = imp.const(b)
    if b and imp.param_ok(bc) and "weight" in params:
        params["bias"] = bc
    elif b:
        ports.append(imp.tensor(b))
        attrs["bias"] = PORT
    return params

@_converter("MatMul")
def _matmul(imp: _Importer, node) -> None:
    a, b = node.input[:2]
    cb = imp.const(b)
    if cb is not None and not imp.is_const(a) and imp.param_ok(cb, 2) and len(imp.shape(a)) >= 1:
        weight = cb.derived(cb.value.T, "T")
        bias, out = _fuse_bias(imp, node.output[0], weight.value.shape[0])
        params = {"weight": weight}
        attrs: dict[str, Any] = {}
        if bias is not None:
            params["bias"] = bias
        imp.emit("linear", [imp.tensor(a)], attrs, params, out=out)
        return
    imp.emit("matmul", [imp.tensor(a), imp.tensor(b)])


@_converter("Gemm")
def _gemm(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    trans_a, trans_b = at.get("transA", 0), at.get("transB", 0)
    a, b = node.input[:2]
    c = node.input[2] if len(node.input) > 2 and node.input[2] else ""
    x = imp.tensor(a)
    if trans_a:
        x = imp.add("permute", [x], {"dims": [1, 0]})
    cb = imp.const(b)
    out = node.output[0]
    if imp.param_ok(cb, 2):
        w = cb.value if trans_b else cb.value.T
        weight = cb if (trans_b and alpha == 1.0) else cb.derived(w * np.float32(alpha) if alpha != 1.0 else w,
                                                                  f"gemm{int(trans_b)}:{alpha}")
        n = weight.value.shape[0]
        params = {"weight": weight}
        cc = imp.const(c)
        tail = None
        if cc is not None and imp.param_ok(cc) and cc.value.size in (1, n) and (
                cc.value.ndim < 2 or cc.value.shape[0] == 1) and cc.value.ndim <= 2:
            bias = np.broadcast_to(cc.value.reshape(-1), (n,)) * np.float32(beta)
            plain = cc.value.ndim == 1 and cc.value.size == n and beta == 1.0
            params["bias"] = cc if plain else cc.derived(np.array(bias, dtype=cc.value.dtype), f"bias:{beta}")
        elif c:
            tail = c
        y = imp.add("linear", [x], {}, params, out=None if tail else out)
    else:
        bt = imp.tensor(b)
        if trans_b:
            bt = imp.add("permute", [bt], {"dims": [1, 0]})
        y = imp.add("matmul", [x, bt], out=None if (c or alpha != 1.0) else out)
        if alpha != 1.0:
            y = imp.add("mul", [y], {"other": _f32(alpha)}, out=None if c else out)
        tail = c or None
    if tail:
        s = imp.scalar(tail, list(imp.meta[y].shape)) if beta == 1.0 else None
        if s is not None:
            y = imp.add("add", [y], {"other": s}, out=out)
        else:
            ct = imp.tensor(tail)
            if beta != 1.0:
                ct = imp.add("mul", [ct], {"other": _f32(beta)})
            y = imp.add("add", [y, ct], out=out)
    imp.set(out, y)


def _pads(imp: _Importer, at: dict, in_spatial: list[int], kernel: list[int], strides: list[int],
          dilations: list[int]) -> tuple[list[int], list[int]]:
    """(begin, end) padding per spatial dim, resolving ``auto_pad``."""
    n = len(in_spatial)
    auto = at.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for i in range(n):
            out = -(-in_spatial[i] // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_spatial[i], 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return begin, end
    if auto == "VALID":
        return [0] * n, [0] * n
    pads = list(at.get("pads", [0] * (2 * n)))
    return pads[:n], pads[n:]


def _torch_pad(begin: list[int], end: list[int]) -> list[int]:
    """ONNX (begin..., end...) pads of the trailing dims as torch's last-dim-first pad list."""
    out: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        out += [b, e]
    return out


def _spatial(imp: _Importer, node, x: str, weight_shape: list[int] | None = None):
    at = _attrs_of(node)
    shape = imp.shape(x)
    nsp = len(shape) - 2
    if nsp not in (1, 2, 3):
        raise imp.fail(f"input has rank {len(shape)}; only 1-, 2- and 3-d spatial ops are supported")
    kernel = list(at.get("kernel_shape") or (weight_shape[2:] if weight_shape else []))
    strides = list(at.get("strides", [1] * nsp))
    dil = list(at.get("dilations", [1] * nsp))
    begin, end = _pads(imp, at, shape[2:], kernel, strides, dil)
    return at, nsp, kernel, strides, dil, begin, end


@_converter("Conv")
def _conv(imp: _Importer, node) -> None:
    x, w = node.input[:2]
    b = node.input[2] if len(node.input) > 2 else ""
    wc = imp.const(w)
    wshape = list(wc.value.shape) if wc is not None else imp.shape(w)
    at, nsp, kernel, strides, dil, begin, end = _spatial(imp, node, x, wshape)
    xt = imp.tensor(x)
    if begin != end:
        xt = imp.add("constant_pad_nd", [xt], {"pad": _torch_pad(begin, end), "value": 0})
        begin = [0] * nsp
    attrs: dict[str, Any] = {"stride": strides, "padding": begin, "dilation": dil, "groups": int(at.get("group", 1))}
    ports = [xt]
    params = _weight_and_bias(imp, ports, attrs, w, wc, b)
    imp.emit(f"conv{nsp}d", ports, attrs, params)


@_converter("ConvTranspose")
def _conv_transpose(imp: _Importer, node) -> None:
    x, w = node.input[:2]
    b = node.input[2] if len(node.input) > 2 else ""
    wc = imp.const(w)
    wshape = list(wc.value.shape) if wc is not None else imp.shape(w)
    at = _attrs_of(node)
    nsp = len(imp.shape(x)) - 2
    if "output_shape" in at or at.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise imp.fail("ConvTranspose with output_shape or SAME auto_pad is not supported; export with explicit pads")
    pads = list(at.get("pads", [0] * (2 * nsp)))
    if pads[:nsp] != pads[nsp:]:
        raise imp.fail(f"ConvTranspose with asymmetric pads {pads} is not supported")
    attrs: dict[str, Any] = {
        "stride": list(at.get("strides", [1] * nsp)),
        "padding": pads[:nsp],
        "output_padding": list(at.get("output_padding", [0] * nsp)),
        "groups": int(at.get("group", 1)),
        "dilation": list(at.get("dilations", [1] * nsp)),
    }
    del wshape
    ports = [imp.tensor(x)]
    params = _weight_and_bias(imp, ports, attrs, w, wc, b)
    imp.emit(f"conv_transpose{nsp}d", ports, attrs, params)


def _owned_or_ports(imp: _Importer, node, roles: Sequence[tuple[int, str]], attrs: dict) -> tuple[list, dict]:
    """Constant inputs become owned params, others ports (``attrs[role] = '%'``); absent ones are left out."""
    ports: list[str] = []
    params: dict[str, _Const] = {}
    consts = {role: imp.const(node.input[i]) if len(node.input) > i and node.input[i] else None for i, role in roles}
    present = {role for i, role in roles if len(node.input) > i and node.input[i]}
    all_const = all(imp.param_ok(consts[r]) for r in present)
    for i, role in roles:
        if role not in present:
            continue
        if all_const:
            params[role] = consts[role]
        else:
            ports.append(imp.tensor(node.input[i]))
            attrs[role] = PORT
    return ports, params


@_converter("BatchNormalization")
def _batch_norm(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("training_mode", 0):
        raise imp.fail("training_mode=1 is not supported; export the model in eval mode")
    if any(o for o in node.output[1:]):
        raise imp.fail("running-statistics outputs are not supported")
    attrs: dict[str, Any] = {
        "training": False,
        "momentum": _f32(1.0 - float(np.float32(at.get("momentum", 0.9)))),
        "eps": _f32(at.get("epsilon", 1e-5)),
        "cudnn_enabled": True,
    }
    ports, params = _owned_or_ports(imp, node, [(1, "weight"), (2, "bias"), (3, "running_mean"),
                                                (4, "running_var")], attrs)
    imp.emit("batch_norm", [imp.tensor(node.input[0])] + ports, attrs, params)


@_converter("InstanceNormalization")
def _instance_norm(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    attrs: dict[str, Any] = {"use_input_stats": True, "momentum": 0.1, "eps": _f32(at.get("epsilon", 1e-5)),
                             "cudnn_enabled": True}
    ports, params = _owned_or_ports(imp, node, [(1, "weight"), (2, "bias")], attrs)
    imp.emit("instance_norm", [imp.tensor(node.input[0])] + ports, attrs, params)


def _norm_params(imp: _Importer, node, roles: Sequence[tuple[int, str]], shape: list[int], attrs: dict):
    """Scale/bias of a normalisation: owned params reshaped to ``shape`` when constant, else ports."""
    ports: list[str] = []
    params: dict[str, _Const] = {}
    for i, role in roles:
        name = node.input[i] if len(node.input) > i else ""
        if not name:
            continue
        c = imp.const(name)
        if imp.param_ok(c) and c.value.size == math.prod(shape) and _broadcast(c.value.shape, shape) == shape:
            params[role] = c if list(c.value.shape) == shape else c.derived(c.value.reshape(shape), "reshape")
        else:
            t = imp.tensor(name)
            if imp.shape(name) != shape:
                t = imp.add("expand", [t], {"size": shape}) if math.prod(imp.shape(name)) != math.prod(shape) else \
                    imp.add("reshape", [t], {"shape": shape})
            ports.append(t)
            attrs[role] = PORT
    return ports, params


@_converter("LayerNormalization")
def _layer_norm(imp: _Importer, node) -> None:
    if any(o for o in node.output[1:]):
        raise imp.fail("the Mean/InvStdDev outputs are not supported")
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    axis = int(at.get("axis", -1))
    axis = axis + len(shape) if axis < 0 else axis
    norm_shape = shape[axis:]
    attrs: dict[str, Any] = {"normalized_shape": norm_shape, "eps": _f32(at.get("epsilon", 1e-5))}
    ports, params = _norm_params(imp, node, [(1, "weight"), (2, "bias")], norm_shape, attrs)
    imp.emit("layer_norm", [imp.tensor(x)] + ports, attrs, params)


@_converter("RMSNormalization")
def _rms_norm(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    axis = int(at.get("axis", -1))
    axis = axis + len(shape) if axis < 0 else axis
    attrs: dict[str, Any] = {"normalized_shape": shape[axis:], "eps": _f32(at.get("epsilon", 1e-5))}
    ports, params = _norm_params(imp, node, [(1, "weight")], shape[axis:], attrs)
    imp.emit("rms_norm", [imp.tensor(x)] + ports, attrs, params)


@_converter("GroupNormalization")
def _group_norm(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if imp.opset < 21:
        raise imp.fail("GroupNormalization before opset 21 (per-group scale) is not supported")
    x = node.input[0]
    c = imp.shape(x)[1]
    attrs: dict[str, Any] = {"num_groups": int(at["num_groups"]), "eps": _f32(at.get("epsilon", 1e-5))}
    ports, params = _norm_params(imp, node, [(1, "weight"), (2, "bias")], [c], attrs)
    imp.emit("group_norm", [imp.tensor(x)] + ports, attrs, params)
