"""The shipped generator through its API and the CLI: suggest, complete, edit; one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mad.cli.app import app
from mad.data.random_space import RandomSpaceConfig, sample
from mad.generator import GeneratorError, load, runs
from mad.generator.api import output_rule
from mad.graph.passes import cut


@pytest.fixture(scope="module")
def gen():
    return load("default", device="cpu")


def test_suggest_meets_the_task_and_the_budget(gen):
    graphs = gen.suggest("a small CNN for 28x28 grayscale digits with batch norm", n=2, num_classes=10,
                         max_params=150_000, seed=0)
    assert 1 <= len(graphs) <= 2
    scores = [g.meta["generator"]["adherence"] for g in graphs]
    assert scores == sorted(scores, reverse=True)
    assert len({g.wl_hash() for g in graphs}) == len(graphs)
    for g in graphs:
        assert runs(g) is None
        assert g.inputs[0].shape == ["B", 1, 28, 28]
        assert g.nodes[g.outputs[0]].shape == ["B", 10]
        assert g.num_params <= 150_000


def test_the_flops_budget_is_kept_node_by_node(gen):
    import torch

    from mad.graph import GraphBuilder, interpret

    b = GraphBuilder(dims={"B": 2})
    b.input("pixel_values", ("B", 3, 32, 32))
    args = (torch.zeros(gen.cfg.text_dim), torch.zeros(gen.cfg.max_cond, dtype=torch.long),
            gen.tokenizer.prefix_tokens(b.graph))
    budget = 100_000

    def flops(samples):
        return [interpret(s.graph.copy(), update=False).flops for s in samples if s.graph is not None]

    assert max(flops(gen.sampler.sample(4, *args, max_len=200, seed=0))) > budget  # the budget bites
    kept = flops(gen.sampler.sample(4, *args, max_len=200, seed=0, max_flops=budget))
    assert kept and max(kept) <= budget


def test_suggest_ranks_by_the_ghn_quality_estimate_or_by_likelihood(gen):
    prompt = "a convolutional network for 28x28 grayscale digits, 10 classes, under 200k parameters"
    by_q = gen.suggest(prompt, n=4, seed=0, oversample=2)  # auto: the request fits mnist5k
    by_lp = gen.suggest(prompt, n=4, seed=0, oversample=2, rank="likelihood")
    assert {g.meta["generator"]["ranked_by"] for g in by_q} == {"quality"}
    assert {g.meta["generator"]["ranked_by"] for g in by_lp} == {"likelihood"}
    q = [(g.meta["generator"]["adherence"], g.meta["generator"]["quality"]["estimate"]) for g in by_q]
    assert q == sorted(q, reverse=True) and all(g.meta["generator"]["quality"]["task"] == "mnist5k" for g in by_q)
    lp = [(g.meta["generator"]["adherence"], g.meta["generator"]["logprob_per_token"]) for g in by_lp]
    assert lp == sorted(lp, reverse=True)
    # the same samples (same seed), ordered two ways: none that likelihood puts first is expected to do better
    lp_est = gen._ghn_model().estimate(by_lp, "mnist5k")
    assert all(q[0] >= (a, e) for (a, _), e in zip(lp, lp_est))


def test_a_candidate_off_the_task_ranks_after_those_on_it(gen):
    from mad.graph.passes import retarget

    cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000)
    on = [retarget(sample(s, cfg), (1, 28, 28), num_classes=10) for s in (1, 2)]
    off = retarget(sample(3, cfg), (1, 28, 28), num_classes=5)  # fits no calibrated task
    cands = []
    for k, g in enumerate([off] + on):
        g.meta["generator"] = {}
        cands.append(((1.0, -0.1 * k), g))
    ranked = gen._rank(gen._by_quality(cands, "auto"), 3)
    assert [g.meta["generator"]["quality"]["estimate"] is None for g in ranked] == [False, False, True]
    assert ranked[-1] is off


def test_ranking_by_quality_needs_a_task_the_estimate_knows(gen):
    with pytest.raises(GeneratorError, match="rank must be one of"):
        gen.suggest("a CNN", n=1, rank="best")
    with pytest.raises(GeneratorError, match="fits none of the tasks"):  # no task has 16x16 colour images
        gen.suggest("a CNN for 16x16 colour images", n=1, input_shape=(3, 16, 16), num_classes=7, rank="quality")
    g = gen.suggest("a CNN for 16x16 colour images", n=1, input_shape=(3, 16, 16), num_classes=7)[0]  # auto
    assert g.meta["generator"]["ranked_by"] == "likelihood"
    g = gen.suggest("a CNN for 8x8 digits", n=1, input_shape=(1, 8, 8), num_classes=10)[0]  # digits has one
    assert g.meta["generator"]["ranked_by"] == "quality"


def test_a_ghn_that_cannot_load_leaves_the_likelihood_order_and_is_not_reloaded(gen, tmp_path, monkeypatch):
    import mad.ghn

    calls = []

    def broken(path, device=None):
        calls.append(path)
        raise FileNotFoundError(f"no GHN checkpoint in {path}")

    monkeypatch.setattr(mad.ghn, "load", broken)
    monkeypatch.setattr(gen, "_ghn", None)
    monkeypatch.setattr(gen, "quality_ghn", tmp_path)
    cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000)
    cands = []
    for k in range(2):
        g = sample(k, cfg)
        g.meta["generator"] = {}
        cands.append(((1.0, -0.1 * k), g))
    assert gen._by_quality(cands, "auto") == cands  # auto: the likelihood order, said so on each graph
    assert {g.meta["generator"]["ranked_by"] for _, g in cands} == {"likelihood"}
    with pytest.raises(GeneratorError, match="cannot rank by quality: FileNotFoundError: no GHN checkpoint"):
        gen._by_quality(cands, "quality")
    assert calls == [tmp_path]  # loaded once, its failure kept


def test_suggest_a_language_model(gen):
    graphs = gen.suggest("decoder-only transformer for characters", n=1, vocab_size=96, seed=1)
    g = graphs[0]
    assert runs(g) is None
    assert g.inputs[0].dtype == "int64" and g.nodes[g.outputs[0]].shape[-1] == 96


def test_complete_keeps_the_partial_graph(gen):
    g = sample(11, RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000))
    partial = cut(g, fraction=0.5)
    out = gen.complete(partial, n=1, num_classes=10, seed=0)[0]
    assert runs(out) is None
    assert out.meta["generator"]["ranked_by"] == "quality"  # a 1x28x28 10-class completion fits mnist5k
    kept = [n.op for n in partial.nodes.values()]
    have = [n.op for n in out.nodes.values()]
    from collections import Counter

    assert not Counter(kept) - Counter(have)
    assert len(out.nodes) > len(partial.nodes) - len(partial.outputs)


def test_edit_runs_recognised_instructions_as_passes(gen):
    g = sample(4, RandomSpaceConfig(modality="sequence", max_params=300_000))
    h = gen.edit(g, "add LoRA of rank 4 to the last layer")
    assert h.num_params > g.num_params and runs(h) is None
    with pytest.raises(GeneratorError, match="not a recognised edit"):
        gen.edit(g, "make it better somehow")


def test_bad_requests_are_clear(gen):
    with pytest.raises(GeneratorError, match="n must be"):
        gen.suggest("a CNN", n=0)
    with pytest.raises(GeneratorError, match="no generator checkpoint"):
        load("/nonexistent/folder")


def test_cli_suggest_writes_graph_code_and_picture(tmp_path):
    r = CliRunner().invoke(app, ["suggest", "a CNN for 8x8 digits", "-n", "1", "--input", "1x8x8", "--classes",
                                 "10", "-o", str(tmp_path), "--no-picture", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    files = d["results"][0]["files"]
    assert (tmp_path / files["graph"].split("/")[-1]).exists() and files["code"].endswith(".py")


def test_cli_complete_and_suggest_with_a_ranking(tmp_path):
    g = sample(11, RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000))
    g.to_json(tmp_path / "g.json")
    r = CliRunner().invoke(app, ["complete", str(tmp_path / "g.json"), "--fraction", "0.5", "-n", "1", "-o",
                                 str(tmp_path / "c"), "--no-picture", "--json", "--rank", "likelihood"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["results"][0]
    assert row["files"]["code"].endswith(".py") and row["ranked_by"] == "likelihood"
    r = CliRunner().invoke(app, ["suggest", "a CNN for 28x28 digits", "-n", "1", "--input", "1x28x28", "--classes",
                                 "10", "--rank", "quality", "-o", str(tmp_path / "s"), "--no-picture", "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["results"][0]
    assert row["ranked_by"] == "quality" and row["quality"]["task"] == "mnist5k"


@pytest.mark.parametrize("argv, message", [
    (["suggest", "x", "--input", "1xab"], "give the shape"),
    (["suggest", "x", "--max-params", "lots"], "give a count"),
    (["suggest", "x", "--generator", "/nowhere"], "no generator checkpoint"),
    (["complete", "/nowhere.json", "--fraction", "0.5"], "not found"),
    (["complete", "/nowhere.json"], "exactly one of"),
    (["edit", "/nowhere.json", "add lora"], "not found"),
])
def test_cli_errors_are_one_line(argv, message):
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], r.output


def test_a_sample_that_fails_is_closed_at_an_earlier_node(gen):
    from mad.generator.constraints import Constraints
    from mad.generator.sample import Sample
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 1, 8, 8))
    h = b.op("conv2d", x, out_channels=4, kernel_size=3, padding=1)
    h = b.op("relu", h)
    pooled = b.op("mean", h, dim=[2, 3])                      # (B, 4): a classifier can follow
    big = b.op("linear", b.op("flatten", h, start_dim=1), out_features=512)  # over the budget below
    b.output(b.op("relu", big))
    g = b.build()
    task = ("image", (1, 8, 8), 10, None)
    c = Constraints(max_params=2_000)
    assert gen._take(g, c, task)[0] is None  # noqa: SLF001 - as sampled, it is over the budget
    out = gen._finish([Sample([], g, -1.0)], c, task, "p", 0, [], output_ok=output_rule("image"))  # noqa: SLF001
    assert len(out) == 1
    r = out[0][1]
    assert runs(r) is None and r.num_params <= 2_000 and r.nodes[r.outputs[0]].shape == ["B", 10]
    assert r.meta["generator"]["closed_earlier"] >= 1
    assert pooled in r.nodes and not any(n.op == "linear" and n.params["weight"][0] == 512 for n in r.nodes.values())
    # a partial graph's nodes must all stay: with the first four kept (through the mean), every earlier close
    # would drop the mean
    assert list(g.nodes).index(pooled) == 3
    kept = gen._finish([Sample([], g, -1.0)], c, task, "p", 0, [], output_ok=output_rule("image"),  # noqa: SLF001
                       keep=4)
    assert kept == []
    assert gen._finish([Sample([], g, -1.0)], c, task, "p", 0, [], earlier=0) == []  # noqa: SLF001


def test_a_completion_that_never_reaches_the_output_shape_is_projected_to_it(gen):
    from mad.generator.constraints import Constraints
    from mad.generator.sample import Sample
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 3, 16, 16))
    h = b.op("relu", b.op("conv2d", x, out_channels=8, kernel_size=3, padding=1))
    partial_nodes = 3
    h = b.op("conv2d", h, out_channels=12, kernel_size=3, stride=2, padding=1)   # (B, 12, 8, 8)
    b.op("mean", h, dim=[0])                                                      # (12, 8, 8): not projectable
    g = b.graph  # no output yet: a sample that never reached one
    want = ["B", 32, 1, 1]
    task = ("image", (3, 16, 16), None, None)
    tokens = gen.tokenizer.prefix_tokens(g)
    out = gen._finish([Sample(tokens, None, -1.0, "stuck")], Constraints(), task, None, 0, [],  # noqa: SLF001
                      output_ok=lambda n: n.shape == want, keep=partial_nodes, project=want)
    assert len(out) == 1
    r = out[0][1]
    assert runs(r) is None and r.nodes[r.outputs[0]].shape == want and r.meta["generator"]["projected"]
    assert [n.op for n in r.nodes.values()][-2:] == ["adaptive_avg_pool2d", "conv2d"]
    # without a projection target the unfinished sample is dropped
    assert gen._finish([Sample(tokens, None, -1.0, "stuck")], Constraints(), task, None, 0, [],  # noqa: SLF001
                       keep=partial_nodes) == []


def test_a_completion_that_leaves_an_open_end_of_the_partial_graph_projects_them_all(gen):
    from mad.generator.constraints import Constraints
    from mad.generator.sample import Sample
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 3, 16, 16))
    wide = b.op("conv2d", x, out_channels=8, kernel_size=3, padding=1)
    b.op("relu", x)  # the partial graph (3 nodes) has two open ends
    h = b.op("conv2d", wide, out_channels=12, kernel_size=3, stride=2, padding=1)  # generated: follows one end
    b.op("mean", h, dim=[0])  # then drifts into a tensor without the batch dim
    tokens = gen.tokenizer.prefix_tokens(b.graph)
    first = list(gen.tokenizer.assembler(tokens).graph.nodes.values())[:3]  # the partial graph comes first
    assert sorted(n.op for n in first) == ["conv2d", "input", "relu"]
    want, task = ["B", 32, 1, 1], ("image", (3, 16, 16), None, None)
    out = gen._finish([Sample(tokens, None, -1.0, "stuck")], Constraints(), task, None, 0, [],  # noqa: SLF001
                      output_ok=lambda n: n.shape == want, keep=3, project=want)
    assert len(out) == 1
    r = out[0][1]
    assert runs(r) is None and r.nodes[r.outputs[0]].shape == want and r.meta["generator"]["projected"]
    assert r.nodes[r.outputs[0]].op == "add" and [n.op for n in r.nodes.values()].count("conv2d") == 4
    assert "mean" not in {n.op for n in r.nodes.values()}


def test_project_output_fits_sequences_and_refuses_other_ranks():
    from mad.graph import GraphBuilder, GraphError
    from mad.graph.passes import project_output, projectable

    b = GraphBuilder(dims={"B": 2, "T": 8})
    ids = b.input("input_ids", ("B", "T"), dtype="int64", range=[0, 32])
    e = b.op("embedding", ids, num_embeddings=32, embedding_dim=16)
    b.output(e)
    g = b.build()
    h = project_output(g, e, ["B", "T", 24])
    assert h.nodes[h.outputs[0]].shape == ["B", "T", 24] and runs(h) is None
    assert project_output(g, e, ["B", "T", 16]).outputs == [e]  # already the shape: nothing added
    assert not projectable(["B", "T", 16], ["B", 4, 16]) and not projectable(["B", 16], ["B", "T", 16])
    # a layer cannot read a batch or sequence dim as its channels or features
    assert not projectable(["B", "B", 7, 7], ["B", 10, 1, 1]) and projectable(["B", 3, 7, 7], ["B", 10, 1, 1])
    assert not projectable(["B", 4, "T"], ["B", 4, 16]) and not projectable(["B", "B"], ["B", 10])
    with pytest.raises(GraphError, match="cannot be projected"):
        project_output(g, e, ["B", 16])


def test_project_output_flattens_concrete_sizes_and_adds_several_ends():
    import torch

    from mad.graph import GraphBuilder
    from mad.graph.passes import project_output, projectable

    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ("B", 4, 8, 8))
    c = b.op("conv2d", x, out_channels=16, kernel_size=3, padding=1)
    p = b.op("permute", c, dims=[0, 2, 3, 1])  # (B, 8, 8, 16): channels last
    r = b.op("relu", x)
    b.output(p, r)  # two open ends, as a partial graph cut in a residual block has
    g = b.build()
    assert projectable(["B", 8, 8, 16], ["B", 2, 128]) and not projectable(["B", "T", 16], ["B", 2, 128])
    h = project_output(g, p, ["B", 2, 128])
    assert h.nodes[h.outputs[0]].shape == ["B", 2, 128] and runs(h) is None
    assert [h.nodes[n].op for n in h.topo_order()][-3:] == ["flatten", "linear", "reshape"]
    # two ends (one of them an image tensor, one channels-last): each projected, then added
    two = project_output(g.copy(), [p, r], ["B", 2, 128])
    assert two.nodes[two.outputs[0]].op == "add" and runs(two) is None
    assert {p, r, c} <= set(two.nodes)
    with torch.no_grad():
        assert two.to_module()(*two.example_inputs(seed=0)).shape == (2, 2, 128)


def _encoder_decoder_cut():
    """A partial speech-to-text graph cut inside its encoder (length 6 frames): the decoder's ids (B, T) unread."""
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2, "T": 5})
    b.input("decoder_input_ids", ("B", "T"), dtype="int64", range=[0, 40])
    feats = b.input("input_features", ("B", 6, 12))
    h = b.op("linear", feats, out_features=16)
    return b, h


def test_attend_output_decodes_from_unread_token_ids_and_refuses_what_it_cannot():
    import torch

    from mad.graph import GraphError
    from mad.graph.passes import attend_output, attendable, projectable, query_input

    b, h = _encoder_decoder_cut()
    b.output(h)
    g = b.build()
    want = ["B", "T", 24]
    assert not projectable(g.nodes[h].shape, want)  # another length: no linear layer takes it there
    assert query_input(g, want) == "decoder_input_ids" and query_input(g, ["B", 6, 24]) is None
    assert attendable(["B", 6, 16], want) and not attendable(["B", 6, "T"], want) and not attendable(["B", 16], want)
    d = attend_output(g, h, "decoder_input_ids", want)
    assert d.nodes[d.outputs[0]].shape == want and runs(d) is None
    assert [n.op for n in d.nodes.values()].count("scaled_dot_product_attention") == 1
    # the output follows the ids' length: another T gives another length, the encoder's features are read
    m = d.to_module()
    ids, feats = d.example_inputs(seed=0, dims={"T": 3})
    out = m(ids, feats)
    assert out.shape == (2, 3, 24)
    with torch.no_grad():
        assert not torch.equal(m(ids, feats), m(ids, feats + 1.0))
    with pytest.raises(GraphError, match="token-id input"):
        attend_output(g, h, "input_features", want)
    with pytest.raises(GraphError, match="cannot be attended"):
        attend_output(g, "decoder_input_ids", "decoder_input_ids", want)  # ids (B, T) are no features


def test_an_encoder_decoder_cut_before_its_decoder_completes_by_decoding_from_its_ids(gen):
    from mad.generator.constraints import Constraints
    from mad.generator.sample import Sample

    b, h = _encoder_decoder_cut()
    keep = 3
    h = b.op("gelu", b.op("linear", h, out_features=16))  # generated: more encoder, never the decoder's length
    want = ["B", "T", 24]
    tokens = gen.tokenizer.prefix_tokens(b.graph)
    task = ("text", (5,), None, None)
    out = gen._finish([Sample(tokens, None, -1.0, "stuck")], Constraints(), task, None, 0, [],  # noqa: SLF001
                      output_ok=lambda n: n.shape == want, keep=keep, project=want)
    assert len(out) == 1
    r = out[0][1]
    assert runs(r) is None and r.nodes[r.outputs[0]].shape == want and r.meta["generator"]["projected"]
    assert "embedding" in {n.op for n in r.nodes.values()} and "gelu" in {n.op for n in r.nodes.values()}


def test_output_rule_needs_the_batch_first_and_concrete_features():
    from mad.graph import Node

    def node(shape, dtype="float32"):
        n = Node(id="n", op="relu")
        n.shape, n.dtype = shape, dtype
        return n

    image, text = output_rule("image"), output_rule("text")
    assert image(node(["B", 64])) and image(node(["B", 8, 4, 4]))
    assert not image(node(["B", 4, "B"])) and not image(node([4, "B"])) and not image(node(["B", 64], "int64"))
    assert text(node(["B", "T", 64])) and not text(node(["B", 64])) and not text(node(["B", "T", "T"]))


def test_a_view_of_a_non_contiguous_tensor_is_taken_as_a_reshape(gen):
    from mad.generator.constraints import Constraints
    from mad.graph import GraphBuilder

    b = GraphBuilder("strided")
    x = b.input("pixel_values", ("B", 1, 4, 6))
    h = b.op("view", b.op("permute", x, dims=[0, 1, 3, 2]), size=["B", 24])
    b.output(b.op("linear", h, out_features=5))
    g = b.build()
    assert "view size is not compatible" in (runs(g) or "")
    taken, why = gen._take(g, Constraints(), ("image", (1, 4, 6), 3, None))  # noqa: SLF001
    assert taken is not None, why
    assert taken.meta["repairs"] and not any(n.op == "view" for n in taken)
    assert runs(taken) is None


def test_unmet_components_are_put_in_by_graph_passes(gen):
    from mad.data.describe import analyze
    from mad.generator.layers import name_blocks
    from mad.generator.constraints import Constraints, check

    g = sample(1, RandomSpaceConfig(modality="sequence"))
    for n in g.nodes.values():  # as generated: no module paths
        n.scope, n.param_names = "", {}
    layers = name_blocks(g)
    assert layers >= 1
    vocab = g.inputs[0].range[1]
    c = Constraints(modality="text", vocab_size=vocab, depth=layers + 2)
    h, checks = gen._repair(g, check(g, c), c, gen._task(c))  # noqa: SLF001
    assert checks["depth"] and analyze(h).blocks == layers + 2 and runs(h) is None
    assert h.meta["repairs"] == [f"depth: set_depth(n={layers + 2})"]
    tight = Constraints(modality="text", vocab_size=vocab, depth=layers + 2, max_params=g.num_params)
    kept, checks = gen._repair(g, check(g, tight), tight, gen._task(tight))  # noqa: SLF001
    assert kept is g and not checks["depth"]  # the deeper graph would break the budget
    # several unmet components: each edit that helps is kept
    c = Constraints(modality="text", vocab_size=vocab, depth=layers + 1, attention="multi-query", mlp="swiglu")
    before = check(g, c)
    h, checks = gen._repair(g, before, c, gen._task(c))  # noqa: SLF001
    assert all(checks.values()) and runs(h) is None
    assert [r.split(":")[0] for r in h.meta["repairs"]] == [k for k in ("attention", "depth", "mlp") if not before[k]]
    assert len(h.meta["repairs"]) >= 2


def test_a_graph_over_the_flops_budget_loses_blocks_in_proportion(gen):
    from mad.data.describe import analyze
    from mad.generator.constraints import Constraints, check, flops_of
    from mad.generator.layers import name_blocks
    from mad.graph.passes import set_depth

    g = sample(1, RandomSpaceConfig(modality="sequence"))
    for n in g.nodes.values():
        n.scope, n.param_names = "", {}
    name_blocks(g)
    g = set_depth(g, 4)
    vocab = g.inputs[0].range[1]
    c = Constraints(modality="text", vocab_size=vocab, max_flops=flops_of(set_depth(g, 2)))
    before = check(g, c)
    assert not before["max_flops"]
    h, checks = gen._repair(g, before, c, gen._task(c))  # noqa: SLF001
    assert checks["max_flops"] and analyze(h).blocks in (1, 2) and runs(h) is None
    assert h.meta["repairs"][-1].startswith("max_flops: set_depth(n=")
    asked = Constraints(modality="text", vocab_size=vocab, max_flops=c.max_flops, depth=4)  # fewer would miss it
    kept, checks = gen._repair(g, check(g, asked), asked, gen._task(asked))  # noqa: SLF001
    assert kept is g and checks["depth"] and not checks["max_flops"]


@pytest.mark.parametrize("prompt,shape,patch", [("", (3, 32, 32), 4), ("8x8 patches", (3, 32, 32), 8),
                                                ("3x3 patches", (3, 32, 32), 4), ("", (1, 8, 8), 2),
                                                ("", (1, 28, 28), 4)])
def test_vit_stem_tiles_the_image_into_patch_tokens(prompt, shape, patch):
    from mad.generator.api import vit_stem
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", *shape))
    t = vit_stem(b, x, prompt, width=48)
    conv = next(n for n in b.graph.nodes.values() if n.op == "conv2d")
    assert conv.params["weight"] == [48, shape[0], patch, patch] and conv.attrs["stride"] == [patch, patch]
    assert b.shape(t) == ["B", (shape[1] // patch) * (shape[2] // patch), 48]


def test_a_vit_request_starts_from_a_patch_embedding_and_gets_a_transformer_block(gen):
    from mad.data.describe import analyze
    from mad.generator.constraints import Constraints, check
    from mad.graph import GraphBuilder

    c = Constraints(modality="image", input_shape=(3, 32, 32), num_classes=10, family="vit", num_heads=4,
                    norm="rms_norm", mlp="swiglu")
    prefix = gen._start_graph("image", (3, 32, 32), None, c, "a ViT with 8x8 patches")  # noqa: SLF001
    start = gen.tokenizer.assembler(prefix).graph
    assert [n.op for n in start.nodes.values()] == ["input", "conv2d", "flatten", "transpose"]
    assert start.nodes[start.topo_order()[-1]].shape == ["B", 16, 64]
    # a patch network without attention (what a sample may be): the repair makes it a ViT of the asked kinds
    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 3, 32, 32))
    t = b.op("transpose", b.op("flatten", b.op("conv2d", x, out_channels=64, kernel_size=[4, 4], stride=[4, 4]),
                               start_dim=2), dim0=1, dim1=2)
    b.output(b.op("linear", b.op("mean", b.op("layer_norm", t, eps=1e-5), dim=[1]), out_features=10))
    g = b.graph
    before = check(g, c)
    assert not before["family"]
    h, checks = gen._repair(g, before, c, gen._task(c))  # noqa: SLF001
    assert checks["family"] and checks["num_heads"] and checks["mlp"] and checks["norm"] and runs(h) is None
    assert analyze(h).family == "vision transformer"
    assert h.meta["repairs"][0] == "family: add_attention(tokens=True, mlp=swiglu, heads=4, norm=rms_norm)"


def test_a_completion_may_drop_a_weight_the_cut_ended_on():
    from mad.generator.api import _closed_at, _must_keep
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 4, 8, 8))
    c = b.op("conv2d", x, out_channels=8, kernel_size=3, padding=1)
    scale = b.parameter("scale", [8, 1, 1])
    w = b.parameter("next_conv_weight", [8, 8, 1, 1])  # the cut ended on the next layer's weight
    h = b.op("mul", c, scale)
    keep = len(b.graph.nodes)
    r = b.op("relu", h)  # a generated node that does not take the weight up
    g = b.graph
    assert _must_keep(g, keep) == {x, c, scale, h}
    closed = _closed_at(g, r, keep)
    assert closed is not None and w not in closed.nodes and {x, c, scale, h, r} <= set(closed.nodes)
    assert _closed_at(g, c, keep) is None  # ending before the kept mul drops a node that computes


def test_runs_refuses_a_graph_whose_recorded_shapes_the_kernels_do_not_give():
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 1, 8, 8))
    c = b.op("conv2d", x, out_channels=4, kernel_size=3, stride=2)
    b.output(b.op("linear", b.op("flatten", c, start_dim=1), out_features=10))
    g = b.build()
    assert runs(g) is None
    g.nodes[c].shape = ["B", 4, 4, 4]  # stride 2 without padding gives 3x3
    assert "GraphError" in runs(g) and "conv2d" in runs(g)
    g.nodes[c].shape = ["B", 4, 3, 3]
    g.add_node("relu", [], id="orphan")  # a structural fault: an op without its input
    assert runs(g) is not None


def test_a_sample_that_fails_to_run_is_closed_before_the_failing_node(gen):
    from mad.generator.constraints import Constraints
    from mad.generator.sample import Sample
    from mad.graph import GraphBuilder

    b = GraphBuilder("late-failure", dims={"B": 2})
    x = b.input("pixel_values", ("B", 1, 8, 8))
    h = b.op("relu", b.op("conv2d", x, out_channels=4, kernel_size=3, padding=1))
    feats = b.op("linear", b.op("flatten", h, start_dim=1), out_features=10)
    rows = b.op("arange", end=12)  # 12 positions of 10 features: runs out of range
    bad = b.op("index_select", feats, rows, dim=1)
    out = b.op("relu", b.op("relu", b.op("relu", bad)))  # the three latest nodes that may end it all read it
    b.output(out)
    g = b.graph
    assert "index_select" in runs(g) and bad in runs(g)
    task = ("image", (1, 8, 8), None, None)
    kept = gen._finish([Sample([], g, -1.0)], Constraints(), task, None, 0, [],  # noqa: SLF001
                       output_ok=output_rule("image"))
    assert len(kept) == 1
    r = kept[0][1]
    assert runs(r) is None and "index_select" not in {n.op for n in r.nodes.values()}
    assert r.meta["generator"]["closed_earlier"] >= 1


def _image_samples(gen, seed: int):
    from mad.generator.constraints import Constraints

    c = Constraints()
    task = gen._task(c)
    text, cond, _ = gen._condition("", c)
    return gen.sampler.sample(6, text, cond, gen._start_graph(task[0], task[1], task[3]), max_len=300, seed=seed,
                              output_ok=output_rule(task[0]))


def test_no_new_layer_owns_more_than_the_cap(gen, monkeypatch):
    import mad.generator.sample as sample_mod

    def largest(samples):
        return max(nd.num_params for s in samples if s.graph is not None for nd in s.graph.nodes.values())

    assert largest(_image_samples(gen, 5)) > 4_000  # the samples' own layers pass that size
    monkeypatch.setattr(sample_mod, "MAX_LAYER", 4_000)
    assert largest(_image_samples(gen, 5)) <= 4_000


def test_no_new_tensor_holds_more_elements_than_the_cap(gen, monkeypatch):
    import mad.generator.sample as sample_mod
    from mad.generator.sample import numel_at_batch1

    def largest(samples):
        return max(numel_at_batch1(nd.shape, s.graph.dims) or 0 for s in samples if s.graph is not None
                   for nd in s.graph.nodes.values())

    assert largest(_image_samples(gen, 5)) > 20_000  # the samples' own values pass that size
    monkeypatch.setattr(sample_mod, "MAX_NUMEL", 20_000)  # above the 3x32x32 input: the prefix keeps the cap
    assert largest(_image_samples(gen, 5)) <= 20_000


def test_workers_must_be_a_positive_count(gen):
    with pytest.raises(GeneratorError, match="workers"):
        gen.workers = 0
    gen.workers = 2
    try:
        assert gen.sampler.workers == 2
    finally:
        gen.workers = 1
