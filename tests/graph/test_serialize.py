"""JSON form of ArchGraph: exact round trips and errors that name the bad field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from strategies import arch_graphs, relabel

from mad.graph import SCHEMA_VERSION, ArchGraph, GraphError, TensorSpec, from_json
from mad.graph.module import encode_tensor
from mad.graph.serialize import from_dict, to_dict


def _full_graph() -> ArchGraph:
    """A graph that uses every field of the document."""
    g = ArchGraph(
        "full",
        source="hf:test",
        inputs=[
            TensorSpec("ids", [2, 5], "int64", range=[0, 11], dims=["batch", "seq"]),
            TensorSpec("mask", [2, 5], "bool"),
        ],
        meta={"dtype": "float32", "aliases": {"head.weight": "emb.weight"}, "notes": [1, 2.5, None, "x"]},
    )
    ids = g.add_node("input", attrs={"name": "ids"})
    mask = g.add_node("input", attrs={"name": "mask"})
    e = g.add_node("embedding", [ids], params={"weight": [11, 4]}, scope="emb")
    m = g.add_node("masked_fill", [e, g.add_node("unsqueeze", [mask], attrs={"dim": -1})], attrs={"value": "-inf"})
    buf = g.add_node(
        "parameter",
        attrs={"kind": "buffer", "persistent": False, "value": encode_tensor(__import__("torch").arange(4.0))},
        params={"data": [4]},
        param_names={"data": "pos.table"},
        scope="pos",
    )
    s = g.add_node("add", [m, buf], attrs={"alpha": 2})
    sp = g.add_node("split", [s], attrs={"split_size": 2, "dim": -1})
    a = g.add_node("getitem", [sp], attrs={"index": 0})
    b = g.add_node("getitem", [sp], attrs={"index": 1})
    c = g.add_node("cat", [b, a], attrs={"tensors": ["%", "%"], "dim": -1})
    g.set_outputs([c, a], keys=["logits", "half"])
    return g


def test_document_layout():
    g = _full_graph()
    g.infer()
    d = json.loads(g.to_json())
    assert d["format"] == "mad.archgraph" and d["schema_version"] == SCHEMA_VERSION
    ids = {"name": "ids", "shape": [2, 5], "dtype": "int64", "range": [0, 11], "dims": ["batch", "seq"]}
    assert d["inputs"][0] == ids
    assert d["inputs"][1] == {"name": "mask", "shape": [2, 5], "dtype": "bool"}
    assert d["outputs"] == {"kind": "dict", "nodes": ["cat_10", "getitem_8"], "keys": ["logits", "half"]}
    unsq = d["nodes"][3]
    assert unsq == {"id": "unsqueeze_3", "op": "unsqueeze", "attrs": {"dim": -1}, "shape": [2, 5, 1],
                    "dtype": "bool"}
    assert ["input_0", "embedding_2", 0] in d["edges"]
    assert d["nodes"][7]["shape"] == [[2, 5, 2], [2, 5, 2]]


@pytest.mark.parametrize("infer", [False, True])
def test_full_graph_round_trip_is_exact(infer):
    g = _full_graph()
    if infer:
        g.infer()
    text = g.to_json()
    back = ArchGraph.from_json(text)
    assert back.to_json() == text
    assert to_dict(back) == to_dict(g)
    assert back.meta == g.meta and back.inputs == g.inputs
    assert back.output_kind == "dict" and back.output_keys == ["logits", "half"]
    back.validate()


def test_round_trip_through_a_file(tmp_path):
    g = _full_graph()
    g.infer()
    path = tmp_path / "g.json"
    text = g.to_json(path, indent=2)
    assert path.read_text() == text
    for src in (path, str(path)):
        assert from_json(src).to_json(indent=2) == text


def test_round_trip_keeps_edge_and_node_order():
    g = relabel(_full_graph(), seed=3)
    text = g.to_json()
    assert ArchGraph.from_json(text).to_json() == text


@given(arch_graphs())
def test_random_graphs_round_trip_exactly(g):
    text = g.to_json()
    back = ArchGraph.from_json(text)
    assert back.to_json() == text
    assert to_dict(back) == to_dict(g)
    assert json.loads(text) == to_dict(g)
    back.validate()


def test_copy_via_dict_is_independent():
    g = _full_graph()
    d = to_dict(g)
    back = from_dict(d)
    back.meta["notes"].append(3)
    back.nodes["split_7"].attrs["dim"] = 0
    # the document is not changed through the graph built from it
    assert d["nodes"][7]["attrs"]["dim"] == -1
    assert d["meta"]["notes"] == [1, 2.5, None, "x"]


# ---------------------------------------------------------------- errors


def _doc() -> dict:
    g = _full_graph()
    g.infer()
    return json.loads(g.to_json())


def test_unknown_schema_version_is_rejected():
    d = _doc()
    d["schema_version"] = 99
    with pytest.raises(GraphError, match=r"unsupported schema_version 99.*reads versions \[1, 2\]"):
        from_dict(d)
    del d["schema_version"]
    with pytest.raises(GraphError, match="unsupported schema_version None"):
        from_json(json.dumps(d))


def test_wrong_format_is_rejected():
    d = _doc()
    d["format"] = "onnx"
    with pytest.raises(GraphError, match="format is 'onnx'"):
        from_dict(d)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"schema_version": 1, "nodes": [', r"graph JSON: malformed JSON at line 1 column \d+"),
        ('{"schema_version": 1,\n "nodes": [}', r"malformed JSON at line 2 column"),
        ("[1, 2]", "must be a JSON object, got list"),
    ],
)
def test_malformed_json_is_rejected(text, message):
    with pytest.raises(GraphError, match=message):
        from_json(text) if text.startswith("{") else from_dict(json.loads(text))


def test_malformed_file_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"nodes": ')
    with pytest.raises(GraphError, match=r"bad\.json: malformed JSON"):
        from_json(path)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        from_json(tmp_path / "missing.json")


def _broken(mutate) -> dict:
    d = _doc()
    mutate(d)
    return d


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("nodes"), "graph: missing field 'nodes'"),
        (lambda d: d.pop("edges"), "graph: missing field 'edges'"),
        (lambda d: d.pop("inputs"), "graph: missing field 'inputs'"),
        (lambda d: d.pop("outputs"), "graph: missing field 'outputs'"),
        (lambda d: d.__setitem__("nodes", {}), "graph: field 'nodes' must be list, got dict"),
        (lambda d: d["outputs"].pop("nodes"), "outputs: missing field 'nodes'"),
        (lambda d: d["nodes"][2].pop("op"), "node 'embedding_2': missing field 'op'"),
        (lambda d: d["nodes"][2].pop("id"), r"nodes\[2\]: missing field 'id'"),
        (lambda d: d["nodes"][2].__setitem__("id", 7), r"nodes\[2\]: field 'id' must be str, got int"),
        (lambda d: d["nodes"].__setitem__(1, "x"), r"nodes\[1\]: must be an object"),
        (lambda d: d["nodes"][1].__setitem__("id", "input_0"), "node 'input_0': duplicate node id"),
        (lambda d: d["nodes"][2].__setitem__("attrs", [1]), "node 'embedding_2': field 'attrs' must be an object"),
        (lambda d: d["nodes"][2]["params"].__setitem__("weight", [11, -4]),
         r"node 'embedding_2': params\['weight'\] must be a list of non-negative ints"),
        (lambda d: d["nodes"][2]["params"].__setitem__("weight", "11x4"), r"params\['weight'\]"),
        (lambda d: d["edges"].__setitem__(0, ["a", "b"]), r"edges\[0\]: must be \[src, dst, port\]"),
        (lambda d: d["edges"][1].__setitem__(2, "0"), r"edges\[1\]: must be \[src, dst, port\]"),
        (lambda d: d["inputs"][0].pop("shape"), r"inputs\[0\]: missing field 'shape'"),
        (lambda d: d["inputs"][1].__setitem__("shape", [2, 1.5]), r"inputs\[1\]: field 'shape' must be a list of ints"),
        (lambda d: d["inputs"][1].__setitem__("shape", [2, "T +"]), r"inputs\[1\]: dim expression 'T \+' is not valid"),
        (lambda d: d.__setitem__("dims", {"B": 1}), r"field 'dims' must map symbol names to example sizes >= 2"),
        (lambda d: d["inputs"][1].pop("name"), r"inputs\[1\]: missing field 'name'"),
        (lambda d: d["inputs"].__setitem__(0, 3), r"inputs\[0\]: must be an object"),
    ],
)
def test_malformed_documents_name_the_field(mutate, message):
    with pytest.raises(GraphError, match=message):
        from_json(json.dumps(_broken(mutate)))
