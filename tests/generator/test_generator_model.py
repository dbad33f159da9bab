"""The graph transformer: structure relations, causality, cached decoding, constrained sampling, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mad.data.random_space import RandomSpaceConfig, sample
from mad.generator.corpus import Example, condition_tokens
from mad.generator.constraints import constraints_of
from mad.generator.model import GeneratorConfig, GraphTransformer, KVCache
from mad.generator.sample import Sampler, fork_starmap
from mad.generator.structure import ROLE, NodeDistances, bucket_row, buckets, node_distances, token_structure
from mad.graph import GraphError
from mad.generator.train import Batcher, TrainConfig, loss_of
from mad.generator.text_encoder import TextEncoder
from mad.graph import GraphBuilder
from mad.tokenizer import GraphTokenizer


@pytest.fixture(scope="module")
def tok() -> GraphTokenizer:
    return GraphTokenizer.load("default", compress=False)


def _tiny(tok: GraphTokenizer, bias: bool = True, heads: int = 2, kv_heads: int | None = None) -> GraphTransformer:
    cfg = GeneratorConfig(vocab_size=len(tok.vocab), cond_vocab=8, text_dim=64, d_model=32, n_layers=2,
                          n_heads=heads, d_ff=64, max_len=256, max_cond=3, structure_bias=bias, n_kv_heads=kv_heads)
    m = GraphTransformer(cfg).eval()
    if m.bias is not None:
        torch.nn.init.normal_(m.bias.weight, std=1.0)  # a bias that matters
    return m


def test_token_structure_reads_the_graph(tok):
    g = sample(4, RandomSpaceConfig(modality="image", max_params=200_000))
    s = token_structure(tok.tokens(g))
    order = list(tok.decode(tok.encode(g)).nodes)
    assert len(s.parents) == len(order)
    h = tok.decode(tok.encode(g))
    index = {nid: i for i, nid in enumerate(h.nodes)}
    for nid in h.nodes:
        assert sorted(s.parents[index[nid]]) == sorted(index[p] for p in h.predecessors(nid))


def test_incremental_relations_match_the_full_matrix(tok):
    g = sample(6, RandomSpaceConfig(modality="sequence", num_layers=(1, 1), max_params=200_000))
    toks = tok.tokens(g)
    s = token_structure(toks)
    full = buckets(s, 0)
    d = NodeDistances()
    for ps in s.parents:
        d.add(ps)
    np.testing.assert_array_equal(np.array(d.rows[-1]), node_distances(s.parents)[-1])
    for t in range(len(toks)):
        row = bucket_row(d, int(s.node[t]), int(s.role[t]), s.node[: t + 1])
        np.testing.assert_array_equal(row, full[t, : t + 1], err_msg=f"token {t} {toks[t]}")


def _inputs(tok, toks, cfg):
    s = token_structure(toks)
    t = len(toks)
    return dict(tokens=torch.tensor([[tok.vocab.id(x) for x in toks]]), pos=torch.arange(t)[None],
                role=torch.from_numpy(s.role)[None], depth=torch.from_numpy(s.depth)[None],
                text=torch.randn(1, cfg.text_dim), cond=torch.tensor([[1, 2, 0]]),
                bucket=torch.from_numpy(buckets(s, cfg.prefix_len))[None],
                keep=torch.tensor([[True, True, True, False] + [True] * t])), s


def test_causal_mode_does_not_look_ahead(tok):
    m = _tiny(tok)
    toks = tok.tokens(sample(1, RandomSpaceConfig(modality="image", max_params=100_000)))[:40]
    x, _ = _inputs(tok, toks, m.cfg)
    a = m(**x)
    y = dict(x)
    y["tokens"] = x["tokens"].clone()
    y["tokens"][0, 30:] = tok.vocab.id("op:relu")
    b = m(**y)
    torch.testing.assert_close(a[0, :30], b[0, :30])
    assert not torch.allclose(m(**x, masked=True)[0, :30], m(**y, masked=True)[0, :30])


@pytest.mark.parametrize("bias, heads, kv_heads", [(True, 2, None), (False, 2, None), (True, 4, 1), (False, 4, 2)])
def test_cached_decoding_equals_the_full_forward(tok, bias, heads, kv_heads):
    m = _tiny(tok, bias, heads, kv_heads)
    toks = tok.tokens(sample(2, RandomSpaceConfig(modality="sequence", max_params=100_000)))[:50]
    x, s = _inputs(tok, toks, m.cfg)
    full = m(**x)[0]  # (T, V)
    p = m.cfg.prefix_len
    cache = KVCache(m.cfg.n_layers)
    keep = x["keep"][0]
    with torch.no_grad():
        pre = m.prefix(x["text"], x["cond"])
        first = m.embed(x["tokens"][:, :1], x["pos"][:, :1], x["role"][:, :1], x["depth"][:, :1])
        n = p + 1
        allowed = torch.ones(n, n, dtype=torch.bool).tril() & keep[None, :n]
        allowed |= torch.eye(n, dtype=torch.bool)
        outs = [m.step(torch.cat([pre, first], 1), x["bucket"][:, :n, :n], allowed[None], cache)[0, -1]]
        for t in range(1, len(toks)):
            e = m.embed(x["tokens"][:, t: t + 1], x["pos"][:, t: t + 1], x["role"][:, t: t + 1],
                        x["depth"][:, t: t + 1])
            q = p + t
            al = keep[None, None, : q + 1].clone()
            outs.append(m.step(e, x["bucket"][:, q: q + 1, : q + 1], al, cache)[0, -1])
    torch.testing.assert_close(torch.stack(outs), full, atol=1e-4, rtol=1e-4)


def test_grouped_key_value_heads_shrink_the_cache_and_the_projection(tok):
    m = _tiny(tok, False, heads=4, kv_heads=1)
    assert m.blocks[0].qkv.weight.shape == (32 + 2 * 8, 32)  # queries (4 heads of 8), one key head, one value head
    cache = KVCache(m.cfg.n_layers)
    with torch.no_grad():
        m.step(torch.randn(3, 5, 32), None, torch.ones(5, 5, dtype=torch.bool).tril()[None].expand(3, -1, -1), cache)
    assert cache.k[0].shape[:2] == (3, 1) and cache.vt[0].shape[:3] == (3, 1, 8)
    with pytest.raises(ValueError, match="n_kv_heads"):
        GeneratorConfig(vocab_size=10, cond_vocab=2, d_model=32, n_heads=4, n_kv_heads=3)
    assert GeneratorConfig.from_dict({"vocab_size": 10, "cond_vocab": 2}).kv_heads == 6  # a config of before


def test_step_states_give_the_logits_of_any_columns(tok):
    m = _tiny(tok, False)
    toks = tok.tokens(sample(1, RandomSpaceConfig(modality="sequence", max_params=100_000)))[:20]
    x, _ = _inputs(tok, toks, m.cfg)
    n = m.cfg.prefix_len + len(toks)
    xs = torch.cat([m.prefix(x["text"], x["cond"]), m.embed(x["tokens"], x["pos"], x["role"], x["depth"])], 1)
    allowed = (torch.ones(n, n, dtype=torch.bool).tril() & x["keep"][0][None]) | torch.eye(n, dtype=torch.bool)
    with torch.no_grad():
        full = m.step(xs, None, allowed[None], KVCache(m.cfg.n_layers))
        h = m.step(xs, None, allowed[None], KVCache(m.cfg.n_layers), head=False)
        cols = torch.tensor([0, 5, 7, m.cfg.vocab_size - 1])
        assert h.shape == (1, n, m.cfg.d_model)
        torch.testing.assert_close(m.logits(h), full)
        torch.testing.assert_close(m.logits(h, cols), full[..., cols])


def test_constrained_sampling_never_emits_an_invalid_prefix(tok):
    m = _tiny(tok)
    sampler = Sampler(m, tok)
    b = GraphBuilder(dims={"B": 2})
    b.input("pixel_values", ("B", 1, 8, 8))
    prefix = tok.prefix_tokens(b.graph)
    out = sampler.sample(4, torch.zeros(m.cfg.text_dim), torch.zeros(m.cfg.max_cond, dtype=torch.long), prefix,
                         max_len=120, seed=0, max_retries=4)
    assert len(out) == 4
    for smp in out:
        toks = smp.tokens
        bounds = [k for k in range(len(prefix), len(toks) + 1)
                  if k == len(toks) or toks[k].startswith("@") or toks[k].startswith("op:") or toks[k] == "<out>"]
        for k in bounds:
            h = tok.decode(toks[:k], partial=True)
            h.validate(partial=not h.outputs)
        if smp.graph is not None:
            smp.graph.validate()
            assert tok.decode(toks).wl_hash() == smp.graph.wl_hash()


def test_parameter_budget_is_kept_node_by_node(tok):
    m = _tiny(tok)
    sampler = Sampler(m, tok)
    b = GraphBuilder(dims={"B": 2})
    b.input("pixel_values", ("B", 3, 16, 16))
    out = sampler.sample(3, torch.zeros(m.cfg.text_dim), torch.zeros(m.cfg.max_cond, dtype=torch.long),
                         tok.prefix_tokens(b.graph), max_len=150, seed=1, max_params=2_000, max_retries=4)
    for smp in out:
        if smp.graph is not None:
            assert smp.graph.num_params <= 2_000


def test_node_flops_add_up_to_the_graph_flops(tok):
    from mad.graph import interpret
    from mad.graph.interpreter import node_flops

    for seed, modality in ((0, "image"), (3, "sequence")):
        g = sample(seed, RandomSpaceConfig(modality=modality, max_params=100_000))
        assert sum(node_flops(g, nid) for nid in g.nodes) == interpret(g.copy(), update=False).flops > 0
        asm = tok.assembler(tok.prefix_tokens(g))  # the sampler's running count, also after taking a node back
        for _ in range(2):
            assert asm.flops == interpret(asm.graph.copy(), update=False).flops > 0
            asm.pop()


def test_fork_starmap_keeps_the_order_and_unfreezes_the_collector():
    import gc

    frozen = gc.get_freeze_count()
    assert fork_starmap(pow, [(2, k) for k in range(9)], 2, chunksize=2) == [2 ** k for k in range(9)]
    assert gc.get_freeze_count() == frozen


def test_worker_processes_draw_the_shares_of_one_process_calls(tok):
    m = _tiny(tok)
    sampler = Sampler(m, tok)
    b = GraphBuilder(dims={"B": 2})
    b.input("pixel_values", ("B", 1, 8, 8))
    args = (torch.zeros(m.cfg.text_dim), torch.zeros(m.cfg.max_cond, dtype=torch.long), tok.prefix_tokens(b.graph))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' setting: the same float sums
    try:
        sampler.workers = 2
        both = sampler.sample(33, *args, max_len=80, seed=3, max_retries=4)
        sampler.workers = 1
        one = sampler.sample(17, *args, max_len=80, seed=3 * 1_000_003, max_retries=4)
        two = sampler.sample(16, *args, max_len=80, seed=3 * 1_000_003 + 1, max_retries=4)
    finally:
        torch.set_num_threads(threads)
    assert len(both) == 33
    assert [s.tokens for s in both] == [s.tokens for s in one + two]
    assert [s.graph.wl_hash() if s.graph else None for s in both] == \
        [s.graph.wl_hash() if s.graph else None for s in one + two]


def test_a_few_steps_fit_one_batch(tok):
    graphs = [sample(s, RandomSpaceConfig(modality="any", max_params=100_000)) for s in range(3)]
    ex = [Example(tok.tokens(g)[:200], ["a network"], condition_tokens(constraints_of(g, flops=1)), "t", g.wl_hash())
          for g in graphs]
    conds = ["<none>"] + sorted({c for e in ex for c in e.cond})
    m = _tiny(tok).train()
    m.cfg.max_cond = len(conds)
    m = GraphTransformer(GeneratorConfig(**{**m.cfg.to_dict(), "cond_vocab": len(conds), "max_cond": 16}))
    bt = Batcher(ex, tok.vocab.ids, {c: i for i, c in enumerate(conds)}, TextEncoder(dim=64), m.cfg,
                 TrainConfig(cond_drop=0.0, text_drop=0.0), seed=0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = {}
    for masked in (False, True):
        batch = bt.make([0, 1, 2], masked=masked, train=False)
        first = None
        for _ in range(15):
            loss, _ = loss_of(m, batch)
            first = first if first is not None else loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[masked] = (first, loss.item())
    assert all(last < 0.7 * first for first, last in losses.values()), losses


def test_an_epoch_repeats_converted_models_zoo_repeat_times(tok):
    from collections import Counter

    toks = tok.tokens(sample(0, RandomSpaceConfig(modality="image", max_params=100_000)))
    ex = [Example(toks, ["x"], [], src, "h") for src in ("random/1", "zoo/bert/v0", "random/2", "zoo/vit/v1")]
    cfg = GeneratorConfig(vocab_size=len(tok.vocab), cond_vocab=2, text_dim=64, max_cond=2)
    for repeat in (1, 3):
        bt = Batcher(ex, tok.vocab.ids, {"<none>": 0}, TextEncoder(dim=64), cfg, TrainConfig(zoo_repeat=repeat))
        seen = Counter(i for batch in bt.batches() for i in batch)
        assert seen == {0: 1, 1: repeat, 2: 1, 3: repeat}


def test_masked_batches_hide_ops_and_edges(tok):
    g = sample(0, RandomSpaceConfig(modality="image", max_params=100_000))
    ex = [Example(tok.tokens(g), ["x"], [], "t", "h")]
    cfg = GeneratorConfig(vocab_size=len(tok.vocab), cond_vocab=2, text_dim=64, max_cond=2)
    bt = Batcher(ex, tok.vocab.ids, {"<none>": 0}, TextEncoder(dim=64), cfg, TrainConfig(), seed=3)
    batch = bt.make([0], masked=True, train=True)
    hidden = batch["tokens"][0] == tok.vocab.id("<mask>")
    assert hidden.any()
    assert (batch["target"][0][hidden] >= 0).all() and (batch["target"][0][~hidden] == -100).all()
    roles = batch["role"][0][hidden]
    assert set(roles.tolist()) <= {ROLE["ref"], ROLE["op"], ROLE["key"]}


@pytest.mark.parametrize("bias", [True, False])
def test_relation_buckets_are_made_only_for_the_structure_bias(tok, bias):
    g = sample(0, RandomSpaceConfig(modality="image", max_params=100_000))
    ex = [Example(tok.tokens(g)[:120], ["x"], [], "t", "h")]
    cfg = GeneratorConfig(vocab_size=len(tok.vocab), cond_vocab=2, text_dim=64, max_cond=2, d_model=32,
                          n_layers=1, n_heads=2, d_ff=64, structure_bias=bias)
    bt = Batcher(ex, tok.vocab.ids, {"<none>": 0}, TextEncoder(dim=64), cfg, TrainConfig(), seed=0)
    batch = bt.make([0], masked=False, train=False)
    assert ("bucket" in batch) == bias
    loss, _ = loss_of(GraphTransformer(cfg), batch)
    assert torch.isfinite(loss)


def test_inputs_no_op_accepts_are_a_dead_end_not_a_failure(tok):
    # the only op on offer takes one input but is offered on two to four: every choice of references ends
    # with no op left; the sampler must back out of such choices and still finish every sample
    m = _tiny(tok)
    sampler = Sampler(m, tok, op_arity={"linear": [2, 3, 4]})
    b = GraphBuilder(dims={"B": 2})
    b.input("pixel_values", ("B", 1, 8, 8))
    out = sampler.sample(6, torch.zeros(m.cfg.text_dim), torch.zeros(m.cfg.max_cond, dtype=torch.long),
                         tok.prefix_tokens(b.graph), max_len=60, seed=0, max_retries=6)
    assert sum(smp.retries for smp in out) > 0
    for smp in out:
        assert smp.graph is not None, smp.error
        smp.graph.validate()
        assert {n.op for n in smp.graph.nodes.values()} == {"input"}


@pytest.mark.parametrize("shape, fault", [
    (["B", 3, "T"], None), (["B*T", 4], None), (["(T - 1)//2 + 1", "B"], None), (5, None),
    ([["B", 3], ["B", 2]], None), (["32 * (4 // B) // (64 // T)", 3], "not a polynomial"),
    (["B + 1", 2], "mixes the batch"), (["B", 0], "not positive"), (["T - 9"], "not positive at batch 1"),
    (["4*B*B", 16], "mixes the batch"), (["B", 32, "4*B*B", 16], "in 2 dims"), (["B", "B"], None),
    (["B", "B", 8, 32], "in 2 dims"), ([["B", "B"], ["B", 4]], None),
])
def test_batch_fault_finds_shapes_that_do_not_run_at_every_batch_size(shape, fault):
    from mad.generator.sample import batch_fault

    why = batch_fault(shape, {"B": 2, "T": 8})
    assert (why is None) if fault is None else (fault in why)


def test_ops_are_offered_only_on_inputs_of_the_dtype_kinds_they_were_seen_with(tok):
    from mad.generator.corpus import op_input_kinds
    from mad.generator.sample import _Seq, dtype_kind

    b = GraphBuilder(dims={"B": 2, "T": 8})
    ids = b.input("input_ids", ("B", "T"), dtype="int64", range=[0, 32])
    e = b.op("embedding", ids, num_embeddings=32, embedding_dim=16)
    b.output(b.op("gelu", e))
    g = b.build()
    kinds = op_input_kinds([g])
    assert kinds["embedding"] == ["i"] and kinds["gelu"] == ["f"]
    assert [dtype_kind(d) for d in ("float16", "bfloat16", "int64", "bool", ["float32"], None)] == \
        ["f", "f", "i", "b", "t", "?"]
    sampler = Sampler(_tiny(tok), tok, op_inputs=kinds)
    s = _Seq(asm=tok.assembler(tok.prefix_tokens(g)))
    gelu, emb, relu = (sampler.op_ids[o] for o in ("gelu", "embedding", "relu"))
    s.refs = [0]  # the token ids
    ops = sampler._ops_on(s)  # noqa: SLF001
    assert not ops[gelu] and ops[emb] and ops[relu]  # relu was not in the table: any kind
    s.refs = [1]  # the embeddings
    ops = sampler._ops_on(s)  # noqa: SLF001
    assert ops[gelu] and not ops[emb]
    assert Sampler(_tiny(tok), tok)._ops_on(s)[emb]  # noqa: SLF001 - without a table, every op


def test_size_fault_rejects_tensors_too_large_to_run():
    from mad.generator.sample import MAX_NUMEL, size_fault

    assert size_fault(["B", 64, "T"], {"B": 4, "T": 128}) is None
    assert "elements" in size_fault(["B", MAX_NUMEL // 4, "T"], {"B": 1, "T": 8})
    assert size_fault([["B", 3], ["B", MAX_NUMEL + 1]], {}) is not None
    assert size_fault(["B", "4 // B"], {}) is None  # not a size question: batch_fault names it
    assert size_fault(["B", 64, "T"], {"T": 128}, limit=8_000) is not None  # a prefix's own size can raise it
    assert size_fault(["B", 64, "T"], {"T": 128}, limit=8_192) is None


def test_numel_at_batch1_reads_symbols_at_their_example_sizes():
    from mad.generator.sample import numel_at_batch1

    assert numel_at_batch1(["B", 3, "T"], {"B": 8, "T": 5}) == 15  # batch 1, T at its example size
    assert numel_at_batch1([["B", 2], ["2*B", "T", 4]], {"T": 3}) == 24  # the largest of several outputs
    assert numel_at_batch1(["B", "U"], {}) is None  # an unknown symbol: not a size question


@pytest.mark.slow
def test_a_checkpoint_without_optimizer_state_continues_from_its_recorded_step(tmp_path):
    """A copy of a shipped checkpoint (weights, config, record; no optim.pt) resumes at the record's step from
    its weights (about a minute: the corpus and the 200-graph validation corpus are built first)."""
    import json
    import shutil

    from safetensors.torch import load_file

    from mad.generator.train import train

    cfg = TrainConfig(steps=2, max_train_graphs=12, extra_random=0, paraphrases=0, batch_tokens=1024,
                      eval_every=100, save_every=100, model={"d_model": 32, "n_layers": 1, "n_heads": 2,
                                                             "d_ff": 64, "structure_bias": False})
    run = train(cfg, tmp_path / "a", progress=False, device="cpu")
    ship = tmp_path / "ship"
    ship.mkdir()
    for f in ("model.safetensors", "config.json", "record.json", "corpus.jsonl", "val_corpus.jsonl"):
        shutil.copy(run / f, ship / f)
    before = load_file(str(ship / "model.safetensors"))
    cfg.steps = 3
    train(cfg, ship, resume=True, progress=False, device="cpu")
    rec = json.loads((ship / "record.json").read_text())
    assert rec["steps"] == 3 and rec["segments"][-1]["from_step"] == 2
    after = load_file(str(ship / "model.safetensors"))
    assert set(after) == set(before) and any(not torch.equal(after[k], before[k]) for k in before)


def test_inplace_fault_refuses_a_trainable_parameter():
    from mad.generator.sample import inplace_fault
    from mad.graph.builder import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ("B", 32))
    y = b.input("y", ("B", 64))
    w, s = b.parameter("w", [32]), b.parameter("s", [1])
    buf = b.parameter("buf", [32], kind="buffer")
    h = b.op("gelu", x)
    assert inplace_fault(b.graph, b.graph.nodes[b.op("div_", h, w)]) is None  # into a computed tensor: fine
    with pytest.raises(GraphError, match="broadcast"):  # (B, 32, 1) cannot take a (B, 32, 64) result in place
        b.op("mul_", b.op("unsqueeze", h, dim=2), b.op("unsqueeze", y, dim=1))
    assert "trainable parameter" in inplace_fault(b.graph, b.graph.nodes[b.op("div_", w, s)])
    assert inplace_fault(b.graph, b.graph.nodes[b.op("div_", buf, s)]) is None  # a buffer may change
    assert inplace_fault(b.graph, b.graph.nodes[b.op("div", w, s)]) is None  # not in place


def test_inplace_fault_refuses_a_tensor_the_backward_pass_may_need():
    """Each refused case fails in backward when built (what the check at batch 1 and 4 found in samples); the
    admitted ones run."""
    from mad.generator import runs
    from mad.generator.sample import inplace_fault
    from mad.graph.builder import GraphBuilder

    def graph(case: str):
        b = GraphBuilder(dims={"B": 2})
        x = b.input("x", ("B", 32))
        w = b.parameter("w", [32])
        h = b.op("gelu", b.op("mul", x, w))
        if case == "read":  # mul saved h for w's gradient
            out = b.op("add", b.op("mul", h, w), b.op("div_", h, w))
        elif case == "view":  # the same through a reshape of h
            m = b.op("mul", h, w)
            v = b.op("div_", b.op("reshape", h, shape=[-1, 4, 8]), b.op("reshape", w, shape=[4, 8]))
            out = b.op("add", m, b.op("reshape", v, shape=[-1, 32]))
        elif case == "saves_output":  # relu's backward reads its output
            out = b.op("div_", b.op("relu", h), w)
        else:  # in place on a tensor only add and cat read before (their backward does not); any node after them
            early = b.op("cat", b.op("add", h, w), h, dim=1)
            out = b.op("mul", b.op("mul_", b.op("add_", h, w), w), h)
            out = b.op("add", b.op("sum", early, dim=[1], keepdim=True), out)
        b.output(out)
        return b.build()

    refused = [("read", "for its backward"), ("view", "for its backward"), ("saves_output", "its backward reads")]
    for case, why in refused:
        g = graph(case)
        node = next(n for n in g.nodes.values() if n.op.endswith("_"))
        assert why in inplace_fault(g, node), case
        assert "modified by an inplace operation" in runs(g), case
    g = graph("fresh")
    assert all(inplace_fault(g, n) is None for n in g.nodes.values())
    assert runs(g) is None


def test_the_output_depends_on_an_input(tok):
    """A tensor made from its size alone (``ones`` of the batch size) has the batch dim but ignores the input:
    it may not end a graph, however the sample ends (here at the length limit, closed at once)."""
    m = _tiny(tok)
    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ("B", 4))
    fed = b.op("relu", x)
    b.op("ones", size=["B", 4], dtype="float32")
    prefix = tok.prefix_tokens(b.graph)
    out = Sampler(m, tok).sample(8, torch.zeros(m.cfg.text_dim), torch.zeros(m.cfg.max_cond, dtype=torch.long),
                                 prefix, max_len=2, seed=0)
    graphs = [smp.graph for smp in out if smp.graph is not None]
    assert graphs
    for g in graphs:
        assert "x" in g.ancestors(g.outputs), g.outputs
    assert any(g.outputs == [fed] for g in graphs)
