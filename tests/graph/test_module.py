"""to_module(): ArchModule equals hand-written modules, allocates nothing on meta,
ties weights, restores buffer values, returns every output kind; interpreter
FLOPs agree with torch's FLOP counter."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from strategies import arch_graphs, relabel
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mad.graph import ArchGraph, TensorSpec
from mad.graph.module import ArchModule, decode_tensor, encode_tensor

BN = {"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True}


# ------------------------------------------------------------ reference models


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, stride=2)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.LayerNorm(4), nn.Linear(4, 2))

    def forward(self, img):  # (B, 3, 8, 8)
        h = F.relu(self.bn(self.conv(img)))  # (B, 4, 4, 4)
        h = h.mean(dim=(2, 3))  # (B, 4)
        return self.head(h)  # (B, 2)


def tiny_cnn_graph(batch: int = 2) -> ArchGraph:
    g = ArchGraph("tiny_cnn", inputs=[TensorSpec("img", [batch, 3, 8, 8])])
    x = g.add_node("input", attrs={"name": "img"})
    c = g.add_node("conv2d", [x], attrs={"stride": [2, 2], "padding": [1, 1]},
                   params={"weight": [4, 3, 3, 3], "bias": [4]}, scope="conv")
    b = g.add_node("batch_norm", [c], attrs=BN, scope="bn",
                   params={"weight": [4], "bias": [4], "running_mean": [4], "running_var": [4]})
    r = g.add_node("relu", [b])
    m = g.add_node("mean", [r], attrs={"dim": [2, 3]})
    n = g.add_node("layer_norm", [m], attrs={"normalized_shape": [4]}, params={"weight": [4], "bias": [4]},
                   scope="head.0")
    y = g.add_node("linear", [n], params={"weight": [2, 4], "bias": [2]}, scope="head.1")
    g.set_outputs([y])
    g.infer()
    return g


class TinyAttention(nn.Module):
    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim, bias=False)
        self.scale = nn.Parameter(torch.randn(dim))

    def forward(self, x):  # (B, T, C)
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # 3 x (B, T, C)
        q, k, v = (t.reshape(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, C/H)
        a = a.transpose(1, 2).reshape(B, T, C)
        return x + self.out(a) * self.scale


def tiny_attention_graph(B: int = 2, T: int = 5, C: int = 8, H: int = 2) -> ArchGraph:
    g = ArchGraph("tiny_attention", inputs=[TensorSpec("x", [B, T, C])])
    x = g.add_node("input", attrs={"name": "x"})
    qkv = g.add_node("linear", [x], params={"weight": [3 * C, C], "bias": [3 * C]}, scope="qkv")
    sp = g.add_node("split", [qkv], attrs={"split_size": C, "dim": -1})
    heads = []
    for i in range(3):
        t = g.add_node("getitem", [sp], attrs={"index": i})
        t = g.add_node("reshape", [t], attrs={"shape": [B, T, H, C // H]})
        heads.append(g.add_node("transpose", [t], attrs={"dim0": 1, "dim1": 2}))
    a = g.add_node("scaled_dot_product_attention", heads, attrs={"is_causal": True})
    a = g.add_node("transpose", [a], attrs={"dim0": 1, "dim1": 2})
    a = g.add_node("reshape", [a], attrs={"shape": [B, T, C]})
    o = g.add_node("linear", [a], params={"weight": [C, C]}, scope="out")
    s = g.add_node("parameter", params={"data": [C]}, scope="scale", param_names={"data": "scale"})
    y = g.add_node("add", [x, g.add_node("mul", [o, s])])
    g.set_outputs([y])
    g.infer()
    return g


@pytest.mark.parametrize(
    "make_ref, make_graph",
    [(TinyCNN, tiny_cnn_graph), (TinyAttention, tiny_attention_graph)],
    ids=["cnn", "attention"],
)
def test_graph_module_equals_hand_written_module(make_ref, make_graph):
    ref = make_ref().eval()
    if isinstance(ref, TinyCNN):  # non-trivial running statistics
        ref.bn.running_mean.uniform_(-1, 1)
        ref.bn.running_var.uniform_(0.5, 2)
    g = make_graph()
    g.validate()
    m = g.to_module().eval()
    assert sorted(m.state_dict()) == sorted(ref.state_dict())
    m.load_state_dict(ref.state_dict(), strict=True)
    inputs = g.example_inputs(seed=3)
    torch.testing.assert_close(m(*inputs), ref(*inputs), rtol=0, atol=1e-6)
    assert list(m(*inputs).shape) == g.nodes[g.outputs[0]].shape


def test_layer_nodes_become_torch_layers():
    m = tiny_cnn_graph().to_module()
    assert isinstance(m.conv, nn.Conv2d) and m.conv.stride == (2, 2) and m.conv.padding == (1, 1)
    assert isinstance(m.bn, nn.BatchNorm2d)
    assert isinstance(m.head[0], nn.LayerNorm) and isinstance(m.head[1], nn.Linear)
    assert m.head[1].in_features == 4 and m.head[1].out_features == 2


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_training_mode_batch_norm_follows_its_layers_momentum_as_torch_does(momentum):
    # momentum=None is torch's cumulative average (what recomputing statistics for new weights relies on)
    ref = TinyCNN()
    m = tiny_cnn_graph().to_module()
    m.load_state_dict(ref.state_dict())
    ref.bn.momentum = m.bn.momentum = momentum
    ref.bn.reset_running_stats()
    m.bn.reset_running_stats()
    ref.train()
    m.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(4, 3, 8, 8, generator=gen) * 2 + 1
        torch.testing.assert_close(m(x), ref(x), rtol=0, atol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(m.bn, name), getattr(ref.bn, name), rtol=0, atol=1e-6)


def test_module_after_json_round_trip_gives_equal_outputs():
    g = tiny_attention_graph()
    m = g.to_module()
    m2 = ArchGraph.from_json(g.to_json()).to_module()
    m2.load_state_dict(m.state_dict())
    x = g.example_inputs()
    assert torch.equal(m(*x), m2(*x))


# ------------------------------------------------------------ meta device


def test_meta_module_allocates_nothing():
    g = ArchGraph("huge", inputs=[TensorSpec("x", [2, 100_000])])
    x = g.add_node("input", attrs={"name": "x"})
    # 4e11 bytes of float32: allocating it for real fails at once on any test machine
    h = g.add_node("linear", [x], params={"weight": [1_000_000, 100_000], "bias": [1_000_000]}, scope="fc")
    p = g.add_node("parameter", attrs={"kind": "buffer"}, params={"data": [1_000_000]}, scope="buf")
    g.set_outputs([g.add_node("add", [h, p])])
    g.infer()
    m = ArchModule(g, device="meta")
    tensors = list(m.parameters()) + list(m.buffers())
    assert len(tensors) == 3 and all(t.device.type == "meta" for t in tensors)
    assert sum(t.numel() for t in m.parameters()) == g.num_params == 100_001_000_000
    y = m(torch.empty(2, 100_000, device="meta"))
    assert y.device.type == "meta" and list(y.shape) == g.nodes[g.outputs[0]].shape


def test_meta_module_can_be_materialised():
    g = tiny_cnn_graph()
    m = g.to_module(device="meta")
    m.to_empty(device="cpu")
    m.load_state_dict(TinyCNN().state_dict())
    assert list(m(*g.example_inputs()).shape) == [2, 2]


# ------------------------------------------------------------ tied weights and buffers


class TiedLM(nn.Module):
    def __init__(self, vocab: int = 11, dim: int = 6) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab)
        self.head.weight = self.emb.weight

    def forward(self, ids):
        return self.head(torch.tanh(self.emb(ids)))


def tied_lm_graph(vocab: int = 11, dim: int = 6) -> ArchGraph:
    g = ArchGraph(
        "tied_lm",
        inputs=[TensorSpec("ids", [2, 4], "int64", range=[0, vocab])],
        meta={"aliases": {"head.weight": "emb.weight"}},
    )
    ids = g.add_node("input", attrs={"name": "ids"})
    e = g.add_node("embedding", [ids], params={"weight": [vocab, dim]}, scope="emb")
    t = g.add_node("tanh", [e])
    y = g.add_node("linear", [t], params={"weight": [vocab, dim], "bias": [vocab]}, scope="head",
                   param_names={"weight": "emb.weight", "bias": "head.bias"})
    g.set_outputs([y])
    g.infer()
    return g


def test_aliases_share_one_parameter():
    g = tied_lm_graph()
    g.validate()
    m = g.to_module()
    assert m.head.weight is m.emb.weight
    assert sorted(m.state_dict()) == ["emb.weight", "head.bias", "head.weight"]
    assert len(list(m.parameters())) == 2
    assert sum(p.numel() for p in m.parameters()) == g.num_params == 11 * 6 + 11
    ref = TiedLM()
    m.load_state_dict(ref.state_dict())
    ids = g.example_inputs(seed=1)[0]
    torch.testing.assert_close(m(ids), ref(ids), rtol=0, atol=1e-6)
    # one tensor: changing it through either name changes both
    with torch.no_grad():
        m.emb.weight.zero_()
    assert torch.count_nonzero(m.state_dict()["head.weight"]) == 0


def test_tied_weights_get_one_gradient():
    m = tied_lm_graph().to_module()
    m(torch.tensor([[1, 2, 3, 4], [0, 0, 5, 10]])).sum().backward()
    assert m.emb.weight.grad is not None and m.head.weight.grad is m.emb.weight.grad


DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [[3, 4], [], [0, 3], [1]], ids=["2d", "0d", "empty", "1"])
def test_encode_decode_tensor_round_trip(dtype, shape):
    t = (torch.randn(shape) * 10).to(dtype)
    enc = encode_tensor(t)
    assert enc["shape"] == shape and enc["dtype"] == str(dtype).removeprefix("torch.")
    back = decode_tensor(json.loads(json.dumps(enc)))
    assert back.dtype == dtype and list(back.shape) == shape and torch.equal(back, t)


def test_encode_tensor_of_a_strided_view():
    t = torch.arange(12.0).reshape(3, 4).t()[1:]
    assert torch.equal(decode_tensor(encode_tensor(t)), t)


@pytest.mark.parametrize("kind", ["buffer", "constant"])
def test_non_persistent_buffer_value_is_restored(kind):
    value = torch.linspace(-1, 1, 6).reshape(2, 3)
    g = ArchGraph("pos", inputs=[TensorSpec("x", [4, 2, 3])])
    x = g.add_node("input", attrs={"name": "x"})
    attrs = {"kind": kind, "persistent": False, "value": encode_tensor(value)}
    p = g.add_node("parameter", attrs=attrs, params={"data": [2, 3]}, scope="pos", param_names={"data": "pos.table"})
    g.set_outputs([g.add_node("add", [x, p])])
    g.validate()
    for graph in (g, ArchGraph.from_json(g.to_json())):
        m = graph.to_module()
        assert torch.equal(m.pos.table, value)
        assert "pos.table" not in m.state_dict()  # restored from the graph, not from a checkpoint
        assert dict(m.named_buffers())["pos.table"] is m.pos.table
        x_in = graph.example_inputs()[0]
        assert torch.equal(m(x_in), x_in + value)
    assert g.num_params == 0


def test_persistent_buffer_is_in_state_dict_but_not_a_parameter():
    g = ArchGraph(inputs=[TensorSpec("x", [3])])
    x = g.add_node("input", attrs={"name": "x"})
    p = g.add_node("parameter", attrs={"kind": "buffer"}, params={"data": [3]}, scope="stats")
    g.set_outputs([g.add_node("mul", [x, p])])
    m = g.to_module()
    assert list(m.state_dict()) == ["stats.data"] and list(m.parameters()) == []


# ------------------------------------------------------------ outputs and inputs


def _two_outputs(kind: str, keys=None) -> ArchGraph:
    g = ArchGraph(inputs=[TensorSpec("a", [2]), TensorSpec("b", [2])])
    a = g.add_node("input", attrs={"name": "a"})
    b = g.add_node("input", attrs={"name": "b"})
    s = g.add_node("sub", [a, b])
    p = g.add_node("mul", [a, b])
    g.set_outputs([s, p] if kind != "tensor" else [s], kind=kind, keys=keys)
    g.validate()
    return g


def test_output_kinds():
    a, b = torch.tensor([3.0, 1.0]), torch.tensor([2.0, 5.0])
    assert torch.equal(_two_outputs("tensor").to_module()(a, b), a - b)
    out = _two_outputs("tuple").to_module()(a, b)
    assert isinstance(out, tuple) and len(out) == 2
    assert torch.equal(out[0], a - b) and torch.equal(out[1], a * b)
    out = _two_outputs("dict", keys=["diff", "prod"]).to_module()(a, b)
    assert isinstance(out, dict) and list(out) == ["diff", "prod"]
    assert torch.equal(out["diff"], a - b) and torch.equal(out["prod"], a * b)


def test_forward_takes_keywords_and_names_bad_inputs():
    m = _two_outputs("tensor").to_module()
    a, b = torch.ones(2), torch.zeros(2)
    assert torch.equal(m(b=b, a=a), a - b)
    assert torch.equal(m(a, b=b), a - b)
    with pytest.raises(TypeError, match=r"missing inputs \['b'\]"):
        m(a)
    with pytest.raises(TypeError, match="unexpected input 'c'"):
        m(a, b, c=a)
    with pytest.raises(TypeError, match="forward takes 2 inputs, got 3"):
        m(a, b, a)


def test_failing_node_is_named():
    g = tiny_cnn_graph()
    m = g.to_module()
    with pytest.raises(RuntimeError, match=r"node 'conv2d_1' \(conv2d, scope 'conv'\) failed"):
        m(torch.randn(2, 5, 8, 8))


# ------------------------------------------------------------ random graphs


def _state_keys(g: ArchGraph) -> set[str]:
    """State-dict names the graph declares: owned tensors except non-persistent ones, plus aliases."""
    keys = set()
    for n in g:
        if n.op == "parameter" and (n.attrs.get("kind") == "constant" or n.attrs.get("persistent") is False):
            continue
        keys.update(n.param_name(r) for r in n.params)
    return keys | set(g.meta.get("aliases", {}))


def _flat(out) -> list[torch.Tensor]:
    """The output tensors of a module, whatever the output kind."""
    if isinstance(out, torch.Tensor):
        return [out]
    return list(out.values()) if isinstance(out, dict) else list(out)


@given(arch_graphs())
def test_random_graph_modules_run_with_interpreter_shapes(g):
    g.validate()
    expected = {o: list(g.nodes[o].shape) for o in g.outputs}
    summary = g.infer()
    assert {o: g.nodes[o].shape for o in g.outputs} == expected
    m = g.to_module().eval()
    out = m(*g.example_inputs(seed=0))
    outs = _flat(out)
    assert isinstance(out, {"tensor": torch.Tensor, "tuple": tuple, "dict": dict}[g.output_kind])
    assert [list(t.shape) for t in outs] == [g.nodes[o].shape for o in g.outputs]
    assert all(torch.isfinite(t).all() or t.numel() == 0 for t in outs)
    assert sum(p.numel() for p in m.parameters()) == summary.num_params == g.num_params


@given(arch_graphs())
def test_random_graph_state_dict_names_are_the_graph_param_names(g):
    declared = _state_keys(g)
    got = set(g.to_module().state_dict())
    # a torch BatchNorm layer adds its step counter when the graph does not say which keys the source had
    assert declared <= got and all(k.endswith(".num_batches_tracked") for k in got - declared)
    g.meta["state_keys"] = sorted(declared)
    assert set(g.to_module().state_dict()) == declared


@given(arch_graphs(), st.integers(0, 1000))
def test_relabelled_graph_computes_the_same_function(g, seed):
    m = g.to_module().eval()
    r = relabel(g, seed=seed, prefix="v")
    m2 = r.to_module().eval()
    m2.load_state_dict(m.state_dict())
    x = g.example_inputs(seed=seed)
    a, b = m(*x), m2(*x)
    for u, v in zip(_flat(a), _flat(b), strict=True):
        assert torch.equal(u, v)
    assert r.wl_hash() == g.wl_hash()


# ------------------------------------------------------------ FLOPs


def _one_op(op: str, shapes: list[list[int]], attrs=None, params=None) -> ArchGraph:
    g = ArchGraph(op, inputs=[TensorSpec(f"x{i}", s) for i, s in enumerate(shapes)])
    ins = [g.add_node("input", attrs={"name": f"x{i}"}) for i in range(len(shapes))]
    g.set_outputs([g.add_node(op, ins, id="op", attrs=attrs or {}, params=params or {}, scope="layer")])
    return g


def _torch_flops(g: ArchGraph) -> int:
    m = ArchModule(g, device="meta")
    x = [torch.empty(s.shape, device="meta") for s in g.inputs]
    with FlopCounterMode(display=False) as counter:
        m(*x)
    return counter.get_total_flops()


@pytest.mark.parametrize(
    "op, shapes, attrs, params, extra",
    [
        # torch counts the matmul only; the interpreter adds one op per output element for the bias
        ("linear", [[4, 7]], {}, {"weight": [5, 7]}, 0),
        ("linear", [[2, 3, 7]], {}, {"weight": [5, 7], "bias": [5]}, 2 * 3 * 5),
        ("conv2d", [[2, 3, 9, 9]], {"padding": [1, 1]}, {"weight": [8, 3, 3, 3]}, 0),
        ("conv2d", [[2, 4, 9, 9]], {"stride": [2, 2], "groups": 2}, {"weight": [6, 2, 3, 3], "bias": [6]}, 0),
        ("conv2d", [[1, 3, 7, 7]], {"dilation": [2, 2]}, {"weight": [4, 3, 3, 3]}, 0),
        ("matmul", [[6, 7], [7, 5]], {}, {}, 0),
        ("matmul", [[3, 6, 7], [7, 5]], {}, {}, 0),
        ("matmul", [[2, 3, 6, 7], [2, 3, 7, 5]], {}, {}, 0),
        ("bmm", [[3, 6, 7], [3, 7, 5]], {}, {}, 0),
        ("mm", [[6, 7], [7, 5]], {}, {}, 0),
        # softmax of the scores: 3 ops per score in the interpreter, none in torch
        ("scaled_dot_product_attention", [[2, 3, 5, 8], [2, 3, 6, 8], [2, 3, 6, 4]], {}, {}, 3 * 2 * 3 * 5 * 6),
        ("scaled_dot_product_attention", [[2, 5, 8]] * 3, {"is_causal": True}, {}, 3 * 2 * 5 * 5),
    ],
)
def test_flops_match_torch_flop_counter(op, shapes, attrs, params, extra):
    g = _one_op(op, shapes, attrs, params)
    g.validate()
    ours = g.infer().node_flops["op"]
    theirs = _torch_flops(g)
    assert theirs > 0
    assert ours == theirs + extra


def test_flops_of_a_model_sum_the_matmul_like_nodes():
    g = tiny_attention_graph()
    s = g.infer()
    matmul_like = sum(s.node_flops[n.id] for n in g if n.op in ("linear", "scaled_dot_product_attention"))
    B, T, C, H = 2, 5, 8, 2
    bias = B * T * 3 * C  # qkv bias adds, counted by the interpreter only
    softmax = 3 * B * H * T * T
    assert matmul_like == _torch_flops(g) + bias + softmax
    assert s.flops > matmul_like  # elementwise nodes count too
    assert math.isclose(s.flops, sum(s.node_flops.values()))


def test_run_checked_holds_every_value_to_its_recorded_shape_and_dtype():
    from mad.graph import GraphBuilder, GraphError

    b = GraphBuilder(dims={"B": 2, "T": 6})
    ids = b.input("input_ids", ("B", "T"), dtype="int64", range=[0, 50])
    h = b.op("linear", b.op("embedding", ids, num_embeddings=50, embedding_dim=8), out_features=4)
    b.output(b.op("relu", h))
    g = b.build()
    m = g.to_module()
    for dims in ({"B": 1}, {"B": 4, "T": 3}):
        args = g.example_inputs(seed=0, dims=dims)
        torch.testing.assert_close(m.run_checked(*args), m(*args), rtol=0, atol=0)
    g.nodes[h].shape = ["B", "T", 5]  # a wrong record: the linear gives 4 features
    with pytest.raises(GraphError, match=r"node .*\(linear\).*\['B', 'T', 5\].*ran to \[4, 3, 4\]"):
        g.to_module().run_checked(*g.example_inputs(seed=0, dims={"B": 4, "T": 3}))
    g.nodes[h].shape, g.nodes[h].dtype = ["B", "T", 4], "float64"
    with pytest.raises(GraphError, match="float64"):
        g.to_module().run_checked(*g.example_inputs(seed=0))
    m2 = g.to_module()
    with pytest.raises(GraphError):
        m2.run_checked(*g.example_inputs(seed=0))
    m2(*g.example_inputs(seed=0))  # the check is off again after the failed run
