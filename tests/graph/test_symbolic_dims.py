"""Symbolic batch and sequence dims: capture, run at other sizes, JSON, code, train/eval."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mad.code2graph import from_module
from mad.graph import ArchGraph, GraphError, TensorSpec
from mad.graph.symbolic import SymbolError, evaluate, fit_dim, free_symbols, probe_bindings, same_dim

from nets import at_batch, nets

NETS = nets()


@pytest.fixture(scope="module")
def captured():
    out = {}
    for name, (m, args) in NETS.items():
        m.eval()
        out[name] = from_module(m, args)
    return out


# ------------------------------------------------------------------ expressions
def test_evaluate_and_symbols():
    assert evaluate("B * T + 1", {"B": 3, "T": 5}) == 16
    assert evaluate("(T - 1) // 2 + 1", {"T": 9}) == 5
    assert evaluate(7, {}) == 7
    assert free_symbols(["B", 3, "B*T"]) == {"B", "T"}
    with pytest.raises(SymbolError, match="no value for symbols"):
        evaluate("B * S", {"B": 2})
    with pytest.raises(SymbolError, match="not allowed|only"):
        evaluate("__import__('os')", {})
    with pytest.raises(SymbolError, match="not valid"):
        evaluate("B +", {"B": 1})


@pytest.mark.parametrize(
    "fn, want",
    [
        (lambda m: m["B"] * m["T"], "B*T"),
        (lambda m: m["T"] + 1, "T + 1"),
        (lambda m: 12 * m["B"] * m["T"], "12*B*T"),
        (lambda m: 16, 16),
        (lambda m: m["B"] * m["T"] - m["T"], "B*T - T"),
    ],
)
def test_fit_recovers_multilinear_dims(fn, want):
    corners, checks = probe_bindings(["B", "T"], {"B": 2, "T": 8})
    got = fit_dim(["B", "T"], corners, [fn(m) for m in corners])
    assert got == want
    assert all(evaluate(got, m) == fn(m) for m in checks)


def test_fit_of_a_floor_division_fails_its_check():
    corners, checks = probe_bindings(["T"], {"T": 8})
    f = lambda m: (m["T"] - 1) // 2 + 1  # noqa: E731
    got = fit_dim(["T"], corners, [f(m) for m in corners])
    assert any(evaluate(got, m) != f(m) for m in checks)


def test_same_dim():
    b = [{"B": 2, "T": 8}, {"B": 9, "T": 15}]
    assert same_dim("B*T", "T * B", b) and not same_dim("B", 2, b) and same_dim(3, 3, b)


# ------------------------------------------------------------------ capture
@pytest.mark.parametrize("name", sorted(NETS))
def test_captured_nets_run_at_other_sizes(captured, name):
    m, args = NETS[name]
    g = captured[name]
    g.validate()
    assert g.dims["B"] == 2 and g.inputs[0].shape[0] == "B"
    rebuilt = g.to_module()
    rebuilt.load_state_dict(m.state_dict())
    sizes = [(1, None), (8, None)] + ([(3, 5)] if name == "gpt" else [])
    for batch, seq in sizes:
        x = at_batch(args, batch, seq)
        with torch.no_grad():
            assert torch.allclose(rebuilt(*x), m(*x), atol=1e-5), (name, batch, seq)


def test_token_model_has_a_symbolic_sequence(captured):
    g = captured["gpt"]
    assert g.inputs[0].shape == ["B", "T"] and g.dims == {"B": 2, "T": 12}
    views = [n for n in g if n.op in ("view", "reshape")]
    assert views and all("B" in str(n.attrs) for n in views)
    assert any(n.op == "arange" and n.attrs.get("end") == "T" for n in g)


def test_symbolic_graph_round_trips_json_and_code(captured, tmp_path):
    g = captured["gpt"]
    g2 = ArchGraph.from_json(g.to_json())
    assert g2.dims == g.dims and g2.to_json() == g.to_json()
    src = g.to_code(class_name="Net")
    assert "B, T = ids.shape" in src
    ns: dict = {}
    exec(compile(src, "net.py", "exec"), ns)  # the code is for people; running it checks it is right
    net = ns["Net"]()
    net.load_state_dict(NETS["gpt"][0].state_dict())
    x = torch.randint(0, 50, (3, 7))
    with torch.no_grad():
        assert torch.equal(net.eval()(x), NETS["gpt"][0](x))


def test_static_capture_keeps_concrete_sizes():
    m, args = NETS["mlp"]
    g = from_module(m.eval(), args, dynamic=False)
    assert g.dims == {} and g.inputs[0].shape == [2, 1, 8, 8]
    g.validate()


def test_version_1_documents_still_load(captured):
    d = captured["mlp"].to_dict()
    d["schema_version"] = 1
    del d["dims"]
    for n in d["nodes"]:
        n.pop("shape", None)
    for s in d["inputs"]:
        s["shape"] = [2 if x == "B" else x for x in s["shape"]]
    for n in d["nodes"]:
        for k, v in n.get("attrs", {}).items():
            if v == "B":
                n["attrs"][k] = 2
    g = ArchGraph.from_dict(d)
    g.infer()
    g.validate()
    assert g.inputs[0].shape == [2, 1, 8, 8]


def test_undeclared_symbol_is_named():
    g = ArchGraph("t", inputs=[TensorSpec("x", ["B", 4])])
    x = g.add_node("input", attrs={"name": "x"})
    g.set_outputs([g.add_node("relu", [x])])
    with pytest.raises(GraphError, match=r"graph.inputs 'x'.*symbols \['B'\].*graph.dims"):
        g.validate()
    g.dims["B"] = 1
    with pytest.raises(GraphError, match=r"graph.dims\['B'\].*>= 2"):
        g.validate()


def test_shape_needing_a_fixed_size_is_an_error():
    """A conv whose channels are the sequence dim only runs at one length: not symbolic."""
    g = ArchGraph("t", inputs=[TensorSpec("x", ["B", "T", 16])], dims={"B": 2, "T": 8})
    x = g.add_node("input", attrs={"name": "x"})
    g.set_outputs([g.add_node("conv1d", [x], params={"weight": [4, 8, 3]}, scope="c")])
    with pytest.raises(GraphError, match="node 'conv1d_1'.*T = 8"):
        g.infer()


def test_strided_conv_over_a_sequence_gets_an_exact_expression():
    g = ArchGraph("t", inputs=[TensorSpec("x", ["B", 16, "T"])], dims={"B": 2, "T": 8})
    x = g.add_node("input", attrs={"name": "x"})
    c = g.add_node("conv1d", [x], params={"weight": [4, 16, 3]}, attrs={"stride": [2], "padding": [1]}, scope="c")
    g.set_outputs([c])
    g.infer()
    assert g.nodes[c].shape == ["B", 4, "(T - 1) // 2 + 1"]
    g.validate()
    m = g.to_module()
    for t in (5, 8, 13):
        assert m(torch.randn(3, 16, t)).shape == (3, 4, (t - 1) // 2 + 1)


# ------------------------------------------------------------------ train / eval
@pytest.mark.parametrize("name", ["cnn_bn", "mlp"])
def test_train_mode_matches_the_source(captured, name):
    m, args = NETS[name]
    g = captured[name]
    src = copy.deepcopy(m).train()
    rebuilt = g.to_module()
    rebuilt.load_state_dict(src.state_dict())
    assert not rebuilt.training  # starts in the mode graphs are captured in
    rebuilt.train()
    x = at_batch(args, 6)
    torch.manual_seed(1)
    want = src(*x)
    torch.manual_seed(1)
    got = rebuilt(*x)
    assert torch.allclose(got, want, atol=1e-6)
    for k, v in src.state_dict().items():  # running stats and num_batches_tracked updated alike
        assert torch.allclose(rebuilt.state_dict()[k].float(), v.float(), atol=1e-6), k
    rebuilt.eval(), src.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(*x), src(*x))


def test_dropout_follows_the_mode(captured):
    g = captured["gpt"]
    m = g.to_module()
    x = at_batch(NETS["gpt"][1], 4)
    with torch.no_grad():
        assert torch.equal(m(*x), m(*x))
        m.train()
        assert not torch.equal(m(*x), m(*x))


def test_onnx_export_names_symbolic_dims(captured, tmp_path):
    import onnx

    from mad.graph.onnx_io import run_onnx

    g = captured["gpt"]
    m = g.to_module()
    m.load_state_dict(NETS["gpt"][0].state_dict())
    path = g.to_onnx(tmp_path / "gpt.onnx", module=m)
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in onnx.load(str(path)).graph.input]
    assert dims == [["B", "T"]]
    for b, t in ((1, 4), (5, 9)):
        x = torch.randint(0, 50, (b, t))
        with torch.no_grad():
            want = m(x).numpy()
        assert abs(run_onnx(path, [x])[0] - want).max() < 1e-4


class _NoiseOfBatchSize(nn.Module):
    """Draws noise of the batch's size: torch.export cannot trace that with a symbolic batch."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        noise = torch.randn((x.shape[0], 3), generator=None, dtype=x.dtype, device=x.device)
        return self.lin(x) + 0 * noise


def test_failed_symbolic_export_falls_back_to_static_on_the_same_inputs():
    x = torch.randn(2, 4)
    g = from_module(_NoiseOfBatchSize().eval(), (x,))
    assert g.dims == {} and g.inputs[0].shape == [2, 4]
    assert "export with symbolic sizes failed" in g.meta["specialised_dims"]["all"]
    assert not [k for k in vars(x) if k.startswith("_dynamo")]  # the caller's tensor is left unmarked
    g.validate()
