"""Early shape checks for decoding: they reject what the builder would reject, and never what it accepts."""

from __future__ import annotations

import pytest
import torch

from mad.data import load_default
from mad.generator.fits import node_fits, op_fits, value_fits
from mad.generator.kernels import argument_fault, index_bounds, index_value_fault, view_fault
from mad.generator.model import GeneratorConfig, GraphTransformer
from mad.generator.sample import (Sampler, _Seq, channel_dim, holds_ids, ids_fault, index_fault, layout_fault,
                                  node_fault, slice_fault)
from mad.graph import ArchGraph, GraphBuilder, get_op
from mad.graph.builder_ops import port_count
from mad.graph.passes.edit import eliminate_dead_code
from mad.tokenizer import Assembler, GraphTokenizer

DIMS = {"B": 2, "T": 16}


def test_op_fits_rejects_inputs_the_op_cannot_take():
    assert op_fits("conv2d", [["B", 3, 28, 28]], DIMS)
    assert not op_fits("conv2d", [["B", 28]], DIMS)  # no channel dim for a 2-d conv
    assert not op_fits("conv1d", [[3, "B", 8]], DIMS)  # the channel dim would be the batch
    assert not op_fits("batch_norm", [["B"]], DIMS)
    assert op_fits("add", [["B", 64, 8, 8], ["B", 64, 1, 1]], DIMS)
    assert not op_fits("add", [["B", 64, 8, 8], ["B", 32, 8, 8]], DIMS)
    assert op_fits("div_", [["B", 64], [64]], DIMS)
    assert not op_fits("div_", [["B", 1], ["B", 64]], DIMS)  # in place: the result may not outgrow the first input
    assert not op_fits("div_", [["B*T", 64], ["B*T"]], {"B": 2, "T": 32})  # B*T is 64 at batch 2 only
    assert not op_fits("linear", [["B", "T"]], DIMS)  # in_features must be concrete
    assert op_fits("linear", [["B", "T", 64], [32, 64]], DIMS)
    assert not op_fits("linear", [["B", "T", 64], [32, 48]], DIMS)
    assert not op_fits("cat", [["B", 3], ["B", 3, 4]], DIMS)
    assert not op_fits("scaled_dot_product_attention", [["B", 4, "T", 16], ["B", 4, "T", 8], ["B", 4, "T", 8]], DIMS)


@pytest.mark.parametrize("op,key,value,shapes,attrs,ok", [
    ("conv2d", "s.kernel_size", [3, 3], [["B", 3, 28, 28]], {}, True),
    ("conv2d", "s.kernel_size", [3], [["B", 3, 28, 28]], {}, False),  # wrong rank
    ("conv2d", "s.kernel_size", [7, 7], [["B", 3, 4, 4]], {}, False),  # larger than the input
    ("conv2d", "s.kernel_size", [7, 7], [["B", 3, 4, 4]], {"a.padding": [2, 2]}, True),
    ("conv2d", "a.groups", 3, [["B", 64, 8, 8]], {}, False),
    ("conv2d", "s.out_channels", 10, [["B", 64, 8, 8]], {"a.groups": 4}, False),
    ("conv2d", "s.out_channels", 32, [["B", 64, 8, 8]], {"a.groups": 4}, True),
    ("layer_norm", "a.normalized_shape", [64], [["B", "T", 64]], {}, True),
    ("select", "a.index", 1, [["B", 4, 8]], {"a.dim": 0}, False),  # out of range for a batch of one
    ("select", "a.index", -1, [["B", 4, 8]], {"a.dim": 0}, True),
    ("select", "a.index", 3, [["B", 4, 8]], {"a.dim": 1}, True),
    ("select", "a.index", 4, [["B", 4, 8]], {"a.dim": -2}, False),
    ("layer_norm", "a.normalized_shape", [32], [["B", "T", 64]], {}, False),
    ("reshape", "a.shape", ["B", -1], [["B", 64, 4]], {}, True),
    ("reshape", "a.shape", ["B", 3, -1], [["B", 64, 4]], {}, False),
    ("reshape", "a.shape", ["B", 100], [["B", 64, 4]], {}, False),
    ("reshape", "a.shape", [-1, 4], [[2, 64]], {}, True),
    ("reshape", "a.shape", ["B", -1], [[4, 64]], {}, False),  # 256 is not a multiple of every batch size
    ("view", "a.size", ["B", "T", -1], [["B", "T", 4, 16]], {}, True),
    ("reshape", "a.shape", ["B", "S", -1], [["B", "T", 64]], {}, False),  # S is not declared
    ("transpose", "a.dim0", 3, [["B", "T", 64]], {}, False),
    ("transpose", "a.dim0", -3, [["B", "T", 64]], {}, True),
    ("unsqueeze", "a.dim", 3, [["B", "T", 64]], {}, True),
    ("permute", "a.dims", [0, 2, 1], [["B", "T", 64]], {}, True),
    ("permute", "a.dims", [0, 2, 1, 3], [["B", "T", 64]], {}, False),
    ("cat", "a.dim", 1, [["B", 3, 8], ["B", 5, 8]], {}, True),
    ("cat", "a.dim", 2, [["B", 3, 8], ["B", 5, 8]], {}, False),
    ("cat", "a.dim", [1, 2], [["B", 3, 8], ["B", 5, 8]], {}, False),  # not an int
    ("expand", "a.size", ["B", -1], [["B", 4, 4]], {}, False),
    ("split", "a.split_size", 1, [["B", "4*B*T*T"]], {"a.dim": -1}, False),  # thousands of outputs
    ("split", "a.split_size", 1, [["B", "T", 64]], {"a.dim": 2}, True),  # 64 of them
    ("split", "a.split_size", 1, [["B", "4096*S"]], {"a.dim": -1}, False),  # S has no size: unknown many
    ("unbind", "a.dim", 1, [["B", "S", 8]], {}, False),
    ("split", "a.split_size", 32, [["B", "T", 4096]], {"a.dim": -1}, False),
    ("split", "a.split_size", 128, [["B", "T", 4096]], {"a.dim": -1}, True),
    ("split", "a.split_size", 0, [["B", "T", 64]], {"a.dim": -1}, False),
    ("unbind", "a.dim", 1, [["B", 3, 8]], {}, True),
    ("unbind", "a.dim", 1, [["B", 256, 8]], {}, False),
    ("unbind", "a.dim", 3, [["B", 3, 8]], {}, False),
])
def test_value_fits(op, key, value, shapes, attrs, ok):
    assert value_fits(op, key, value, shapes, DIMS, attrs) is ok


def test_node_fits_checks_a_left_out_default():
    assert not node_fits("cat", [["B", 3], ["B", 4]], DIMS, {})  # dim 0 by default: 3 and 4 differ off it
    assert node_fits("cat", [[2, 3], [5, 3]], DIMS, {})
    assert node_fits("cat", [["B", 3], ["B", 4]], DIMS, {"a.dim": 1})


def test_port_count_follows_scalar_arguments_and_layers():
    assert port_count("add", 1, {}) == 2
    assert port_count("add", 1, {"other": 1.0}) == 1
    assert port_count("linear", 1, {"out_features": 8}) == 1
    assert port_count("linear", 2, {}) == 2
    assert port_count("linear", 3, {}) == 3  # the bias is fed


@pytest.fixture(scope="module")
def sampler() -> Sampler:
    tok = GraphTokenizer.load("default", compress=False)
    cfg = GeneratorConfig(vocab_size=len(tok.vocab), cond_vocab=4, text_dim=8, d_model=8, n_layers=1, n_heads=1,
                          d_ff=8, max_len=64, max_cond=1)
    return Sampler(GraphTransformer(cfg), tok)


def _graphs(n: int) -> list[ArchGraph]:
    ds = load_default()
    out = []
    for split in ("test", "ood"):
        d = ds[split]
        out += [ArchGraph.from_json(d[i]["graph"]) for i in range(0, len(d), max(1, len(d) // n))]
    return out


def test_the_checks_accept_every_node_of_the_dataset_graphs(sampler, monkeypatch):
    """Soundness: replaying real graphs (zoo and random-space ones, test and ood splits) node by node, no op,
    attr value, default, input count or finished node (:func:`node_fault`) is refused by a check the sampler
    applies, but for index faults on graphs that really fail at batch 1."""
    tok = sampler.tok
    bad: list[str] = []
    add = Assembler.add

    def checked(self, r):
        flags = self.__dict__.setdefault("_holds_ids", [])
        chans = self.__dict__.setdefault("_channels", [])
        ids_in, chan_in = [flags[i] for i in r.refs], [chans[i] for i in r.refs]
        if r.op not in ("input", "parameter") and not r.ties:
            g, shapes = self.graph, [self.graph.nodes[self.ids[i]].shape for i in r.refs]
            n = len(r.refs)
            why = []
            if not op_fits(r.op, shapes, g.dims):
                why.append("op_fits")
            if not sampler._arity_ok(r.op, n):  # noqa: SLF001
                why.append("arity")
            for k, v in r.attrs.items():
                if k[:2] in ("a.", "s.") and not value_fits(r.op, k, v, shapes, g.dims, r.attrs):
                    why.append(f"{k}={v}")
                if k[:2] == "s." and not sampler._owns(r.op, n):  # noqa: SLF001
                    why.append(f"owns {k}")
            if not node_fits(r.op, shapes, g.dims, r.attrs):
                why.append("node_fits")
            kwargs = {k[2:]: v for k, v in r.attrs.items() if k[:2] in ("a.", "s.")}
            if get_op(r.op).category != "source" and port_count(r.op, n, kwargs) != n:
                why.append("ports")
            if why:
                bad.append(f"{g.name}: {r.op} on {shapes}: {why}")
        nid = add(self, r)
        node = self.graph.nodes[nid]
        why_not = node_fault(self.graph, node, ids_in, chan_in) if r.op not in ("input", "parameter") else None
        if why_not and why_not in (index_fault(self.graph, node), index_value_fault(self.graph, node)):
            refused.add(current[0])
        elif why_not and why_not != "dim 0 is not positive":  # empty tensors (a cache of length 0) compute
            bad.append(f"{self.graph.name}: {why_not}")        # nothing; decoding refuses them by design
        flags.append(holds_ids(self.graph, nid, ids_in))
        chans.append(channel_dim(self.graph.nodes[nid], chan_in))
        channels_last[0] += chans[-1] == 3
        return nid

    monkeypatch.setattr(Assembler, "add", checked)
    graphs = _graphs(60)
    texts = 0
    refused: set[int] = set()  # graphs with a node index_fault refuses: sound only if it fails at batch 1
    channels_last = [0]  # nodes known to hold their channels last: the layout rule is tested where it applies
    current = [0]
    for k, g in enumerate(graphs):
        current[0] = k
        h = tok.decode(tok.encode(g))
        texts += any(holds_ids(h, h.input_node(s.name), []) for s in h.inputs)
    assert len(graphs) > 60 and texts > 10 and channels_last[0] > 20
    for k in refused:
        g = graphs[k]
        with torch.no_grad(), pytest.raises((RuntimeError, IndexError)):
            g.to_module()(*g.example_inputs(seed=0, dims={"B": 1}))
    assert not bad, bad[:10]


def _seq(sampler: Sampler, shape: list, refs: list[int], op: str | None = None, attrs: dict | None = None) -> _Seq:
    b = GraphBuilder(dims={"B": 2})
    b.input("x", shape)
    prefix = sampler.tok.prefix_tokens(b.graph)
    s = _Seq(asm=sampler.tok.assembler(prefix), tokens=list(prefix))
    s.refs, s.phase = refs, "refs"
    if op is not None:
        s.op, s.phase, s.attrs = op, "attrs", dict(attrs or {})
        s.last_key = max(s.attrs, default="")
        s.in_shapes, s.fit_key = sampler._inputs(s)  # noqa: SLF001
    return s


def test_the_sampler_masks_ops_and_values_that_cannot_fit(sampler):
    ids, texts = sampler.op_ids, sampler.texts
    m = sampler._allowed(_seq(sampler, ["B", 28], [0]), 768)  # noqa: SLF001
    assert not m[ids["conv2d"]] and m[ids["batch_norm"]] and m[ids["linear"]] and m[ids["relu"]]
    m = sampler._allowed(_seq(sampler, ["B", 3, 8, 8], [0]), 768)  # noqa: SLF001
    assert m[ids["conv2d"]] and not m[ids["conv1d"]]
    # conv2d on an 8x8 image: kernels of rank 2 no larger than the input; the node cannot end before its sizes
    m = sampler._allowed(_seq(sampler, ["B", 3, 8, 8], [0], "conv2d"), 768)  # noqa: SLF001
    kernels = [texts[i] for i in m.nonzero()[0] if texts[i].startswith("s.kernel_size=")]
    assert kernels and all(len(v) == 2 and max(v) <= 8 for v in (sampler.pair_val[sampler.ids[k]] for k in kernels))
    assert not m[ids["relu"]] and not m[sampler.out_id]
    # add on one input needs its scalar other; a node of two inputs may not turn one into a scalar
    m = sampler._allowed(_seq(sampler, ["B", 3, 8, 8], [0], "add"), 768)  # noqa: SLF001
    assert not m[ids["relu"]] and any(texts[i].startswith("a.other=") for i in m.nonzero()[0])
    m = sampler._allowed(_seq(sampler, ["B", 3, 8, 8], [0], "add", {"a.other": 1.0}), 768)  # noqa: SLF001
    assert m[ids["relu"]]
    m = sampler._allowed(_seq(sampler, ["B", 3, 8, 8], [0, 0], "add"), 768)  # noqa: SLF001
    assert m[ids["relu"]] and not any(texts[i].startswith("a.other=") for i in m.nonzero()[0])


def test_after_a_run_of_batchless_nodes_the_next_node_takes_a_batched_input(sampler):
    from mad.generator.sample import has_batch

    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ["B", 4])
    b.op("add", b.op("arange", end=4), other=1.0)  # two nodes in a row without the batch dim
    s = _Seq(asm=sampler.tok.assembler(sampler.tok.prefix_tokens(b.graph)))
    s.batchy = [has_batch(s.asm.graph.nodes[i].shape) for i in s.asm.ids]
    s.flat = 2
    assert s.batchy == [True, False, False] and s.asm.ids[0] == x
    ids, ref = sampler.op_ids, {k: sampler.ids[f"@{k}"] for k in (1, 2, 3)}
    for limit, guarded in ((2, True), (3, False), (None, False)):
        sampler.max_flat = limit
        try:
            m = sampler._allowed(s, 768)  # noqa: SLF001 - a node's start: references, or a source op
            assert m[ref[3]] and m[ref[1]] != guarded and m[ids["arange"]] != guarded
            s.refs, s.phase = [2], "refs"  # it reads the batch-less add: no op yet, only a batched reference
            m = sampler._allowed(s, 768)  # noqa: SLF001
            assert m[ids["relu"]] != guarded and m[ref[3]]
            s.refs = [2, 0]
            assert sampler._allowed(s, 768)[ids["add"]]  # noqa: SLF001
        finally:
            sampler.max_flat, s.refs, s.phase = 48, [], "start"


def test_token_ids_become_numbers_only_through_an_embedding():
    """Token ids (an integer input over a vocabulary, and views, slices and integer casts of it) may be
    compared, masked and looked up, but not cast to floats or scaled: a graph doing so is no language model."""
    b = GraphBuilder(dims={"B": 2, "T": 8})
    ids = b.input("input_ids", ["B", "T"], dtype="int64", range=[0, 100])
    mask = b.input("attention_mask", ["B", "T"], dtype="int64", range=[0, 2])
    part = b.op("slice", ids, dim=1, start=0, end=4)
    as_float = b.op("to_dtype", part, dtype="float32")
    scaled = b.op("mul", ids, other=0.5)
    looked_up = b.op("embedding", ids, num_embeddings=100, embedding_dim=8)
    compared = b.op("ne_scalar", ids, other=0)
    mask_float = b.op("to_dtype", mask, dtype="float32")
    g = b.graph
    flags = {}
    for nid in g.topo_order():
        flags[nid] = holds_ids(g, nid, [flags[p] for p in g.predecessors(nid)])
    assert flags[ids] and flags[part] and not flags[mask] and not flags[looked_up] and not flags[compared]
    fault = {n: ids_fault(g.nodes[n], [flags[p] for p in g.predecessors(n)]) for n in g.nodes}
    assert "token ids" in fault[as_float] and "token ids" in fault[scaled]
    assert fault[looked_up] is None and fault[compared] is None and fault[mask_float] is None


def test_tensor_indices_pick_batch_entries_only_when_sized_by_the_batch():
    """``x[idx]`` on the batch dim with a fixed-size idx runs at the example batch and fails at batch 1 when idx
    holds a 1: refused; ``x[arange(B), j]`` (the index follows the batch) and indices on a concrete dim are
    allowed."""
    b = GraphBuilder(dims={"B": 4})
    x = b.input("x", ["B", 8, 16])
    idx = b.op("arange", end=3)
    rows, first = b.op("arange", end="B"), b.op("arange", end=1)
    on_batch = b.op("index", x, idx)                              # x[idx]: fixed batch entries
    by_batch = b.op("index", x, rows, first, indices=["%", "%"])  # x[arange(B), [0]]
    on_rows = b.op("index", x, idx, indices=[None, "%"])        # x[:, idx]: rows of a concrete dim
    sel_batch = b.op("index_select", x, idx, dim=0)
    sel_rows = b.op("index_select", x, idx, dim=1)
    g = b.graph
    assert "batch dim" in index_fault(g, g.nodes[on_batch]) and "batch dim" in index_fault(g, g.nodes[sel_batch])
    assert all(index_fault(g, g.nodes[n]) is None for n in (by_batch, on_rows, sel_rows))
    # positions a top-k finds along the features are sized by the batch but bounded by the features' size
    flat = b.op("reshape", x, shape=["B", -1])
    top = b.op("getitem", b.op("topk", b.op("linear", flat, out_features=4), k=2), index=1)  # (B, 2), values < 4
    by_rank = b.op("index", flat, b.op("reshape", top, shape=[-1]))
    # positions a sort finds along the tokens of the whole batch (expert routing) are bounded by them: allowed
    tokens = b.op("reshape", x, shape=[-1, 16])  # (8*B, 16)
    keys = b.op("reshape", b.op("linear", tokens, out_features=1), shape=[-1])
    routed = b.op("index", tokens, b.op("getitem", b.op("sort", keys, dim=0), index=1))
    assert "fixed-size dim" in index_fault(g, g.nodes[by_rank]) and index_fault(g, g.nodes[routed]) is None
    # positions 0..B-1 looking up a 4-row table, or rows of a concrete dim of 8: they run at B = 4, not at B = 5
    table = b.op("embedding", rows, num_embeddings=4, embedding_dim=3)
    past_rows = b.op("index_select", x, rows, dim=1)
    assert "grow with the batch" in index_fault(g, g.nodes[table])
    assert "grow with the batch" in index_fault(g, g.nodes[past_rows])
    assert index_fault(g, g.nodes[b.op("embedding", idx, num_embeddings=4, embedding_dim=3)]) is None


def test_a_table_sliced_at_the_sequence_length_must_follow_it():
    """``table[:T]`` of a 64-row table at T = 64 is recorded as 64 rows: at T = 32 it would be 32, so the graph
    holds at one length only (refused); a longer table gives ``T`` rows and passes."""
    b = GraphBuilder(dims={"B": 2, "T": 64})
    x = b.input("x", ["B", "T", 16])
    short = b.op("slice", b.parameter("short", [64, 16]), dim=0, start=0, end="T")
    long = b.op("slice", b.parameter("long", [128, 16]), dim=0, start=0, end="T")
    last = b.op("slice", x, dim=1, start=-1, end=9223372036854775807)
    g = b.graph
    assert g.nodes[short].shape == [64, 16] and g.nodes[long].shape == ["T", 16]
    assert "one length only" in slice_fault(g, g.nodes[short])
    assert slice_fault(g, g.nodes[long]) is None and slice_fault(g, g.nodes[last]) is None


def test_indices_may_not_be_activations_cast_to_integers():
    """Integer values cast from a network's activations are whatever the activations are: as indices they run
    out of range (refused); positions cast from an arange are fine."""
    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ["B", 8, 16])
    table = b.parameter("table", [4, 16])
    cast = b.op("to_dtype", b.op("mean", x, dim=[2]), dtype="int64")           # (B, 8) from activations
    moved = b.op("transpose", cast, dim0=0, dim1=1)                             # still those values
    pos = b.op("to_dtype", b.op("mul", b.op("to_dtype", b.op("arange", end=4), dtype="float32"), other=0.5),
               dtype="int64")                                                    # (4,) positions
    g = b.graph
    bad, via, ok = (b.op("index", table, i) for i in (cast, moved, pos))
    assert "activations" in index_fault(g, g.nodes[bad]) and "activations" in index_fault(g, g.nodes[via])
    assert index_fault(g, g.nodes[ok]) is None


def test_image_layers_read_channels_first_tensors_only():
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 3, 8, 8))
    c = b.op("conv2d", x, out_channels=16, kernel_size=3, padding=1)
    last = b.op("permute", c, dims=[0, 2, 3, 1])  # (B, 8, 8, 16): a ConvNeXt block's norm and MLP run here
    mlp = b.op("gelu", b.op("linear", b.op("layer_norm", last, normalized_shape=[16]), out_features=16))
    back = b.op("permute", mlp, dims=[0, 3, 1, 2])
    wrong = b.op("conv2d", mlp, out_channels=4, kernel_size=1)  # reads H (8) as the channels
    swapped = b.op("transpose", back, dim0=1, dim1=3)
    pooled = b.op("max_pool2d", swapped, kernel_size=2)
    flat = b.op("reshape", mlp, shape=[-1, 16, 8, 8])  # the layout after a reshape is not known
    g = b.graph
    chan: dict[str, int | None] = {}
    for nid in g.topo_order():
        chan[nid] = channel_dim(g.nodes[nid], [chan[p] for p in g.predecessors(nid)])
    assert (chan[x], chan[c], chan[last], chan[mlp], chan[back], chan[swapped], chan[flat]) == (1, 1, 3, 3, 1, 3, None)
    fault = {n: layout_fault(g.nodes[n], [chan[p] for p in g.predecessors(n)]) for n in g.nodes}
    assert "channels at dim 3" in fault[wrong] and "channels at dim 3" in fault[pooled]
    assert all(fault[n] is None for n in (c, last, mlp, back, flat))
    assert layout_fault(g.nodes[wrong], [None]) is None  # unknown: no refusal
    # global pooling: over H and W wherever the channels are; not the channels with one spatial dim
    pool_last, pool_first = b.op("mean", mlp, dim=[1, 2]), b.op("mean", back, dim=[2, 3])
    mixed, chan_mean = b.op("mean", mlp, dim=[2, 3]), b.op("mean", back, dim=[1], keepdim=True)
    assert "part of the image" in layout_fault(g.nodes[mixed], [3])
    assert all(layout_fault(g.nodes[n], [chan[p] for p in g.predecessors(n)]) is None
               for n in (pool_last, pool_first, chan_mean))


def _runs_at(g: ArchGraph, batch: int) -> bool:
    try:
        with torch.no_grad():
            g.to_module()(*g.example_inputs(seed=0, dims={"B": batch}))
        return True
    except (RuntimeError, IndexError):
        return False


def _with_output(b: GraphBuilder, nid: str) -> ArchGraph:
    """The part of the graph being built that computes ``nid``, with ``nid`` as its output."""
    g = b.graph.copy()
    g.set_outputs([nid])
    eliminate_dead_code(g)
    return g


def test_index_bounds_follow_arange_masks_and_scalar_arithmetic():
    b = GraphBuilder(dims={"B": 4})
    x = b.input("x", ["B", 3, 8])
    r = b.op("arange_start", start=2, end=6)                     # 2..5
    shifted = b.op("rsub", b.op("mul", b.op("add", r, other=1), other=3), other=40)  # 40 - 3 * (r + 1)
    mask = b.op("to_dtype", b.op("ge_scalar", x, other=0.0), dtype="int64")
    g = b.graph
    bind = {"B": 1}
    assert index_bounds(g, r, bind) == (2, 5)
    assert index_bounds(g, shifted, bind) == (22, 31)
    assert index_bounds(g, b.op("unsqueeze", shifted, dim=0), bind) == (22, 31)  # a view keeps the values
    assert index_bounds(g, mask, bind) == (0, 1)
    assert index_bounds(g, b.op("argmax", x, dim=-1), bind) == (0, 7)  # positions along a dim of 8
    top = b.op("getitem", b.op("topk", x, k=2, dim=1), index=1)
    assert index_bounds(g, b.op("mul", top, other=2), bind) == (0, 4)
    assert index_bounds(g, b.op("to_dtype", b.op("sum", x, dim=[-1]), dtype="int64"), bind) is None  # unknown


def test_index_values_past_the_picked_dim_are_refused_as_when_run():
    """``x[arange(4)]`` on the batch dim (expanded to follow the batch, so the shape rules pass) fails at
    batch 1: refused; ``x[:, arange(3)]`` on a dim of 3 and a mask cast to 0/1 on a dim of 3 run: allowed."""
    b = GraphBuilder(dims={"B": 4})
    x = b.input("x", ["B", 3, 8])
    rows = b.op("expand", b.op("unsqueeze", b.op("arange", end=4), dim=0), size=["B", -1])  # (B, 4), values 0..3
    past = b.op("index", x, rows)
    within = b.op("index", x, b.op("arange", end=3), indices=[None, "%"])
    bits = b.op("to_dtype", b.op("ge_scalar", b.op("select", x, dim=2, index=0), other=0.0), dtype="int64")
    masked = b.op("index", x, b.op("select", bits, dim=0, index=0), indices=[None, "%"])
    ranked = b.op("index", x, b.op("getitem", b.op("topk", x, k=2, dim=2), index=1))  # positions 0..7 of a batch
    g = b.graph
    assert "of size 1 at batch 1" in index_value_fault(g, g.nodes[past])
    assert "positions 0..7" in index_value_fault(g, g.nodes[ranked]) and not _runs_at(_with_output(b, ranked), 1)
    assert not _runs_at(_with_output(b, past), 1)
    for ok in (within, masked):
        assert index_value_fault(g, g.nodes[ok]) is None and _runs_at(_with_output(b, ok), 1)


def test_a_view_across_strides_is_refused_as_when_run():
    """``x.transpose(1, 2).view(B, -1)`` merges dims whose strides do not line up: refused (and it fails when
    run), also after a reshape that returns a view or an elementwise op (it keeps the layout); after a reshape
    that copies, after a layer (a new, contiguous tensor), or a view that only splits the last dim, it runs:
    allowed."""
    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ["B", 4, 6])
    t = b.op("transpose", x, dim0=1, dim1=2)                      # (B, 6, 4), not contiguous
    merged = b.op("view", t, size=["B", 24])
    split = b.op("view", t, size=["B", 6, 2, 2])                  # splits the contiguous last dim only
    copied = b.op("view", b.op("reshape", t, shape=["B", 24]), size=["B", 4, 6])  # the reshape had to copy
    same = b.op("view", b.op("reshape", t, shape=["B", 6, 4]), size=["B", 24])  # a reshape to its own shape does not
    relu = b.op("view", b.op("relu", t), size=["B", 24])          # an elementwise op keeps the layout
    plain = b.op("view", b.op("linear", t, out_features=4), size=["B", 24])  # a layer makes a contiguous one
    tiled = b.op("view", b.op("transpose", b.op("repeat", x, repeats=[1, 2, 1]), dim0=1, dim1=2), size=["B", 48])
    half = b.op("view", b.op("getitem", b.op("chunk", x, chunks=2, dim=-1), index=0), size=["B", 12])  # a slice
    g = b.graph
    for bad in (merged, same, relu, half, tiled):
        assert "non-contiguous" in view_fault(g, g.nodes[bad]) and not _runs_at(_with_output(b, bad), 1)
    for ok in (split, copied, plain):
        assert view_fault(g, g.nodes[ok]) is None and _runs_at(_with_output(b, ok), 1)


def test_argument_checks_the_kernels_make():
    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ["B", 4, 8, 8])
    bounds2d = b.op("bucketize_tensor", x, b.parameter("b2", [2, 3]))
    bounds1d = b.op("bucketize_tensor", x, b.parameter("b1", [3]))
    bad_conv = b.op("conv2d", x, b.parameter("w1", [2, 1, 3, 3]), groups=4, padding=[1, 1])
    ok_conv = b.op("conv2d", x, b.parameter("w2", [8, 1, 3, 3]), groups=4, padding=[1, 1])
    second = b.op("select", x, dim=0, index=1)                  # entry 1 of the batch: none at batch 1
    g = b.graph
    assert "at batch 1" in argument_fault(g, g.nodes[second]) and not _runs_at(_with_output(b, second), 1)
    assert argument_fault(g, g.nodes[b.op("select", x, dim=1, index=3)]) is None
    assert "one needed" in argument_fault(g, g.nodes[bounds2d]) and not _runs_at(_with_output(b, bounds2d), 1)
    assert "groups" in argument_fault(g, g.nodes[bad_conv]) and not _runs_at(_with_output(b, bad_conv), 1)
    for ok in (bounds1d, ok_conv):
        assert argument_fault(g, g.nodes[ok]) is None and _runs_at(_with_output(b, ok), 1)


def test_the_final_check_runs_on_one_thread_and_gives_the_thread_count_back(monkeypatch):
    """``runs`` checks a graph on one torch thread (new shapes set up faster) and restores the caller's count,
    also when the graph fails; it fails the graphs the kernel rules refuse."""
    from mad.generator.api import runs
    from mad.graph.module import ArchModule

    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ["B", 4, 6])
    bad = b.op("view", b.op("transpose", x, dim0=1, dim1=2), size=["B", 24])
    ok = b.op("relu", x)
    seen: list[int] = []
    run = ArchModule.run_checked

    def spy(self, *args):
        seen.append(torch.get_num_threads())
        return run(self, *args)

    monkeypatch.setattr(ArchModule, "run_checked", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert runs(_with_output(b, ok)) is None and torch.get_num_threads() == 2
        assert "view" in runs(_with_output(b, bad)) and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_one_thread_gives_the_count_back_on_error():
    from mad.train.threads import one_thread

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(ValueError), one_thread():
            assert torch.get_num_threads() == 1
            raise ValueError("inside")
        assert torch.get_num_threads() == 2
        with one_thread(enabled=False):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
