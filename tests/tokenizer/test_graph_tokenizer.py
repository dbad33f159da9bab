"""GraphTokenizer: exact round trips, canonical order, repeat compression, valid prefixes, persistence."""

from __future__ import annotations

import json
import random

import pytest
import torch

from mad.data import load_default
from mad.data.random_space import RandomSpaceConfig, sample
from mad.graph import ArchGraph, GraphBuilder
from mad.graph.passes import deepen
from mad.tokenizer import GraphTokenizer, TokenizeError, Vocab, canonical_order

SHARDS = 8


@pytest.fixture(scope="module")
def tok() -> GraphTokenizer:
    return GraphTokenizer.load("default")


@pytest.fixture(scope="module")
def rows() -> list[tuple[str, str]]:
    ds = load_default()
    return [(f"{split}/{r['id']}", r["graph"]) for split in ds for r in ds[split].select_columns(["id", "graph"])]


def _same(g: ArchGraph, h: ArchGraph) -> None:
    """``h`` rebuilds ``g``: hash, and node by node (in canonical order) op, attrs, params, shape, dtype."""
    assert h.wl_hash() == g.wl_hash()
    assert len(h.nodes) == len(g.nodes)
    for a, b in zip((g.nodes[i] for i in canonical_order(g)), h.nodes.values()):
        assert (a.op, a.attrs, a.params, a.shape, a.dtype) == (b.op, b.attrs, b.params, b.shape, b.dtype), a.id
    assert [(s.name, s.shape, s.dtype, s.range, s.dims) for s in g.inputs] == \
        [(s.name, s.shape, s.dtype, s.range, s.dims) for s in h.inputs]
    assert g.output_kind == h.output_kind and g.output_keys == h.output_keys
    assert [h.nodes[o].shape for o in h.outputs] == [g.nodes[o].shape for o in g.outputs]
    assert h.dims == g.dims


@pytest.mark.parametrize("shard", range(SHARDS))
def test_round_trip_on_every_shipped_graph(tok, rows, shard):
    for name, text in rows[shard::SHARDS]:
        g = ArchGraph.from_json(text)
        h = tok.decode(tok.encode(g))
        try:
            _same(g, h)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


def _copy_params(src: torch.nn.Module, g: ArchGraph, dst: torch.nn.Module, h: ArchGraph) -> None:
    """Load ``src``'s parameters into ``dst`` node by node (decoded nodes are in canonical order)."""
    sd, hd = src.state_dict(), dst.state_dict()
    for a, b in zip((g.nodes[i] for i in canonical_order(g)), h.nodes.values()):
        for role in a.params:
            hd[b.param_name(role)] = sd[a.param_name(role)].clone()
    dst.load_state_dict(hd)


@pytest.mark.parametrize("modality", ["image", "sequence"])
def test_decoded_module_gives_equal_outputs(tok, modality):
    g = sample(3, RandomSpaceConfig(modality=modality, max_params=300_000))
    h = tok.decode(tok.encode(g))
    m, mh = g.to_module().eval(), h.to_module().eval()
    _copy_params(m, g, mh, h)
    x = g.example_inputs(seed=1)
    torch.testing.assert_close(mh(*x), m(*x), rtol=0, atol=0)



def test_an_in_place_write_keeps_its_place_among_the_reads(tok):
    """A cache filled by ``copy_`` (a dead end: nothing reads its result) before a node reads the cache: the
    canonical order, which places dead ends last, still puts the fill first, so the decoded module computes the
    same; a read before the write stays before it."""
    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ("B", 4))
    cache = b.op("zeros", size=["B", 4], dtype="float32")
    early = b.op("mul", cache, x)  # reads the empty cache
    b.op("copy_", cache, b.op("add", x, other=1.0))
    late = b.op("mul", cache, x)  # reads the filled cache
    b.output(b.op("add", early, late))
    g = b.build()
    order = canonical_order(g)
    write = next(n for n in g.nodes.values() if n.op == "copy_").id
    assert order.index(early) < order.index(write) < order.index(late)
    h = tok.decode(tok.encode(g))
    x0 = g.example_inputs(seed=1)
    torch.testing.assert_close(h.to_module()(*x0), g.to_module()(*x0), rtol=0, atol=0)
    assert not torch.equal(g.to_module()(*x0), torch.zeros(2, 4))

def _shuffled(g: ArchGraph, seed: int) -> ArchGraph:
    """The same graph with other node ids and another (topological) insertion order."""
    d = json.loads(g.to_json())
    rng = random.Random(seed)
    rename = {n["id"]: f"n{rng.randrange(10**9)}_{i}" for i, n in enumerate(d["nodes"]) if n["op"] != "input"}
    order = list(g.topo_order())
    # another topological order: a random Kahn walk
    preds = {nid: set(g.predecessors(nid)) for nid in g.nodes}
    placed: list[str] = []
    ready = [nid for nid in order if not preds[nid]]
    while ready:
        nid = ready.pop(rng.randrange(len(ready)))
        placed.append(nid)
        for s in g.successors(nid):
            if s not in placed and s not in ready and preds[s] <= set(placed):
                ready.append(s)
    by_id = {n["id"]: n for n in d["nodes"]}
    d["nodes"] = [by_id[nid] for nid in placed]
    text = json.dumps(d)
    for old, new in sorted(rename.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f'"{old}"', f'"{new}"')
    return ArchGraph.from_json(text)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_isomorphic_graphs_give_one_sequence(tok, seed):
    g = sample(seed, RandomSpaceConfig(modality="any", max_params=300_000))
    h = _shuffled(g, seed + 10)
    assert list(h.nodes) != list(g.nodes)
    assert tok.encode(h) == tok.encode(g)


def test_every_prefix_decodes_to_a_valid_partial_graph(tok):
    g = sample(5, RandomSpaceConfig(modality="sequence", num_layers=(2, 2), max_params=200_000))
    ids = tok.encode(g)
    assert "<blk>" in tok.tokens(g)  # the repeated layers are compressed, so prefixes cut into blocks too
    sizes = []
    for k in range(1, len(ids) + 1):
        h = tok.decode(ids[:k], partial=True)
        h.validate(partial=not h.outputs)
        sizes.append(len(h.nodes))
    assert sizes == sorted(sizes) and sizes[-1] == len(g.nodes)


def test_repeated_blocks_compress_exactly(tok):
    g = deepen(sample(7, RandomSpaceConfig(modality="sequence", num_layers=(2, 2), max_params=400_000)), 4)
    flat = GraphTokenizer(tok.vocab, compress=False)
    short, long = tok.encode(g), flat.encode(g)
    assert len(short) < 0.5 * len(long)
    _same(g, tok.decode(short))
    _same(g, flat.decode(long))


def test_prefix_tokens_continue_to_the_same_graph(tok):
    g = sample(2, RandomSpaceConfig(modality="image", max_params=200_000))
    b = GraphBuilder(dims=dict(g.dims))
    spec = g.inputs[0]
    b.input(spec.name, spec.shape, spec.dtype)
    b.graph.inputs[0].dims = spec.dims
    flat = GraphTokenizer(tok.vocab, compress=False)
    start = flat.prefix_tokens(b.graph)
    assert flat.tokens(g)[: len(start)] == start
    asm = flat.assembler(start)
    assert len(asm) == 1 and asm.graph.nodes[asm.ids[0]].op == "input"


def test_vocab_saves_and_loads(tok, tmp_path):
    tok.save(tmp_path)
    again = GraphTokenizer.load(tmp_path)
    assert again.vocab.tokens == tok.vocab.tokens
    d = json.loads((tmp_path / "vocab.json").read_text())
    d["schema"] = 99
    (tmp_path / "vocab.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="schema"):
        GraphTokenizer.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no tokenizer vocabulary"):
        GraphTokenizer.load(tmp_path / "nowhere")


def test_rare_values_are_spelled_exactly():
    tok = GraphTokenizer(Vocab())  # no learned pairs: every value is spelled
    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ("B", 7))
    b.output(b.op("leaky_relu", b.op("linear", x, out_features=13), negative_slope=0.0123456789))
    g = b.build()
    toks = tok.tokens(g)
    assert "<lit>" in toks
    _same(g, tok.decode(tok.encode(g)))


@pytest.mark.parametrize("bad, where", [
    (["op:relu"], "starts with <bos>"),
    (["<bos>", "@1", "op:relu"], "points before the first node"),
    (["<bos>", "<eos>"], "no <out>"),
])
def test_malformed_sequences_name_the_position(tok, bad, where):
    with pytest.raises(TokenizeError, match=where):
        tok.decode(bad)


def test_truncated_sequence_needs_partial(tok):
    g = sample(1, RandomSpaceConfig(modality="image", max_params=100_000))
    ids = tok.encode(g)
    with pytest.raises(TokenizeError, match="partial=True"):
        tok.decode(ids[: len(ids) // 2])


@pytest.mark.slow
def test_llama_7b_config_fits_in_2048_tokens(tok):
    from mad.code2graph import from_hf

    g = from_hf("llama", device="meta", small=False)
    ids = tok.encode(g)
    assert len(ids) <= 2048
    assert tok.decode(ids).wl_hash() == g.wl_hash()
