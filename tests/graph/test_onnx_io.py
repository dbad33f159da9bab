"""ONNX in and out of the ArchGraph IR: exact weights, equal outputs, clear errors."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from mad.graph import ArchGraph, TensorSpec
from mad.graph.passes import canonicalize
from mad.graph.onnx_io import (
    OnnxImportError,
    from_onnx,
    load_onnx_weights,
    run_onnx,
    supported_onnx_ops,
    to_onnx,
)

ATOL = 1e-5


# ----------------------------------------------------------------- models written with plain torch ops


class SmallCNN(nn.Module):
    """conv, bn, relu, maxpool, skip add, concat, global pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.branch = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        h = F.relu(self.bn1(self.stem(x)))  # (B, 8, 16, 16)
        h = F.max_pool2d(h, 2)  # (B, 8, 8, 8)
        h = F.relu(self.bn2(self.conv2(h) + h))  # bn after the skip add stays a BatchNormalization
        h = torch.cat([h, self.branch(h)], dim=1)  # (B, 12, 8, 8)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)  # (B, 12)
        return self.fc(h)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        return self.out(torch.tanh(self.fc2(F.relu(self.fc1(x)))))


class EncoderBlock(nn.Module):
    """Token embedding + learned positions + one pre-norm block with causal attention."""

    def __init__(self, vocab: int = 50, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.emb = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.randn(1, 16, d) * 0.02)
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, ids):
        b, t = ids.shape
        x = self.emb(ids) + self.pos[:, :t]  # (B, T, D)
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[-1], dim=-1)
        hd = x.shape[-1] // self.heads
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))  # (B, H, T, hd)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x.mean(dim=1), x


def _randomize_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))


def _export(model: nn.Module, args: tuple, path, **kw) -> None:
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model.eval(), args, str(path), dynamo=True, external_data=False, **kw)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``exported(name, optimize=True) -> (model, inputs, path)``; each model is exported once per module."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("onnx_exports")
    builders = {
        "cnn": lambda: (SmallCNN(), (torch.randn(2, 3, 16, 16),)),
        "mlp": lambda: (MLP(), (torch.randn(5, 16),)),
        "block": lambda: (EncoderBlock(), (torch.randint(0, 50, (2, 8)),)),
    }

    def get(name: str, optimize: bool = True):
        key = (name, optimize)
        if key not in cache:
            torch.manual_seed(0)
            model, args = builders[name]()
            model.eval()
            _randomize_bn(model)
            path = root / f"{name}_{'opt' if optimize else 'raw'}.onnx"
            _export(model, args, path, optimize=optimize)
            cache[key] = (model, args, path)
        return cache[key]

    return get


def _outputs(out) -> list[np.ndarray]:
    outs = [out] if isinstance(out, torch.Tensor) else list(out.values() if isinstance(out, dict) else out)
    return [o.detach().numpy() for o in outs]


def _max_err(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype, (x.shape, y.shape, x.dtype, y.dtype)
    errs = [np.abs(x.astype(np.float64) - y.astype(np.float64)).max() if x.size else 0.0 for x, y in zip(a, b)]
    return float(max(errs))


def _import_and_compare(path, inputs: tuple, **kw):
    """from_onnx -> to_module with the ONNX weights -> outputs equal onnxruntime's."""
    g, state = from_onnx(path, with_weights=True, **kw)
    m = g.to_module()
    m.load_state_dict(state, strict=True)
    with torch.no_grad():
        got = _outputs(m.eval()(*inputs))
    want = run_onnx(path, inputs)
    err = _max_err(got, want)
    assert err <= ATOL, f"{path}: max abs error {err}"
    assert canonicalize(g.copy()).to_json() == g.to_json()  # the import canonicalizes
    return g, state, m


# ----------------------------------------------------------------- torch model -> ONNX -> ArchGraph


@pytest.mark.parametrize("optimize", [True, False])
def test_cnn_round_trip(exported, optimize):
    model, (x,), path = exported("cnn", optimize)
    g, state, m = _import_and_compare(path, (x,))
    hist = g.infer().op_histogram
    for op in ("conv2d", "batch_norm", "relu", "max_pool2d", "add", "cat", "mean", "linear"):
        assert hist.get(op, 0) >= 1, (op, hist)
    # layers own their weights under the torch names; unfused ones are bit-identical
    assert torch.equal(state["fc.weight"], model.fc.weight.detach())
    assert torch.equal(state["branch.weight"], model.branch.weight.detach())
    assert torch.equal(state["bn2.running_var"], model.bn2.running_var)
    # also equal to the torch model itself
    with torch.no_grad():
        assert torch.allclose(m(x), model(x), atol=ATOL)


def test_mlp_round_trip_restores_the_state_dict_exactly(exported):
    model, (x,), path = exported("mlp")
    g, state, m = _import_and_compare(path, (x,))
    assert g.infer().op_histogram == {"input": 1, "linear": 3, "relu": 1, "tanh": 1}
    ref = model.state_dict()
    assert sorted(state) == sorted(ref)
    assert all(torch.equal(state[k], ref[k]) for k in ref)
    assert g.num_params == sum(p.numel() for p in model.parameters())
    assert g.source == "onnx:mlp_opt.onnx" and [s.name for s in g.inputs] == ["x"]


@pytest.mark.parametrize("optimize", [True])  # the raw export's sequence ops are covered by CASES["sequences"]
def test_transformer_block_round_trip(exported, optimize):
    model, (ids,), path = exported("block", optimize)
    g, state, m = _import_and_compare(path, (ids,))
    hist = g.infer().op_histogram
    for op in ("embedding", "layer_norm", "linear", "matmul", "softmax", "gelu"):
        assert hist.get(op, 0) >= 1, (op, hist)
    assert hist["linear"] == 4 and hist["layer_norm"] == 2
    assert g.inputs[0].range == [0, 50]  # the embedding bounds the token ids
    assert torch.equal(state["qkv.weight"], model.qkv.weight.detach())  # MatMul weight transposed back
    assert g.output_kind == "tuple" and len(g.outputs) == 2
    # the JSON round trip keeps the embedded constants (the causal mask)
    g2 = ArchGraph.from_json(g.to_json())
    m2 = g2.to_module()
    m2.load_state_dict(state)
    with torch.no_grad():
        assert all(np.array_equal(a, b) for a, b in zip(_outputs(m2(ids)), _outputs(m(ids))))


def test_symbolic_dims_take_input_shapes(tmp_path):
    torch.manual_seed(0)
    model = MLP().eval()
    path = tmp_path / "dyn.onnx"
    _export(model, (torch.randn(3, 16),), path, dynamic_shapes=({0: torch.export.Dim("batch", min=2)},))
    x = torch.randn(7, 16)
    g, _, _ = _import_and_compare(path, (x,), input_shapes={"x": [7, 16]})
    assert g.inputs[0].shape == [7, 16] and g.inputs[0].dims[0] == "batch"
    with pytest.raises(OnnxImportError, match="input_shapes"):
        from_onnx(path, input_shapes={"y": [7, 16]})


def test_load_onnx_weights(exported):
    model, (x,), path = exported("mlp")
    m = from_onnx(path).to_module()
    load_onnx_weights(m, path)
    with torch.no_grad():
        assert torch.allclose(m(x), model(x), atol=ATOL)


# ----------------------------------------------------------------- ArchGraph -> ONNX


def _hand_graph() -> ArchGraph:
    g = ArchGraph("hand", inputs=[TensorSpec("x", [2, 3, 8, 8])])
    x = g.add_node("input", attrs={"name": "x"})
    c = g.add_node("conv2d", [x], attrs={"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1},
                   params={"weight": [4, 3, 3, 3], "bias": [4]}, scope="conv")
    b = g.add_node("batch_norm", [c], attrs={"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True},
                   params={"weight": [4], "bias": [4], "running_mean": [4], "running_var": [4]}, scope="bn")
    r = g.add_node("relu", [b])
    p = g.add_node("mean", [r], attrs={"dim": [2, 3]})
    y = g.add_node("linear", [p], params={"weight": [5, 4], "bias": [5]}, scope="fc")
    g.set_outputs([y, r], keys=["logits", "features"])
    return g.validate()


def test_to_onnx_matches_the_module(tmp_path):
    g = _hand_graph()
    m = g.to_module().eval()
    with torch.no_grad():
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2.0)
    path = to_onnx(g, tmp_path / "sub" / "hand.onnx", opset=18, module=m, check=True)
    assert path.exists() and path.parent.name == "sub"
    model = onnx.load(str(path))
    assert {o.domain: o.version for o in model.opset_import}[""] == 18
    assert [i.name for i in model.graph.input] == ["x"]
    assert [o.name for o in model.graph.output] == ["logits", "features"]
    x = g.example_inputs(seed=3)
    with torch.no_grad():
        want = _outputs(m(*x))
    assert _max_err(run_onnx(path, x), want) <= ATOL
    # and back: the re-imported graph computes the same with the file's weights
    g2, _, m2 = _import_and_compare(path, x)
    with torch.no_grad():
        assert _max_err(_outputs(m2(*x)), want) <= ATOL


def test_imported_graph_exports_again(exported, tmp_path):
    _, (ids,), src = exported("block")
    g, state = from_onnx(src, with_weights=True)
    m = g.to_module()
    m.load_state_dict(state)
    out = to_onnx(g, tmp_path / "again.onnx", module=m, inputs=(ids,), check=True)
    assert [o.name for o in onnx.load(str(out)).graph.output] == g.meta["output_names"]
    assert _max_err(run_onnx(out, (ids,)), run_onnx(src, (ids,))) <= ATOL


# ----------------------------------------------------------------- clear errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        from_onnx(tmp_path / "nope.onnx")


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\xffthis is not a protobuf\x13\x37" * 10)
    with pytest.raises(OnnxImportError, match="bad.onnx"):
        from_onnx(bad)
    text = tmp_path / "text.onnx"
    text.write_text("hello")
    with pytest.raises(OnnxImportError, match="text.onnx.*not"):
        from_onnx(text)


def test_unsupported_ops_are_listed(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
        helper.make_node("Hardmax", ["a"], ["b"], name="the_hardmax", axis=1),
        helper.make_node("LpNormalization", ["b"], ["c"], name="the_lpnorm"),
        helper.make_node("FancyOp", ["c"], ["y"], name="custom", domain="com.example"),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    path = tmp_path / "unsupported.onnx"
    onnx.save(model, str(path))
    with pytest.raises(OnnxImportError) as e:
        from_onnx(path)
    msg = str(e.value)
    assert "'the_hardmax' (Hardmax)" in msg
    assert "['Hardmax', 'LpNormalization', 'com.example::FancyOp']" in msg
    assert "Relu" not in msg.split("Supported")[0].split("vocabulary:")[1]


def test_supported_ops_list():
    ops = supported_onnx_ops()
    for op in ("Gemm", "MatMul", "Conv", "BatchNormalization", "LayerNormalization", "Gather", "Softmax", "Shape",
               "Reshape", "Split", "Slice", "Where", "Expand", "Constant", "GlobalAveragePool", "ReduceMean"):
        assert op in ops


# ----------------------------------------------------------------- one case per ONNX mapping (vs onnxruntime)

_RNG = np.random.default_rng(0)


def _f(*shape):
    return _RNG.standard_normal(shape).astype(np.float32)


def _case(nodes, inputs, outputs, inits=None, opset=18):
    """(ModelProto, feeds) for a graph of ``nodes``; ``inputs``: name -> array, ``outputs``: names."""
    ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for n, a in inputs.items()]
    outs = [helper.make_empty_tensor_value_info(n) for n in outputs]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()]
    g = helper.make_graph(nodes, "case", ins, outs, initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    del model.graph.output[:]
    model.graph.output.extend(inferred.graph.output)
    return model, list(inputs.values())


def _n(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


CASES = {
    "gemm_transA_alpha_beta": lambda: _case(
        [_n("Gemm", ["x", "w", "c"], ["y"], transA=1, alpha=0.5, beta=2.0)], {"x": _f(4, 3)}, ["y"],
        {"w": _f(4, 5), "c": _f(5)}),
    "gemm_dynamic_b": lambda: _case([_n("Gemm", ["x", "w"], ["y"], transB=1)], {"x": _f(3, 4), "w": _f(5, 4)}, ["y"]),
    "gemm_matrix_bias": lambda: _case([_n("Gemm", ["x", "w", "c"], ["y"])], {"x": _f(3, 4)}, ["y"],
                                      {"w": _f(4, 5), "c": _f(3, 5)}),
    "matmul_bias_first": lambda: _case(
        [_n("MatMul", ["x", "w"], ["m"]), _n("Add", ["b", "m"], ["y"])], {"x": _f(2, 3, 4)}, ["y"],
        {"w": _f(4, 6), "b": _f(6)}),
    "conv1d_same_upper_stride2": lambda: _case(
        [_n("Conv", ["x", "w", "b"], ["y"], auto_pad="SAME_UPPER", strides=[2])], {"x": _f(1, 2, 9)}, ["y"],
        {"w": _f(3, 2, 4), "b": _f(3)}),
    "conv2d_asymmetric_pads_groups": lambda: _case(
        [_n("Conv", ["x", "w"], ["y"], pads=[0, 1, 2, 1], group=2, dilations=[1, 2])], {"x": _f(1, 4, 7, 7)}, ["y"],
        {"w": _f(6, 2, 3, 3)}),
    "conv3d": lambda: _case([_n("Conv", ["x", "w"], ["y"], pads=[1] * 6)], {"x": _f(1, 2, 4, 4, 4)}, ["y"],
                            {"w": _f(3, 2, 3, 3, 3)}),
    "conv_transpose2d": lambda: _case(
        [_n("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])],
        {"x": _f(1, 3, 5, 5)}, ["y"], {"w": _f(3, 2, 3, 3), "b": _f(2)}),
    "avgpool_pads_ceil": lambda: _case(
        [_n("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=0,
            count_include_pad=1)], {"x": _f(1, 2, 7, 7)}, ["y"]),
    "maxpool_same_lower": lambda: _case(
        [_n("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], auto_pad="SAME_LOWER")], {"x": _f(1, 2, 5, 5)}, ["y"]),
    "global_max_pool": lambda: _case([_n("GlobalMaxPool", ["x"], ["y"])], {"x": _f(2, 3, 4, 5)}, ["y"]),
    "instance_norm": lambda: _case([_n("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)],
                                   {"x": _f(2, 3, 4, 4)}, ["y"], {"s": _f(3), "b": _f(3)}),
    "layer_norm_axis_broadcast_scale": lambda: _case(
        [_n("LayerNormalization", ["x", "s"], ["y"], axis=-2)], {"x": _f(2, 3, 4)}, ["y"], {"s": _f(3, 4)}),
    "softmax_opset11_axis1": lambda: _case([_n("Softmax", ["x"], ["y"], axis=1)], {"x": _f(2, 3, 4)}, ["y"],
                                           opset=11),
    "logsoftmax": lambda: _case([_n("LogSoftmax", ["x"], ["y"], axis=0)], {"x": _f(3, 4)}, ["y"]),
    "activations": lambda: _case(
        [_n("LeakyRelu", ["x"], ["a"], alpha=0.2), _n("Elu", ["a"], ["b"], alpha=0.7), _n("HardSigmoid", ["b"], ["c"]),
         _n("Selu", ["c"], ["d"]), _n("Softsign", ["d"], ["e"]), _n("HardSwish", ["e"], ["f"]),
         _n("Softplus", ["f"], ["g"]), _n("Gelu", ["g"], ["y"], approximate="tanh")], {"x": _f(3, 4)}, ["y"],
        opset=20),
    "prelu_per_channel": lambda: _case([_n("PRelu", ["x", "s"], ["y"])], {"x": _f(2, 3, 4, 4)}, ["y"],
                                       {"s": _f(3, 1, 1)}),
    "clip_and_pow": lambda: _case(
        [_n("Clip", ["x", "lo", "hi"], ["a"]), _n("Pow", ["a", "e"], ["b"]), _n("Sqrt", ["b"], ["y"])],
        {"x": _f(3, 4)}, ["y"], {"lo": np.float32(-0.5), "hi": np.float32(2.0), "e": np.float32(2.0)}),
    "scalar_first_sub_div": lambda: _case(
        [_n("Sub", ["one", "x"], ["a"]), _n("Div", ["two", "a"], ["b"]), _n("Mul", ["b", "x"], ["y"])],
        {"x": _f(3, 4)}, ["y"], {"one": np.float32(1.0), "two": np.float32(2.0)}),
    "int_div_truncates": lambda: _case([_n("Div", ["x", "d"], ["y"])],
                                       {"x": np.array([[7, -7, 9]], dtype=np.int64)}, ["y"], {"d": np.int64(2)}),
    "compare_where": lambda: _case(
        [_n("Greater", ["z", "x"], ["m"]), _n("Where", ["m", "x", "z"], ["a"]), _n("Equal", ["a", "z"], ["e"]),
         _n("Not", ["e"], ["ne"]), _n("Cast", ["ne"], ["y"], to=TensorProto.FLOAT)],
        {"x": _f(3, 4)}, ["y"], {"z": np.float32(0.0)}),
    "max_min_sum_mean": lambda: _case(
        [_n("Max", ["x", "w"], ["a"]), _n("Min", ["a", "x", "w"], ["b"]), _n("Sum", ["a", "b", "x"], ["c"]),
         _n("Mean", ["c", "a"], ["y"])], {"x": _f(3, 4)}, ["y"], {"w": _f(4)}),
    "slice_negative_step_and_axes": lambda: _case(
        [_n("Slice", ["x", "s", "e", "a", "st"], ["y"])], {"x": _f(4, 6, 5)}, ["y"],
        {"s": np.array([-1, 1], np.int64), "e": np.array([-100, 5], np.int64), "a": np.array([0, 2], np.int64),
         "st": np.array([-2, 2], np.int64)}),
    "unsqueeze_squeeze_opset11": lambda: _case(
        [_n("Unsqueeze", ["x"], ["a"], axes=[0, -1]), _n("Squeeze", ["a"], ["y"], axes=[0])], {"x": _f(3, 4)}, ["y"],
        opset=11),
    "split_opset11_and_concat": lambda: _case(
        [_n("Split", ["x"], ["a", "b"], axis=1, split=[1, 3]), _n("Concat", ["b", "a"], ["y"], axis=-1)],
        {"x": _f(2, 4)}, ["y"], opset=11),
    "split_num_outputs_uneven": lambda: _case(
        [_n("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3), _n("Concat", ["c", "a"], ["y"], axis=0)],
        {"x": _f(8, 2)}, ["y"]),
    "flatten_transpose_expand_tile": lambda: _case(
        [_n("Flatten", ["x"], ["a"], axis=2), _n("Transpose", ["a"], ["b"]), _n("Expand", ["b", "s"], ["c"]),
         _n("Tile", ["c", "r"], ["y"])], {"x": _f(2, 3, 1, 1)}, ["y"],
        {"s": np.array([2, 1, 1, 6], np.int64), "r": np.array([1, 2, 1, 1], np.int64)}),
    "shape_arithmetic_reshape": lambda: _case(
        [_n("Shape", ["x"], ["s"]), _n("Gather", ["s", "i"], ["d"], axis=0), _n("Mul", ["d", "k"], ["d2"]),
         _n("Concat", ["d2", "m1"], ["ns"], axis=0), _n("Reshape", ["x", "ns"], ["y"])], {"x": _f(2, 3, 4)}, ["y"],
        {"i": np.array([0], np.int64), "k": np.array([3], np.int64), "m1": np.array([-1], np.int64)}),
    "constant_of_shape_and_range": lambda: _case(
        [_n("Constant", [], ["n"], value=numpy_helper.from_array(np.array([4], np.int64))),
         _n("ConstantOfShape", ["n"], ["z"], value=numpy_helper.from_array(np.array([0.5], np.float32))),
         _n("Range", ["r0", "r1", "r2"], ["r"]), _n("Add", ["x", "z"], ["a"]), _n("Mul", ["a", "r"], ["y"])],
        {"x": _f(3, 4)}, ["y"], {"r0": np.float32(0), "r1": np.float32(4), "r2": np.float32(1)}),
    "gather_axis1_matrix_indices": lambda: _case(
        [_n("Gather", ["x", "i"], ["y"], axis=1)], {"x": _f(3, 5, 2)}, ["y"],
        {"i": np.array([[0, -1], [2, 2]], np.int64)}),
    "gather_dynamic_indices": lambda: _case(
        [_n("Gather", ["x", "i"], ["y"], axis=0)], {"x": _f(5, 2), "i": np.array([[4, 0, 1]], np.int64)}, ["y"]),
    "gather_elements_nd_scatter": lambda: _case(
        [_n("GatherElements", ["x", "i"], ["a"], axis=1), _n("GatherND", ["x", "j"], ["b"]),
         _n("ScatterElements", ["a", "p", "a"], ["c"], axis=1), _n("ReduceSum", ["b", "ax"], ["bs"], keepdims=1),
         _n("Add", ["c", "bs"], ["y"])], {"x": _f(3, 4)}, ["y"],
        {"i": np.array([[0, 3], [1, 1], [2, 0]], np.int64), "j": np.array([[0, 1], [2, 3], [1, 0]], np.int64),
         "p": np.array([[1, 0], [0, 1], [1, 0]], np.int64), "ax": np.array([0], np.int64)}),
    "reductions": lambda: _case(
        [_n("ReduceMax", ["x", "a1"], ["m"], keepdims=0), _n("ReduceL2", ["x", "a0"], ["l2"], keepdims=0),
         _n("ReduceProd", ["x", "a01"], ["p"], keepdims=0), _n("ReduceLogSumExp", ["x", "a1"], ["lse"], keepdims=0),
         _n("ReduceSumSquare", ["x", "a1"], ["ss"], keepdims=0), _n("ReduceMin", ["x"], ["mn"], keepdims=0),
         _n("Add", ["m", "lse"], ["s1"]), _n("Add", ["s1", "ss"], ["s2"]), _n("Add", ["s2", "mn"], ["s3"]),
         _n("ReduceMean", ["l2"], ["l2m"], keepdims=0), _n("Add", ["s3", "l2m"], ["s4"]),
         _n("Add", ["s4", "p"], ["y"])], {"x": _f(3, 4, 2) * 0.5}, ["y"],
        {"a0": np.array([0], np.int64), "a1": np.array([1], np.int64), "a01": np.array([0, 1], np.int64)}),
    "argmax_topk_cumsum": lambda: _case(
        [_n("ArgMax", ["x"], ["am"], axis=1, keepdims=0), _n("TopK", ["x", "k"], ["tv", "ti"], axis=-1),
         _n("CumSum", ["tv", "ax"], ["cs"], reverse=1)], {"x": _f(3, 5)}, ["am", "ti", "cs"],
        {"k": np.array([2], np.int64), "ax": np.array(1, np.int64)}),
    "pad_reflect_and_constant": lambda: _case(
        [_n("Pad", ["x", "p"], ["a"], mode="reflect"), _n("Pad", ["a", "p2", "v"], ["y"])], {"x": _f(1, 2, 4, 4)},
        ["y"], {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "p2": np.array([0, 1, 0, 0, 0, 0, 0, 1], np.int64),
                "v": np.float32(-3.0)}),
    "trilu_einsum": lambda: _case(
        [_n("Trilu", ["x", "k"], ["a"], upper=0), _n("Einsum", ["a", "x"], ["y"], equation="ij,kj->ik")],
        {"x": _f(4, 4)}, ["y"], {"k": np.array(1, np.int64)}),
    "resize_nearest_and_bilinear": lambda: _case(
        [_n("Resize", ["x", "", "sc"], ["a"], mode="nearest", coordinate_transformation_mode="asymmetric",
            nearest_mode="floor"),
         _n("Resize", ["a", "", "", "sz"], ["y"], mode="linear", coordinate_transformation_mode="half_pixel")],
        {"x": _f(1, 2, 3, 3)}, ["y"],
        {"sc": np.array([1, 1, 2, 2], np.float32), "sz": np.array([1, 2, 5, 7], np.int64)}),
    "sequences": lambda: _case(
        [_n("SplitToSequence", ["x"], ["s"], axis=1, keepdims=0), _n("SequenceAt", ["s", "p"], ["a"]),
         _n("ConcatFromSequence", ["s"], ["c"], axis=0, new_axis=1), _n("ReduceSum", ["c", "ax"], ["cs"], keepdims=0),
         _n("Add", ["cs", "a"], ["y"])], {"x": _f(2, 3)}, ["y"],
        {"p": np.array(-1, np.int64), "ax": np.array([0], np.int64)}),
    "dropout_identity_isinf_mod": lambda: _case(
        [_n("Dropout", ["x"], ["a"]), _n("Identity", ["a"], ["b"]), _n("IsInf", ["b"], ["i"]),
         _n("Mod", ["b", "m"], ["c"], fmod=1), _n("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
         _n("Add", ["c", "fi"], ["y"])], {"x": _f(3, 4)}, ["y"], {"m": np.float32(0.7)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_op_mapping_matches_onnxruntime(tmp_path, name):
    model, feeds = CASES[name]()
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    inputs = tuple(torch.from_numpy(a) for a in feeds)
    g, _, _ = _import_and_compare(path, inputs)
    assert g.source == f"onnx:{name}.onnx"


# ----------------------------------------------------------------- tiny HuggingFace models (random weights, offline)


def _hf_model(kind: str):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "bert":
        cfg = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64, max_position_embeddings=64)
        mask = torch.ones(2, 8, dtype=torch.long)
        mask[1, 5:] = 0  # padding in the second sequence
        inputs = {"input_ids": torch.randint(0, 100, (2, 8)), "attention_mask": mask,
                  "token_type_ids": torch.randint(0, 2, (2, 8))}
        model = transformers.BertModel(cfg)
    elif kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64, use_cache=False,
                                      bos_token_id=0, eos_token_id=0)
        inputs = {"input_ids": torch.randint(0, 100, (2, 8))}
        model = transformers.GPT2LMHeadModel(cfg)
    else:
        cfg = transformers.ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, num_channels=3, num_labels=5)
        inputs = {"pixel_values": torch.randn(2, 3, 16, 16)}
        model = transformers.ViTForImageClassification(cfg)
    return model.eval(), inputs


@pytest.mark.parametrize(
    "kind, layers",
    [
        ("bert", {"embedding": 2, "layer_norm": 5, "linear": 13}),
        ("gpt2", {"embedding": 1, "layer_norm": 5, "linear": 9}),
        ("vit", {"conv2d": 1, "layer_norm": 5, "linear": 13}),
    ],
)
def test_hf_models_convert_and_run(tmp_path, kind, layers):
    model, inputs = _hf_model(kind)
    path = tmp_path / f"{kind}.onnx"
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (), str(path), kwargs=inputs, dynamo=True, input_names=list(inputs),
                          external_data=False)
    args = tuple(inputs.values())
    g, state, m = _import_and_compare(path, args)
    hist = g.infer().op_histogram
    assert {op: hist.get(op, 0) for op in layers} == layers
    assert [s.name for s in g.inputs] == list(inputs)
    # the module scopes recorded by the exporter give back the transformers parameter names
    names = dict(model.named_parameters())
    restored = [k for k in state if k in names]
    assert len(restored) >= 0.75 * len(state), sorted(state)
    for k in restored:  # the same values, up to linear's [out, in] layout
        w = names[k].detach()
        assert torch.equal(state[k], w) or (w.ndim == 2 and torch.equal(state[k], w.T)), k
    with torch.no_grad():
        want = model(**inputs)[0]
        assert torch.allclose(_first(m(*args)), want, atol=ATOL)


def _first(out):
    return out if isinstance(out, torch.Tensor) else out[0]
