"""The frozen op vocabulary: ids never move, new ops are appended with a version bump."""

from __future__ import annotations

import copy
import json

import pytest

import mad.graph.ops.vocab as vocab
from mad.graph import ArchGraph, TensorSpec, UnknownOpError, op_names
from mad.graph.ops import registry
from mad.graph.ops.registry import AttrSpec, OpDef, TensorArg
from mad.graph.ops.vocab import (
    MASK_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    VOCAB_FILE,
    VOCAB_VERSION,
    op_from_id,
    op_id,
    vocab_problems,
    vocab_size,
)

# Digest of each released version's tables, copied here when the version was recorded.
# Add a line for a new version; never edit a line: a changed digest means released ids moved.
RELEASED = {
    "2.0": "a34ba33dff35c4ef2df9027b6544c136e06d862fac90766eb1c3666618f35f2e",
}


def _doc() -> dict:
    return json.loads(VOCAB_FILE.read_text())


def test_committed_table_is_sound():
    assert vocab_problems() == []


def test_released_versions_are_recorded_unchanged():
    recorded = {v["version"]: v["digest"] for v in _doc()["versions"]}
    assert recorded == RELEASED, "a released version's digest changed, or a new version is not listed in RELEASED"
    assert VOCAB_VERSION == list(recorded)[-1]


def test_special_tokens_come_first():
    assert [op_from_id(i) for i in range(len(SPECIAL_TOKENS))] == ["<pad>", "<mask>", "<bos>", "<eos>", "<unk>"]
    assert (PAD_ID, MASK_ID, UNK_ID) == (0, 1, 4)


def test_every_op_has_an_id_that_decodes_back():
    ids = [op_id(n) for n in op_names()]
    assert len(set(ids)) == len(ids) and min(ids) >= len(SPECIAL_TOKENS) and max(ids) < vocab_size()
    assert [op_from_id(i) for i in ids] == op_names()


def test_unknown_names_and_ids():
    with pytest.raises(UnknownOpError, match="'frobnicate' has no id.*append it to the table and bump VOCAB_VERSION"):
        op_id("frobnicate")
    assert op_id("frobnicate", strict=False) == UNK_ID
    with pytest.raises(UnknownOpError):
        op_id("<mask>")  # special tokens are not ops
    with pytest.raises(ValueError, match="outside the vocabulary"):
        op_from_id(vocab_size())


# ----------------------------------------------------------------- the checks catch each kind of mistake


@pytest.fixture
def new_op(monkeypatch):
    """Register an op the table does not list (removed again after the test)."""
    od = OpDef(name="frobnicate", category="primitive", args=(TensorArg("self"),),
               attrs={"k": AttrSpec("int", default=1)}, fn=lambda x, k=1: x)
    monkeypatch.setitem(registry._REGISTRY, "frobnicate", od)
    vocab.op_slots.cache_clear()
    yield od
    vocab.op_slots.cache_clear()


def test_a_registered_op_missing_from_the_table_fails(new_op):
    problems = vocab_problems()
    assert any("'frobnicate'" in p and "append them to the table" in p and "bump VOCAB_VERSION" in p
               for p in problems), problems


def test_a_moved_id_fails():
    doc = _doc()
    ops = doc["tables"]["ops"]
    i, j = ops.index("linear"), ops.index("relu")
    ops[i], ops[j] = ops[j], ops[i]
    assert any("an id changed or a name was removed" in p for p in vocab_problems(doc))


def test_a_removed_name_fails():
    doc = _doc()
    doc["tables"]["ops"].remove("relu")
    doc["tables"]["ops"].append("relu")  # even when appended again, its id moved
    assert any("append-only" in p for p in vocab_problems(doc))


def test_a_change_without_a_version_bump_fails(new_op):
    doc = _doc()
    doc["tables"]["ops"].append("frobnicate")
    problems = vocab_problems(doc)
    assert any("changed since version 2.0" in p for p in problems), problems
    doc = _doc()
    doc["tables"]["str"].append("bilinear")  # enum tables are frozen the same way
    assert any("changed since version 2.0" in p for p in vocab_problems(doc))


def test_a_changed_op_signature_fails(monkeypatch):
    od = copy.copy(registry._REGISTRY["getitem"])
    od.attrs = {**od.attrs, "extra": AttrSpec("int", default=0)}
    monkeypatch.setitem(registry._REGISTRY, "getitem", od)
    vocab.op_slots.cache_clear()
    try:
        assert any("arguments of some op changed" in p for p in vocab_problems())
    finally:
        monkeypatch.undo()
        vocab.op_slots.cache_clear()


def test_bump_appends_new_ops_and_keeps_old_ids(new_op, tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text(VOCAB_FILE.read_text())
    before = _doc()["tables"]["ops"]
    try:
        doc = vocab.bump("2.1", path)
    finally:
        vocab._load.cache_clear()
        vocab._index.cache_clear()
    ops = doc["tables"]["ops"]
    assert ops[: len(before)] == before and ops[len(before):] == ["frobnicate"]
    assert [v["version"] for v in doc["versions"]] == ["2.0", "2.1"]
    assert vocab_problems(doc, version="2.1") == []
    assert any("VOCAB_VERSION" in p for p in vocab_problems(doc, version="2.0"))  # registry.py not bumped yet
    with pytest.raises(ValueError, match="already recorded"):
        vocab.bump("2.1", path)
    vocab._load.cache_clear()
    vocab._index.cache_clear()


def test_graphs_written_with_vocabulary_1_0_still_load():
    g = ArchGraph("mlp", inputs=[TensorSpec("x", [2, 4])])
    x = g.add_node("input", attrs={"name": "x"})
    g.set_outputs([g.add_node("relu", [g.add_node("linear", [x], params={"weight": [3, 4]}, scope="fc")])])
    d = g.to_dict()
    assert d["vocab_version"] == VOCAB_VERSION == "2.0"
    d["vocab_version"] = "1.0"  # ops are stored by name, so old documents read as they are
    back = ArchGraph.from_dict(d)
    back.validate()
    assert back.to_json() == g.to_json()
