"""One conformance case per op of the vocabulary.

For every case of :mod:`op_cases`, a one-op graph (input nodes for the
tensors fed through ports, layer weights as owned params) must

- validate, and its interpreter shapes/dtypes (meta execution) equal those of
  the eager aten call on real tensors;
- run through ``to_module()`` with the case's params loaded and give the same
  values as calling the aten overload directly, by keyword, from its schema
  (multi-output ops are read through ``getitem`` nodes);
- count as parameters exactly the numel of its owned (non-buffer) params;
- report non-negative FLOPs, equal to ``FlopCounterMode``'s for the matrix
  ops (linear, conv*, matmul, mm, bmm, addmm, baddbmm, einsum, sdpa), plus
  what the IR counts on top by convention (linear's bias add, sdpa's softmax);
- survive a JSON round trip exactly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from mad.graph import ArchGraph
from mad.graph.arch_graph import TensorSpec
from mad.graph.ops import get_op, op_names
from mad.graph.ops.registry import PORT

try:
    from .op_cases import CASES, STRUCTURAL, OpCase, build_cases
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from op_cases import CASES, STRUCTURAL, OpCase, build_cases

# ops whose FLOPs must equal torch's FlopCounterMode on the eager call
FLOP_COUNTED = {
    "linear", "conv1d", "conv2d", "conv3d", "conv1d_padding", "conv2d_padding", "conv_transpose1d",
    "conv_transpose2d", "conv_transpose3d", "matmul", "mm", "bmm", "addmm", "baddbmm", "einsum",
    "scaled_dot_product_attention",
}
SCOPE = "layer"  # owned params are named layer.<role>


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _spec(name: str, t: torch.Tensor) -> TensorSpec:
    rng = None
    if not t.dtype.is_floating_point and not t.dtype.is_complex and t.dtype != torch.bool and t.numel():
        rng = [int(t.min()), int(t.max()) + 1]
    return TensorSpec(name, list(t.shape), _dtype_name(t.dtype), range=rng)


def _reference_attr(value: Any, type_str: str) -> Any:
    """A JSON attr as the Python value the aten schema type ``type_str`` takes (decoded here, by hand)."""
    if value is None:
        return None
    if any(k in type_str for k in ("ScalarType", "MemoryFormat", "Layout")):
        return getattr(torch, value)
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [_reference_attr(v, type_str) for v in value]
    return value


class Built:
    """A case turned into a one-op graph, its port tensors, its state dict and its aten kwargs."""

    def __init__(self, case: OpCase) -> None:
        op = get_op(case.op)
        self.case, self.op = case, op
        attrs = dict(case.attrs)
        specs: list[TensorSpec] = []
        self.inputs: list[torch.Tensor] = []
        kwargs: dict[str, Any] = {}
        for a in op.args:
            if a.name in case.params:
                kwargs[a.name] = case.params[a.name]
            elif a.kind in ("list", "optional_list") and a.name in case.inputs:
                tensors = list(case.inputs[a.name])
                entries = attrs.setdefault(a.name, [PORT] * len(tensors))
                assert sum(e == PORT for e in entries) == len(tensors), f"{case.id}: ports and tensors differ"
                it = iter(tensors)
                kwargs[a.name] = [next(it) if e == PORT else _reference_attr(e, "Scalar") for e in entries]
                for i, t in enumerate(tensors):
                    specs.append(_spec(f"{a.name}{i}", t))
                    self.inputs.append(t)
            elif a.name in case.inputs:
                specs.append(_spec(a.name, case.inputs[a.name]))
                self.inputs.append(case.inputs[a.name])
                kwargs[a.name] = case.inputs[a.name]
                if a.kind == "optional":  # an optional tensor is fed by a port only when marked
                    attrs[a.name] = PORT
            elif a.name in attrs:
                kwargs[a.name] = _reference_attr(attrs[a.name], "Scalar")
            else:
                assert a.kind != "one", f"{case.id}: tensor argument {a.name!r} has no value"
                kwargs[a.name] = None  # an optional tensor left out of attrs is null
        schema_args = op.target._schema.arguments if hasattr(op.target, "_schema") else []
        for x in schema_args:  # ops outside aten (a custom op named by string) have only tensor args
            if x.name in attrs and x.name in op.attrs:
                kwargs[x.name] = _reference_attr(attrs[x.name], str(x.real_type))
            elif x.name in op.attrs and not x.has_default_value() and str(x.real_type).startswith("Optional["):
                kwargs[x.name] = None  # optional without a default: the schema still wants it named
            if "Device" in str(x.real_type):  # a graph is device-free; the module runs on the inputs' device
                kwargs[x.name] = torch.device("cpu")
        self.kwargs = kwargs
        self.attrs = attrs

        g = ArchGraph(f"one_{case.op}", source="test", inputs=specs)
        ports = [g.add_node("input", attrs={"name": s.name}, id=f"in_{s.name}") for s in specs]
        params = {r: list(t.shape) for r, t in case.params.items()}
        self.node = g.add_node(case.op, ports, id="op", attrs=attrs, params=params, scope=SCOPE if params else "")
        self.graph = g
        self.state = {g.nodes[self.node].param_name(r): t for r, t in case.params.items()}

    def reference(self) -> Any:
        """The eager aten call on fresh copies of the tensors (batch_norm writes its running stats)."""
        kwargs = {k: _clone(v) for k, v in self.kwargs.items()}
        fn = self.op.target if hasattr(self.op.target, "_schema") else self.op.fn
        return fn(**kwargs)

    def finish(self, n_outputs: int | None) -> None:
        """Declare outputs: the node itself, or one getitem node per element."""
        if n_outputs is None:
            self.graph.set_outputs([self.node])
        else:
            items = [self.graph.add_node("getitem", [self.node], id=f"item{i}", attrs={"index": i})
                     for i in range(n_outputs)]
            self.graph.set_outputs(items, kind="tuple")


def _clone(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, list):
        return [_clone(x) for x in v]
    return v


def _as_tuple(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def _compare(got: Any, want: Any, values: bool, where: str) -> None:
    got, want = _as_tuple(got), _as_tuple(want)
    assert len(got) == len(want), f"{where}: {len(got)} outputs, expected {len(want)}"
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{where}[{i}]: {a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        if values:
            torch.testing.assert_close(a, b, equal_nan=True, rtol=1e-5, atol=1e-6, msg=lambda m: f"{where}[{i}]: {m}")


def _load(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = module.load_state_dict({k: v.clone() for k, v in state.items()}, strict=False)
    assert not unexpected, f"module lacks {unexpected}"
    assert all(k.endswith("num_batches_tracked") for k in missing), f"module has params the case lacks: {missing}"


def check_graph(g: ArchGraph, inputs: list[torch.Tensor], state: dict[str, torch.Tensor], expected: Any,
                values: bool, n_params: int) -> Any:
    """The checks every one-op graph passes; returns the interpreter summary."""
    g.validate()
    summary = g.infer()
    g.validate()  # recorded shapes now agree with a second walk

    # meta execution == eager execution, for every node that is an output or feeds getitems
    want = _as_tuple(expected)
    outs = [g.nodes[o] for o in g.outputs]
    for node, t in zip(outs, want):
        assert node.shape == list(t.shape), f"node {node.id}: interpreter shape {node.shape}, eager {list(t.shape)}"
        assert node.dtype == _dtype_name(t.dtype), f"node {node.id}: interpreter dtype {node.dtype}, eager {t.dtype}"

    module = g.to_module()
    _load(module, state)
    got = module(*[x.clone() for x in inputs])
    _compare(got, expected, values, f"{g.name} to_module")

    assert summary.num_params == n_params == g.num_params
    assert sum(p.numel() for p in module.parameters()) == n_params
    assert all(isinstance(f, int) and f >= 0 for f in summary.node_flops.values()), summary.node_flops
    assert summary.flops >= 0

    text = g.to_json()
    back = ArchGraph.from_json(text)
    assert back.to_json() == text
    assert back.to_dict() == json.loads(text) == g.to_dict()
    module2 = back.to_module()
    _load(module2, state)
    _compare(module2(*[x.clone() for x in inputs]), got, values, f"{g.name} after JSON")
    return summary


def _case_params() -> list:
    out = []
    for name in sorted(CASES):
        for i, case in enumerate(build_cases(name)):
            out.append(pytest.param(name, i, id=case.id))
    return out


@pytest.mark.parametrize("name,index", _case_params())
def test_op_conformance(name: str, index: int) -> None:
    case = build_cases(name)[index]
    built = Built(case)
    op = built.op
    expected = built.reference()
    built.finish(len(expected) if op.multi_output else None)
    n_params = sum(t.numel() for r, t in case.params.items() if r not in op.buffer_args)
    summary = check_graph(built.graph, built.inputs, built.state, expected, case.check_values, n_params)
    g = built.graph
    if op.multi_output:  # the multi-output node records one shape per element
        assert g.nodes["op"].shape == [list(t.shape) for t in expected]
        assert g.nodes["op"].dtype == [_dtype_name(t.dtype) for t in expected]
    if name in FLOP_COUNTED:
        # the math backend runs sdpa as bmm's, which FlopCounterMode sees (it misses the fused CPU kernel)
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            built.reference()
        counted = counter.get_total_flops()
        assert counted > 0, counter.get_flop_counts()
        assert summary.node_flops["op"] == counted + _ir_extra_flops(name, built, expected), counter.get_flop_counts()


def _ir_extra_flops(name: str, built: Built, out: torch.Tensor) -> int:
    """FLOPs the IR counts beyond FlopCounterMode's matrix products, by the IR's convention:
    linear counts its bias add (one per output element), sdpa its softmax (3 per score)."""
    if name == "linear" and "bias" in built.case.params:
        return out.numel()
    if name == "scaled_dot_product_attention":
        q, k = built.case.inputs["query"], built.case.inputs["key"]
        return 3 * q.shape[:-2].numel() * q.shape[-2] * k.shape[-2]
    return 0


def _structural(name: str) -> tuple[ArchGraph, list[torch.Tensor], dict, Any, int]:
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))
    if name == "input":
        g = ArchGraph("one_input", inputs=[TensorSpec("x", [3, 5])])
        g.set_outputs([g.add_node("input", attrs={"name": "x"})])
        return g, [x], {}, x, 0
    if name == "parameter":
        g = ArchGraph("one_parameter")
        g.set_outputs([g.add_node("parameter", params={"data": [3, 5]}, scope="cls_token")])
        return g, [], {"cls_token.data": x}, x, 15
    g = ArchGraph("one_getitem", inputs=[TensorSpec("x", [3, 5])])
    split = g.add_node("split", [g.add_node("input", attrs={"name": "x"})], attrs={"split_size": 2, "dim": 1})
    g.set_outputs([g.add_node("getitem", [split], attrs={"index": 2})])
    return g, [x], {}, torch.ops.aten.split.Tensor(x, 2, 1)[2], 0


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural_conformance(name: str) -> None:
    g, inputs, state, expected, n_params = _structural(name)
    summary = check_graph(g, inputs, state, expected, True, n_params)
    assert summary.flops == 0


def test_every_op_has_a_case() -> None:
    names = set(op_names())
    covered = set(CASES) | set(STRUCTURAL)
    assert not names - covered, f"ops without a conformance case in op_cases.py: {sorted(names - covered)}"
    assert not covered - names, f"cases for ops not in the vocabulary: {sorted(covered - names)}"


def test_cases_are_reproducible() -> None:
    a, b = build_cases("linear")[0], build_cases("linear")[0]
    assert torch.equal(a.inputs["input"], b.inputs["input"])
    assert torch.equal(a.params["weight"], b.params["weight"])
