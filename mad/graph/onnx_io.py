"""ONNX in and out of the ArchGraph IR.

- :func:`to_onnx` exports the module of a graph (``g.to_module()`` or a given
  module with loaded weights) with ``torch.onnx.export(..., dynamo=True)`` on
  ``g.example_inputs()``; input and output names come from the graph.
- :func:`from_onnx` reads an ONNX model back into an ArchGraph: standard
  layers become single nodes that own their weights (``Gemm``/``MatMul`` +
  ``Add`` -> ``linear``, ``Conv`` -> ``conv2d``, ``BatchNormalization`` ->
  ``batch_norm``, ``LayerNormalization`` -> ``layer_norm``, ``Gather`` on a
  weight table -> ``embedding``), every other ONNX op becomes the vocabulary
  primitives that compute the same thing, and subgraphs whose inputs are all
  known at import time (``Shape`` arithmetic, ``Constant``, folded masks) are
  folded into constants. Initializers that no layer owns become ``parameter``
  nodes named after the initializer, so ``from_onnx(path, with_weights=True)``
  (or :func:`load_onnx_weights`) restores the ONNX weights into
  ``g.to_module()``. An ONNX op without a mapping raises
  :class:`OnnxImportError` naming the node and listing every unsupported op
  type; nothing is dropped silently.

Names: a layer's parameters are named ``<scope>.<role>`` where the exporter
recorded the module path (torch's dynamo exporter does), else after the
initializer (``fc.weight`` -> prefix ``fc``), else after the node. Weights are
stored in the vocabulary op's layout, so a ``MatMul`` weight ``[in, out]``
(e.g. GPT-2's ``Conv1D``) is held transposed as ``linear``'s ``[out, in]``.

Shapes are static: an ONNX input with symbolic dims is imported at a concrete
shape (``input_shapes=`` or 1 for each symbolic dim), like every ArchGraph.

Example:
    >>> path = g.to_onnx("model.onnx", check=True)
    >>> g2, weights = from_onnx(path, with_weights=True)
    >>> m = g2.to_module(); m.load_state_dict(weights)
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .arch_graph import ArchGraph, TensorSpec
from .ops import get_op
from .ops.call import call_op
from .ops.registry import PORT
from .ops.values import dtype_name, encode_value

__all__ = [
    "OnnxExportError",
    "OnnxImportError",
    "from_onnx",
    "load_onnx_weights",
    "run_onnx",
    "supported_onnx_ops",
    "to_onnx",
]

log = logging.getLogger(__name__)

_INT64_MAX = 2**63 - 1


class OnnxImportError(ValueError):
    """An ONNX file cannot be read into an ArchGraph; the message names the file, node and op type."""


class OnnxExportError(RuntimeError):
    """Exporting a graph to ONNX failed, or the exported model disagrees with the module."""


# =============================================================== export


def _output_names(g: ArchGraph) -> list[str]:
    if g.output_kind == "dict" and g.output_keys:
        return [str(k) for k in g.output_keys]
    names = g.meta.get("output_names")
    if isinstance(names, list) and len(names) == len(g.outputs) and len(set(names)) == len(names):
        return [str(n) for n in names]
    out, seen = [], set()
    for i, o in enumerate(g.outputs):
        n = o if o not in seen else f"{o}_{i}"
        seen.add(n)
        out.append(n)
    return out


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flatten(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _flatten(v)]
    raise TypeError(f"module output of type {type(out).__name__} is not a tensor, tuple or dict")


def run_onnx(path: str | Path, inputs: Sequence[Any], names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Run an ONNX file with onnxruntime (CPU) on ``inputs`` (tensors or arrays, in graph-input order).

    Args:
        path: the ``.onnx`` file.
        inputs: one value per ONNX graph input.
        names: input names; default: the model's input names in order.

    Returns:
        the outputs as numpy arrays, in graph-output order.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = list(names) if names is not None else [i.name for i in sess.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"{path}: the model takes {len(names)} inputs {names}, got {len(inputs)}")
    to_np = lambda v: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)  # noqa: E731
    feed = {n: to_np(v) for n, v in zip(names, inputs)}
    return sess.run(None, feed)


def to_onnx(
    g: ArchGraph,
    path: str | Path,
    opset: int | None = None,
    *,
    module: torch.nn.Module | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
    seed: int = 0,
    check: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Path:
    """Export the module of ``g`` to an ONNX file with ``torch.onnx.export(dynamo=True)``.

    Args:
        g: the graph; its ``inputs`` name the ONNX inputs and its outputs
            (``output_keys``, ``meta["output_names"]`` or node ids) the ONNX outputs.
        path: where to write the ``.onnx`` file (parent folders are created).
        opset: ONNX opset version; None lets the exporter choose.
        module: the module to export (e.g. ``g.to_module()`` with loaded
            weights); default a fresh ``g.to_module()`` with random weights.
        inputs: example inputs; default ``g.example_inputs(seed)``.
        seed: seed for the default example inputs.
        check: run the file with onnxruntime and raise :class:`OnnxExportError`
            unless its outputs equal the module's within ``atol``/``rtol``.

    Returns:
        the path of the written file (weights are stored inside it unless the
        model is over ~1.8 GB).

    Example:
        >>> p = to_onnx(g, "mlp.onnx", check=True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module if module is not None else g.to_module()
    was_training = module.training
    module.eval()
    args = tuple(inputs) if inputs is not None else g.example_inputs(seed)
    input_names = [s.name for s in g.inputs]
    output_names = _output_names(g)
    nbytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    t0 = time.perf_counter()
    buf = io.StringIO()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(buf):
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                external_data=nbytes > 1_800_000_000,
                verbose=False,
            )
    except Exception as e:
        raise OnnxExportError(f"graph {g.name!r}: torch.onnx.export to {path} failed: {e}".split("\n")[0]) from e
    finally:
        module.train(was_training)
        if buf.getvalue():
            log.debug("torch.onnx.export output:\n%s", buf.getvalue())
    log.info("exported %s to %s in %.1f s", g.name, path, time.perf_counter() - t0)
    if check:
        with torch.no_grad():
            want = [t.detach().cpu().numpy() for t in _flatten(module.eval()(*args))]
        module.train(was_training)
        got = run_onnx(path, args, input_names)
        _check_close(want, got, atol, rtol, f"{path} vs the module of graph {g.name!r}")
    return path


def _check_close(want: list[np.ndarray], got: list[np.ndarray], atol: float, rtol: float, what: str) -> float:
    if len(want) != len(got):
        raise OnnxExportError(f"{what}: {len(got)} outputs, expected {len(want)}")
    worst = 0.0
    for i, (w, o) in enumerate(zip(want, got)):
        if tuple(w.shape) != tuple(o.shape):
            raise OnnxExportError(f"{what}: output {i} has shape {list(o.shape)}, expected {list(w.shape)}")
        if w.dtype.kind in "fc":
            err = float(np.max(np.abs(w.astype(np.float64) - o.astype(np.float64)))) if w.size else 0.0
            worst = max(worst, err)
            if not np.allclose(w, o, atol=atol, rtol=rtol, equal_nan=True):
                raise OnnxExportError(f"{what}: output {i} differs by up to {err:.3g} (atol {atol})")
        elif not np.array_equal(w, o):
            raise OnnxExportError(f"{what}: output {i} differs")
    return worst


# =============================================================== import: values


@dataclass
class _Const:
    """A value known at import time.

    ``kind`` is ``parameter`` (a learned weight or derived from one),
    ``buffer`` (model state that is not learned) or ``constant``; ``init`` is
    the ONNX initializer it is (unchanged); ``key`` identifies its source and
    the transforms applied, so that one tensor used twice keeps one name.
    """

    value: np.ndarray
    key: str
    init: str | None = None
    kind: str = "constant"

    def derived(self, value: np.ndarray, tag: str) -> "_Const":
        return _Const(np.ascontiguousarray(value), f"{self.key}:{tag}", None, self.kind)


@dataclass
class _Seq:
    """An ONNX sequence: its elements (node ids or constants); ``None`` items are
    pieces of ``split`` (a multi-output node) not read yet, squeezed at
    ``squeeze`` when that is set."""

    items: list
    split: str | None = None
    squeeze: int | None = None


def _np_dtype_to_torch(dt: np.dtype) -> torch.dtype:
    if dt == np.bool_:
        return torch.bool
    try:
        return torch.from_numpy(np.empty(0, dtype=dt)).dtype
    except TypeError:
        if "bfloat16" in str(dt):
            return torch.bfloat16
        raise


def _to_torch(a: np.ndarray) -> torch.Tensor:
    if "bfloat16" in str(a.dtype):
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.array(a, copy=True))


def _onnx_to_torch_dtype(elem_type: int) -> torch.dtype:
    import onnx

    if elem_type == onnx.TensorProto.BFLOAT16:
        return torch.bfloat16
    return _np_dtype_to_torch(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))


def _py(x: Any) -> Any:
    """A numpy scalar as a plain Python number (JSON-safe for floats).

    Floats take the shortest decimal that round-trips in their own dtype, so
    a float32 ``1e-5`` reads ``1e-05``, not ``9.999999747378752e-06``, and
    casts back to the same float32 value.
    """
    if isinstance(x, np.floating):
        exact = float(x)
        short = float(str(x))
        fits = math.isfinite(exact) and abs(short) <= float(np.finfo(x.dtype).max) and x.dtype.type(short) == x
        return encode_value(short if fits else exact)
    v = x.item() if hasattr(x, "item") else x
    if isinstance(v, float):
        return encode_value(v)
    return v


def _f32(x: Any) -> Any:
    """An ONNX float attribute (stored as float32) as a Python number."""
    return _py(np.float32(x))


_SAFE = re.compile(r"[^0-9A-Za-z_]")


def _safe_id(name: str) -> str:
    s = _SAFE.sub("_", name) or "v"
    return s if not s[0].isdigit() else f"v{s}"


def _safe_path(name: str) -> str:
    parts = [_SAFE.sub("_", p) or "_" for p in name.split(".")]
    return ".".join(parts)


def _attrs_of(node) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.TENSOR:
            out[a.name] = numpy_helper.to_array(a.t)
        elif a.type == onnx.AttributeProto.GRAPH or a.type == onnx.AttributeProto.GRAPHS:
            out[a.name] = a
        else:
            v = onnx.helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, list):
                v = [x.decode() if isinstance(x, bytes) else x for x in v]
            out[a.name] = v
    return out


def _scope_of(node) -> str:
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return ""
            return str(scopes[-2]) if isinstance(scopes, list) and len(scopes) >= 2 else ""
    return ""


def _broadcast(*shapes: Sequence[int]) -> list[int]:
    return list(np.broadcast_shapes(*[tuple(s) for s in shapes]))


# =============================================================== import: converter registry

_CONVERTERS: dict[str, Callable[["_Importer", Any], None]] = {}
# ops that never fold, even with constant inputs (random, control flow)
_NO_FOLD = {
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "If", "Loop", "Scan", "SequenceMap",
}


# torch.export input kinds recorded on initializers -> parameter-node kinds
_KINDS = {"PARAMETER": "parameter", "BUFFER": "buffer", "CONSTANT_TENSOR": "constant"}


def _converter(*op_types: str):
    """Register a converter of ONNX op types (default domain) into vocabulary ops."""

    def deco(fn):
        for t in op_types:
            _CONVERTERS[t] = fn
        return fn

    return deco


def supported_onnx_ops() -> list[str]:
    """ONNX op types (default domain) that :func:`from_onnx` maps onto the vocabulary."""
    return sorted(set(_CONVERTERS) | {"Constant", "Identity"})


# =============================================================== import: the importer


class _Importer:
    """Walks one ONNX graph in topological order and builds the ArchGraph."""

    def __init__(self, model, path: Path, name: str, input_shapes: dict[str, list[int]] | None) -> None:
        self.path = path
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.onnx_graph = og = model.graph
        self.values: dict[str, _Const | _Seq | str] = {}  # ONNX value name -> constant, sequence or node id
        self.meta: dict[str, Any] = {}  # node id -> meta tensor (shape and dtype of its output)
        self.state: dict[str, torch.Tensor] = {}  # state-dict name -> weight
        self.claimed: dict[str, str] = {}  # state-dict name -> key of the tensor holding it
        self.prefixes: set[str] = set()  # module paths in use by claimed names
        self.materialized: dict[str, str] = {}  # constant key -> its parameter/full node
        self.absorbed: set[int] = set()  # ONNX nodes fused into an earlier node
        self.cur = None  # the ONNX node being converted
        self.scope = ""
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(og.node):
            for x in n.input:
                if x:
                    self.consumers.setdefault(x, []).append(i)
        self.graph_outputs = {o.name for o in og.output}
        self._read_initializers()
        self.onnx_types = self._infer_types(model)
        specs = self._read_inputs(dict(input_shapes or {}))
        self.float_dtype = next((_np_dtype_to_torch(c.value.dtype) for c in self.values.values()
                                 if c.kind == "parameter" and c.value.dtype.kind == "f"), torch.float32)
        meta: dict[str, Any] = {"onnx": {"file": path.name, "opset": self.opset, "producer": model.producer_name}}
        if self.float_dtype != torch.float32:
            meta["dtype"] = dtype_name(self.float_dtype)
        self.g = ArchGraph(name, source=f"onnx:{path.name}", inputs=specs, meta=meta)
        for s in specs:
            nid = self.g.add_node("input", id=self._new_id(s.name), attrs={"name": s.name})
            self.meta[nid] = torch.empty(s.shape, dtype=_dtype(s.dtype), device="meta")
            self.values[s.name] = nid

    def _read_initializers(self) -> None:
        """Initializers become constants of kind parameter, buffer or constant.

        torch's exporter tags the model's own state (``InputSpec.kind``);
        untagged float tensors are weights or were folded from them, unless
        all their values are equal (a folded mask) in a tagged model.
        """
        from onnx import numpy_helper

        inits = self.onnx_graph.initializer
        spec_of = {t.name: next((p.value for p in t.metadata_props if p.key.endswith("InputSpec.kind")), None)
                   for t in inits}
        tagged = any(spec_of.values())
        for t in inits:
            arr = numpy_helper.to_array(t)
            kind = _KINDS.get(spec_of[t.name] or "")
            if kind is None:
                flat = arr.reshape(-1)
                uniform = tagged and flat.size > 0 and bool(np.all(flat == flat[0]))
                kind = "parameter" if arr.dtype.kind == "f" and arr.size > 1 and not uniform else "constant"
            self.values[t.name] = _Const(arr, key=t.name, init=t.name, kind=kind)

    def _infer_types(self, model) -> dict[str, tuple[list | None, int]]:
        """ONNX shape inference: value name -> (shape with None for unknown dims, elem type)."""
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
            infos = list(inferred.value_info) + list(inferred.output) + list(inferred.input)
        except Exception as e:  # a cross-check only
            log.warning("%s: ONNX shape inference failed (%s); converting without the cross-check", self.path, e)
            infos = list(model.graph.output)
        out: dict[str, tuple[list | None, int]] = {}
        for vi in infos:
            if not vi.type.HasField("tensor_type"):
                continue
            tt = vi.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] if tt.HasField(
                "shape") else None
            out[vi.name] = (shape, tt.elem_type)
        return out

    def _read_inputs(self, input_shapes: dict[str, list[int]]) -> list[TensorSpec]:
        """Graph inputs (initializers listed as inputs excluded) at concrete shapes."""
        specs = []
        for vi in self.onnx_graph.input:
            if vi.name in self.values:
                continue
            if not vi.type.HasField("tensor_type"):
                raise OnnxImportError(f"{self.path}: graph input {vi.name!r} is not a tensor")
            tt = vi.type.tensor_type
            dims = [int(d.dim_value) if d.HasField("dim_value") else None for d in tt.shape.dim]
            names = ["" if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
            if vi.name in input_shapes:
                given = list(input_shapes.pop(vi.name))
                if len(given) != len(dims) or any(d is not None and d != s for d, s in zip(dims, given)):
                    raise OnnxImportError(
                        f"{self.path}: input_shapes[{vi.name!r}] = {given} does not fit the ONNX shape {dims}"
                    )
                dims = given
            elif None in dims:
                log.warning("%s: input %r has symbolic dims %s; importing them as 1 (pass input_shapes=)",
                            self.path, vi.name, names)
                dims = [1 if d is None else d for d in dims]
            dtype = dtype_name(_onnx_to_torch_dtype(tt.elem_type))
            specs.append(TensorSpec(vi.name, dims, dtype, dims=names if any(names) else None))
        if input_shapes:
            raise OnnxImportError(f"{self.path}: input_shapes names unknown inputs {sorted(input_shapes)}; "
                                  f"inputs are {[s.name for s in specs]}")
        return specs

    # ---------------------------------------------------------------- checks
    def check_supported(self) -> None:
        """Raise before converting anything if some node has no mapping.

        A node without a converter is still fine when all its inputs are
        known at import time (it is folded into a constant).
        """
        known = {k for k, v in self.values.items() if isinstance(v, _Const)}
        bad: dict[str, str] = {}
        for n in self.onnx_graph.node:
            domain = n.domain if n.domain not in ("", "ai.onnx") else ""
            const_in = all(x in known for x in n.input if x)
            foldable = domain == "" and const_in and n.op_type not in _NO_FOLD and not _has_subgraph(n)
            mapped = domain == "" and (n.op_type in _CONVERTERS or n.op_type in ("Constant", "Identity"))
            if not mapped and not foldable:
                label = f"{domain}::{n.op_type}" if domain else n.op_type
                bad.setdefault(label, n.name or n.output[0])
            if foldable or (domain == "" and n.op_type in ("Shape", "Size", "SequenceLength")):
                known.update(o for o in n.output if o)
        if bad:
            first_type, first_node = next(iter(bad.items()))
            raise OnnxImportError(
                f"{self.path}: {len(bad)} ONNX op type(s) have no mapping to the ArchGraph vocabulary: "
                f"{sorted(bad)}; first at node {first_node!r} ({first_type}). "
                f"Supported op types: mad.graph.onnx_io.supported_onnx_ops()."
            )

    def fail(self, msg: str) -> OnnxImportError:
        n = self.cur
        where = f"node {n.name or n.output[0]!r} ({n.op_type})" if n is not None else "graph"
        return OnnxImportError(f"{self.path}: {where}: {msg}")

    # ---------------------------------------------------------------- values
    def const(self, name: str) -> _Const | None:
        if not name:
            return None
        v = self.values.get(name)
        return v if isinstance(v, _Const) else None

    def is_const(self, name: str) -> bool:
        return self.const(name) is not None

    def value(self, name: str) -> _Const | str:
        if name not in self.values:
            raise self.fail(f"input {name!r} is not produced by any earlier node, initializer or graph input")
        v = self.values[name]
        if isinstance(v, _Seq):
            raise self.fail(f"input {name!r} is a sequence where a tensor is expected")
        return v

    def seq(self, name: str) -> _Seq:
        v = self.values.get(name)
        if not isinstance(v, _Seq):
            raise self.fail(f"input {name!r} is not a sequence")
        return v

    def seq_item(self, seq: _Seq, i: int) -> str:
        """Node id of element ``i`` of a sequence (reading a split piece on first use)."""
        item = seq.items[i]
        if item is None:
            item = self.add("getitem", [seq.split], {"index": i})
            if seq.squeeze is not None:
                item = self.add("squeeze_dims", [item], {"dim": [seq.squeeze]})
            seq.items[i] = item
        return item if isinstance(item, str) else self.materialize(item, f"{seq.split or 'seq'}_{i}")

    def shape(self, name: str) -> list[int]:
        v = self.value(name)
        if isinstance(v, _Const):
            return list(v.value.shape)
        m = self.meta[v]
        if not isinstance(m, torch.Tensor):
            raise self.fail(f"input {name!r} is a tuple, not a tensor")
        return list(m.shape)

    def dtype(self, name: str) -> torch.dtype:
        v = self.value(name)
        return _np_dtype_to_torch(v.value.dtype) if isinstance(v, _Const) else self.meta[v].dtype

    def ints(self, name: str, what: str = "") -> list[int]:
        c = self.const(name)
        if c is None:
            raise self.fail(f"input {name!r} ({what or 'an int list'}) must be known at import time; it is computed "
                            f"from data")
        return [int(x) for x in np.asarray(c.value).reshape(-1)]

    def ints_arg(self, node, idx: int, attr: str, attrs: dict) -> list[int] | None:
        """An int list given as input ``idx`` (newer opsets) or attribute ``attr`` (older ones)."""
        if len(node.input) > idx and node.input[idx]:
            return self.ints(node.input[idx], attr)
        v = attrs.get(attr)
        return [int(x) for x in v] if v is not None else None

    def scalar(self, name: str, *others: str | list[int]) -> Any:
        """``name`` as a Python number when it is a one-element constant (not a weight) that
        does not change the broadcast shape of ``others`` (value names or shapes); else None."""
        c = self.const(name)
        if c is None or c.value.size != 1 or c.kind != "constant" or c.value.dtype.kind not in "fiub":
            return None
        if others:
            base = _broadcast(*[o if isinstance(o, list) else self.shape(o) for o in others])
            if _broadcast(base, c.value.shape) != base:
                return None
        return _py(c.value.reshape(-1)[0])

    def set(self, name: str, value: _Const | str) -> None:
        self.values[name] = value

    # ---------------------------------------------------------------- naming
    def _new_id(self, base: str) -> str:
        nid = _safe_id(base)
        if nid not in self.g.nodes:
            return nid
        i = 1
        while f"{nid}_{i}" in self.g.nodes:
            i += 1
        return f"{nid}_{i}"

    def _free(self, name: str, key: str) -> bool:
        held = self.claimed.get(name)
        if held is not None:
            return held == key
        if name in self.prefixes:
            return False
        parts = name.split(".")
        return not any(".".join(parts[:i]) in self.claimed for i in range(1, len(parts)))

    def _claim(self, name: str, key: str, tensor: torch.Tensor | None) -> None:
        self.claimed[name] = key
        parts = name.split(".")
        for i in range(1, len(parts)):
            self.prefixes.add(".".join(parts[:i]))
        if tensor is not None:
            self.state[name] = tensor

    def _layer_names(self, node_id: str, params: dict[str, _Const]) -> dict[str, str]:
        cands = [self.scope] if self.scope else []
        for role, c in params.items():
            if c.init and c.init.endswith("." + role):
                cands.append(c.init[: -len(role) - 1])
        cands.append(node_id)
        i = 0
        while True:
            for prefix in cands:
                names = {r: _safe_path(f"{prefix}.{r}") for r in params}
                if all(self._free(n, params[r].key) for r, n in names.items()):
                    for r, n in names.items():
                        self._claim(n, params[r].key, _to_torch(params[r].value))
                    return names
            i += 1
            cands = [f"{node_id}_{i}"]

    def _free_name(self, base: str, key: str) -> str:
        name = _safe_path(base)
        i = 0
        while not self._free(name, key):
            i += 1
            name = _safe_path(f"{base}_{i}")
        return name

    # ---------------------------------------------------------------- building
    def add(
        self,
        op: str,
        inputs: Sequence[str],
        attrs: dict[str, Any] | None = None,
        params: dict[str, _Const] | None = None,
        out: str | None = None,
    ) -> str:
        """Add a vocabulary node fed by node ids ``inputs``; ``out`` is the ONNX value it computes."""
        attrs = dict(attrs or {})
        params = dict(params or {})
        if out is None and self.cur is not None:
            base = (self.cur.name or self.cur.output[0]).removeprefix("node_")
            out_id = f"{base}_{op}" if base == self.cur.output[0] or not base else base
        else:
            out_id = out or op
        nid = self._new_id(out_id)
        names = self._layer_names(nid, params) if params else {}
        opdef = get_op(op)
        self.g.add_node(
            op, list(inputs), id=nid, attrs=attrs, params={r: list(c.value.shape) for r, c in params.items()},
            param_names=names, scope=self.scope,
        )
        try:
            with torch.device("meta"):
                metas = {r: torch.empty(list(c.value.shape), dtype=self.float_dtype) for r, c in params.items()}
                value = call_op(opdef, attrs, [self.meta[i] for i in inputs], metas, device="meta")
        except Exception as e:
            raise self.fail(f"mapping onto {op} failed: {e}".split("\n")[0]) from e
        self.meta[nid] = value
        if out is not None:
            self._cross_check(out, value, op)
        return nid

    def emit(self, op: str, inputs: Sequence[str], attrs: dict | None = None, params: dict | None = None,
             out: str | None = None) -> str:
        """Add the node that computes the current ONNX node's first output (or ``out``) and record it."""
        out = out or self.cur.output[0]
        nid = self.add(op, inputs, attrs, params, out=out)
        self.set(out, nid)
        return nid

    def _cross_check(self, out: str, value: Any, op: str) -> None:
        info = self.onnx_types.get(out)
        if info is None or not isinstance(value, torch.Tensor):
            return
        shape, elem = info
        if shape is not None and all(d is not None for d in shape) and list(shape) != list(value.shape):
            raise self.fail(f"output {out!r} maps to {op} with shape {list(value.shape)} but ONNX infers {shape}")
        if elem:
            want = _onnx_to_torch_dtype(elem)
            if want != value.dtype:
                raise self.fail(f"output {out!r} maps to {op} with dtype {value.dtype} but ONNX infers {want}")

    def tensor(self, name: str) -> str:
        """Node id holding ONNX value ``name``; constants become parameter/constant nodes."""
        v = self.value(name)
        if isinstance(v, str):
            return v
        return self.materialize(v, name)

    def materialize(self, c: _Const, hint: str) -> str:
        if c.key in self.materialized:
            return self.materialized[c.key]
        dtype = _np_dtype_to_torch(c.value.dtype)
        shape = list(c.value.shape)
        saved_scope, self.scope = self.scope, ""
        try:
            flat = c.value.reshape(-1)
            if c.kind == "constant" and (flat.size == 0 or np.all(flat == flat[0]) or (flat.dtype.kind == "f" and
                                                                                np.all(np.isnan(flat)))):
                fill = _py(flat[0]) if flat.size else 0
                if isinstance(fill, bool) or dtype == torch.bool:
                    fill = int(bool(fill))  # attrs hold numbers; full(dtype=bool) turns 1 into True
                nid = self.add("full", [], {"size": shape, "fill_value": fill, "dtype": dtype_name(dtype)})
            else:
                kind = c.kind
                if kind == "parameter" and not dtype.is_floating_point:
                    kind = "buffer"
                base = c.init or hint
                name = self._free_name(base, c.key)
                tensor = _to_torch(c.value)
                attrs: dict[str, Any] = {"kind": kind, "dtype": dtype_name(dtype)}
                if kind == "constant":
                    from .module import encode_tensor

                    attrs["persistent"] = False
                    attrs["value"] = encode_tensor(tensor)
                nid = self._new_id(base)
                self.g.add_node("parameter", [], id=nid, attrs=attrs, params={"data": shape},
                                param_names={"data": name})
                self._claim(name, c.key, tensor if kind != "constant" else None)
                self.meta[nid] = torch.empty(shape, dtype=dtype, device="meta")
        finally:
            self.scope = saved_scope
        self.materialized[c.key] = nid
        return nid

    def param_ok(self, c: _Const | None, ndim: int | None = None) -> bool:
        """Whether constant ``c`` can be owned by a layer node (graph float dtype, given rank)."""
        return (
            c is not None
            and c.value.dtype.kind == "f"
            and _np_dtype_to_torch(c.value.dtype) == self.float_dtype
            and (ndim is None or c.value.ndim == ndim)
        )

    def only_consumer(self, name: str) -> Any | None:
        """The single ONNX node consuming ``name`` (None if several, or a graph output)."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0]

    # ---------------------------------------------------------------- walk
    def fold(self, node) -> None:
        """Compute a node whose inputs are all known (numpy for common ops, else onnx's reference evaluator)."""
        from onnx.reference import ReferenceEvaluator

        feeds = {x: self.const(x).value for x in node.input if x}
        try:
            fast = _FOLDERS.get(node.op_type)
            if fast is not None:
                outs = fast(node, [feeds.get(x) for x in node.input])
            else:
                outs = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception as e:
            raise self.fail(f"folding constant inputs failed: {e}".split("\n")[0]) from e
        kinds = {self.const(x).kind for x in node.input if x}
        for o, v in zip(node.output, outs):
            if o:
                arr = np.asarray(v)
                kind = "constant"
                if arr.dtype.kind == "f":
                    kind = "parameter" if "parameter" in kinds else "buffer" if "buffer" in kinds else "constant"
                self.set(o, _Const(arr, key=o, kind=kind))

    def run(self) -> ArchGraph:
        og = self.onnx_graph
        for idx, node in enumerate(og.node):
            if idx in self.absorbed:
                continue
            self.cur = node
            self.scope = _scope_of(node)
            if node.op_type == "Identity":  # tensors and sequences alike
                if node.input[0] not in self.values:
                    self.value(node.input[0])  # raises, naming the missing value
                self.set(node.output[0], self.values[node.input[0]])
                continue
            ins = [x for x in node.input if x]
            conv = _CONVERTERS.get(node.op_type)
            if node.op_type not in _NO_FOLD and all(self.is_const(x) for x in ins) and node.op_type != "Shape":
                try:
                    self.fold(node)
                    continue
                except OnnxImportError:
                    if conv is None:
                        raise
                    log.debug("%s: folding %s failed; converting it instead", self.path, node.name)
            if conv is None:  # pragma: no cover - check_supported ran first
                raise self.fail("no mapping for this op type")
            conv(self, node)
            for o in node.output:
                used = any(i not in self.absorbed for i in self.consumers.get(o, [])) or o in self.graph_outputs
                if o and used and o not in self.values:
                    raise self.fail(f"output {o!r} is used later but this mapping does not compute it")
        self.cur = None
        self.scope = ""
        outs = [self.tensor(o.name) for o in og.output]
        names = [o.name for o in og.output]
        self.g.set_outputs(outs, kind="tensor" if len(outs) == 1 else "tuple")
        self.g.meta["output_names"] = names
        self._input_ranges()
        return self.g

    def _input_ranges(self) -> None:
        """Integer inputs that index an embedding get ``range = [0, num_embeddings)``."""
        passthrough = {"reshape", "view", "to_dtype", "unsqueeze", "squeeze_dims", "squeeze_all", "flatten",
                       "expand", "permute", "slice", "select", "clone", "contiguous"}
        bound: dict[str, int] = {}
        for n in self.g.nodes.values():
            if n.op != "embedding" or "weight" not in n.params:
                continue
            src = self.g.predecessors(n.id)[0]
            while self.g.nodes[src].op in passthrough:
                src = self.g.predecessors(src)[0]
            if self.g.nodes[src].op == "input":
                name = self.g.nodes[src].attrs["name"]
                bound[name] = min(bound.get(name, n.params["weight"][0]), n.params["weight"][0])
        for s in self.g.inputs:
            if s.name in bound and not torch.empty(0, dtype=_dtype(s.dtype)).is_floating_point():
                s.range = [0, int(bound[s.name])]


def _fold_gather_elements(node, ins):
    data, idx = ins[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take_along_axis(data, idx.astype(np.int64), axis=axis)]


def _fold_gather(node, ins):
    data, idx = ins[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [np.take(data, idx.astype(np.int64), axis=axis)]


# numpy folds of ops whose reference implementation is slow or fragile
_FOLDERS: dict[str, Callable[[Any, list], list]] = {
    "GatherElements": _fold_gather_elements,
    "Gather": _fold_gather,
}


def _dtype(name: str) -> torch.dtype:
    from .ops.values import dtype_from_name

    return dtype_from_name(name)


def _has_subgraph(node) -> bool:
    import onnx

    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


# =============================================================== converters: elementwise

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


# =============================================================== converters: layers


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
    params: dict[str, _Const] = {}
    ports = [xt]
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
    params: dict[str, _Const] = {}
    ports = [imp.tensor(x)]
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


# =============================================================== converters: indexing


def _gather_any(imp: _Importer, data: str, indices: str, axis: int, out: str) -> None:
    """``np.take(data, indices, axis)`` with index_select (+ reshape for n-d indices)."""
    dshape = imp.shape(data)
    ishape = imp.shape(indices)
    ci = imp.const(indices)
    if ci is not None:
        idx = ci.value.astype(np.int64)
        idx = np.where(idx < 0, idx + dshape[axis], idx)
        if idx.ndim == 0:
            imp.emit("select", [imp.tensor(data)], {"dim": axis, "index": int(idx)}, out=out)
            return
        ci = ci.derived(idx, "idx")
        it = imp.materialize(ci, indices)
    else:
        it = imp.tensor(indices)
    flat = it if len(ishape) == 1 else imp.add("reshape", [it], {"shape": [max(math.prod(ishape), 0)]})
    sel = imp.add("index_select", [imp.tensor(data), flat], {"dim": axis},
                  out=out if len(ishape) == 1 else None)
    if len(ishape) != 1:
        sel = imp.add("reshape", [sel], {"shape": dshape[:axis] + ishape + dshape[axis + 1:]}, out=out)
    imp.set(out, sel)


@_converter("Gather")
def _gather(imp: _Importer, node) -> None:
    data, indices = node.input[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    rank = len(imp.shape(data))
    axis = axis + rank if axis < 0 else axis
    dc = imp.const(data)
    if axis == 0 and imp.param_ok(dc, 2) and not imp.is_const(indices):
        imp.emit("embedding", [imp.tensor(indices)], {}, {"weight": dc})
        return
    _gather_any(imp, data, indices, axis, node.output[0])


@_converter("GatherElements")
def _gather_elements(imp: _Importer, node) -> None:
    data, indices = node.input[:2]
    axis = int(_attrs_of(node).get("axis", 0))
    imp.emit("gather", [imp.tensor(data), imp.tensor(indices)], {"dim": axis})


@_converter("GatherND")
def _gather_nd(imp: _Importer, node) -> None:
    data, indices = node.input[:2]
    if int(_attrs_of(node).get("batch_dims", 0)) != 0:
        raise imp.fail("GatherND with batch_dims > 0 is not supported")
    k = imp.shape(indices)[-1]
    ci = imp.const(indices)
    ports = []
    for i in range(k):
        if ci is not None:
            ports.append(imp.materialize(ci.derived(ci.value[..., i].astype(np.int64), f"nd{i}"), f"{indices}_{i}"))
        else:
            ports.append(imp.add("select", [imp.tensor(indices)], {"dim": -1, "index": i}))
    imp.emit("index", [imp.tensor(data)] + ports, {"indices": [PORT] * k})


@_converter("ScatterElements")
def _scatter_elements(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("reduction", "none") not in ("none", "add"):
        raise imp.fail(f"reduction={at['reduction']!r} is not supported")
    data, indices, updates = node.input[:3]
    op = "scatter_add" if at.get("reduction", "none") == "add" else "scatter"
    imp.emit(op, [imp.tensor(data), imp.tensor(indices), imp.tensor(updates)], {"dim": int(at.get("axis", 0))})


# =============================================================== converters: shape


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


# =============================================================== converters: pooling and reductions


@_converter("MaxPool", "AveragePool")
def _pool(imp: _Importer, node) -> None:
    if len(node.output) > 1 and node.output[1]:
        raise imp.fail("the Indices output of MaxPool is not supported")
    x = node.input[0]
    at, nsp, kernel, strides, dil, begin, end = _spatial(imp, node, x)
    is_max = node.op_type == "MaxPool"
    xt = imp.tensor(x)
    ceil = bool(at.get("ceil_mode", 0))
    needs_pad = begin != end or any(2 * b > k for b, k in zip(begin, kernel))
    if needs_pad:
        if not is_max and not at.get("count_include_pad", 0) and any(begin + end):
            raise imp.fail("asymmetric padding with count_include_pad=0 is not supported")
        xt = imp.add("constant_pad_nd", [xt], {"pad": _torch_pad(begin, end), "value": "-inf" if is_max else 0})
        begin = [0] * nsp
    if is_max:
        attrs = {"kernel_size": kernel, "stride": strides, "padding": begin, "dilation": dil, "ceil_mode": ceil}
        imp.emit(f"max_pool{nsp}d", [xt], attrs)
    else:
        if any(d != 1 for d in dil):
            raise imp.fail("AveragePool with dilations is not supported")
        attrs = {"kernel_size": kernel, "stride": strides, "padding": begin, "ceil_mode": ceil,
                 "count_include_pad": bool(at.get("count_include_pad", 0))}
        imp.emit(f"avg_pool{nsp}d", [xt], attrs)


@_converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(imp: _Importer, node) -> None:
    x = node.input[0]
    dims = list(range(2, len(imp.shape(x))))
    op = "mean" if node.op_type == "GlobalAveragePool" else "amax"
    imp.emit(op, [imp.tensor(x)], {"dim": dims, "keepdim": True})


_REDUCE = {
    "ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin", "ReduceProd": "prod",
    "ReduceL1": "vector_norm", "ReduceL2": "vector_norm", "ReduceLogSumExp": "logsumexp",
    "ReduceSumSquare": "sum",
}


@_converter(*_REDUCE)
def _reduce(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    t = node.op_type
    x = node.input[0]
    rank = len(imp.shape(x))
    axes_as_input = imp.opset >= 18 or (t == "ReduceSum" and imp.opset >= 13)
    axes = imp.ints_arg(node, 1, "axes", at) if axes_as_input else (list(at["axes"]) if "axes" in at else None)
    keep = bool(at.get("keepdims", 1))
    if not axes:
        if at.get("noop_with_empty_axes", 0):
            imp.set(node.output[0], imp.value(x))
            return
        axes = list(range(rank))
    axes = sorted(a + rank if a < 0 else a for a in axes)
    op = _REDUCE[t]
    xt = imp.tensor(x)
    if t == "ReduceSumSquare":
        xt = imp.add("square", [xt])
    if op == "prod":
        for i, a in enumerate(reversed(axes)):  # one dim at a time, last first so indices stay valid
            last = i == len(axes) - 1
            xt = imp.add("prod", [xt], {"dim": a, "keepdim": keep}, out=node.output[0] if last else None)
        imp.set(node.output[0], xt)
        return
    attrs: dict[str, Any] = {"dim": axes, "keepdim": keep}
    if op == "vector_norm":
        attrs["ord"] = 1 if t == "ReduceL1" else 2
    imp.emit(op, [xt], attrs)


@_converter("ArgMax", "ArgMin")
def _argmax(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    if at.get("select_last_index", 0):
        raise imp.fail("select_last_index=1 is not supported")
    op = "argmax" if node.op_type == "ArgMax" else "argmin"
    imp.emit(op, [imp.tensor(node.input[0])], {"dim": int(at.get("axis", 0)), "keepdim": bool(at.get("keepdims", 1))})


@_converter("TopK")
def _topk(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    k = imp.ints(node.input[1], "k")[0] if imp.opset >= 10 else int(at["k"])
    tk = imp.add("topk", [imp.tensor(node.input[0])], {"k": k, "dim": int(at.get("axis", -1)),
                                                        "largest": bool(at.get("largest", 1)),
                                                        "sorted": bool(at.get("sorted", 1))})
    for i, o in enumerate(node.output):
        if o:
            imp.emit("getitem", [tk], {"index": i}, out=o)


@_converter("Resize")
def _resize(imp: _Importer, node) -> None:
    at = _attrs_of(node)
    x = node.input[0]
    shape = imp.shape(x)
    if len(shape) != 4 or imp.opset < 11:
        raise imp.fail("only 4-d Resize (opset >= 11) is supported")
    sizes = imp.ints(node.input[3], "sizes") if len(node.input) > 3 and node.input[3] else None
    if sizes is None:
        sc = imp.const(node.input[2]) if len(node.input) > 2 else None
        if sc is None:
            raise imp.fail("Resize needs constant scales or sizes")
        scales = [float(s) for s in sc.value.reshape(-1)]
        sizes = [int(math.floor(d * s)) for d, s in zip(shape, scales)]
    if sizes[:2] != shape[:2]:
        raise imp.fail("Resize of the batch or channel dims is not supported")
    mode = at.get("mode", "nearest")
    ctm = at.get("coordinate_transformation_mode", "half_pixel")
    if mode == "nearest" and ctm == "asymmetric" and at.get("nearest_mode", "round_prefer_floor") == "floor":
        imp.emit("upsample_nearest2d", [imp.tensor(x)], {"output_size": sizes[2:]})
    elif mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        if ctm == "pytorch_half_pixel" and any(s == 1 for s in sizes[2:]):
            raise imp.fail("pytorch_half_pixel with an output size of 1 is not supported")
        imp.emit("upsample_bilinear2d", [imp.tensor(x)], {"output_size": sizes[2:],
                                                          "align_corners": ctm == "align_corners"})
    else:
        raise imp.fail(f"Resize mode={mode!r} coordinate_transformation_mode={ctm!r} is not supported")


# =============================================================== entry points


def _load(path: str | Path):
    import onnx

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ONNX file {str(path)!r} does not exist")
    if path.is_dir():
        raise OnnxImportError(f"{path} is a directory, not an ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise OnnxImportError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e})".split("\n")[0]) from e
    if not model.graph.node and not model.graph.output:
        raise OnnxImportError(f"{path} is not an ONNX model: it has no graph (nodes and outputs are empty)")
    return path, model


def from_onnx(
    path: str | Path,
    name: str | None = None,
    *,
    with_weights: bool = False,
    input_shapes: dict[str, list[int]] | None = None,
    validate: bool = True,
) -> ArchGraph | tuple[ArchGraph, dict[str, torch.Tensor]]:
    """Read an ONNX model into an ArchGraph.

    Args:
        path: the ``.onnx`` file (external weight files next to it are read).
        name: graph name; default the file's stem.
        with_weights: also return the state dict that loads the ONNX weights
            into ``g.to_module()`` (layer weights in torch layout, e.g. a
            ``MatMul`` weight transposed into ``linear``'s ``[out, in]``).
        input_shapes: concrete shapes for inputs with symbolic dims.
        validate: run ``g.validate()`` on the result.

    Returns:
        the graph, or ``(graph, state_dict)`` with ``with_weights=True``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OnnxImportError: the file is not an ONNX model, or a node has no
            mapping (the message names the node, its op type and every
            unsupported op type of the model).

    Example:
        >>> g, sd = from_onnx("resnet.onnx", with_weights=True)
        >>> m = g.to_module(); m.load_state_dict(sd)
    """
    t0 = time.perf_counter()
    path, model = _load(path)
    imp = _Importer(model, path, name or path.stem, input_shapes)
    imp.check_supported()
    g = imp.run()
    g.infer()
    if validate:
        g.validate()
    log.info("imported %s: %d ONNX nodes -> %d graph nodes in %.2f s", path, len(model.graph.node), len(g.nodes),
             time.perf_counter() - t0)
    if with_weights:
        return g, dict(imp.state)
    return g


def load_onnx_weights(module: torch.nn.Module, path: str | Path, strict: bool = True):
    """Load the weights of an ONNX file into ``module`` (built by ``from_onnx(path).to_module()``).

    Returns the ``load_state_dict`` result. Example:
        >>> m = from_onnx("model.onnx").to_module()
        >>> load_onnx_weights(m, "model.onnx")
    """
    _, state = from_onnx(path, with_weights=True, validate=False)
    return module.load_state_dict(state, strict=strict)
