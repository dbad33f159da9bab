"""The default graph space, trained evaluations and ``mad search`` on a real task (a few training steps)."""

from __future__ import annotations

import json
import random

import pytest
import torch
from typer.testing import CliRunner

from mad.agent import Evaluator, GraphSpace, RunRecords, SearchError, SpaceError, TrainSettings, search
from mad.cli.app import app


@pytest.mark.parametrize("task", ["digits", "mnist1d", "chars"])
def test_space_draws_and_mutates_within_limits(task):
    s = GraphSpace(task, max_params=30_000)
    rng = random.Random(0)
    for _ in range(4):
        c = s.sample(rng)
        c.key = s.key(c)
        m = s.mutate(c, rng)
        for x in (c, m):
            g = s.to_graph(x)
            assert s.costs(x)["num_params"] <= 30_000
            out = g.to_module()(*g.example_inputs(seed=0))
            assert out.shape[0] == 2  # logits at the example batch
        assert m.parent == c.key and s.key(m) != c.key and m.genotype["gene"]
    if task == "chars":  # a language model never reads the next token
        assert all(s.sample(random.Random(i)).genotype["hparams"]["causal"] for i in range(10))


def test_graphs_without_a_genotype_get_structural_neighbours_within_limits():
    from mad.agent.space import Candidate

    s = GraphSpace("mnist5k", max_params=60_000)
    kinds, seen = set(), 0
    for i in range(12):
        drawn = s.sample(random.Random(i))
        c = Candidate("generator", None, drawn.graph)  # a generated graph: no genotype to mutate
        c.key = s.key(c)
        m = s.mutate(c, random.Random(100 + i))
        assert m.parent == c.key and s.key(m) != c.key
        assert s.costs(m)["num_params"] <= 60_000
        assert m.graph.to_module()(*m.graph.example_inputs(seed=0)).shape == (2, 10)
        if m.proposer == "edit":
            seen += 1
            name = m.genotype["edit"]
            kinds.add("depth" if name.startswith("depth") else "residual" if name == "residual" else "swap")
    assert seen >= 10 and {"depth", "swap"} <= kinds


def test_signal_task_gets_its_own_input_shape():
    g = GraphSpace("mnist1d").sample(random.Random(1)).graph
    assert g.inputs[0].shape == ["B", 1, 40]
    assert g.to_module()(torch.randn(3, 1, 40)).shape == (3, 10)


@pytest.mark.parametrize("task", ["mnist5k", "digits", "mnist1d", "chars"])
def test_the_loops_prompt_asks_for_the_tasks_inputs_and_outputs(task):
    """The loop's default prompt and constraints agree with the task: what the sentence states parses to the
    task's classes and image shape, and the constraints carry its input shape and classes or vocabulary."""
    from mad.agent.loop import task_prompt
    from mad.data import tasks
    from mad.generator.prompt import parse_prompt

    info = tasks.info(task)
    text, kw = task_prompt(task, max_params=10_000, max_flops=3_000_000)
    shape = tuple(info.input_shape)
    asked = (shape[0], 1, shape[1]) if len(shape) == 2 else shape  # a (C, L) signal: a one-pixel-high image
    assert kw["input_shape"] == asked and kw["max_params"] == 10_000
    assert kw["max_flops"] == 3_000_000  # the search's limits go to the sampler
    said = parse_prompt(text)
    if info.task_type == "classification":
        assert kw["num_classes"] == said.num_classes == info.num_classes
        assert said.input_shape in (None, asked)
    else:
        assert kw["vocab_size"] == info.vocab_size and said.family == "decoder-only"
    assert task_prompt(task, prompt="my words")[0] == "my words"


def test_the_generator_is_fine_tuned_on_signal_graphs_as_the_images_it_is_asked_for():
    """On a signal task the loop asks the generator for C x 1 x L images; the graphs it fine-tunes on are read back
    into that form (without the unsqueeze the space reads the signal through); other graphs are left as they are."""
    from mad.agent.loop import _as_asked, task_prompt

    _, kw = task_prompt("mnist1d")
    signal = GraphSpace("mnist1d").sample(random.Random(1)).graph
    image = _as_asked(signal.copy(), kw["input_shape"])
    assert image.inputs[0].shape == ["B", *kw["input_shape"]] and len(image.nodes) == len(signal.nodes) - 1
    assert "unsqueeze" not in {n.op for n in image.nodes.values()}
    x = torch.rand(2, 1, 40)
    m, m2 = image.to_module().eval(), signal.to_module().eval()
    m.load_state_dict(m2.state_dict())
    torch.testing.assert_close(m(x[:, :, None]), m2(x), rtol=0, atol=0)
    digits = GraphSpace("digits").sample(random.Random(1)).graph
    assert _as_asked(digits, task_prompt("digits")[1]["input_shape"]) is digits
    one_d = GraphSpace("mnist1d").sample(random.Random(1)).graph
    one_d.nodes[one_d.successors(one_d.input_node(one_d.inputs[0].name))[0]].attrs["dim"] = 1
    assert _as_asked(one_d, kw["input_shape"]) is one_d  # not an image network behind an unsqueeze: kept


@pytest.mark.slow
def test_generated_signal_candidates_are_image_networks_on_the_signal():
    """What the loop's generator proposes for mnist1d: image networks asked for at 1 x 40, read through an
    unsqueeze once the space adopts them, within the search's limits, running on (B, 1, 40) signals."""
    import mad.generator
    from mad.agent.loop import task_prompt

    text, kw = task_prompt("mnist1d", max_params=30_000, max_flops=5_000_000)
    space = GraphSpace("mnist1d", max_params=30_000, max_flops=5_000_000)
    graphs = mad.generator.load("default", device="cpu").suggest(text, n=2, seed=0, oversample=1,
                                                                   rank="likelihood", **kw)
    assert graphs and all(g.inputs[0].shape == ["B", 1, 1, 40] for g in graphs)
    for g in graphs:
        c = space.adopt(g, "generator")
        assert c.graph.meta["retarget"]["as_image"] == [1, 1, 40] and space.within(c.graph)
        assert c.graph.to_module()(torch.rand(3, 1, 40)).shape == (3, 10)


def test_space_errors_are_clear():
    with pytest.raises(SpaceError, match="imagenet"):
        GraphSpace("imagenet")
    with pytest.raises(SpaceError, match="max_params"):
        GraphSpace("mnist5k", max_params=10, tries=3).sample(random.Random(0))


def test_evaluator_trains_and_caches(tmp_path):
    s = GraphSpace("digits", max_params=20_000)
    c = s.sample(random.Random(2))
    ev = Evaluator("digits", TrainSettings(steps=5), workers=1, executor="serial", cache_dir=tmp_path)
    got = []
    ev.run([(s.key(c), c.graph.to_json())], lambda i, r: got.append(r))
    ev.run([(s.key(c), c.graph.to_json())], lambda i, r: got.append(r))
    assert got[0]["status"] == "completed" and 0.0 <= got[0]["value"] <= 1.0 and got[0]["latency_ms"] > 0
    assert got[1]["cached"] and got[1]["value"] == got[0]["value"]


def test_evaluator_reports_a_failure_as_a_result():
    ev = Evaluator("digits", TrainSettings(steps=2), executor="serial")
    got = []
    ev.run([("k", "{not json")], lambda i, r: got.append(r))
    assert got[0]["status"] == "failed" and got[0]["value"] is None and got[0]["error"]


def test_search_on_a_real_task_with_the_loop(tmp_path):
    r = search("digits", "loop", tmp_path / "run", evals=3, max_params=20_000, train=TrainSettings(steps=3),
               executor="serial", round_size=2, progress=False,
               strategy_options={"generator": False, "pool": 2, "ghn_examples": 64})
    assert r.status == "completed" and r.evals == 3
    rows = RunRecords(r.folder).rows()
    trained = [x for x in rows if x["result"]]
    assert all(x["scores"].get("ghn_value") is not None for x in rows)  # every proposal was scored by the GHN
    assert all(x["costs"]["num_params"] <= 20_000 for x in trained)
    assert len({x["key"] for x in rows}) == len(rows)


@pytest.mark.slow
def test_loop_with_generator_and_finetuning(tmp_path):
    r = search("digits", "loop", tmp_path / "run", evals=4, max_params=20_000, train=TrainSettings(steps=3),
               executor="serial", round_size=2, progress=False,
               strategy_options={"pool": 3, "finetune_every": 1, "finetune_steps": 2, "ghn_examples": 64})
    events = RunRecords(r.folder).events()
    learned = [e["learn"] for e in events if e["event"] == "round"]
    assert any("finetune" in x for x in learned)
    assert (r.folder / "generator").is_dir()
    assert any(e.get("proposer") == "generator" for e in events if e["event"] == "candidate")


def test_start_graphs_are_trained_first(tmp_path):
    s = GraphSpace("digits", max_params=20_000)
    g = s.sample(random.Random(5)).graph
    r = search("digits", "evolution", tmp_path / "run", evals=2, start=[g], train=TrainSettings(steps=2),
               executor="serial", progress=False, max_params=20_000)
    first = [x for x in RunRecords(r.folder).rows() if x["eval_index"] == 1][0]
    assert first["proposer"] == "seed" and first["key"] == g.wl_hash()
    with pytest.raises(SearchError):
        search("digits", "evolution", tmp_path / "run2", evals=0, progress=False)


def test_cli_search_json_resume_and_errors(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["search", "--task", "digits", "--evals", "2", "--steps", "2", "--strategy", "random", "--workers", "1",
            "--max-params", "20k", "--out", str(out), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["evals"] == 2 and d["status"] == "completed" and d["best"]["value"] is not None
    res = runner.invoke(app, args)
    assert res.exit_code != 0 and "--resume" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, [*args[:4], "3", *args[5:], "--resume"])
    assert res.exit_code == 0 and json.loads(res.stdout)["evals"] == 3
    for bad in (["--task", "nope", "--evals", "2"], ["--task", "digits"], ["--task", "digits", "--evals", "2",
                                                                           "--strategy", "annealing"],
                ["--task", "digits", "--evals", "2", "--pool", "8", "--strategy", "random"],
                ["--task", "digits", "--evals", "2", "--pool", "0"],
                ["--task", "digits", "--evals", "2", "--max-siblings", "1", "--strategy", "evolution"],
                ["--task", "digits", "--evals", "2", "--max-siblings", "0"]):
        res = runner.invoke(app, ["search", *bad, "--out", str(tmp_path / "x")])
        assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1, res.output


def test_language_space_refuses_models_that_read_the_next_token():
    import copy

    from mad.data.random_space import RandomSpaceConfig, build, sample

    s = GraphSpace("chars")
    cfg = RandomSpaceConfig(modality="sequence", vocab_size=64, seq_len=16, max_params=100_000)
    hp = copy.deepcopy(sample(3, cfg).meta["hparams"])
    with pytest.raises(SpaceError, match="not causal"):
        s.adopt(build({**hp, "causal": False}, cfg), "generator")
    assert s.adopt(build({**hp, "causal": True}, cfg), "generator").graph.inputs[0].shape == ["B", "T"]


def test_cli_search_passes_the_pool_to_the_loop(tmp_path, monkeypatch):
    import mad.agent

    seen = {}

    def fake_search(task, strategy, out, **kw):
        seen.update(kw, strategy=strategy)
        raise mad.agent.SearchError("stop here")

    monkeypatch.setattr(mad.agent, "search", fake_search)
    res = CliRunner().invoke(app, ["search", "--task", "digits", "--evals", "2", "--pool", "8", "--out",
                                   str(tmp_path / "run")])
    assert res.exit_code != 0 and "stop here" in res.output
    assert seen["strategy"] == "loop" and seen["strategy_options"] == {"pool": 8}
    res = CliRunner().invoke(app, ["search", "--task", "digits", "--evals", "2", "--max-siblings", "1", "--out",
                                   str(tmp_path / "run")])
    assert res.exit_code != 0 and seen["strategy_options"] == {"max_siblings": 1}
