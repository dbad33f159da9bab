"""Pictures of graphs: DOT structure (clusters, labels, collapse), files written, speed, fallback."""

from __future__ import annotations

import logging
import re
import time

import pytest

from mad.graph import ArchGraph, GraphError, TensorSpec
from mad.graph import render as render_mod
from mad.graph.render import choose_depth, op_detail, render, scope_levels, shape_text, to_dot


def bert_like(layers: int = 2, hidden: int = 64, heads: int = 4, seq: int = 16, vocab: int = 1000, inter: int = 256):
    """A BERT-shaped graph: embeddings (with buffer parameter nodes), ``layers`` encoder layers, pooler."""
    g = ArchGraph("bert_like", source="test", inputs=[TensorSpec("input_ids", [1, seq], "int64", range=[0, vocab])])
    ids = g.add_node("input", attrs={"name": "input_ids"})
    pos = g.add_node(
        "parameter",
        params={"data": [1, seq]},
        attrs={"kind": "buffer", "dtype": "int64"},
        scope="embeddings.position_ids",
    )
    we = g.add_node("embedding", [ids], params={"weight": [vocab, hidden]}, scope="embeddings.word_embeddings")
    pe = g.add_node("embedding", [pos], params={"weight": [32, hidden]}, scope="embeddings.position_embeddings")
    x = g.add_node("add", [we, pe], scope="embeddings")
    x = g.add_node(
        "layer_norm",
        [x],
        attrs={"normalized_shape": [hidden], "eps": 1e-12},
        params={"weight": [hidden], "bias": [hidden]},
        scope="embeddings.LayerNorm",
    )
    hd = hidden // heads
    for i in range(layers):
        s = f"encoder.layer.{i}"
        a = f"{s}.attention.self"
        qkv = []
        for nm in ("query", "key", "value"):
            t = g.add_node("linear", [x], params={"weight": [hidden, hidden], "bias": [hidden]}, scope=f"{a}.{nm}")
            t = g.add_node("view", [t], attrs={"size": [1, seq, heads, hd]}, scope=a)
            qkv.append(g.add_node("transpose", [t], attrs={"dim0": 1, "dim1": 2}, scope=a))
        y = g.add_node("scaled_dot_product_attention", qkv, scope=a)
        y = g.add_node("transpose", [y], attrs={"dim0": 1, "dim1": 2}, scope=a)
        y = g.add_node("reshape", [y], attrs={"shape": [1, seq, hidden]}, scope=a)
        y = g.add_node(
            "linear", [y], params={"weight": [hidden, hidden], "bias": [hidden]}, scope=f"{s}.attention.output.dense"
        )
        y = g.add_node("add", [y, x], scope=f"{s}.attention.output")
        x = g.add_node(
            "layer_norm",
            [y],
            attrs={"normalized_shape": [hidden], "eps": 1e-12},
            params={"weight": [hidden], "bias": [hidden]},
            scope=f"{s}.attention.output.LayerNorm",
        )
        h = g.add_node(
            "linear", [x], params={"weight": [inter, hidden], "bias": [inter]}, scope=f"{s}.intermediate.dense"
        )
        h = g.add_node("gelu", [h], scope=f"{s}.intermediate.intermediate_act_fn")
        h = g.add_node("linear", [h], params={"weight": [hidden, inter], "bias": [hidden]}, scope=f"{s}.output.dense")
        h = g.add_node("add", [h, x], scope=f"{s}.output")
        x = g.add_node(
            "layer_norm",
            [h],
            attrs={"normalized_shape": [hidden], "eps": 1e-12},
            params={"weight": [hidden], "bias": [hidden]},
            scope=f"{s}.output.LayerNorm",
        )
    c = g.add_node("select", [x], attrs={"dim": 1, "index": 0}, scope="pooler")
    c = g.add_node("linear", [c], params={"weight": [hidden, hidden], "bias": [hidden]}, scope="pooler.dense")
    c = g.add_node("tanh", [c], scope="pooler.activation")
    g.set_outputs([x, c], keys=["last_hidden_state", "pooler_output"])
    return g


def drawn(dot: str) -> dict[str, tuple[str, ...]]:
    """Graph node id -> labels of the clusters it is drawn in (outermost first), parsed from DOT text."""
    stack: list[str] = []
    where: dict[str, tuple[str, ...]] = {}
    pending = False
    for line in dot.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            pending = True
            continue
        if pending and s.startswith("label="):
            stack.append(re.match(r"label=<<B>([^<]*)</B>", s).group(1))
            pending = False
            continue
        if s == "}" and stack:
            stack.pop()
            continue
        m = re.match(r'n\d+ \[.*tooltip="([^ "]+)', s)
        if m:
            where[m.group(1)] = tuple(stack)
    return where


def edge_labels(dot: str) -> list[str]:
    return [m.strip() for m in re.findall(r'-> n\d+ \[label=" ?([^"]*)"', dot)]


@pytest.fixture(scope="module")
def bert():
    g = bert_like()
    g.infer()
    return g


def test_scope_levels_join_numeric_parts():
    assert scope_levels("encoder.layer.0.attention.self") == ("encoder", "layer.0", "attention", "self")
    assert scope_levels("features.0.1") == ("features.0", "1")
    assert scope_levels("0.1.conv") == ("0", "1", "conv")
    assert scope_levels("") == ()


def test_shape_text():
    assert shape_text([1, 16, 64], "float32") == "1×16×64"
    assert shape_text([1, 16], "int64") == "1×16 i64"
    assert shape_text([], "float32") == "scalar"
    assert shape_text([[2, 3], [2]], ["float32", "int64"]) == "(2×3, 2 i64)"
    assert shape_text(None) == ""


def test_full_picture_nests_clusters_by_scope(bert):
    dot = to_dot(bert)
    where = drawn(dot)
    # every node but the folded getitems is drawn, plus one box per output
    assert set(where) == set(bert.nodes) | {"out:0", "out:1"}
    q = next(n.id for n in bert if n.scope == "encoder.layer.0.attention.self.query")
    sdpa = next(n.id for n in bert if n.op == "scaled_dot_product_attention")
    # single-node module clusters (the query linear) are folded into their parent
    assert where[q] == ("encoder", "layer.0", "attention", "self")
    assert where[sdpa] == ("encoder", "layer.0", "attention", "self")
    assert where[bert.input_node("input_ids")] == ()
    ln = next(n.id for n in bert if n.scope == "embeddings.LayerNorm")
    assert where[ln] == ("embeddings",)
    assert where["out:0"] == () and where["out:1"] == ()


def test_labels_show_op_and_key_attrs(bert):
    dot = to_dot(bert)
    assert '<B>linear</B><BR/><FONT POINT-SIZE="9">64→256</FONT>' in dot
    assert '<B>embedding</B><BR/><FONT POINT-SIZE="9">1000×64</FONT>' in dot
    assert "<I>query</I>" in dot  # module name of a folded single-node cluster
    assert "<B>sdpa</B>" in dot
    assert "1↔2" in dot  # transpose dims
    labels = edge_labels(dot)
    assert "1×16×64" in labels and "1×16×256" in labels and "1×4×16×16" in labels
    assert "1×16 i64" in labels  # integer input shows its dtype
    # colours by kind: layer, activation, shape op, input, parameter
    for fill in ("#d6e6fb", "#fde3c4", "#f1f1f1", "#d3f0d8", "#fff4bf"):
        assert f'fillcolor="{fill}"' in dot


def test_parameter_nodes_small_with_dashed_edges(bert):
    dot = to_dot(bert)
    line = next(s for s in dot.splitlines() if "position_ids" in s and "tooltip" in s)
    assert "height=0.15" in line and "fontsize=8" in line
    ident = line.strip().split(" ")[0]
    assert re.search(rf"{ident} -> n\d+ \[style=dashed", dot)


def test_op_detail_for_conv_linear_and_constants():
    g = ArchGraph("cnn", inputs=[TensorSpec("x", [1, 3, 32, 32])])
    x = g.add_node("input", attrs={"name": "x"})
    c = g.add_node("conv2d", [x], attrs={"stride": [2, 2], "padding": [1, 1]}, params={"weight": [16, 3, 3, 3]})
    d = g.add_node("conv2d", [c], attrs={"groups": 16, "padding": [1, 1]}, params={"weight": [16, 1, 3, 3]})
    m = g.add_node("mul", [d], attrs={"other": 0.125})
    p = g.add_node("max_pool2d", [m], attrs={"kernel_size": [2, 2], "stride": [2, 2]})
    f = g.add_node("flatten", [p], attrs={"start_dim": 1})
    y = g.add_node("linear", [f], params={"weight": [10, 1024]})
    s = g.add_node("softmax", [y], attrs={"dim": -1})
    g.set_outputs([s])
    g.validate()
    n = g.nodes
    assert op_detail(n[c]) == "3→16 3x3/2"
    assert op_detail(n[d]) == "16→16 3x3 dw"
    assert op_detail(n[m]) == "× 0.125"
    assert op_detail(n[p]) == "2x2/2"
    assert op_detail(n[y]) == "1024→10 no bias"
    assert op_detail(n[s]) == "dim=-1"


def test_depth_collapses_blocks(bert):
    dot = to_dot(bert, depth=2)
    where = drawn(dot)
    assert "block:encoder.layer.0" not in where  # blocks are keyed by scope in the tooltip
    lines = [s for s in dot.splitlines() if "shape=box3d" in s]
    assert len(lines) == 2  # one box per encoder layer
    layer0 = next(s for s in lines if "<B>layer.0</B>" in s)
    assert "linear×6" in layer0 and "layer_norm×2" in layer0 and "sdpa" in layer0
    per_layer = sum(n.num_params for n in bert if n.scope.startswith("encoder.layer.0."))
    assert f"{render_mod.human(per_layer)} params" in layer0
    assert "20 ops" in layer0
    # nothing inside a layer is drawn on its own; embeddings and pooler still are
    assert not any(n.scope.startswith("encoder.layer.") for nid, n in bert.nodes.items() if nid in where)
    assert any(bert.nodes[nid].scope.startswith("pooler") for nid in where if nid in bert.nodes)
    assert edge_labels(dot).count("1×16×64") >= 3


def test_depth_zero_is_one_box_and_deep_depth_is_everything(bert):
    dot0 = to_dot(bert, depth=0)
    assert dot0.count("shape=box3d") == 1 and "<B>bert_like</B>" in dot0
    deep = to_dot(bert, depth=10)
    assert "box3d" not in deep
    assert set(drawn(deep)) == set(drawn(to_dot(bert)))


def test_getitem_is_folded_into_edge_labels():
    g = ArchGraph("split", inputs=[TensorSpec("x", [2, 8])])
    x = g.add_node("input", attrs={"name": "x"})
    s = g.add_node("split", [x], attrs={"split_size": 4, "dim": 1})
    a = g.add_node("getitem", [s], attrs={"index": 0})
    b = g.add_node("getitem", [s], attrs={"index": 1})
    y = g.add_node("mul", [a, b])
    g.set_outputs([y, a])
    g.validate()
    dot = to_dot(g)
    assert a not in drawn(dot) and b not in drawn(dot)
    labels = edge_labels(dot)
    assert "[0] 2×4 (+1)" in labels  # both getitems feed mul; merged on one edge
    assert "[0] 2×4" in labels  # the second graph output


def test_shapes_inferred_without_touching_the_graph():
    g = bert_like(layers=1)
    assert all(n.shape is None for n in g)
    dot = to_dot(g)
    assert "1×16×64" in edge_labels(dot)
    assert all(n.shape is None for n in g)
    assert dot == to_dot(g)  # deterministic


def test_errors():
    g = bert_like(layers=1)
    with pytest.raises(ValueError, match="depth"):
        to_dot(g, depth=-1)
    with pytest.raises(ValueError, match="jpg"):
        render(g, "x.jpg")
    cyc = ArchGraph("cyc", inputs=[TensorSpec("x", [2])])
    x = cyc.add_node("input", attrs={"name": "x"})
    a = cyc.add_node("relu", id="a")
    b = cyc.add_node("add", [x, a], id="b")
    cyc.add_edge(b, a, 0)
    cyc.set_outputs([b])
    with pytest.raises(GraphError, match="cycle"):
        to_dot(cyc)


@pytest.mark.parametrize("suffix, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_render_writes_files(bert, tmp_path, suffix, magic):
    out = render(bert, tmp_path / f"bert.{suffix}", depth=2)
    assert out.read_bytes().startswith(magic)
    if suffix == "svg":
        text = out.read_text()
        assert "layer.0" in text and "1×16×64" in text


def test_render_dot_text(bert, tmp_path):
    out = render(bert, tmp_path / "g.dot", depth=1)
    assert out.read_text() == to_dot(bert, depth=1)


def test_large_graph_collapses_and_renders_fast(tmp_path):
    g = bert_like(layers=60)
    assert len(g) > 1200
    g.infer()
    assert choose_depth(g) is not None
    t0 = time.perf_counter()
    dot = to_dot(g)
    out = render(g, tmp_path / "big.svg")
    seconds = time.perf_counter() - t0
    assert dot.count("\n  n") + dot.count("\n    n") < render_mod.MAX_UNITS + 10
    assert out.stat().st_size > 10_000
    assert seconds < 10, f"drawing a {len(g)}-node graph took {seconds:.1f}s"
    full = to_dot(g, max_units=0)  # everything, edge labels dropped above the label budget
    assert len(drawn(full)) == len(g) + 2


def test_matplotlib_fallback_without_dot(bert, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(render_mod.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="mad.graph.render"):
        out = render(bert, tmp_path / "fallback.png", depth=2)
    assert out.read_bytes().startswith(b"\x89PNG")
    assert any("matplotlib" in r.getMessage() and "dot" in r.getMessage() for r in caplog.records)
    svg = render(bert, tmp_path / "fallback.svg", depth=1)
    assert "<svg" in svg.read_text()


def test_wide_fanout_becomes_reference_boxes():
    g = ArchGraph("fan", inputs=[TensorSpec("x", [2, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    mask = g.add_node("sigmoid", [x], id="mask", scope="mask")
    h = g.add_node("relu", [x], scope="stem")
    for i in range(8):
        h = g.add_node("mul", [h, mask], scope=f"layers.{i}")
        h = g.add_node("tanh", [h], scope=f"layers.{i}")
    g.set_outputs([h])
    g.validate()
    dot = to_dot(g)
    where = drawn(dot)
    refs = [k for k in where if k.startswith("ref:mask:")]
    assert len(refs) == 8
    assert where[refs[0]] == ("layers.0",)  # each reference sits next to its user
    ident = re.search(r'(n\d+) \[[^\n]*tooltip="mask ', dot).group(1)
    assert "used by 8" in dot
    assert all("style=invis" in line for line in dot.splitlines() if line.strip().startswith(f"{ident} ->"))
    # below the limit, edges are drawn directly
    assert not any(k.startswith("ref:") for k in drawn(to_dot(bert_like(layers=2))))
