"""A ``head_norm`` GHN: its classification heads are trained on the head's input standardized over the batch, and
prediction folds the statistics of that input (on the batch-norm batches, no labels) into the head."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from mad.ghn import GHN, GHNConfig, GHNModel, encode, load
from mad.ghn.api import materialise
from mad.ghn.encode import collate
from mad.ghn.readout import _Inputs, fold_head_norm, readout_layer, readout_weight_name, standardize
from mad.train.data import TaskData
from mad.train.objective import TaskSpec, logits_of

from ghn_graphs import digits_graphs

TINY = dict(d=32, layers=1, heads=4, ff=64, pe=8, rank=4)


@pytest.fixture(scope="module")
def graphs():
    torch.set_num_threads(1)
    out = []
    for g in digits_graphs(6):
        if readout_layer(g, g.to_module(), 10)[0] is not None:
            out.append(g)
    assert len(out) >= 3, "digits graphs with a linear output layer"
    return out[:3]


def _head_inputs(module, layer, x) -> torch.Tensor:
    grab = _Inputs(layer.weight)
    with torch.no_grad(), grab:
        module(x)
    return grab.feats[0].double()


def test_standardize_gives_zero_mean_unit_variance_features():
    x = torch.randn(64, 5, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.5, 3.0, 0.0]) + 7.0
    z = standardize(x)
    assert torch.allclose(z.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(z[:, :4].var(0, unbiased=False), torch.ones(4, dtype=torch.float64), atol=1e-3)
    assert torch.equal(z[:, 4], torch.zeros(64, dtype=torch.float64))  # a constant feature is zero, not NaN
    scaled = standardize(x, center=False)
    assert torch.allclose(scaled * (x.var(0, unbiased=False) + 1e-5).sqrt(), x)


def test_fold_equals_the_head_on_standardized_inputs(graphs):
    """After the fold, the module's logits on new inputs are the original head applied to its input standardized
    with the statistics of the fold's inputs; a class count with no matching head leaves the module unchanged."""
    g = graphs[0]
    torch.manual_seed(0)
    module = g.to_module().eval()
    layer, _ = readout_layer(g, module, 10)
    data = TaskData(TaskSpec.of("digits"), batch_size=64)
    xs = [data.train_batch(i)[0] for i in range(4)]
    X = torch.cat([_head_inputs(module, layer, x) for x in xs])
    mu, sd = X.mean(0), (X.var(0, unbiased=False) + 1e-5).sqrt()
    W, b = layer.weight.detach().double().clone(), layer.bias.detach().double().clone()
    x_new = data.train_batch(9)[0]
    feats = _head_inputs(module, layer, x_new)
    expected = ((feats - mu) / sd) @ W.T + b

    before = {k: v.clone() for k, v in module.state_dict().items()}
    assert fold_head_norm(g, module, xs, num_outputs=7) is False  # no 7-way linear head
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in before.items())
    assert fold_head_norm(g, module, xs, num_outputs=10) is True
    with torch.no_grad():
        got = logits_of(module(x_new)).double()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    changed = [k for k, v in before.items() if not torch.equal(v, module.state_dict()[k])]
    assert sorted(changed) == sorted([readout_weight_name(g, module, 10), readout_weight_name(g, module, 10)[:-6]
                                      + "bias"])


class _Backward:
    """What ``_step`` calls on its accelerator: a plain backward pass."""

    @staticmethod
    def backward(t):
        t.backward()


def _digits_state(graphs):
    """A training step's view of ``graphs`` on digits (what ``mad.ghn.train._TaskState`` holds)."""
    from types import SimpleNamespace

    from mad.ghn.model import task_features

    spec = TaskSpec.of("digits")
    mods = [g.to_module() for g in graphs]
    return SimpleNamespace(spec=spec, data=TaskData(spec, batch_size=64), enc=[encode(g) for g in graphs],
                           modules=mods, pool=[(str(i), g) for i, g in enumerate(graphs)],
                           features=task_features(spec.input_shape, spec.num_outputs, False), broken=set(),
                           heads=[readout_weight_name(g, m, 10) for g, m in zip(graphs, mods)])


def test_step_of_a_head_norm_ghn_trains_the_head_on_standardized_inputs(graphs):
    """The loss a ``head_norm`` GHN's training step reports is the cross-entropy of the predicted head applied to its
    input standardized over the batch (batch statistics, as batch norm in training)."""
    from mad.ghn.train import TrainConfig, _step

    st = _digits_state(graphs)

    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY, head_norm=True))
    idx = list(range(len(graphs)))
    figures = _step(model, st, idx, 0, TrainConfig(tasks=["digits"]), None, _Backward())
    with torch.no_grad():
        out, _, _ = model(collate(st.enc), model.task_ids(["digits"] * len(idx)), st.features[None].repeat(3, 1))
    x, y = st.data.train_batch(0)
    losses = []
    for i, p in zip(idx, out):
        m = st.modules[i].train()
        grab = _Inputs(p[st.heads[i]])
        with torch.no_grad(), grab:
            torch.func.functional_call(m, p, (x,))
        feats = grab.feats[0]
        bias = p[st.heads[i][:-6] + "bias"]
        losses.append(F.cross_entropy(standardize(feats) @ p[st.heads[i]].T + bias, y))
    assert figures["loss"] == pytest.approx(torch.stack(losses).mean().item(), rel=1e-4)
    plain = _step(GHNModel(GHNConfig(**TINY)), st, idx, 0, TrainConfig(tasks=["digits"]), None, _Backward())
    assert plain["loss"] != pytest.approx(figures["loss"], rel=1e-3)


def test_predict_folds_only_the_head_of_a_head_norm_ghn_and_the_setting_round_trips(graphs, tmp_path):
    """``predict`` of a ``head_norm`` GHN gives every parameter as decoded except the classification head's, which
    is folded (:func:`fold_head_norm` on the batch-norm batches); a plain GHN leaves the head as decoded; a saved
    ``head_norm`` GHN loads back with the setting."""
    g = graphs[1]
    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY, head_norm=True)), device="cpu")
    raw = ghn.predict_encoded([encode(g)], "digits")[0][0]
    head = readout_weight_name(g, g.to_module(), 10)
    data = TaskData(TaskSpec.of("digits"), batch_size=64)
    xs = [data.train_batch(i)[0] for i in range(8)]
    expected, _, _ = materialise(g, raw, xs, norm_head=10)
    module = ghn.predict(g, "digits")
    state = dict(module.named_parameters())
    for k, v in raw.items():
        if k in (head, head[:-6] + "bias"):
            assert not torch.equal(state[k].detach(), v), k
            torch.testing.assert_close(state[k].detach(), dict(expected.named_parameters())[k].detach())
        else:
            assert torch.equal(state[k].detach(), v), k
    plain = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    raw_plain = plain.predict_encoded([encode(g)], "digits")[0][0]
    assert torch.equal(dict(plain.predict(g, "digits").named_parameters())[head].detach(), raw_plain[head])

    ghn.save(tmp_path / "hn")
    again = load(tmp_path / "hn", device="cpu")
    assert again.config.head_norm is True
    assert torch.equal(dict(again.predict(g, "digits").named_parameters())[head], state[head])


def test_resume_keeps_the_model_settings_and_refuses_others(tmp_path):
    """A run resumes with the model settings it was started with; other ones passed on resume are an error."""
    from mad.ghn.train import TrainConfig, train

    kw = dict(tasks=["digits"], steps=2, graphs={"digits": 4}, val_graphs=1, eval_every=2, save_every=1,
              log_every=1, warmup=1, meta_batch=2, batch_size=32, quality_tasks=[], quality_graphs={})
    part = train(TrainConfig(**kw), tmp_path / "r", model_config=GHNConfig(**TINY, head_norm=True), progress=False,
                 run_steps=1)
    assert part["status"] == "time_limit"
    with pytest.raises(ValueError, match=r"model settings \(head_norm\)"):
        train(TrainConfig(**kw), tmp_path / "r", model_config=GHNConfig(**TINY), progress=False)
    same = train(TrainConfig(**kw), tmp_path / "r", model_config=GHNConfig(**TINY, head_norm=True), progress=False,
                 run_steps=0)  # the same settings again (tuples saved as JSON lists) resume
    assert same["status"] == "time_limit" and same["steps"] == 1
    done = train(TrainConfig(**kw), tmp_path / "r", progress=False)
    assert done["status"] == "completed" and done["model_config"]["head_norm"] is True
    assert load(tmp_path / "r", device="cpu").config.head_norm is True


def test_cli_trains_a_head_norm_ghn_by_default_and_passes_the_recipe_options(tmp_path):
    from typer.testing import CliRunner

    from mad.cli import app

    def run(folder, steps, *extra):
        return CliRunner().invoke(app, ["ghn", "train", "--tasks", "digits", "--steps", str(steps), "--graphs", "4",
                                        "--quality-graphs", "0", "--eval-every", "2", "--out", str(tmp_path / folder),
                                        "--json", *extra])

    r = run("cli", 2)  # the default, as the shipped GHN was trained
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model_config"]["head_norm"] is True
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["head_norm"] is True
    # resuming that folder without it is refused: the model settings differ from the checkpoint's
    r = run("cli", 3, "--no-head-norm")
    assert r.exit_code != 0 and "model settings (head_norm)" in r.output
    r = run("plain", 2, "--no-head-norm")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["head_norm"] is False
    assert json.loads(r.stdout)["train_config"]["readout_loss"] == 0.0
    r = run("ridge", 2, "--readout-loss", "0.5", "--space-graphs", "1")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["train_config"]["readout_loss"] == 0.5 and rec["train_config"]["space_graphs"] == {"digits": 1}
    assert rec["data"]["digits"]["graphs"] == 5 and rec["data"]["digits"]["space"] == 1
    r = run("bad", 2, "--readout-loss", "-1")
    assert r.exit_code == 2 and not (tmp_path / "bad").exists()


def test_loo_ridge_error_matches_refitting_without_each_example():
    """The closed form equals ridge regression on the centered data refitted n times, each time without one example
    and scored on it; it is differentiable, near zero on separable features and near chance on noise."""
    from mad.ghn.readout import loo_ridge_error

    torch.manual_seed(0)
    n, d, k, strength = 24, 7, 4, 0.5
    X = torch.randn(n, d, dtype=torch.float64)
    y = torch.randint(0, k, (n,))
    Xc = X - X.mean(0)
    Yc = F.one_hot(y, k).double() - F.one_hot(y, k).double().mean(0)
    lam = strength * Xc.pow(2).sum(1).mean()
    errs = []
    for i in range(n):
        keep = torch.arange(n) != i
        W = torch.linalg.solve(Xc[keep].T @ Xc[keep] + lam * torch.eye(d, dtype=X.dtype), Xc[keep].T @ Yc[keep])
        errs.append((Yc[i] - Xc[i] @ W).pow(2).sum())
    brute = torch.stack(errs).mean()
    got = loo_ridge_error(X, y, k, strength)
    assert got.item() == pytest.approx(brute.item(), rel=1e-4)

    Xg = X.float().requires_grad_()
    loo_ridge_error(Xg, y, k).backward()
    assert Xg.grad is not None and torch.isfinite(Xg.grad).all() and Xg.grad.abs().sum() > 0
    separable = F.one_hot(y, k).float() * 5 + 0.01 * torch.randn(n, k)
    assert loo_ridge_error(separable, y, k).item() < 0.05
    assert loo_ridge_error(torch.randn(200, 16), torch.randint(0, k, (200,)), k).item() > 0.6  # chance: 1 - 1/k


def test_step_with_readout_loss_trains_on_the_closed_form_error_and_reports_it(graphs):
    """With ``readout_loss`` the step reports the nets' leave-one-out ridge error on the head's input beside the
    unchanged task loss, and the GHN's gradient changes; without it there is no such figure."""
    from mad.ghn.readout import loo_ridge_error
    from mad.ghn.train import TrainConfig, _step

    st = _digits_state(graphs)

    idx = list(range(len(graphs)))
    runs = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(0)
        model = GHNModel(GHNConfig(**TINY, head_norm=True))
        figures = _step(model, st, idx, 0, TrainConfig(tasks=["digits"], readout_loss=weight), None, _Backward())
        runs[weight] = (figures, torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    plain, with_loss = runs[0.0][0], runs[1.0][0]
    assert "ridge" not in plain and plain["loss"] == pytest.approx(with_loss["loss"], rel=1e-6)
    assert not torch.allclose(runs[0.0][1], runs[1.0][1])
    with torch.no_grad():
        out, _, _ = model(collate(st.enc), model.task_ids(["digits"] * len(idx)), st.features[None].repeat(3, 1))
    x, y = st.data.train_batch(0)
    errs = []
    for i, p in zip(idx, out):
        grab = _Inputs(p[st.heads[i]], standardize=True)
        with torch.no_grad(), grab:
            torch.func.functional_call(st.modules[i].train(), p, (x,))
        errs.append(loo_ridge_error(grab.feats[0], y, 10))
    assert with_loss["ridge"] == pytest.approx(torch.stack(errs).mean().item(), rel=1e-4)
