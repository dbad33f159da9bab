"""The GHN: encoding covers every parameter, predictions are permutation invariant and well scaled, training
lowers the loss and resumes exactly, the API fills modules and graphs, checkpoints round-trip."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from torch import nn

from mad.data import tasks
from mad.data.random_space.sampling import sample
from mad.ghn import GHN, GHNConfig, GHNError, GHNModel, encode, load
from mad.ghn.api import fill_parameters, recalibrate_batch_norm
from mad.ghn.encode import KINDS, collate
from mad.ghn.model import task_features
from mad.graph import ArchGraph

from ghn_graphs import digits_graphs

TINY = dict(d=32, layers=1, heads=4, ff=64, pe=8, rank=4)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def graphs() -> list[ArchGraph]:
    """Random-space architectures put on digits (convs, norms, linears, some free parameters)."""
    return digits_graphs(4)


@pytest.fixture(scope="module")
def tiny() -> GHN:
    torch.manual_seed(0)
    return GHN(GHNModel(GHNConfig(**TINY)), device="cpu")


def _predict(model: GHNModel, gs: list[ArchGraph], task: str = "digits"):
    spec = tasks.info(task)
    tf = task_features(spec.input_shape, spec.num_classes, False)
    enc = [encode(g) for g in gs]
    with torch.no_grad():
        out, pooled, _ = model.eval()(collate(enc), model.task_ids([task] * len(gs)), tf[None].repeat(len(gs), 1))
    return out


def test_slots_cover_every_parameter(graphs):
    for g in graphs:
        module = g.to_module()
        slots = {s.fqn: s for s in encode(g).slots}
        params = dict(module.named_parameters())
        assert set(slots) == set(params), g.name
        for name, p in params.items():
            assert slots[name].shape == tuple(p.shape)
        buffers = {n for n, _ in module.named_buffers()}
        assert not buffers & set(slots)


@pytest.mark.parametrize("decoder", ["tiled", "cp"])
def test_predictions_fit_the_module_and_are_scaled(decoder, graphs):
    torch.manual_seed(0)
    out = _predict(GHNModel(GHNConfig(**TINY, decoder=decoder)), graphs)
    for g, params in zip(graphs, out):
        module = g.to_module()
        filled, total = fill_parameters(module, params)
        assert filled == total > 0
        for s in encode(g).slots:
            t = params[s.fqn]
            assert torch.isfinite(t).all()
            if KINDS[s.kind] == "weight":  # gains start at the PyTorch default scale 1/sqrt(fan_in)
                rms = t.pow(2).mean().sqrt().item()
                assert 0.5 / math.sqrt(s.fan_in) < rms < 1.5 / math.sqrt(s.fan_in), s.fqn
            elif KINDS[s.kind] == "scale":  # norm weights start at exactly 1, biases at 0
                assert torch.allclose(t, torch.ones_like(t))
            elif KINDS[s.kind] == "bias":
                assert torch.allclose(t, torch.zeros_like(t))
        x = torch.randn(3, 1, 8, 8)
        assert module(x).shape == (3, 10)


def test_tiled_decoder_repeats_the_block_periodically_and_the_penalty_flag_changes_nothing_else(graphs):
    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY, decoder="tiled")).eval()
    bo, bi, bk = model.config.block
    u = torch.randn(2, model.config.d)
    T = model.tile(u).view(-1, bo, bi, bk)
    for dims in [(2 * bo + 3, bi - 1), (bo, 3 * bi + 1, 2, 3), (5, 7, 2 * bk + 1), (bo + 1, bi)]:
        rest = math.prod(dims[2:])
        a, b, s = torch.meshgrid(torch.arange(dims[0]), torch.arange(dims[1]), torch.arange(rest), indexing="ij")
        expected = T[:, a % bo, b % bi, s % bk]
        torch.testing.assert_close(model._tiled(dims, u), expected, rtol=0, atol=0)
    v = model.tile_vec(u)
    n = 3 * v.shape[1] + 2
    torch.testing.assert_close(model._tiled((n,), u), v[:, torch.arange(n) % v.shape[1]], rtol=0, atol=0)
    spec = tasks.info("digits")
    tf = task_features(spec.input_shape, spec.num_classes, False)
    batch, ids = collate([encode(g) for g in graphs]), model.task_ids(["digits"] * len(graphs))
    with torch.no_grad():
        with_norm, _, norm = model(batch, ids, tf[None].repeat(len(graphs), 1))
        without, _, zero = model(batch, ids, tf[None].repeat(len(graphs), 1), penalty=False)
    assert norm.item() > 0 and zero.item() == 0
    for a, b in zip(with_norm, without):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _permuted(g: ArchGraph, seed: int) -> ArchGraph:
    d = g.to_dict()
    random.Random(seed).shuffle(d["nodes"])
    random.Random(seed + 1).shuffle(d["edges"])
    return ArchGraph.from_dict(d)


@pytest.mark.parametrize("decoder", ["tiled", "cp"])
def test_permutation_invariant(decoder, graphs):
    torch.manual_seed(1)
    model = GHNModel(GHNConfig(**TINY, decoder=decoder))
    with torch.no_grad():  # make the gain heads non-trivial so every part of the decoder matters
        model.gains.weight.normal_(0, 0.5)
    g = graphs[0]
    h = _permuted(g, 3)
    assert [n for n in h.nodes] != [n for n in g.nodes]
    a, b = _predict(model, [g])[0], _predict(model, [h])[0]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_batching_does_not_change_predictions(tiny, graphs):
    together = _predict(tiny.model, graphs)
    alone = [_predict(tiny.model, [g])[0] for g in graphs]
    for x, y in zip(together, alone):
        for k in x:
            torch.testing.assert_close(x[k], y[k], rtol=1e-4, atol=1e-5)


def test_task_conditioning_changes_predictions(graphs):
    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY))
    g = graphs[0]
    enc = collate([encode(g)])
    tf = task_features((1, 8, 8), 10, False)[None]
    with torch.no_grad():
        a, _, _ = model.eval()(enc, model.task_ids(["digits"]), tf)
        b, _, _ = model(enc, model.task_ids(["mnist5k"]), tf)
    assert any(not torch.allclose(a[0][k], b[0][k]) for k in a[0])


def test_training_steps_lower_the_loss(graphs):
    """A few AdamW steps of the GHN on four graphs lower their loss with predicted parameters."""
    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec

    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY))
    spec = TaskSpec.of("digits")
    data = TaskData(spec, batch_size=128)
    x, y = data.train_batch(0)
    enc = collate([encode(g) for g in graphs])
    mods = [g.to_module() for g in graphs]
    tf = task_features(spec.input_shape, spec.num_outputs, False)[None].repeat(len(graphs), 1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        out, _, _ = model(enc, model.task_ids(["digits"] * len(graphs)), tf)
        return torch.stack([spec.loss(torch.func.functional_call(m, p, (x,)), y) for m, p in zip(mods, out)]).mean()

    first = loss()
    for _ in range(25):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < first.item() - 0.2


def _step_state(graphs):
    """What ``mad.ghn.train._step`` reads of a task: the encoded graphs, their modules, the task and its data."""
    from types import SimpleNamespace

    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec

    spec = TaskSpec.of("digits")
    return SimpleNamespace(spec=spec, data=TaskData(spec, batch_size=64), enc=[encode(g) for g in graphs],
                           modules=[g.to_module() for g in graphs], pool=[(str(i), g) for i, g in enumerate(graphs)],
                           features=task_features(spec.input_shape, spec.num_outputs, False), broken=set())


class _Backward:
    @staticmethod
    def backward(t: torch.Tensor) -> None:
        t.backward()


@pytest.mark.parametrize("param_clip", [0.0, 0.05])
def test_step_gradient_is_the_loss_gradient_clipped_per_predicted_tensor(graphs, param_clip):
    """Without clipping the GHN step's gradient is exactly that of the mean loss plus the penalty; with it, every
    predicted tensor's share of the gradient is clipped to ``param_clip`` before the GHN's backward pass."""
    from mad.ghn.train import TrainConfig, _step

    st = _step_state(graphs)
    cfg = TrainConfig(tasks=["digits"], param_clip=param_clip)
    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY))
    idx = list(range(len(graphs)))
    figures = _step(model, st, idx, 0, cfg, None, _Backward())
    got = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()
    out, _, penalty = model(collate(st.enc), model.task_ids(["digits"] * 4), st.features[None].repeat(4, 1))
    x, y = st.data.train_batch(0)
    loss = torch.stack([st.spec.loss(torch.func.functional_call(st.modules[i], p, (x,)), y)
                        for i, p in zip(idx, out)]).mean()
    if not param_clip:  # the gradient of the loss itself
        (loss + cfg.norm_penalty * penalty).backward()
        assert figures["clipped"] == 0
    else:
        tensors = [t for p in out for t in p.values()]
        shares = torch.autograd.grad(loss, tensors, retain_graph=True, allow_unused=True)
        assert figures["clipped"] == sum(s is not None and float(s.norm()) > param_clip for s in shares)
        assert 0 < figures["clipped"] < len(tensors)
        shares = [s * min(1.0, param_clip / float(s.norm())) for s in shares]
        (cfg.norm_penalty * penalty + sum((t * s).sum() for t, s in zip(tensors, shares))).backward()
    for k, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[k], p.grad, rtol=1e-4, atol=1e-6, msg=k)


def test_recalibrate_batch_norm_uses_batch_statistics():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    xs = [torch.randn(16, 1, 8, 8) * 3 + 1 for _ in range(3)]
    assert recalibrate_batch_norm(net, xs) == 1
    feats = torch.cat([net[0](x) for x in xs])
    torch.testing.assert_close(net[1].running_mean, feats.mean((0, 2, 3)), rtol=1e-4, atol=1e-4)
    assert net[1].momentum == 0.1 and net.training  # momentum and mode restored


class _TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x))).flatten(1))


def test_predict_fills_the_same_module_and_builds_graphs(tiny):
    torch.manual_seed(0)
    net = _TinyCNN()
    before = net.conv.weight.detach().clone()
    out = tiny.predict(net, "digits")
    assert out is net
    assert not torch.equal(before, net.conv.weight)
    assert net.ghn_info["predicted_share"] == 1.0
    assert not net.training
    g = tasks.fit(sample(1), "mnist5k")
    m = tiny.predict(g, "digits")  # a graph for another input is retargeted
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_score_and_round_trip(tiny, graphs, tmp_path):
    s = tiny.score(graphs[0], "digits", max_examples=100)
    assert set(s) >= {"accuracy", "loss", "quality", "seconds_predict", "seconds_eval", "predicted_share"}
    assert 0.0 <= s["accuracy"] <= 1.0 and s["predicted_share"] == 1.0
    many = tiny.score(graphs[:2], "digits", max_examples=100)
    assert isinstance(many, list) and len(many) == 2
    tiny.save(tmp_path / "g", {"note": "test"})
    again = load(tmp_path / "g", device="cpu")
    assert again.record == {"note": "test"}
    a, b = _predict(tiny.model, graphs[:1])[0], _predict(again.model, graphs[:1])[0]
    for k in a:
        assert torch.equal(a[k], b[k])


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(GHNError, match="not a GHN checkpoint"):
        load(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text(json.dumps(GHNConfig(**TINY).to_dict()))
    with pytest.raises(Exception):
        load(tmp_path)


class _Broken(nn.Module):
    def forward(self, x):
        raise RuntimeError("this module does not run")


def test_bad_input_is_a_clear_error(tiny, graphs):
    with pytest.raises(GHNError, match="ArchGraph or a torch.nn.Module"):
        tiny.predict("not a model", "digits")
    with pytest.raises(GHNError, match="cannot capture _Broken"):
        tiny.score(_Broken(), "digits")
    out = tiny.score([_Broken(), graphs[0]], "digits", max_examples=50)  # one bad model does not stop the rest
    assert "cannot capture" in out[0]["error"] and 0.0 <= out[1]["accuracy"] <= 1.0


def test_training_run_resumes_exactly(tmp_path):
    """Six steps in one run equal three steps, a stop, and three more."""
    from mad.ghn.train import TrainConfig, train

    kw = dict(tasks=["digits"], steps=6, graphs={"digits": 4}, val_graphs=1, eval_every=6, save_every=3,
              log_every=1, warmup=2, meta_batch=2, batch_size=32, quality_tasks=["digits"],
              quality_graphs={"digits": 4},
              quality_steps=3)
    mc = GHNConfig(**TINY)
    train(TrainConfig(**kw), tmp_path / "a", model_config=mc, progress=False)
    part = train(TrainConfig(**kw), tmp_path / "b", model_config=GHNConfig(**TINY), progress=False, run_steps=3)
    assert part["status"] == "time_limit" and part["steps"] == 3
    rec = train(TrainConfig(**kw), tmp_path / "b", progress=False)
    assert rec["status"] == "completed" and rec["steps"] == 6
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        torch.testing.assert_close(v, w, msg=k)
    assert a.record["quality"]["tasks"]["digits"]["graphs"] == 4
    assert len(a.quality([g for g in []], [], "digits")) == 0
    logged = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert any("eval" in r for r in logged)


def test_readout_fit_on_a_probe(graphs):
    """The closed-form head finds the logits layer, refits it from task batches and beats chance on them."""
    from mad.ghn.readout import fit_readout, readout_layer
    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec

    spec = TaskSpec.of("digits")
    data = TaskData(spec, batch_size=64)
    batches = [data.train_batch(i) for i in range(6)]
    g = graphs[0]
    torch.manual_seed(0)
    module = g.to_module()
    layer, why = readout_layer(g, module, 10)
    assert layer is not None, why
    fit = fit_readout(module, layer, batches, 10)
    assert fit["examples"] == 6 * 64
    with torch.no_grad():
        acc = sum((module(x).argmax(-1) == y).float().mean().item() for x, y in batches) / len(batches)
    assert acc > 0.5
    assert readout_layer(g, module, 7)[0] is None  # another class count: not the logits layer


def test_quality_estimate_is_calibrated_per_task(graphs):
    """A quality estimator fitted on labelled graphs reports estimates in the metric's units for that task only."""
    from mad.ghn.quality import fit_quality

    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    labels = [0.2, 0.4, 0.6, 0.8]
    stats = fit_quality(ghn.model, {"digits": list(zip(graphs, labels))}, target="metric")
    assert stats["tasks"]["digits"]["graphs"] == 4 and stats["tasks"]["digits"]["higher_is_better"]
    ghn.record["quality"] = stats
    est = ghn.quality(graphs, _pooled(ghn.model, graphs), "digits")
    assert all(0.0 < e < 1.0 for e in est)
    assert abs(sum(est) / 4 - 0.5) < 1e-6  # ridge keeps the mean of its labels
    assert ghn.quality(graphs, _pooled(ghn.model, graphs), "mnist5k") == [None] * len(graphs)
    # the default target: the labels' normal scores, read back in the metric's units in the same order
    ghn.record["quality"] = fit_quality(ghn.model, {"digits": list(zip(graphs, labels))})
    fitted = ghn.calibrated("digits")
    assert fitted["target"] == "normal_scores" and fitted["table"]["metric"][0] == 0.2
    est = ghn.quality(graphs, _pooled(ghn.model, graphs), "digits")
    from mad.ghn.quality import feature_rows

    rows = feature_rows(graphs, _pooled(ghn.model, graphs), "digits", ghn.predicted_metrics(graphs, "digits"))
    raw = (rows @ torch.tensor(fitted["coef"], dtype=torch.float64)).tolist()
    assert sorted(range(4), key=lambda i: est[i]) == sorted(range(4), key=lambda i: raw[i])
    assert all(0.0 < e < 1.0 for e in est)
    with pytest.raises(ValueError, match="target"):
        fit_quality(ghn.model, {"digits": list(zip(graphs, labels))}, target="ranks")


@pytest.mark.parametrize("accuracy", [True, False])
def test_normal_scores_go_back_to_the_metric_in_order_and_within_bounds(accuracy):
    """The map from predicted normal scores to the metric passes through the labels' quantiles, is strictly
    increasing everywhere (no two estimates tie, as clipping would make them) and saturates past the ends."""
    import numpy as np

    from mad.ghn.quality import normal_scores, to_metric

    rng = np.random.default_rng(0)
    y = rng.uniform(0.3, 0.99, 200) if accuracy else np.concatenate([rng.normal(4.5, 0.3, 180), [9, 10, 10.6]])
    z = normal_scores(y)
    assert np.allclose(np.sort(z), -np.sort(-z)[::-1]) and abs(z.mean()) < 1e-9  # symmetric scores
    qs = np.linspace(0, 1, 41)
    est = {"table": {"score": list(np.quantile(z, qs)), "metric": list(np.quantile(y, qs))},
           "higher_is_better": accuracy}
    x = torch.linspace(-12, 12, 4001, dtype=torch.float64)
    m = to_metric(x, est)
    assert bool((m[1:] > m[:-1]).all())
    lo, hi = y.min(), y.max()
    span = hi - lo
    assert m.min() >= lo - 0.1 * span - 1e-9 and m.max() <= (min(1.0, hi + 0.1 * span) if accuracy else
                                                                  hi + 0.1 * span) + 1e-9
    at = to_metric(torch.tensor(est["table"]["score"][5:8], dtype=torch.float64), est)
    assert at.tolist() == pytest.approx(est["table"]["metric"][5:8], rel=1e-4)


def test_estimate_alone_equals_the_estimate_of_a_prediction(graphs):
    """``estimate`` (no parameters decoded) gives what ``predict`` reports, and ``None`` off its tasks."""
    from mad.ghn.quality import fit_quality

    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    ghn.record["quality"] = fit_quality(ghn.model, {"digits": list(zip(graphs, [0.2, 0.4, 0.6, 0.8]))})
    assert ghn.calibrated("digits")["higher_is_better"] and ghn.calibrated("mnist1d") is None
    est = ghn.estimate(graphs, "digits")
    via_predict = [m.ghn_info["quality"] for m in ghn.predict_many(graphs, "digits", bn_batches=1)]
    assert est == pytest.approx(via_predict, abs=1e-6)
    assert ghn.estimate(graphs, "mnist1d") == [None] * len(graphs)


def test_quality_estimate_reads_the_predicted_metric_when_fitted_with_it(graphs):
    """By default an estimator also reads the metric of the predicted parameters (one more coefficient, measured
    the same way whatever a caller asks of predict); without it, it reads the embedding and costs only; an
    estimator that does not match the GHN's features is a clear error."""
    from mad.ghn.quality import PREDICTED, fit_quality

    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    pairs = list(zip(graphs, [0.2, 0.4, 0.6, 0.8]))
    with_pm = fit_quality(ghn.model, {"digits": pairs})["tasks"]["digits"]
    without = fit_quality(ghn.model, {"digits": pairs}, predicted=False)["tasks"]["digits"]
    d = ghn.config.d
    assert with_pm["predicted"] == PREDICTED and len(with_pm["coef"]) == d + 3
    assert "predicted" not in without and len(without["coef"]) == d + 2
    metrics = ghn.predicted_metrics(graphs, "digits")
    scored = ghn.score(graphs, "digits", max_examples=PREDICTED["examples"])
    assert metrics == pytest.approx([s["accuracy"] for s in scored], abs=1e-9)  # predict with 8 BN batches
    for est in (with_pm, without):
        ghn.record["quality"] = {"tasks": {"digits": est}}
        assert ghn.estimate(graphs, "digits") == pytest.approx(
            [m.ghn_info["quality"] for m in ghn.predict_many(graphs, "digits", bn_batches=1)], abs=1e-9)
    ghn.record["quality"] = {"tasks": {"digits": {**without, "predicted": PREDICTED}}}
    with pytest.raises(GHNError, match="refit"):
        ghn.estimate(graphs, "digits")


def test_predicted_column_is_log_bits_or_accuracy_and_the_worst_when_missing():
    from mad.ghn.quality import predicted_column

    lm = predicted_column([2.0, float("nan"), None, 1e9], is_lm=True)[:, 0].tolist()
    assert lm == pytest.approx([math.log(2.0), math.log(1e3), math.log(1e3), math.log(1e3)])
    assert predicted_column([0.5, float("inf"), None], is_lm=False)[:, 0].tolist() == [0.5, 0.0, 0.0]


def _pooled(model, gs):
    from mad.ghn.quality import embeddings

    return list(embeddings(model, gs, "digits"))


def test_tiny_ghn_beats_default_init_on_digits(graphs):
    """A tiny GHN trained for a few dozen steps on two digits graphs predicts parameters that classify digits
    better than PyTorch's default init of the same graphs."""
    from mad.ghn.api import evaluate
    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec

    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY))
    spec = TaskSpec.of("digits")
    data = TaskData(spec, batch_size=128)
    gs = graphs[:2]
    enc = collate([encode(g) for g in gs])
    mods = [g.to_module() for g in gs]
    tf = task_features(spec.input_shape, spec.num_outputs, False)[None].repeat(len(gs), 1)
    ids = model.task_ids(["digits"] * len(gs))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(60):
        x, y = data.train_batch(step)
        out, _, _ = model(enc, ids, tf)
        loss = torch.stack([spec.loss(torch.func.functional_call(m.train(), p, (x,)), y)
                            for m, p in zip(mods, out)]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ghn = GHN(model, device="cpu")
    predicted = [evaluate(m, "digits")["accuracy"] for m in ghn.predict_many(gs, "digits")]
    torch.manual_seed(0)
    default = []
    for g in gs:
        m = g.to_module()
        recalibrate_batch_norm(m, [data.train_batch(i)[0] for i in range(8)])
        default.append(evaluate(m, "digits")["accuracy"])
    assert sum(predicted) / 2 > sum(default) / 2 + 0.1, (predicted, default)


def test_graph_costs_are_log_params_and_flops(graphs):
    from mad.ghn.quality import graph_costs
    from mad.train import proxies

    g = graphs[0]
    n, f = graph_costs(g, "digits")
    assert g.num_params > 0 and n == pytest.approx(math.log1p(g.num_params))
    assert f == pytest.approx(math.log1p(proxies.flops(g, "digits", batch_size=1)))


def test_batch_norm_statistics_are_recomputed_as_the_mean_over_the_batches():
    from mad.graph import GraphBuilder

    b = GraphBuilder(dims={"B": 2})
    x = b.input("x", ("B", 3, 8, 8))
    b.output(b.op("batch_norm", b.op("conv2d", x, out_channels=4, kernel_size=3)))
    m = b.build().to_module()
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(16, 3, 8, 8, generator=gen) * 3 + 1 for _ in range(4)]
    assert recalibrate_batch_norm(m, xs) == 1
    conv = next(t for t in m.modules() if isinstance(t, nn.Conv2d))
    bn = next(t for t in m.modules() if isinstance(t, nn.BatchNorm2d))
    with torch.no_grad():
        feats = [conv(xb) for xb in xs]
    torch.testing.assert_close(bn.running_mean, torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([f.transpose(0, 1).reshape(4, -1).var(1)
                                                            for f in feats]).mean(0))
    assert bn.momentum == 0.1  # put back
