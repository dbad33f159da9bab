"""to_code(): the generated source is valid, readable Python whose module matches to_module().

For every graph here the source is written to a file, imported, instantiated,
and must

- have exactly the state-dict keys, shapes and dtypes of ``g.to_module()``,
  and load that state dict strictly;
- give the same outputs as ``g.to_module()`` on the same inputs (eval mode);
- read like hand-written code: standard layers as ``nn.Linear(...)`` calls,
  ``a + b`` for adds, about one line per node, no ``torch.ops.aten`` where a
  readable form exists.

Graphs: hand-built (MLP with skip and concat, CNN, free parameters and
buffers, tied weights, odd names), random graphs from a small generator,
one graph per op-conformance case (every op of the vocabulary, with the
readable forms on and off), and real models captured with
``mad.code2graph.from_module`` (tiny GPT-2 and BERT from transformers
configs, a torch CNN).
"""

from __future__ import annotations

import importlib.util
import random
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from mad.graph import ArchGraph, GraphError, TensorSpec, codegen, get_op
from mad.graph.module import encode_tensor
from mad.graph.ops.registry import PORT

try:
    from .op_cases import CASES, build_cases
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from op_cases import CASES, build_cases


# ----------------------------------------------------------------- helpers
def load_class(src: str, tmp_path: Path, stem: str = "generated") -> type[nn.Module]:
    """Write ``src`` to a file, import it, and return the one nn.Module class it defines."""
    path = tmp_path / f"{stem}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(f"mad_codegen_{stem}_{abs(hash(src))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__]
    assert len(classes) == 1, f"expected one nn.Module class, found {classes}"
    return classes[0]


def _as_tuple(v: Any) -> tuple:
    if isinstance(v, dict):
        return tuple(v.values())
    return tuple(v) if isinstance(v, (list, tuple)) else (v,)


def check_equivalent(g: ArchGraph, tmp_path: Path, inputs: tuple | None = None,
                     state: dict[str, torch.Tensor] | None = None, values: bool = True) -> tuple[str, nn.Module]:
    """Generate, import, load ArchModule's state strictly, compare state and outputs; return (src, module)."""
    src = g.to_code()
    compile(src, "generated.py", "exec")
    ref = g.to_module()
    if state:
        ref.load_state_dict(state, strict=False)
    cls = load_class(src, tmp_path)
    gen = cls()
    want = ref.state_dict()
    got = gen.state_dict()
    assert list(got) == list(want), (f"state keys differ (or their order): only generated "
                                     f"{sorted(set(got) - set(want))}, only ArchModule {sorted(set(want) - set(got))}")
    for k in want:
        assert got[k].shape == want[k].shape and got[k].dtype == want[k].dtype, \
            f"{k}: {tuple(got[k].shape)} {got[k].dtype} vs {tuple(want[k].shape)} {want[k].dtype}"
    gen.load_state_dict(want, strict=True)
    made = dict(gen.named_modules())
    for path, m in ref.named_modules():  # every standard layer of ArchModule is the same layer here
        if path and type(m).__module__.startswith("torch.nn"):
            assert type(made.get(path)) is type(m), f"{path}: {type(made.get(path)).__name__}, not {type(m).__name__}"
    gen.eval()
    inputs = inputs if inputs is not None else g.example_inputs(seed=3)
    with torch.no_grad():
        expected = ref(*[x.clone() for x in inputs])
        out = gen(*[x.clone() for x in inputs])
    assert type(out) is type(expected), f"output kind {type(out).__name__}, expected {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(out) == list(expected)
    for a, b in zip(_as_tuple(out), _as_tuple(expected), strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{a.shape} {a.dtype} vs {b.shape} {b.dtype}"
        if values:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5, equal_nan=True)
    return src, gen


def forward_body(src: str) -> list[str]:
    """Code lines of ``forward`` (no comments, no blank lines, no return)."""
    body = []
    for ln in src.split("    def forward(", 1)[1].splitlines()[1:]:
        if ln.strip() and not ln.startswith("        "):
            break  # the end of the class
        body.append(ln.strip())
    return [ln for ln in body if ln and not ln.startswith(("#", "return"))]


# ----------------------------------------------------------------- hand-built graphs
def mlp_graph() -> ArchGraph:
    g = ArchGraph("tiny-mlp", source="test", inputs=[TensorSpec("x", [2, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("linear", [x], params={"weight": [8, 4], "bias": [8]}, scope="fc1")
    h = g.add_node("gelu", [h], scope="act")
    h = g.add_node("linear", [h], params={"weight": [4, 8], "bias": [4]}, scope="fc2")
    s = g.add_node("add", [h, x])
    m = g.add_node("mul", [s], attrs={"other": 0.5})
    c = g.add_node("cat", [m, s], attrs={"tensors": [PORT, PORT], "dim": 1})
    g.set_outputs([c])
    return g.validate()


def test_mlp_with_skip_and_concat(tmp_path):
    g = mlp_graph()
    src, gen = check_equivalent(g, tmp_path)
    assert "class TinyMlp(nn.Module):" in src
    assert "self.fc1 = nn.Linear(4, 8)" in src and "self.fc2 = nn.Linear(8, 4)" in src
    body = forward_body(src)
    assert body == [
        "fc1 = self.fc1(x)  # (2, 8)",
        "act = F.gelu(fc1)  # (2, 8)",
        "fc2 = self.fc2(act)  # (2, 4)",
        "add = fc2 + x  # (2, 4)",
        "mul = add * 0.5  # (2, 4)",
        "cat = torch.cat([mul, add], dim=1)  # (2, 8)",
    ]
    assert "torch.ops.aten" not in src
    assert isinstance(gen.fc1, nn.Linear)


def cnn_graph() -> ArchGraph:
    """conv/bn/relu blocks in a numbered list, a residual add, a concat, pooling and a linear head."""
    g = ArchGraph("small cnn", source="test", inputs=[TensorSpec("image", [2, 3, 8, 8])])
    x = g.add_node("input", attrs={"name": "image"})
    h = g.add_node("conv2d", [x], attrs={"stride": [1, 1], "padding": [1, 1]}, params={"weight": [8, 3, 3, 3],
                                                                                       "bias": [8]}, scope="stem")
    for i in range(2):
        s = f"blocks.{i}"
        y = g.add_node("conv2d", [h], attrs={"padding": [1, 1]}, params={"weight": [8, 8, 3, 3]}, scope=f"{s}.conv")
        y = g.add_node("batch_norm", [y], attrs={"training": False, "momentum": 0.1, "eps": 1e-5,
                                                  "cudnn_enabled": False},
                       params={"weight": [8], "bias": [8], "running_mean": [8], "running_var": [8]}, scope=f"{s}.bn")
        y = g.add_node("relu", [y], scope=s)
        h = g.add_node("add", [h, y], scope=s)
    p = g.add_node("max_pool2d", [h], attrs={"kernel_size": [2, 2], "stride": [2, 2]})
    q = g.add_node("avg_pool2d", [h], attrs={"kernel_size": [2, 2], "stride": [2, 2]})
    c = g.add_node("cat", [p, q], attrs={"tensors": [PORT, PORT], "dim": 1})
    a = g.add_node("adaptive_avg_pool2d", [c], attrs={"output_size": [1, 1]})
    f = g.add_node("flatten", [a], attrs={"start_dim": 1})
    o = g.add_node("linear", [f], params={"weight": [10, 16], "bias": [10]}, scope="head")
    g.set_outputs([o])
    g.infer()
    return g.validate()


def test_cnn_layers_and_numbered_blocks(tmp_path):
    g = cnn_graph()
    state = {k: torch.rand_like(v) + 0.5 for k, v in g.to_module().state_dict().items() if v.is_floating_point()}
    src, gen = check_equivalent(g, tmp_path, state=state)
    assert "class SmallCnn(nn.Module):" in src
    assert "self.stem = nn.Conv2d(3, 8, 3, padding=1)" in src
    assert "self.blocks = nn.ModuleList([nn.Module() for _ in range(2)])" in src
    assert "self.blocks[1].bn = nn.BatchNorm2d(8)" in src and "= self.blocks[1].bn(" in src
    assert isinstance(gen.blocks, nn.ModuleList)
    if isinstance(g.to_module().blocks[0].conv, nn.Conv2d):  # the layer is a module where ArchModule has one
        assert "self.blocks[0].conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)" in src
    else:
        assert "F.conv2d(stem, self.blocks[0].conv.weight, padding=1)" in src
    for op in ("conv2d", "add", "linear", "batch_norm", "max_pool2d", "cat"):
        assert f"torch.ops.aten.{op}." not in src
    assert len(forward_body(src)) == len(g.nodes) - 1  # one line per node, the input is an argument


def test_free_parameters_buffers_constants_and_dict_output(tmp_path):
    torch.manual_seed(0)
    table = torch.randn(6, 4)
    g = ArchGraph("with-tensors", source="test", inputs=[TensorSpec("x", [2, 6, 4])], meta={})
    x = g.add_node("input", attrs={"name": "x"})
    cls = g.add_node("parameter", params={"data": [1, 1, 4]}, param_names={"data": "cls_token"})
    pos = g.add_node("parameter", params={"data": [6, 4]}, param_names={"data": "embed.pos_table"},
                     attrs={"kind": "buffer", "persistent": False, "value": encode_tensor(table)})
    ids = g.add_node("parameter", params={"data": [1, 6]}, param_names={"data": "embed.position_ids"},
                     attrs={"kind": "buffer", "persistent": False, "dtype": "int64",
                            "value": encode_tensor(torch.arange(6).view(1, 6))})
    scale = g.add_node("parameter", params={"data": [4]}, param_names={"data": "scale"},
                       attrs={"kind": "constant", "value": encode_tensor(torch.tensor([0.5, 1.0, 2.0, -1.5]))})
    mask = g.add_node("parameter", params={"data": [6, 6]}, param_names={"data": "mask"},
                      attrs={"kind": "buffer", "persistent": False, "dtype": "bool",
                             "value": encode_tensor(torch.ones(6, 6, dtype=torch.bool).tril())})
    h = g.add_node("add", [x, pos], scope="embed")
    h = g.add_node("mul", [h, scale])
    e = g.add_node("expand", [cls], attrs={"size": [2, -1, -1]})
    h = g.add_node("cat", [e, h], attrs={"tensors": [PORT, PORT], "dim": 1})
    f = g.add_node("to_dtype", [ids], attrs={"dtype": "float32"})
    s = g.add_node("sum", [h], attrs={"dim": [1]})
    m = g.add_node("to_dtype", [mask], attrs={"dtype": "float32"})
    g.set_outputs([h, s, f, m], kind="dict", keys=["hidden", "pooled", "positions", "mask"])
    g.validate()
    src, gen = check_equivalent(g, tmp_path)
    assert "self.cls_token = nn.Parameter(" in src
    assert 'self.embed.register_buffer("position_ids", torch.arange(6).view(1, 6), persistent=False)' in src
    assert 'self.register_buffer("scale", torch.tensor([0.5, 1.0, 2.0, -1.5]), persistent=False)' in src
    assert "torch.ones(6, 6, dtype=torch.bool).tril()" in src
    assert "_tensor_from_base64(" in src and "import base64" in src  # the random table
    torch.testing.assert_close(gen.embed.pos_table, table, rtol=0, atol=0)
    assert 'return {"hidden": ' in src


def test_tied_weights_are_one_tensor(tmp_path):
    g = ArchGraph("tied", source="test", inputs=[TensorSpec("ids", [2, 5], "int64", range=[0, 11])])
    ids = g.add_node("input", attrs={"name": "ids"})
    e = g.add_node("embedding", [ids], params={"weight": [11, 4]}, scope="wte")
    h = g.add_node("layer_norm", [e], attrs={"normalized_shape": [4]}, params={"weight": [4], "bias": [4]},
                   scope="ln")
    o = g.add_node("linear", [h], params={"weight": [11, 4]}, param_names={"weight": "wte.weight"}, scope="lm_head")
    g.meta["aliases"] = {"lm_head.weight": "wte.weight"}
    g.set_outputs([o])
    g.validate()
    src, gen = check_equivalent(g, tmp_path)
    assert gen.lm_head.weight is gen.wte.weight
    assert "self.lm_head = nn.Linear(4, 11, bias=False)" in src  # the container of the alias reads as the layer
    assert "self.lm_head.weight = self.wte.weight" in src and "lm_head = self.lm_head(ln)" in src
    assert sorted(gen.state_dict()) == sorted(g.to_module().state_dict())


def test_odd_names_stay_exact(tmp_path):
    """Keywords and builtins as names, numbered children of the model itself."""
    g = ArchGraph("0 odd-names!", source="test", inputs=[TensorSpec("lambda", [2, 3]), TensorSpec("input", [2, 3])])
    x = g.add_node("input", attrs={"name": "lambda"})
    y = g.add_node("input", attrs={"name": "input"})
    a = g.add_node("linear", [x], params={"weight": [3, 3], "bias": [3]}, scope="0")
    b = g.add_node("linear", [y], params={"weight": [3, 3]}, scope="2.in")
    w = g.add_node("parameter", params={"data": [3]}, param_names={"data": "2.class"})
    c = g.add_node("add", [a, b])
    d = g.add_node("mul", [c, w])
    g.set_outputs([d, c], kind="tuple")
    g.validate()
    src, _ = check_equivalent(g, tmp_path)
    assert "class Model0OddNames(nn.ModuleList):" in src
    assert "def forward(self, lambda_, input):" in src


def test_shared_module_called_twice(tmp_path):
    g = ArchGraph("shared", source="test", inputs=[TensorSpec("x", [3, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    a = g.add_node("linear", [x], params={"weight": [4, 4], "bias": [4]}, scope="proj")
    b = g.add_node("linear", [a], params={"weight": [4, 4], "bias": [4]}, scope="proj")
    g.set_outputs([b])
    g.validate()
    src, _ = check_equivalent(g, tmp_path)
    assert src.count("= self.proj(") == 2 and src.count("nn.Linear(4, 4)") == 1


def test_multi_output_unpacks(tmp_path):
    g = ArchGraph("qkv", source="test", inputs=[TensorSpec("x", [2, 5, 12])])
    x = g.add_node("input", attrs={"name": "x"})
    qkv = g.add_node("linear", [x], params={"weight": [36, 12], "bias": [36]}, scope="attn.qkv")
    sp = g.add_node("split", [qkv], attrs={"split_size": 12, "dim": -1}, scope="attn")
    q, k, v = (g.add_node("getitem", [sp], attrs={"index": i}, scope="attn") for i in range(3))
    heads = [g.add_node("view", [t], attrs={"size": [2, 5, 3, 4]}, scope="attn") for t in (q, k, v)]
    heads = [g.add_node("transpose", [t], attrs={"dim0": 1, "dim1": 2}, scope="attn") for t in heads]
    o = g.add_node("scaled_dot_product_attention", heads, attrs={"is_causal": True}, scope="attn")
    mx = g.add_node("max_dim", [o], attrs={"dim": -1})
    vals = g.add_node("getitem", [mx], attrs={"index": 0})
    g.set_outputs([o, vals], kind="tuple")
    g.validate()
    src, _ = check_equivalent(g, tmp_path)
    assert re.search(r"split_0, split_1, split_2 = qkv\.split\(12, dim=-1\)", src), src
    assert "F.scaled_dot_product_attention(transpose, transpose_1, transpose_2, is_causal=True)" in src
    assert "values, _ = attn.max(-1)" in src


def test_class_name_and_determinism():
    g = mlp_graph()
    assert g.to_code() == g.to_code() == ArchGraph.from_json(g.to_json()).to_code()
    assert "class Net(nn.Module):" in g.to_code(class_name="Net")
    with pytest.raises(ValueError, match="class_name"):
        g.to_code(class_name="not valid")


# ----------------------------------------------------------------- random graphs
def random_graph(seed: int) -> ArchGraph:
    """A random valid graph over (B, T, C) tensors: layers, elementwise ops, concat, attention,
    free parameters and buffers, split/getitem, nested numbered scopes and a tied linear."""
    rng = random.Random(seed)
    B, T, C = 2, rng.choice([3, 5]), rng.choice([4, 8])
    g = ArchGraph(f"random-{seed}", source="random", inputs=[TensorSpec("x", [B, T, C])])
    pool = [g.add_node("input", attrs={"name": "x"})]
    linears: list[str] = []
    for step in range(rng.randint(6, 14)):
        scope = f"blocks.{step // 4}.{rng.choice(['mix', 'ffn', 'norm'])}{step}"
        a = rng.choice(pool)
        kind = rng.choice(["linear", "norm", "act", "binop", "const", "cat", "param", "buffer", "split",
                           "attn", "tied", "softmax"])
        if kind == "linear":
            n = g.add_node("linear", [a], params={"weight": [C, C], **({"bias": [C]} if rng.random() < .7 else {})},
                           scope=scope)
            linears.append(n)
        elif kind == "tied" and linears:
            src = g.nodes[rng.choice(linears)]
            names = {r: src.param_name(r) for r in src.params}
            n = g.add_node("linear", [a], params=dict(src.params), param_names=names, scope=scope)
        elif kind == "norm":
            n = g.add_node("layer_norm", [a], attrs={"normalized_shape": [C], "eps": 1e-5},
                           params={"weight": [C], "bias": [C]}, scope=scope)
        elif kind == "act":
            n = g.add_node(rng.choice(["relu", "gelu", "tanh", "sigmoid", "silu"]), [a], scope=scope)
        elif kind == "binop":
            n = g.add_node(rng.choice(["add", "mul", "sub"]), [a, rng.choice(pool)], scope=scope)
        elif kind == "const":
            n = g.add_node(rng.choice(["add", "mul", "sub"]), [a], attrs={"other": rng.choice([0.5, -2.0, 3])})
        elif kind == "cat":
            c = g.add_node("cat", [a, rng.choice(pool)], attrs={"tensors": [PORT, PORT], "dim": -1})
            n = g.add_node("linear", [c], params={"weight": [C, 2 * C]}, scope=scope)
        elif kind == "param":
            p = g.add_node("parameter", params={"data": [1, 1, C]}, param_names={"data": f"{scope}.gamma"})
            n = g.add_node("mul", [a, p], scope=scope)
        elif kind == "buffer":
            v = torch.randn(T, C, generator=torch.Generator().manual_seed(seed * 100 + step))
            p = g.add_node("parameter", params={"data": [T, C]}, param_names={"data": f"{scope}.table"},
                           attrs={"kind": "buffer", "persistent": False, "value": encode_tensor(v)})
            n = g.add_node("add", [a, p], scope=scope)
        elif kind == "split":
            sp = g.add_node("split", [a], attrs={"split_size": C // 2, "dim": -1}, scope=scope)
            parts = [g.add_node("getitem", [sp], attrs={"index": i}) for i in range(2)]
            n = g.add_node("cat", parts[::-1], attrs={"tensors": [PORT, PORT], "dim": -1}, scope=scope)
        elif kind == "attn":
            qkv = [g.add_node("view", [t], attrs={"size": [B, T, 2, C // 2]}) for t in (a, a, rng.choice(pool))]
            qkv = [g.add_node("transpose", [t], attrs={"dim0": 1, "dim1": 2}) for t in qkv]
            o = g.add_node("scaled_dot_product_attention", qkv, attrs={"is_causal": rng.random() < .5}, scope=scope)
            o = g.add_node("transpose", [o], attrs={"dim0": 1, "dim1": 2})
            n = g.add_node("reshape", [o], attrs={"shape": [B, T, C]})
        else:
            n = g.add_node("softmax", [a], attrs={"dim": -1}, scope=scope)
        pool.append(n)
    g.set_outputs([pool[-1]] if rng.random() < .5 else [pool[-1], pool[len(pool) // 2]])
    g.infer()
    return g.validate()


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs(seed, tmp_path):
    g = random_graph(seed)
    state = {k: torch.randn_like(v) for k, v in g.to_module().state_dict().items()}
    src, _ = check_equivalent(g, tmp_path, state=state)
    assert "torch.ops.aten" not in src
    assert len(forward_body(src)) <= len(g.nodes)


# ----------------------------------------------------------------- one graph per op
def one_op_graph(case) -> tuple[ArchGraph, list[torch.Tensor], dict[str, torch.Tensor]]:
    """The op-conformance case as a graph (inputs through ports, weights as owned params)."""
    op = get_op(case.op)
    attrs = dict(case.attrs)
    specs, values = [], []
    for a in op.args:
        if a.name in case.params or a.name not in case.inputs:
            continue
        tensors = list(case.inputs[a.name]) if a.kind in ("list", "optional_list") else [case.inputs[a.name]]
        if a.kind in ("list", "optional_list"):
            attrs.setdefault(a.name, [PORT] * len(tensors))
        elif a.kind == "optional":
            attrs[a.name] = PORT
        for i, t in enumerate(tensors):
            name = f"{a.name}{i}" if a.kind in ("list", "optional_list") else a.name
            rng = [int(t.min()), int(t.max()) + 1] if not t.is_floating_point() and not t.is_complex() and \
                t.dtype != torch.bool and t.numel() else None
            specs.append(TensorSpec(name, list(t.shape), str(t.dtype).removeprefix("torch."), range=rng))
            values.append(t)
    g = ArchGraph(f"case-{case.id}", source="test", inputs=specs)
    ports = [g.add_node("input", attrs={"name": s.name}) for s in specs]
    params = {r: list(t.shape) for r, t in case.params.items()}
    n = g.add_node(case.op, ports, attrs=attrs, params=params, scope="layer" if params else "")
    g.infer()
    if op.multi_output:
        items = [g.add_node("getitem", [n], attrs={"index": i}) for i in range(len(g.nodes[n].shape))]
        g.set_outputs(items, kind="tuple")
    else:
        g.set_outputs([n])
    state = {g.nodes[n].param_name(r): t for r, t in case.params.items()}
    return g.validate(), values, state


OP_CASES = [(name, i) for name in sorted(CASES) for i in range(len(build_cases(name)))]


@pytest.mark.parametrize("readable", [True, False], ids=["readable", "aten"])
@pytest.mark.parametrize("name,index", OP_CASES, ids=[f"{n}-{i}" for n, i in OP_CASES])
def test_every_op(name, index, readable, tmp_path, monkeypatch):
    """Each op's readable form (and, with the forms switched off, its aten call) equals to_module()."""
    case = build_cases(name)[index]
    g, values, state = one_op_graph(case)
    if not readable:
        monkeypatch.setattr(codegen, "_EMITTERS", {})
    check_equivalent(g, tmp_path, inputs=tuple(values), state=state, values=case.check_values)


READABLE = {
    "add": "add = ", "linear": "self.layer(", "conv2d": "self.layer(", "layer_norm": "self.layer(",
    "embedding": "self.layer(", "matmul": " @ ", "view": ".view(", "transpose": ".transpose(", "gelu": "F.gelu(",
    "cat": "torch.cat(", "scaled_dot_product_attention": "F.scaled_dot_product_attention(", "softmax": "F.softmax(",
    "slice": "[:, 1:5:2]", "select": "[:, -2]", "mul": " * ", "sum": ".sum(", "arange": "torch.arange(",
}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_common_ops_read_naturally(name, tmp_path):
    g = one_op_graph(build_cases(name)[0])[0]
    src = g.to_code()
    assert READABLE[name] in src, src
    assert "torch.ops.aten" not in src


# ----------------------------------------------------------------- real models
capture = pytest.importorskip("mad.code2graph", reason="code2graph is not available")


def _check_model(model: nn.Module, args: tuple, tmp_path: Path, name: str) -> tuple[ArchGraph, str]:
    model.eval()
    g = capture.from_module(model, args, name=name)
    ref = g.to_module()
    ref.load_state_dict(model.state_dict(), strict=False)
    src, gen = check_equivalent(g, tmp_path, inputs=args, state=ref.state_dict())
    with torch.no_grad():  # and the source model agrees too
        want = capture.flatten_output(model(*args))
        got = gen(*args)
    got = got if isinstance(got, dict) else dict(zip(want, _as_tuple(got)))
    for (k, a), b in zip(want.items(), got.values()):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5, msg=lambda m, k=k: f"{name} output {k}: {m}")
    return g, src


def _readable(src: str, g: ArchGraph) -> None:
    body = forward_body(src)
    assert len(body) <= len(g.nodes)
    for op in ("linear", "conv2d", "add", "layer_norm", "embedding"):
        assert f"torch.ops.aten.{op}." not in src


def test_tiny_gpt2(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=100, n_positions=32, use_cache=False,
                                  bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    g, src = _check_model(model, (torch.randint(0, 100, (2, 7)),), tmp_path, "gpt2")
    _readable(src, g)
    assert "self.transformer.h = nn.ModuleList([nn.Module() for _ in range(2)])" in src
    assert "self.lm_head.weight = self.transformer.wte.weight" in src
    assert "self.transformer.h[1].ln_2(" in src and "F.scaled_dot_product_attention(" in src


def test_tiny_bert(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                                  vocab_size=100, max_position_embeddings=32)
    model = transformers.BertModel(cfg)
    g, src = _check_model(model, (torch.randint(0, 100, (2, 7)),), tmp_path, "bert")
    _readable(src, g)
    assert "self.encoder.layer[0].attention.self.query = nn.Linear(32, 32)" in src
    assert "= self.encoder.layer[0].attention.self.query(" in src
    assert "torch.ops.aten" not in src


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.conv2(torch.relu(self.bn1(self.conv1(x)))))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.blocks = nn.Sequential(_Block(8), _Block(8))
        self.cls_token = nn.Parameter(torch.randn(1, 8))
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 8), persistent=False)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        h = self.blocks(self.stem(x))
        p = torch.nn.functional.adaptive_avg_pool2d(h, 1).flatten(1) * self.scale
        return self.head(torch.cat([p, self.cls_token.expand(p.shape[0], -1)], dim=1)), h.mean((2, 3))


def test_torch_cnn(tmp_path):
    torch.manual_seed(0)
    model = _Net()
    for m in model.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    g, src = _check_model(model, (torch.randn(2, 3, 16, 16),), tmp_path, "cnn")
    _readable(src, g)
    assert "self.stem = nn.ModuleList([nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8)])" in src
    assert "self.blocks[1].bn1 = nn.BatchNorm2d(8)" in src
    assert "torch.ops.aten" not in src


def test_sequential_model_is_a_module_list(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    src = _check_model(model, (torch.randn(2, 3, 8, 8),), tmp_path, "seq")[1]
    assert "(nn.ModuleList):" in src and "nn.Identity()," in src and "= self[4](" in src


# ----------------------------------------------------------------- graph metadata and unusual states
def test_graph_without_shapes_uses_the_same_tree(tmp_path):
    """Without recorded shapes ArchModule keeps batch-norm tensors bare; the code follows it."""
    g = cnn_graph()
    for n in g.nodes.values():
        n.shape = n.dtype = None
    src, _ = check_equivalent(g, tmp_path)
    assert "F.batch_norm(" in src and "nn.BatchNorm2d" not in src


def test_float64_graph_and_state_keys(tmp_path):
    g = ArchGraph("double", source="test", inputs=[TensorSpec("x", [2, 3, 4], "float64")],
                  meta={"dtype": "float64", "state_keys": ["bn.weight", "bn.bias", "bn.running_mean",
                                                           "bn.running_var", "fc.weight", "fc.bias", "step"],
                        "extra_state": [{"name": "step", "shape": [], "dtype": "int64", "buffer": True}]})
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("batch_norm", [x], attrs={"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": False},
                   params={"weight": [3], "bias": [3], "running_mean": [3], "running_var": [3]}, scope="bn")
    h = g.add_node("linear", [h], params={"weight": [5, 4], "bias": [5]}, scope="fc")
    g.set_outputs([h])
    g.infer()
    g.validate()
    src, gen = check_equivalent(g, tmp_path)
    assert "self.fc = nn.Linear(4, 5).to(torch.float64)" in src
    assert "num_batches_tracked" not in gen.state_dict()  # the source's state has none
    assert gen.fc.weight.dtype == gen.bn.running_var.dtype == torch.float64
    assert 'self.register_buffer("step", torch.zeros((), dtype=torch.int64))' in src


def test_in_place_ops_keep_copies_apart(tmp_path):
    """``_to_copy`` copies even to the same dtype; with an in-place op after it the copy is visible."""
    g = ArchGraph("inplace", source="test", inputs=[TensorSpec("x", [3, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    c = g.add_node("_to_copy", [x], attrs={"dtype": "float32"})
    m = g.add_node("mul_", [c], attrs={"other": 3})
    r = g.add_node("relu_", [m])
    s = g.add_node("add", [r, x])
    g.set_outputs([s])
    g.validate()
    src, _ = check_equivalent(g, tmp_path)
    assert "x.to(torch.float32, copy=True)" in src and ".mul_(3)" in src and ".relu_()" in src


def scaled_tanh(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Run function of a test op that is not a torch op (it reads no module globals but torch)."""
    return torch.tanh(x) * scale


SHIFT = 0.25


def shifted(x: torch.Tensor) -> torch.Tensor:
    """Run function of a test op that reads a module global."""
    return x + SHIFT


def test_ops_outside_torch_are_copied_or_imported(tmp_path, monkeypatch):
    from mad.graph.ops import registry
    from mad.graph.ops.registry import AttrSpec, OpDef, TensorArg

    ops = [OpDef(name="test_scaled_tanh", category="primitive", args=(TensorArg("x"),),
                 attrs={"scale": AttrSpec("float", default=1.0)}, fn=scaled_tanh),
           OpDef(name="test_shifted", category="primitive", args=(TensorArg("x"),), attrs={}, fn=shifted),
           OpDef(name="test_lambda", category="primitive", args=(TensorArg("x"),), attrs={}, fn=lambda x: x + 1)]
    for op in ops:
        monkeypatch.setitem(registry._REGISTRY, op.name, op)
    g = ArchGraph("custom", source="test", inputs=[TensorSpec("x", [2, 3])])
    x = g.add_node("input", attrs={"name": "x"})
    y = g.add_node("test_scaled_tanh", [x], attrs={"scale": 2.5})
    z = g.add_node("test_shifted", [y])
    g.set_outputs([z])
    g.validate()
    src, _ = check_equivalent(g, tmp_path)
    assert "def _test_scaled_tanh_op(x: torch.Tensor, scale: float = 1.0)" in src  # copied: self-contained
    assert "_test_scaled_tanh_op(x, scale=2.5)" in src
    assert f"from {__name__} import shifted as _test_shifted_op" in src  # needs SHIFT: imported

    h = ArchGraph("custom2", source="test", inputs=[TensorSpec("x", [2, 3])])
    z = h.add_node("test_lambda", [h.add_node("input", attrs={"name": "x"})], id="bad")
    h.set_outputs([z])
    with pytest.raises(GraphError, match="node 'bad' \\(test_lambda\\).*neither copied nor imported"):
        h.to_code()


def test_to_with_memory_format(tmp_path):
    g = ArchGraph("to", source="test", inputs=[TensorSpec("x", [2, 3, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    t = g.add_node("transpose", [x], attrs={"dim0": 1, "dim1": 2})
    y = g.add_node("to_dtype", [t], attrs={"dtype": "float64", "memory_format": "contiguous_format"})
    g.set_outputs([y])
    g.validate()
    src, gen = check_equivalent(g, tmp_path)
    assert "transpose.to(torch.float64, memory_format=torch.contiguous_format)" in src
    assert gen(torch.randn(2, 3, 4)).is_contiguous()
