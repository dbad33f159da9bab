"""The HTML report of search runs (``mad.agent.report``) and ``mad report``."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from mad.agent.records import RunRecords
from mad.agent.report import kendall_tau, pareto_front, run_summary, write_report
from mad.cli.app import app
from mad.data.random_space import RandomSpaceConfig, sample

# (proposer, round, value): None = not trained, "failed" = a training that failed
PLAN = [
    ("random", 0, 0.41),
    ("random", 0, 0.55),
    ("random", 0, "failed"),
    ("mutation", 1, 0.62),
    ("generator", 1, 0.48),
    ("mutation", 1, None),
]


@pytest.fixture(scope="module")
def graphs():
    cfg = RandomSpaceConfig(modality="image", image_shape=(1, 8, 8), max_params=20_000)
    return [sample(seed, cfg) for seed in range(len(PLAN))]


def _make_run(folder, graphs, strategy="evolution", results=True, tabular=False):
    settings = {"task": "mnist5k", "strategy": {"name": strategy, "population": 4}, "seed": 3, "evals": 10,
                "train": {"steps": 10, "batch_size": 8, "lr": 0.003}}
    if tabular:  # a space that scores candidates itself says which way is better
        settings.update(task="toy", metric="error", higher_is_better=False)
    rec = RunRecords.create(folder, settings)
    t0 = 1_700_000_000.0
    evals = 0
    for seq, ((proposer, rnd, value), g) in enumerate(zip(PLAN, graphs)):
        trained = results and value is not None
        rec.append({
            "event": "candidate", "round": rnd, "seq": seq, "key": f"k{seq}", "proposer": proposer,
            "parent": "k0" if proposer == "mutation" else None,
            "genotype": {"hparams": {"width": 8 + seq}},
            "graph": None if tabular else g.to_json(), "meta": {"family": "random-cnn"},
            "costs": {"num_params": 1000 * (seq + 1), "flops": 10_000 * (seq + 1)},
            "scores": {"ghn_value": 0.1 * seq, "ghn_loss": 1.0},
            "selected": trained, "eval_index": evals if trained else None,
            "status": "proposed" if trained else "rejected", "time": t0 + 30 * seq,
        })
        if trained:
            ok = value != "failed"
            rec.append({"event": "result", "round": rnd, "key": f"k{seq}", "eval_index": evals, "result": {
                "status": "ok" if ok else "failed", "value": value if ok else None,
                "test_value": value - 0.01 if ok else None, "train_seconds": 2.0, "latency_ms": 0.5,
                "error": None if ok else "RuntimeError: out of memory"}})
            evals += 1
    for rnd in (0, 1):
        rec.append({"event": "round", "round": rnd, "time": t0 + 90 * (rnd + 1), "evals": evals, "best": None,
                    "learn": {"generator": {"loss_before": 2.5 - rnd, "loss_after": 2.0 - rnd}} if rnd else {}})
    rec.close()
    return folder


def test_report_one_run(tmp_path, graphs):
    run = _make_run(tmp_path / "run", graphs)
    path = write_report(run)
    assert path == run / "report.html"
    text = path.read_text()
    assert "evolution" in text and "mnist5k" in text
    assert "<img" in text and "<svg" in text
    assert "0.62" in text and "0.61" in text  # best value and its test value
    assert "out of memory" in text  # the failed training
    assert "loss_before" in text  # the round's learn info
    best = graphs[3].to_code()
    name = re.search(r"^class (\w+)\(", best, re.M).group(1)
    assert f"class {name}(" in text
    assert not re.search(r"(src|href)=[\"']https?:", text) and "<link" not in text  # nothing to fetch
    s = run_summary(run)
    assert (s["evals"], s["failed"], s["best"], s["best_key"], s["proposed"]) == (5, 1, 0.62, "k3", 6)
    assert s["minutes"] == pytest.approx(3.0)


def test_report_without_results_or_graphs(tmp_path, graphs):
    empty = _make_run(tmp_path / "empty", graphs, strategy="random", results=False)
    tabular = _make_run(tmp_path / "tab", graphs, strategy="regularized", tabular=True)
    bare = tmp_path / "bare"
    RunRecords.create(bare, {"task": "mnist5k", "strategy": "random", "seed": 0})
    out = write_report([empty, tabular, bare], tmp_path / "out" / "cmp.html")
    text = out.read_text()
    assert out.exists() and "regularized" in text and "random" in text
    assert "width" in text  # a tabular run's best shows its genotype
    assert run_summary(bare)["best"] is None and run_summary(empty)["evals"] == 0
    assert run_summary(tabular)["best"] == 0.41  # lower is better there


def test_statistics():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1], [1]) is None
    pts = [(10, 0.5), (20, 0.4), (30, 0.7), (5, 0.3)]
    assert pareto_front(pts, higher_is_better=True) == [3, 0, 2]
    assert pareto_front(pts, higher_is_better=False) == [3]


def test_cli_report(tmp_path, graphs):
    runner = CliRunner()
    run = _make_run(tmp_path / "run", graphs)
    other = _make_run(tmp_path / "run2", graphs, strategy="random")
    r = runner.invoke(app, ["report", str(run), str(other), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r.html").exists() and "r.html" in r.output
    r = runner.invoke(app, ["report", str(run), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["path"] == str(run / "report.html")
    assert [(s["task"], s["strategy"], s["evals"], s["best"]) for s in data["runs"]] == [("mnist5k", "evolution", 5,
                                                                                          0.62)]
    (tmp_path / "notrun").mkdir()
    for bad in (tmp_path / "notrun", tmp_path / "missing"):
        r = runner.invoke(app, ["report", str(bad)])
        assert r.exit_code != 0
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert "run folder" in r.output
