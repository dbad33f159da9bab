"""ONNX converters of shape and layout ops (reshape, slice, concat, split, pad, ...) and of sequences."""

from __future__ import annotations

import math

import numpy as np

from ..ops.registry import PORT
from .importer import _Importer
from .ops_layers import _torch_pad
from .registry import _converter
from .values import _attrs_of, _broadcast, _Const, _Seq


@_converter("Shape")
def _shape(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    shape = imp.shape(node.input[0])
    start, end = at.get("start", 0), at.get("end", len(shape))
    imp.set(node.output[0], _Const(np.array(shape[slice(start, end)], dtype=np.int64), key=node.output[0]))


@_converter("Size")
def _size(imp: _Importer, node) -> None:
    imp.set(node.output[0], _Const(np.array(math.prod(imp.shape(node.input[0])), dtype=np.int64), key=node.output[0]))


@_converter("Reshape")
def _reshape(imp: _Importer, node) -> None:
    x, s = node.input[:2]
    target = imp.ints(s, "shape")
    shape = imp.shape(x)
    if not _attrs_of(node).get("allowzero", 0):
        target = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(target)]
    if target == shape:
        imp.set(node.output[0], imp.value(x))
        return
    imp.emit("reshape", [imp.tensor(x)], {"shape": target})


@_converter("Flatten")
def _flatten_op(imp: _Importer, node) -> None:
    x = node.input[0]
    shape = imp.shape(x)
    axis = int(_attrs_of(node).get("axis", 1))
    axis = axis + len(shape) if axis < 0 else axis
    imp.emit("reshape", [imp.tensor(x)], {"shape": [math.prod(shape[:axis]), math.prod(shape[axis:])]})


@_converter("Transpose")
def _transpose(imp: _Importer, node) -> None:
    x = node.input[0]
    rank = len(imp.shape(x))
    perm = list(_attrs_of(node).get("perm", list(range(rank))[::-1]))
    if perm == list(range(rank)):
        imp.set(node.output[0], imp.value(x))
        return
    imp.emit("permute", [imp.tensor(x)], {"dims": perm})


@_converter("Squeeze")
def _squeeze(imp: _Importer, node) -> None:
    x = node.input[0]
    axes = imp.ints_arg(node, 1, "axes", _attrs_of(node))
    if not axes:
        imp.emit("squeeze_all", [imp.tensor(x)])
        return
    rank = len(imp.shape(x))
    imp.emit("squeeze_dims", [imp.tensor(x)], {"dim": sorted(a + rank if a < 0 else a for a in axes)})


@_converter("Unsqueeze")
def _unsqueeze(imp: _Importer, node) -> None:
    x = node.input[0]
    axes = imp.ints_arg(node, 1, "axes", _attrs_of(node)) or []
    out_rank = len(imp.shape(x)) + len(axes)
    axes = sorted(a + out_rank if a < 0 else a for a in axes)
    t = imp.tensor(x)
    for i, a in enumerate(axes):
        t = imp.add("unsqueeze", [t], {"dim": a}, out=node.output[0] if i == len(axes) - 1 else None)
    imp.set(node.output[0], t)


@_converter("Concat")
def _concat(imp: _Importer, node) -> None:
    ins = [x for x in node.input if x]
    ins = [x for x in ins if 0 not in imp.shape(x)] or ins[:1]
    axis = int(_attrs_of(node)["axis"])
    if len(ins) == 1:
        imp.set(node.output[0], imp.value(ins[0]))
        return
    imp.emit("cat", [imp.tensor(x) for x in ins], {"tensors": [PORT] * len(ins), "dim": axis})


@_converter("Split")
def _split(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    axis = int(at.get("axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    sizes = imp.ints_arg(node, 1, "split", at) if imp.opset >= 13 or "split" in at else None
    if not sizes:
        n = int(at.get("num_outputs", len(node.output)))
        chunk = -(-shape[axis] // n)
        sizes = [min(chunk, shape[axis] - i * chunk) for i in range(n)]
    if len(node.output) == 1:
        imp.set(node.output[0], imp.value(x))
        return
    sp = imp.add("split_with_sizes", [imp.tensor(x)], {"split_sizes": sizes, "dim": axis})
    for i, o in enumerate(node.output):
        if o:
            imp.emit("getitem", [sp], {"index": i}, out=o)


@_converter("Slice")
def _slice(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    if imp.opset < 10:
        starts, ends = list(at["starts"]), list(at["ends"])
        axes = list(at.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = imp.ints(node.input[1], "starts"), imp.ints(node.input[2], "ends")
        axes = imp.ints_arg(node, 3, "axes", {}) or list(range(len(starts)))
        steps = imp.ints_arg(node, 4, "steps", {}) or [1] * len(starts)
    t = imp.tensor(x)
    ops = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a + len(shape) if a < 0 else a
        n = shape[a]
        idx = range(n)[slice(s, e, st)]
        if st > 0 and idx.start == 0 and len(idx) == n:
            continue  # whole axis
        ops.append((a, idx, st))
    if not ops:
        imp.set(node.output[0], imp.value(x))
        return
    for i, (a, idx, st) in enumerate(ops):
        out = node.output[0] if i == len(ops) - 1 else None
        if st > 0:
            end = idx.stop if len(idx) else idx.start
            t = imp.add("slice", [t], {"dim": a, "start": idx.start, "end": max(end, idx.start), "step": st}, out=out)
        else:
            ic = _Const(np.array(list(idx), dtype=np.int64), key=f"{node.output[0]}:slice{a}")
            t = imp.add("index_select", [t, imp.materialize(ic, f"{node.output[0]}_index")], {"dim": a}, out=out)
    imp.set(node.output[0], t)


@_converter("Expand")
def _expand(imp: _Importer, node) -> None:
    x, s = node.input[:2]
    shape = imp.shape(x)
    target = _broadcast(shape, imp.ints(s, "shape"))
    if target == shape:
        imp.set(node.output[0], imp.value(x))
        return
    imp.emit("expand", [imp.tensor(x)], {"size": target})


@_converter("Tile")
def _tile(imp: _Importer, node) -> None:
    x, r = node.input[:2]
    imp.emit("repeat", [imp.tensor(x)], {"repeats": imp.ints(r, "repeats")})


@_converter("Dropout")
def _dropout(imp: _Importer, node) -> None:
    if len(node.output) > 1 and node.output[1] and node.output[1] in imp.consumers:
        raise imp.fail("the dropout mask output is not supported")
    if len(node.input) > 2 and node.input[2]:
        c = imp.const(node.input[2])
        if c is None or bool(c.value):
            raise imp.fail("training_mode must be a constant false")
    imp.set(node.output[0], imp.value(node.input[0]))


@_converter("Trilu")
def _trilu(imp: _Importer, node) -> None:
    k = 0
    if len(node.input) > 1 and node.input[1]:
        k = imp.ints(node.input[1], "k")[0]
    op = "triu" if _attrs_of(node).get("upper", 1) else "tril"
    imp.emit(op, [imp.tensor(node.input[0])], {"diagonal": k})


@_converter("Pad")
def _pad(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    rank = len(imp.shape(x))
    mode = at.get("mode", "constant")
    if imp.opset < 11:
        pads, value = list(at["pads"]), float(at.get("value", 0.0))
        axes = list(range(rank))
    else:
        pads = imp.ints(node.input[1], "pads")
        value = 0
        if len(node.input) > 2 and node.input[2]:
            v = imp.scalar(node.input[2])
            if v is None:
                raise imp.fail("the constant_value input must be a known scalar")
            value = v
        axes = imp.ints_arg(node, 3, "axes", {}) or list(range(len(pads) // 2))
    axes = [a + rank if a < 0 else a for a in axes]
    begin, end = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[len(axes) + i]
    first = next((i for i in range(rank) if begin[i] or end[i]), rank)
    tp = _torch_pad(begin[first:], end[first:])
    if not tp:
        imp.set(node.output[0], imp.value(x))
    elif mode == "constant":
        imp.emit("constant_pad_nd", [imp.tensor(x)], {"pad": tp, "value": value})
    elif mode in ("reflect", "edge"):
        imp.emit("pad", [imp.tensor(x)], {"pad": tp, "mode": "reflect" if mode == "reflect" else "replicate"})
    else:
        raise imp.fail(f"pad mode {mode!r} is not supported")


@_converter("Einsum")
def _einsum(imp: _Importer, node) -> None:
    ins = [x for x in node.input if x]
    imp.emit("einsum", [imp.tensor(x) for x in ins], {"equation": _attrs_of(node)["equation"],
                                                      "tensors": [PORT] * len(ins)})


@_converter("CumSum")
def _cumsum(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("exclusive", 0):
        raise imp.fail("exclusive=1 is not supported")
    x = node.input[0]
    axis = imp.ints(node.input[1], "axis")[0]
    t = imp.tensor(x)
    if at.get("reverse", 0):
        t = imp.add("flip", [t], {"dims": [axis]})
        t = imp.add("cumsum", [t], {"dim": axis})
        imp.emit("flip", [t], {"dims": [axis]})
    else:
        imp.emit("cumsum", [t], {"dim": axis})


@_converter("DepthToSpace")
def _depth_to_space(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("mode", "DCR") != "CRD":
        raise imp.fail("DepthToSpace mode DCR is not supported (only CRD = pixel_shuffle)")
    imp.emit("pixel_shuffle", [imp.tensor(node.input[0])], {"upscale_factor": int(at["blocksize"])})


@_converter("SplitToSequence")
def _split_to_sequence(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    axis = int(at.get("axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    n = shape[axis]
    squeeze = None
    if len(node.input) > 1 and node.input[1]:
        split = imp.ints(node.input[1], "split")
        if imp.const(node.input[1]).value.ndim == 0:
            sizes = [min(split[0], n - i) for i in range(0, n, split[0])]
        else:
            sizes = split
    else:
        sizes = [1] * n
        squeeze = None if at.get("keepdims", 1) else axis
    sp = imp.add("split_with_sizes", [imp.tensor(x)], {"split_sizes": sizes, "dim": axis})
    imp.set(node.output[0], _Seq([None] * len(sizes), split=sp, squeeze=squeeze))


@_converter("SequenceConstruct")
def _sequence_construct(imp: _Importer, node) -> None:
    imp.set(node.output[0], _Seq([imp.value(x) for x in node.input if x]))


@_converter("SequenceAt")
def _sequence_at(imp: _Importer, node) -> None:
    seq = imp.seq(node.input[0])
    pos = imp.ints(node.input[1], "position")[0]
    imp.set(node.output[0], imp.seq_item(seq, pos + len(seq.items) if pos < 0 else pos))


@_converter("SequenceLength")
def _sequence_length(imp: _Importer, node) -> None:
    seq = imp.seq(node.input[0])
    imp.set(node.output[0], _Const(np.array(len(seq.items), dtype=np.int64), key=node.output[0]))


@_converter("ConcatFromSequence")
def _concat_from_sequence(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    seq = imp.seq(node.input[0])
    items = [imp.seq_item(seq, i) for i in range(len(seq.items))]
    op = "stack" if at.get("new_axis", 0) else "cat"
    imp.emit(op, items, {"tensors": [PORT] * len(items), "dim": int(at["axis"])})
