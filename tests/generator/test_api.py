"""The shipped generator through its API and the CLI: suggest, complete, edit; one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mad.cli.app import app
from mad.data.random_space import RandomSpaceConfig, sample
from mad.generator import GeneratorError, load, runs
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
