"""fit(): training graphs and modules on image and token tasks, determinism, exact resume, clear errors."""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch
from torch import nn
from safetensors.torch import load_file
from train_nets import CHARS, DigitsCNN, TinyCNN, TinyLM

from mad.code2graph import from_module
from mad.data import tasks
from mad.graph import GraphBuilder, GraphError
from mad.train import FitResult, TrainError, TrainInterrupted, fit, load_checkpoint, sees_future

QUICK = dict(batch_size=32, lr=3e-3, progress=False)


def _stop_at(k: int):
    def callback(step: int, loss: float) -> None:
        if step == k:
            raise KeyboardInterrupt
    return callback


def _weights(result: FitResult) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def test_fit_graph_classification(cnn_graph, tmp_path):
    r = fit(cnn_graph, "digits", steps=40, eval_every=20, out_dir=tmp_path, **QUICK)
    assert r.status == "completed" and r.steps == r.steps_requested == 40
    assert r.task == "digits" and r.task_type == "classification" and r.metric == "accuracy"
    assert r.model_name == "tiny_cnn" and r.params == cnn_graph.num_params and r.device == "cpu"
    assert [s for s, _ in r.loss_curve] == list(range(1, 41))
    first, last = (sum(v for _, v in part) / 10 for part in (r.loss_curve[:10], r.loss_curve[-10:]))
    assert last < first - 0.3, (first, last)
    assert [e["step"] for e in r.eval_curve] == [20, 40]
    assert 0.5 < r.val_accuracy <= 1 and 0.5 < r.test_accuracy <= 1 and r.val_bpc is None
    assert r.eval_curve[-1]["accuracy"] == r.val_accuracy and r.value == r.val_accuracy
    assert r.steps_per_s > 0 and r.seconds >= r.train_seconds > 0
    d = json.loads(r.to_json())
    assert d == r.as_dict() and "model" not in d and d["loss_curve"][0][0] == 1
    # out_dir: final checkpoint + result.json; weights are safetensors, state loads weights-only
    assert json.loads((tmp_path / "result.json").read_text())["val_accuracy"] == r.val_accuracy
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.meta["step"] == 40 and ckpt.graph().num_params == cnn_graph.num_params
    saved = load_file(tmp_path / "checkpoint" / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in r.model.state_dict().items())
    torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=True)


def test_fit_evaluates_at_listed_steps(cnn_graph):
    r = fit(cnn_graph, "digits", steps=12, eval_every=[10, 0, 3], **QUICK)
    assert [e["step"] for e in r.eval_curve] == [0, 3, 10, 12]
    # step 0 is the untrained model: near chance on 10 classes, below the trained figure
    assert r.eval_curve[0]["accuracy"] < 0.5 < r.eval_curve[-1]["accuracy"] == r.val_accuracy
    with pytest.raises(TrainError, match="eval_every"):
        fit(cnn_graph, "digits", steps=2, eval_every=[-1], **QUICK)


def test_fit_graph_language_model(lm_graph):
    r = fit(lm_graph, "chars", steps=30, eval_every=0, task_options=CHARS, **{**QUICK, "lr": 1e-2})
    assert r.task_type == "language_modeling" and r.metric == "bits_per_char"
    assert r.val_accuracy is None and r.val_bpc == pytest.approx(r.val_loss / math.log(2))
    assert r.test_bpc == pytest.approx(r.test_loss / math.log(2))
    assert r.loss_curve[-1][1] < r.loss_curve[0][1] - 0.5
    assert r.value == r.val_bpc and r.val_bpc < math.log2(tasks.info("chars", **CHARS).vocab_size)


def test_fit_module_in_place():
    torch.manual_seed(1)
    m = TinyCNN()
    before = m.head.weight.detach().clone()
    r = fit(m, "digits", steps=5, eval_every=0, **QUICK)
    assert r.model is m and r.model_name == "TinyCNN" and not torch.equal(before, m.head.weight)


def test_same_seed_same_curve_bit_for_bit(cnn_graph):
    a = fit(cnn_graph, "digits", steps=12, eval_every=6, seed=3, **QUICK)
    b = fit(cnn_graph, "digits", steps=12, eval_every=6, seed=3, **QUICK)
    c = fit(cnn_graph, "digits", steps=12, eval_every=6, seed=4, **QUICK)
    assert a.loss_curve == b.loss_curve and a.eval_curve == b.eval_curve
    assert all(torch.equal(x, y) for x, y in zip(_weights(a).values(), _weights(b).values()))
    assert a.loss_curve != c.loss_curve


@pytest.mark.parametrize("optimizer,schedule", [("adamw", "cosine"), ("sgd", "linear")])
def test_resume_equals_uninterrupted(cnn_graph, tmp_path, optimizer, schedule):
    kw = dict(steps=20, eval_every=5, warmup=3, seed=7, optimizer=optimizer, schedule=schedule, **QUICK)
    straight = fit(cnn_graph, "digits", **kw)
    with pytest.raises(TrainInterrupted) as info:
        fit(cnn_graph, "digits", out_dir=tmp_path, callback=_stop_at(10), **kw)
    part = info.value.result
    assert isinstance(info.value, KeyboardInterrupt)
    assert part.status == "interrupted" and part.steps == 10 and part.test_accuracy is None
    assert info.value.checkpoint == str(tmp_path / "checkpoint") and "resume" in str(info.value)
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "interrupted"
    resumed = fit(cnn_graph, "digits", resume=tmp_path, **kw)
    assert resumed.steps == 20 and resumed.loss_curve == straight.loss_curve
    assert resumed.eval_curve == straight.eval_curve
    assert resumed.val_accuracy == straight.val_accuracy and resumed.test_loss == straight.test_loss
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # BN stats and counters too


def test_interrupt_without_out_dir_names_a_temp_checkpoint(cnn_graph):
    with pytest.raises(TrainInterrupted) as info:
        fit(cnn_graph, "digits", steps=10, callback=_stop_at(2), **QUICK)
    assert load_checkpoint(info.value.checkpoint).meta["step"] == 2
    assert info.value.checkpoint in str(info.value)


def test_ctrl_c_finishes_the_step_then_saves(cnn_graph, tmp_path):
    def press_ctrl_c(step: int, loss: float) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the handler only notes it; the step loop stops at its end

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainInterrupted) as info:
        fit(cnn_graph, "digits", steps=10, out_dir=tmp_path, callback=press_ctrl_c, **QUICK)
    assert info.value.result.steps == 3 and load_checkpoint(tmp_path).meta["step"] == 3
    assert signal.getsignal(signal.SIGINT) is before


def test_resume_with_another_task_is_refused(cnn_graph, tmp_path):
    fit(cnn_graph, "digits", steps=2, out_dir=tmp_path, eval_every=0, **QUICK)
    mnist_graph = from_module(TinyCNN(side=28), (torch.randn(2, 1, 28, 28),))
    with pytest.raises(TrainError, match="trained with task='digits', this run has 'mnist5k'"):
        fit(mnist_graph, "mnist5k", steps=4, resume=tmp_path, **QUICK)
    with pytest.raises(TrainError, match="is not a training checkpoint"):
        fit(cnn_graph, "digits", steps=4, resume=tmp_path.parent, **QUICK)


def test_graph_mismatch_message(cnn_graph, monkeypatch):
    def cannot(graph, name, **opts):
        raise GraphError("retarget: no stem to adapt")

    monkeypatch.setattr(tasks, "fit", cannot)  # a graph retarget cannot adapt: the error says what and why
    with pytest.raises(TrainError) as info:
        fit(cnn_graph, "mnist5k", steps=1, **QUICK)
    msg = str(info.value)
    assert "expected input (1, 28, 28), graph takes (1, 8, 8)" in msg and "mnist5k" in msg
    assert "retargeting failed: GraphError: retarget: no stem to adapt" in msg
    wide = from_module(TinyCNN(classes=7), (torch.randn(2, 1, 8, 8),))
    with pytest.raises(TrainError, match="output has 7 classes, task has 10"):
        fit(wide, "digits", steps=1, **QUICK)
    with pytest.raises(TrainError, match="task feeds token ids"):
        fit(cnn_graph, "chars", steps=1, task_options=CHARS, **QUICK)


class _Bidirectional(nn.Module):
    """Each position also sees the mean of the whole sequence: later tokens leak into earlier logits."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 8)
        self.head = nn.Linear(8, vocab)

    def forward(self, ids):
        h = self.emb(ids)
        return self.head(h + h.mean(1, keepdim=True))


def test_language_model_that_sees_later_tokens_is_flagged(caplog):
    vocab = tasks.info("chars", **CHARS).vocab_size
    x = torch.randint(0, vocab, (2, 6))
    assert not sees_future(TinyLM(vocab), x, vocab) and sees_future(_Bidirectional(vocab), x, vocab)
    r = fit(_Bidirectional(vocab), "chars", steps=2, eval_every=0, task_options=CHARS, **QUICK)
    assert r.sees_future is True and "sees later tokens" in caplog.text
    assert fit(TinyLM(vocab), "chars", steps=2, eval_every=0, task_options=CHARS, **QUICK).sees_future is False
    assert fit(DigitsCNN(), "digits", steps=1, eval_every=0, **QUICK).sees_future is None
    with pytest.raises(TrainError, match="token ids"):
        sees_future(TinyLM(vocab), x[:, :1], vocab)


def test_graph_for_another_task_is_retargeted(cnn_graph):
    r = fit(cnn_graph, "mnist5k", steps=2, eval_every=0, **QUICK)  # an 8x8 digits CNN on 28x28 MNIST
    assert r.retargeted and r.status == "completed" and r.val_accuracy is not None
    assert r.model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert cnn_graph.inputs[0].shape[1:] == [1, 8, 8]  # the caller's graph is left as it was


def test_module_mismatch_message(vocab):
    with pytest.raises(TrainError, match=r"module 'TinyCNN' fails on task 'mnist5k' inputs \(2, 1, 28, 28\)"):
        fit(TinyCNN(), "mnist5k", steps=1, **QUICK)
    with pytest.raises(TrainError, match=r"outputs \(2, 16, 5\) .*expected \(2, 16, %d\)" % vocab):
        fit(nn.Sequential(nn.Embedding(vocab, 8), nn.Linear(8, 5)), "chars", steps=1, task_options=CHARS, **QUICK)
    with pytest.raises(TrainError, match="IndexError"):
        fit(TinyLM(vocab=5), "chars", steps=1, task_options=CHARS, **QUICK)


@pytest.mark.parametrize("kwargs,words", [
    (dict(optimizer="lamb"), "unknown optimizer 'lamb'; use one of adam, adamw, sgd"),
    (dict(schedule="step"), "unknown schedule 'step'"),
    (dict(batch_size=5000), "exceeds the 1437 training examples"),
    (dict(task_options={"seq_len": 8}), "got unknown option(s) seq_len"),
    (dict(device="tpu:0"), "device"),
])
def test_bad_options(cnn_graph, kwargs, words):
    with pytest.raises(TrainError) as info:
        fit(cnn_graph, "digits", steps=1, **{**QUICK, **kwargs})
    assert words in str(info.value)


def test_unknown_task(cnn_graph):
    with pytest.raises(TrainError, match="unknown task 'mnist'; known tasks: "):
        fit(cnn_graph, "mnist", steps=1)


@pytest.mark.slow
def test_small_cnn_learns_digits():
    """A small CNN graph reaches > 90% validation accuracy on digits in 300 CPU steps."""
    torch.manual_seed(0)
    g = from_module(DigitsCNN(), (torch.randn(2, 1, 8, 8),), name="digits_cnn")
    r = fit(g, "digits", steps=300, batch_size=64, lr=3e-3, progress=False)
    assert r.val_accuracy > 0.9, r.eval_curve
    assert r.test_accuracy > 0.9


def _fake_cifar10(root):
    """A CIFAR-10 folder in the real layout (python pickle batches) with 20 random images per batch."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"labels": [i % 10 for i in range(20)], b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return root


@pytest.mark.parametrize("task", tasks.names())
def test_fit_runs_on_every_task(task, cnn_graph, lm_graph, tmp_path):
    opts = dict(CHARS) if task == "chars" else {}
    if task == "cifar10":
        opts["data_dir"] = str(_fake_cifar10(tmp_path))
    graph = lm_graph if task == "chars" else cnn_graph  # the digits CNN is retargeted to the other image tasks
    if task == "mnist1d":  # 1-d signals: a conv1d net
        b = GraphBuilder("conv1d_net")
        h = b.op("relu", b.op("conv1d", b.input("x", ("B", 1, 40)), out_channels=4, kernel_size=5))
        b.output(b.op("linear", b.op("flatten", h, start_dim=1), out_features=10))
        graph = b.build()
    r = fit(graph, task, steps=3, eval_every=0, task_options=opts, **{**QUICK, "batch_size": 8})
    assert r.status == "completed" and r.steps == 3 and math.isfinite(r.val_loss)
    assert (r.val_bpc if task == "chars" else r.val_accuracy) is not None
    assert r.retargeted == (task in ("mnist5k", "cifar10"))


def test_init_from_a_state_dict_or_file_is_where_training_starts(cnn_graph, tmp_path):
    """``init`` replaces the seeded init exactly: 0 steps leave the given weights (and buffers) in the model, and
    a run from them differs from a run from the seed's init; the label is recorded in the config."""
    from safetensors.torch import save_file

    torch.manual_seed(123)
    state = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v.clone()
             for k, v in cnn_graph.to_module().state_dict().items()}
    r = fit(cnn_graph, "digits", steps=0, init=state, **QUICK)
    got = r.model.state_dict()
    assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    assert r.config["init"] == "state_dict"
    path = tmp_path / "w.safetensors"
    save_file(state, str(path))
    a = fit(cnn_graph, "digits", steps=5, init=path, **QUICK)
    b = fit(cnn_graph, "digits", steps=5, init=state, **QUICK)
    plain = fit(cnn_graph, "digits", steps=5, **QUICK)
    assert a.config["init"] == str(path) and "init" not in plain.config
    assert a.loss_curve == b.loss_curve != plain.loss_curve


def test_init_that_does_not_fit_is_a_clear_error(cnn_graph, tmp_path):
    state = cnn_graph.to_module().state_dict()
    name = next(k for k in state if k.endswith("weight"))
    with pytest.raises(TrainError, match=rf"1 missing \({name}\)"):
        fit(cnn_graph, "digits", steps=1, init={k: v for k, v in state.items() if k != name}, **QUICK)
    with pytest.raises(TrainError, match=r"1 not in the model \(extra\)"):
        fit(cnn_graph, "digits", steps=1, init={**state, "extra": torch.zeros(1)}, **QUICK)
    with pytest.raises(TrainError, match="of another shape"):
        fit(cnn_graph, "digits", steps=1, init={**state, name: torch.zeros(3)}, **QUICK)
    with pytest.raises(TrainError, match="no such file"):
        fit(cnn_graph, "digits", steps=1, init=tmp_path / "nope.safetensors", **QUICK)
    (tmp_path / "bad.safetensors").write_text("not weights")
    with pytest.raises(TrainError, match="is not a safetensors file"):
        fit(cnn_graph, "digits", steps=1, init=tmp_path / "bad.safetensors", **QUICK)
    with pytest.raises(TrainError, match="is not a GHN checkpoint"):
        fit(cnn_graph, "digits", steps=1, init=f"ghn:{tmp_path}", **QUICK)
    with pytest.raises(TrainError, match="init must be"):
        fit(cnn_graph, "digits", steps=1, init=3, **QUICK)


def test_resume_keeps_the_checkpoint_weights_and_the_init_label(cnn_graph, tmp_path):
    torch.manual_seed(5)
    state = {k: v + 0.1 * torch.randn_like(v) if v.is_floating_point() else v
             for k, v in cnn_graph.to_module().state_dict().items()}
    kw = dict(steps=8, eval_every=0, **QUICK)
    straight = fit(cnn_graph, "digits", init=state, **kw)
    with pytest.raises(TrainInterrupted):
        fit(cnn_graph, "digits", init=state, out_dir=tmp_path, callback=_stop_at(4), **kw)
    resumed = fit(cnn_graph, "digits", resume=tmp_path, **kw)  # no init: the checkpoint's weights and label
    assert resumed.loss_curve == straight.loss_curve and resumed.config["init"] == "state_dict"
    again = fit(cnn_graph, "digits", resume=tmp_path, init={}, **kw)  # an init is not applied on resume
    assert again.loss_curve == straight.loss_curve
