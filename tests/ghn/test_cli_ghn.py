"""`mad ghn predict/score/train` end to end with a tiny GHN: --json output, the weights file, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from mad.cli import app
from mad.data import tasks
from mad.data.random_space.sampling import sample
from mad.ghn import GHN, GHNConfig, GHNModel

runner = CliRunner()
TINY = dict(d=32, layers=1, heads=4, ff=64, pe=8, rank=4)


def mad(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def ghn_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return GHN(GHNModel(GHNConfig(**TINY)), device="cpu").save(tmp_path_factory.mktemp("ghn") / "tiny", {"x": 1})


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory) -> Path:
    for seed in range(40):
        try:
            g = tasks.fit(sample(seed), "digits")
            break
        except Exception:  # noqa: BLE001
            continue
    path = tmp_path_factory.mktemp("graphs") / "g.json"
    g.to_json(path)
    return path


def test_predict_writes_every_tensor(ghn_dir, graph_file, tmp_path):
    out = tmp_path / "w.safetensors"
    r = mad("ghn", "predict", graph_file, "--task", "digits", "--ghn", ghn_dir, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["predicted_share"] == 1.0
    state = load_file(str(out))
    from mad.graph import ArchGraph

    module = ArchGraph.from_json(graph_file).to_module()
    assert set(state) == set(module.state_dict())
    module.load_state_dict(state)
    assert module(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_score_table_and_json(ghn_dir, graph_file):
    r = mad("ghn", "score", graph_file, graph_file, "--task", "digits", "--ghn", ghn_dir, "--max-examples", 50,
            "--json")
    assert r.exit_code == 0, r.output
    scores = json.loads(r.stdout)
    assert len(scores) == 2 and scores[0]["accuracy"] == scores[1]["accuracy"]
    r = mad("ghn", "score", graph_file, "--task", "digits", "--ghn", ghn_dir, "--max-examples", 50)
    assert r.exit_code == 0 and "accuracy" in r.stdout


def test_score_table_shows_the_long_horizon_estimate_where_there_is_one(graph_file, tmp_path):
    """With a long-horizon stage the table has a column for its run and ``--json`` its ``quality_long``; without
    one, no such column and ``quality_long`` is null."""
    from ghn_graphs import digits_graphs

    from mad.ghn.quality import fit_long, fit_quality, normal_scores, tree_rows

    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    graphs = digits_graphs(6)
    brief = [0.1, 0.3, 0.5, 0.6, 0.8, 0.9]
    ghn.record["quality"] = {**fit_quality(ghn.model, {"digits": list(zip(graphs, brief))}, estimator="trees"),
                             "steps": 100}
    plain = ghn.save(tmp_path / "plain")
    est = ghn.calibrated("digits")
    trees = tree_rows(graphs, "digits", ghn.predicted_metrics(graphs, "digits", **est["predicted"]))
    est["long"] = fit_long(torch.tensor(normal_scores(brief)), trees, [0.9, 0.2, 0.95, 0.7, 0.4, 0.97], "digits",
                           1000, ["base", "log_params"])
    staged = ghn.save(tmp_path / "staged")
    for folder, long in ((plain, False), (staged, True)):
        r = mad("ghn", "score", graph_file, "--task", "digits", "--ghn", folder, "--json")
        assert r.exit_code == 0, r.output
        (s,) = json.loads(r.stdout)
        assert isinstance(s["quality"], float) and (isinstance(s["quality_long"], float) if long
                                                    else s["quality_long"] is None)
        r = runner.invoke(app, ["ghn", "score", str(graph_file), "--task", "digits", "--ghn", str(folder)],
                          env={"COLUMNS": "200"})  # headers unwrapped
        assert r.exit_code == 0 and "after 100 steps" in r.stdout and ("after 1000 steps" in r.stdout) == long


def test_train_from_predicted_parameters(ghn_dir, graph_file, tmp_path):
    """``mad train --init ghn:DIR`` starts from the GHN's prediction: after 0 steps the run's validation figures
    are the GHN's score of the graph on the whole split, and a weights file from ``mad ghn predict`` is the same
    start; a module from a file is filled in place."""
    r = mad("ghn", "score", graph_file, "--task", "digits", "--ghn", ghn_dir, "--max-examples", 10**6, "--json")
    assert r.exit_code == 0, r.output
    score = json.loads(r.stdout)[0]
    runs = {}
    for init in (f"ghn:{ghn_dir}", tmp_path / "w.safetensors"):
        if not isinstance(init, str):
            assert mad("ghn", "predict", graph_file, "--task", "digits", "--ghn", ghn_dir, "-o", init).exit_code == 0
        r = mad("train", graph_file, "--task", "digits", "--steps", 0, "--init", init, "--json",
                "-o", tmp_path / f"run{len(runs)}")
        assert r.exit_code == 0, r.output
        runs[str(init)] = json.loads(r.stdout)
    a, b = runs.values()
    assert a["config"]["init"] == f"ghn:{ghn_dir}" and b["config"]["init"] == str(tmp_path / "w.safetensors")
    assert a["val_accuracy"] == b["val_accuracy"] == pytest.approx(score["accuracy"], abs=1e-9)
    assert a["val_loss"] == pytest.approx(score["loss"], rel=1e-5) and b["val_loss"] == a["val_loss"]
    (tmp_path / "net.py").write_text(
        "from torch import nn\n"
        "class MLP(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n")
    src = f"{tmp_path / 'net.py'}:MLP"
    seeded = mad("train", src, "--task", "digits", "--steps", 0, "--json", "-o", tmp_path / "m0")
    predicted = mad("train", src, "--task", "digits", "--steps", 0, "--init", f"ghn:{ghn_dir}", "--json",
                    "-o", tmp_path / "m1")
    assert seeded.exit_code == predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)["config"]["init"] == f"ghn:{ghn_dir}"
    assert json.loads(predicted.stdout)["val_loss"] != json.loads(seeded.stdout)["val_loss"]
    r = mad("train", graph_file, "--task", "digits", "--steps", 0, "--init", tmp_path / "none.safetensors",
            "-o", tmp_path / "m2")
    assert r.exit_code == 2 and "no such file" in r.stderr


def test_tied_weights_are_written_and_read_under_every_name(ghn_dir, tmp_path):
    """A model whose output layer shares the embedding's weight: ``mad ghn predict`` writes the tensor under both
    names (safetensors refuses shared memory), and ``--init`` takes that file or a training checkpoint's (which
    keeps one name of the two) to the same start. A parameter stored transposed (not contiguous) is written too."""
    from mad.train import TaskSpec

    vocab = TaskSpec.of("chars").num_outputs
    (tmp_path / "tied.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "class Tied(nn.Module):\n"
        f"    def __init__(self, vocab={vocab}, d=16):\n"
        "        super().__init__()\n"
        "        self.emb, self.mix = nn.Embedding(vocab, d), nn.Linear(d, d)\n"
        "        self.head = nn.Linear(d, vocab, bias=False)\n"
        "        self.head.weight = self.emb.weight\n"
        "        self.mix.weight = nn.Parameter(torch.randn(d, d).t())  # a transposed view\n"
        "    def forward(self, x):\n"
        "        return self.head(torch.relu(self.mix(self.emb(x))))\n")
    src, out = f"{tmp_path / 'tied.py'}:Tied", tmp_path / "w.safetensors"
    r = mad("ghn", "predict", src, "--task", "chars", "--ghn", ghn_dir, "-o", out)
    assert r.exit_code == 0, r.output
    state = load_file(str(out))
    assert {"emb.weight", "head.weight"} <= set(state) and torch.equal(state["emb.weight"], state["head.weight"])
    bpc = []
    for k, init in enumerate([out, tmp_path / "r0" / "checkpoint" / "model.safetensors"]):
        r = mad("train", src, "--task", "chars", "--steps", 0, "--init", init, "--json", "-o", tmp_path / f"r{k}")
        assert r.exit_code == 0, r.output
        bpc.append(json.loads(r.stdout)["val_bpc"])
    assert "head.weight" not in load_file(str(tmp_path / "r0" / "checkpoint" / "model.safetensors"))
    assert bpc[0] == bpc[1]


def test_user_errors(ghn_dir, graph_file, tmp_path):
    r = mad("ghn", "score", graph_file, "--task", "nope", "--ghn", ghn_dir)
    assert r.exit_code == 2 and "unknown task" in r.stderr
    r = mad("ghn", "score", graph_file, "--task", "digits", "--ghn", tmp_path)
    assert r.exit_code == 2 and "not a GHN checkpoint" in r.stderr
    r = mad("ghn", "predict", tmp_path / "missing.json", "--task", "digits", "--ghn", ghn_dir)
    assert r.exit_code == 2 and "not found" in r.stderr
    r = mad("ghn", "train", "--tasks", "digits,nope", "--out", tmp_path / "x")
    assert r.exit_code == 2 and "unknown task" in r.stderr


def test_default_checkpoint_ships_and_serves_its_tasks():
    from mad.ghn import DEFAULT_DIR, load

    size = sum(f.stat().st_size for f in DEFAULT_DIR.iterdir())
    assert size <= 30 * 2**20
    ghn = load("default", device="cpu")
    assert set(ghn.config.tasks) == {"mnist5k", "digits", "mnist1d", "chars"}
    rec = ghn.record
    assert rec["steps"] > 0 and rec["hardware"] and rec["data"]
    assert set(rec["quality"]["tasks"]) == set(ghn.config.tasks)  # every task it serves has a quality estimate
    from mad.ghn.quality import tree_columns

    for task, est in rec["quality"]["tasks"].items():  # a tree estimator's forest is read back from its file
        if est.get("estimator") == "trees":
            assert est["columns"] == tree_columns(bool(est.get("predicted")))
            assert len(est["forest"]["roots"]) == est["settings"]["n_estimators"]
