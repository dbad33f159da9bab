"""The `mad` command end to end: every command on a small graph, --json output, and every user-error path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mad import __version__
from mad.cli import app
from mad.graph import VOCAB_VERSION, ArchGraph, TensorSpec, op_id, op_names

runner = CliRunner()


def tiny_graph() -> ArchGraph:
    """x(2x4) -> body.fc1 linear 4->8 -> body.act relu -> head linear 8->3; 67 parameters."""
    g = ArchGraph("tiny", source="test", inputs=[TensorSpec("x", [2, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("linear", [x], params={"weight": [8, 4], "bias": [8]}, scope="body.fc1")
    h = g.add_node("relu", [h], scope="body.act")
    y = g.add_node("linear", [h], params={"weight": [3, 8], "bias": [3]}, scope="head")
    g.set_outputs([y])
    return g


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    tiny_graph().to_json(path)
    return path


def mad(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def assert_ok(result):
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def assert_user_error(result, *words: str):
    """Exit 2, stdout empty, exactly one stderr line `error: ...` naming ``words``, no traceback."""
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------- commands on a small graph
def test_version_and_help():
    assert assert_ok(mad("--version")).stdout.strip() == f"mad {__version__}"
    out = assert_ok(mad("--help")).stdout
    for command in ("convert", "info", "show", "code", "ops"):
        assert command in out


def test_python_dash_m_help():
    r = subprocess.run(
        [sys.executable, "-m", "mad", "--help"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert r.returncode == 0, r.stderr
    assert "convert" in r.stdout and "Usage" in r.stdout


def test_info_text(graph_file):
    out = assert_ok(mad("info", graph_file)).stdout
    assert "tiny" in out and "(67)" in out and "linear" in out and "2×4" in out


def test_info_json_numbers(graph_file):
    r = assert_ok(mad("info", graph_file, "--json"))
    data = json.loads(r.stdout)
    want = tiny_graph().infer()
    assert data["num_params"] == 67 == want.num_params
    assert data["flops"] == want.flops > 0
    assert data["num_nodes"] == 4 and data["num_edges"] == 3 and data["depth"] == want.depth == 3
    assert data["op_histogram"] == {"linear": 2, "input": 1, "relu": 1}
    assert data["inputs"] == [{"name": "x", "shape": [2, 4], "dtype": "float32"}]
    assert data["outputs"][0]["shape"] == [2, 3]
    assert data["categories"] == {"source": 1, "layer": 2, "primitive": 1}
    assert r.stderr == ""


@pytest.mark.parametrize("suffix, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
@pytest.mark.parametrize("depth", [None, 1])
def test_show(graph_file, tmp_path, suffix, magic, depth):
    out = tmp_path / f"pic.{suffix}"
    args = ["show", graph_file, "-o", out, "--json"] + (["--depth", str(depth)] if depth is not None else [])
    data = json.loads(assert_ok(mad(*args)).stdout)
    assert data == {"path": str(out), "format": suffix, "depth": depth, "nodes": 4, "bytes": out.stat().st_size}
    assert out.read_bytes().startswith(magic)
    if suffix == "svg":
        text = out.read_text()
        assert ("fc1" in text and "relu" in text) if depth is None else ("body" in text and "2 ops" in text)


def test_show_depth_collapses(graph_file, tmp_path):
    assert_ok(mad("show", graph_file, "-o", tmp_path / "g.dot", "--depth", "1"))
    dot = (tmp_path / "g.dot").read_text()
    assert "shape=box3d" in dot and "<B>body</B>" in dot and "2 ops" in dot and "40 params" in dot


def test_show_default_output_next_to_graph(graph_file):
    r = assert_ok(mad("show", graph_file))
    assert graph_file.with_suffix(".svg").exists()
    assert "wrote" in r.stdout


def test_code(graph_file, tmp_path):
    text = assert_ok(mad("code", graph_file)).stdout
    compile(text, "tiny.py", "exec")
    assert "nn.Module" in text
    out = tmp_path / "model.py"
    assert_ok(mad("code", graph_file, "-o", out))
    assert out.read_text().strip() == text.strip()
    data = json.loads(assert_ok(mad("code", graph_file, "--json")).stdout)
    assert data["code"].strip() == text.strip() and data["name"] == "tiny"


def test_ops():
    data = json.loads(assert_ok(mad("ops", "--json")).stdout)
    assert data["count"] == len(op_names()) == len(data["ops"])
    linear = next(o for o in data["ops"] if o["name"] == "linear")
    assert linear["category"] == "layer" and linear["params"] == ["weight", "bias"] and linear["doc"]
    assert linear["id"] == op_id("linear") and data["vocab_version"] == VOCAB_VERSION  # the frozen id
    layers = json.loads(assert_ok(mad("ops", "--category", "layer", "--json")).stdout)["ops"]
    assert layers and all(o["category"] == "layer" for o in layers)
    soft = json.loads(assert_ok(mad("ops", "softmax", "--json")).stdout)["ops"]
    assert {o["name"] for o in soft} >= {"softmax", "log_softmax"}
    assert "linear" in assert_ok(mad("ops", "-c", "layer")).stdout


def test_verbose_flag_logs_to_stderr_only(graph_file, tmp_path):
    r = assert_ok(mad("-v", "show", graph_file, "-o", tmp_path / "g.svg", "--json"))
    json.loads(r.stdout)


# ----------------------------------------------------------------- user errors: one line, exit 2
def _write(tmp_path: Path, name: str, doc) -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def cycle_doc() -> dict:
    d = tiny_graph().to_dict()
    d["nodes"] = [
        {"id": "x", "op": "input", "attrs": {"name": "x"}},
        {"id": "a", "op": "relu"},
        {"id": "b", "op": "add"},
    ]
    d["edges"] = [["x", "b", 0], ["a", "b", 1], ["b", "a", 0]]
    d["outputs"] = {"kind": "tensor", "nodes": ["b"]}
    return d


@pytest.mark.parametrize("command", ["info", "show", "code"])
def test_missing_file(tmp_path, command):
    assert_user_error(mad(command, tmp_path / "nope.json"), "not found", "nope.json")


@pytest.mark.parametrize("command", ["info", "show", "code"])
def test_malformed_json(tmp_path, command):
    p = _write(tmp_path, "bad.json", '{"nodes": [')
    line = assert_user_error(mad(command, p, "--json"), "bad.json", "malformed JSON", "line 1")
    assert line.count("bad.json") == 1


def test_not_a_graph_document(tmp_path):
    assert_user_error(mad("info", _write(tmp_path, "list.json", [1, 2])), "JSON object")
    d = tiny_graph().to_dict()
    d["schema_version"] = 99
    assert_user_error(mad("info", _write(tmp_path, "v99.json", d)), "schema_version")


@pytest.mark.parametrize("command", ["info", "show", "code"])
def test_cycle(tmp_path, command):
    assert_user_error(mad(command, _write(tmp_path, "cyc.json", cycle_doc())), "cycle")


@pytest.mark.parametrize("command", ["info", "show"])
def test_unknown_op(tmp_path, command):
    d = tiny_graph().to_dict()
    d["nodes"][2]["op"] = "frobnicate"
    assert_user_error(mad(command, _write(tmp_path, "unk.json", d)), "unknown op 'frobnicate'", d["nodes"][2]["id"])


def test_bad_shape_recorded(tmp_path):
    d = tiny_graph().to_dict()
    d["nodes"][1]["shape"] = [2, 9]
    assert_user_error(mad("info", _write(tmp_path, "shape.json", d)), "shape")


def test_directory_and_unknown_picture_format(graph_file, tmp_path):
    assert_user_error(mad("info", tmp_path), "directory")
    assert_user_error(mad("show", graph_file, "-o", tmp_path / "g.jpg"), "jpg", "svg")
    assert not (tmp_path / "g.jpg").exists()


def test_unknown_category():
    assert_user_error(mad("ops", "-c", "nope", "--json"), "nope")


def test_unsupported_model_type():
    assert_user_error(mad("convert", "gpt_2", "--json"), "unsupported model type 'gpt_2'", "gpt2")
    assert_user_error(mad("convert", "definitely_not_a_model"), "unsupported model type")


@pytest.mark.parametrize(
    "source, words",
    [
        ("bad/source?", ["bad SOURCE", "path/file.py:ClassName"]),
        ("net.py", ["bad SOURCE", "ClassName"]),
        ("net.py:", ["bad SOURCE"]),
        ("net.py:1Net", ["bad SOURCE"]),
    ],
)
def test_bad_source(source, words):
    assert_user_error(mad("convert", source), *words)


def test_bad_options(tmp_path):
    assert_user_error(mad("convert", "bert", "--set", "foo"), "--set", "key=value")
    assert_user_error(mad("convert", "bert", "--device", "gpu9"), "--device")
    assert_user_error(mad("convert", "bert", "--input-shape", "1,4"), "--input-shape")
    assert_user_error(mad("convert", tmp_path / "missing.onnx"), "not found", "missing.onnx")
    assert_user_error(mad("convert", f"{tmp_path / 'missing.py'}:Net"), "not found", "missing.py")


def test_debug_shows_the_exception(tmp_path):
    r = mad("--debug", "info", tmp_path / "nope.json")
    assert r.exit_code != 0 and r.exception is not None and not isinstance(r.exception, SystemExit)


# ----------------------------------------------------------------- convert
NET_PY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width=8, depth=1):
        super().__init__()
        self.convs = nn.Sequential(*[nn.Conv2d(3 if i == 0 else width, width, 3, padding=1) for i in range(depth)])
        self.head = nn.Linear(width, 5)

    def forward(self, x):
        return self.head(torch.relu(self.convs(x)).mean((2, 3)))


class WithInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, a, b):
        return self.fc(a) + b

    def example_inputs(self):
        return {"a": torch.randn(3, 6), "b": torch.randn(3, 2)}


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        raise RuntimeError("no way")


def example_inputs():
    return (torch.randn(2, 3, 16, 16),)
"""


@pytest.fixture
def net_py(tmp_path):
    try:
        from mad.code2graph import from_module  # noqa: F401
    except ImportError as e:  # pragma: no cover - code2graph missing from this install
        pytest.skip(f"mad.code2graph.from_module is not importable: {e}")
    p = tmp_path / "net.py"
    p.write_text(NET_PY)
    return p


def test_convert_file_class(net_py, tmp_path):
    out = tmp_path / "net.json"
    data = json.loads(assert_ok(mad("convert", f"{net_py}:Net:4,depth=2", "-o", out, "--json")).stdout)
    want = (3 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 5 + 5)
    assert data["num_params"] == want and data["path"] == str(out) and data["name"] == "Net"
    g = ArchGraph.from_json(out)
    g.validate()
    assert g.infer().num_params == want
    assert [s.shape for s in g.inputs] == [["B", 3, 16, 16]] and g.dims == {"B": 2}
    assert sum(n.op == "conv2d" for n in g) == 2
    info = json.loads(assert_ok(mad("info", out, "--json")).stdout)
    assert info["num_params"] == want


def test_convert_file_options(net_py, tmp_path):
    out = tmp_path / "n.json"
    assert_ok(mad("convert", f"{net_py}:Net", "--input-shape", "1,3,8,8", "--set", "width=2", "-o", out))
    g = ArchGraph.from_json(out)
    assert [s.shape for s in g.inputs] == [[1, 3, 8, 8]]
    assert g.infer().num_params == 3 * 2 * 9 + 2 + 2 * 5 + 5
    out2 = tmp_path / "w.json"
    assert_ok(mad("convert", f"{net_py}:WithInputs", "-o", out2, "--name", "two_in"))
    g2 = ArchGraph.from_json(out2)
    assert g2.name == "two_in" and [s.name for s in g2.inputs] == ["a", "b"]


def test_convert_file_errors(net_py):
    assert_user_error(mad("convert", f"{net_py}:Nope"), "no class 'Nope'", "Net")
    assert_user_error(mad("convert", f"{net_py}:Broken"), "cannot instantiate", "no way")
    assert_user_error(mad("convert", f"{net_py}:Net:width=zz,3"), "positional")
    broken = net_py.parent / "syntax.py"
    broken.write_text("def oops(:\n")
    assert_user_error(mad("convert", f"{broken}:Net"), "cannot import", "SyntaxError")
    plain = net_py.parent / "plain.py"
    plain.write_text("from torch import nn\n\nclass M(nn.Module):\n    def forward(self, x):\n        return x\n")
    assert_user_error(mad("convert", f"{plain}:M"), "no example inputs", "--input-shape")


def test_convert_hf(tmp_path):
    try:
        import transformers  # noqa: F401

        from mad.code2graph import from_hf  # noqa: F401
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"from_hf is not importable: {e}")
    out = tmp_path / "bert.json"
    r = assert_ok(mad("convert", "bert", "--set", "num_hidden_layers=1", "-o", out, "--json"))
    data = json.loads(r.stdout)
    g = ArchGraph.from_json(out)
    g.validate()
    assert g.source == "hf:bert" and data["num_nodes"] == len(g) and data["num_params"] == g.infer().num_params
    assert sum(n.op == "scaled_dot_product_attention" for n in g) == 1
    assert_user_error(mad("convert", "bert", "--set", "hidden_size=65"), "bert")


def test_convert_onnx(tmp_path):
    try:
        from mad.graph.onnx_io import to_onnx  # noqa: F401
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"mad.graph.onnx_io is not importable: {e}")
    path = tiny_graph().to_onnx(tmp_path / "tiny.onnx")
    out = tmp_path / "from_onnx.json"
    data = json.loads(assert_ok(mad("convert", path, "-o", out, "--json")).stdout)
    assert data["num_params"] == 67
    assert sorted(n.op for n in ArchGraph.from_json(out)) == ["input", "linear", "linear", "relu"]
    junk = _write(tmp_path, "junk.onnx", "not an onnx file")
    assert_user_error(mad("convert", junk), "junk.onnx")


# ------------------------------------------------------------------ mad dataset
def test_dataset_build_info_show(tmp_path):
    out = tmp_path / "ds"
    built = json.loads(assert_ok(mad("dataset", "build", out, "--random", 6, "--shard-size", 4, "--json")).stdout)
    assert built["rows_written"] == 6 and sum(built["splits"].values()) == 6 and built["failures"] == 0
    info = json.loads(assert_ok(mad("dataset", "info", out, "--json")).stdout)
    assert info["rows"] == 6 and info["by_source"] == {"random": 6}
    again = json.loads(assert_ok(mad("dataset", "build", out, "--random", 6, "--shard-size", 4, "--json")).stdout)
    assert again["splits"] == built["splits"]  # resumed: the same rows
    from mad.data.builder import load

    row_id = next(r for s in load(out).values() for r in s["id"])
    shown = json.loads(assert_ok(mad("dataset", "show", out, row_id, "-o", tmp_path / "g.svg", "--json")).stdout)
    assert (tmp_path / "g.svg").stat().st_size > 0 and shown["id"] == row_id
    assert_user_error(mad("dataset", "show", out, "random/999"), "random/999")
    assert_user_error(mad("dataset", "info", tmp_path / "nowhere"), "nowhere")


def test_dataset_info_of_the_shipped_default():
    info = json.loads(assert_ok(mad("dataset", "info", "default", "--json")).stdout)
    assert info["rows"] > 3000 and {"hf", "random"} <= set(info["by_source"])
