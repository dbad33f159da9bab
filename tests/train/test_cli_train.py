"""`mad train` end to end on tiny graphs: --json output, run folder, resume, and one-line user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mad.cli import app
from mad.train import load_checkpoint

runner = CliRunner()


def mad(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def graph_file(cnn_graph, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("graphs") / "tiny_cnn.json"
    cnn_graph.to_json(path)
    return path


def assert_user_error(result, *words):
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "" and "Traceback" not in result.output
    for w in words:
        assert w in lines[0], lines[0]


def test_train_json(graph_file, tmp_path):
    run = tmp_path / "run"
    r = mad("train", graph_file, "--task", "digits", "--steps", 8, "--batch-size", 16, "--lr", 0.003, "--json",
            "-o", run)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    d = json.loads(r.stdout)
    assert d["task"] == "digits" and d["steps"] == 8 and d["status"] == "completed" and d["model_name"] == "tiny_cnn"
    assert d["config"]["batch_size"] == 16 and d["config"]["lr"] == 0.003
    assert len(d["loss_curve"]) == 8 and 0 <= d["val_accuracy"] <= 1 and d["run_dir"] == str(run)
    assert Path(d["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "checkpoint" / "model.safetensors").is_file()
    assert json.loads((run / "result.json").read_text())["loss_curve"] == d["loss_curve"]
    # resume the finished run to more steps, in the same run folder
    r = mad("train", graph_file, "--task", "digits", "--steps", 10, "--batch-size", 16, "--lr", 0.003, "--json",
            "--resume", run)
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    d2 = json.loads(r.stdout)
    assert d2["steps"] == 10 and d2["loss_curve"][:8] == d["loss_curve"] and d2["run_dir"] == str(run)
    assert load_checkpoint(run).meta["step"] == 10


def test_train_table(graph_file, tmp_path):
    r = mad("train", graph_file, "--task", "digits", "--steps", 3, "-b", 16, "-o", tmp_path / "run")
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    assert "tiny_cnn on digits" in r.stdout and "accuracy" in r.stdout and "loss_curve.png" in r.stdout


def test_train_module_from_file(tmp_path):
    (tmp_path / "net.py").write_text(
        "from torch import nn\n"
        "class MLP(nn.Module):\n"
        "    def __init__(self, width=16):\n"
        "        super().__init__()\n"
        "        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.ReLU(), nn.Linear(width, 10))\n"
        "    def forward(self, x):\n"
        "        return self.net(x)\n")
    r = mad("train", f"{tmp_path / 'net.py'}:MLP:8", "--task", "digits", "--steps", 3, "-b", 16, "--json",
            "-o", tmp_path / "run")
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    assert json.loads(r.stdout)["params"] == 64 * 8 + 8 + 8 * 10 + 10


def test_train_user_errors(graph_file, tmp_path):
    assert_user_error(mad("train", graph_file, "--task", "chars", "--steps", 1, "-o", tmp_path / "a"),
                      "does not fit task 'chars'")
    assert_user_error(mad("train", graph_file, "--task", "imagenet"), "unknown task 'imagenet'", "digits")
    assert_user_error(mad("train", tmp_path / "missing.json", "--task", "digits"), "missing.json")
    assert_user_error(mad("train", graph_file, "--task", "digits", "--optimizer", "lamb", "-o", tmp_path / "b"),
                      "unknown optimizer 'lamb'")
    assert_user_error(mad("train", graph_file, "--task", "digits", "--option", "seq_len=8", "-o", tmp_path / "c"),
                      "unknown option(s) seq_len")
    assert_user_error(mad("train", graph_file, "--task", "digits", "--resume", tmp_path, "-o", tmp_path / "d"),
                      "not a training checkpoint")


def test_train_retargets_a_graph_built_for_another_task(graph_file, tmp_path):
    r = mad("train", graph_file, "--task", "mnist5k", "--steps", 1, "-o", tmp_path / "r", "--json")
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
