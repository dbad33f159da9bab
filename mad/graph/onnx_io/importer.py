"""The ONNX importer: reads initializers and inputs, walks the ONNX graph and builds the ArchGraph nodes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..arch_graph import ArchGraph, TensorSpec
from ..ops import get_op
from ..ops.call import call_op
from ..ops.values import dtype_name
from .errors import OnnxImportError
from .folding import _NO_FOLD, _Folding, _has_subgraph
from .naming import _Naming, _scope_of
from .registry import _CONVERTERS
from .values import (
    _broadcast,
    _Const,
    _dtype,
    _np_dtype_to_torch,
    _onnx_to_torch_dtype,
    _py,
    _Seq,
    _to_torch,
)

log = logging.getLogger(__name__)

# torch.export input kinds recorded on initializers -> parameter-node kinds
_KINDS = {"PARAMETER": "parameter", "BUFFER": "buffer", "CONSTANT_TENSOR": "constant"}


class _Importer(_Naming, _Folding):
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
                    from ..module import encode_tensor

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
