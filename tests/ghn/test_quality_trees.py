"""The GHN's tree quality estimator: exact forest arrays, fitting, storage beside the checkpoint."""

import math

import numpy as np
import pytest
import torch

from mad.ghn import GHN, GHNError, load
from mad.ghn.model import GHNConfig, GHNModel
from mad.ghn.quality import (
    FOREST_FILE, cost_rows, feature_rows, fit_estimator, fit_quality, forest_predict, pack_forest,
    pooled_and_predicted, read_record, split_forests, tree_columns, tree_rows, write_record)
from mad.graph.descriptors import STRUCTURE_NAMES, structure_features

from ghn_graphs import digits_graphs

TINY = dict(d=32, layers=1, heads=4, ff=64, pe=8, rank=4)


@pytest.fixture(scope="module")
def graphs():
    return digits_graphs(6)


@pytest.mark.parametrize("leaf", [1, 3])
def test_packed_forest_predicts_what_scikit_learn_predicts(leaf):
    """The flat arrays route every row to the leaf scikit-learn routes it to (thresholds rounded down to float32,
    inputs compared as float32), rows exactly on a threshold included."""
    from sklearn.ensemble import ExtraTreesRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) * [1, 10, 1e-3, 100, 1]
    X[:, 4] = rng.integers(0, 3, 200)  # ties: many rows on the same value
    y = X[:, 0] - 0.1 * X[:, 1] + np.sin(X[:, 3]) + rng.normal(size=200) * 0.1
    et = ExtraTreesRegressor(n_estimators=20, min_samples_leaf=leaf, max_features=1.0, random_state=0).fit(X, y)
    forest = pack_forest(et)
    assert forest["feature"].dtype == torch.int16 and forest["split"].dtype == torch.float32
    assert len(forest["roots"]) == 20 and len(forest["feature"]) == sum(t.tree_.node_count for t in et.estimators_)
    thr = np.concatenate([t.tree_.threshold for t in et.estimators_])
    Xq = np.vstack([X, rng.normal(size=(100, 5)) * 50])
    Xq[:20, 1] = thr[thr > -2][:20].astype(np.float32)  # exactly on thresholds (as float32)
    ours = forest_predict(forest, torch.from_numpy(Xq)).numpy()
    assert np.allclose(ours, et.predict(Xq), atol=1e-5, rtol=0)
    leaves = [t.apply(Xq.astype(np.float32)) for t in et.estimators_]  # the same leaf, not just a close value
    vals = np.stack([t.tree_.value[lv, 0, 0] for t, lv in zip(et.estimators_, leaves)]).astype(np.float32)
    assert np.array_equal(ours, vals.astype(np.float64).mean(0))


def test_forest_rejects_rows_too_narrow():
    from sklearn.ensemble import ExtraTreesRegressor

    X = np.arange(40, dtype=float).reshape(20, 2)
    forest = pack_forest(ExtraTreesRegressor(n_estimators=3, random_state=0).fit(X, X[:, 1]))
    with pytest.raises(ValueError, match="columns"):
        forest_predict(forest, torch.zeros(2, 1))
    assert forest_predict(forest, torch.zeros(0, 2)).shape == (0,)


def test_tree_rows_are_structure_costs_and_predicted_metric(graphs):
    rows = tree_rows(graphs, "digits")
    assert rows.shape == (len(graphs), len(STRUCTURE_NAMES) + 2) == (len(graphs), len(tree_columns(False)))
    assert rows[0, :len(STRUCTURE_NAMES)].tolist() == pytest.approx(structure_features(graphs[0]))
    assert rows[0, len(STRUCTURE_NAMES)].item() == pytest.approx(math.log1p(graphs[0].num_params))
    with_pm = tree_rows(graphs, "digits", [0.5] * len(graphs))
    assert with_pm.shape[1] == len(tree_columns(True)) and with_pm[:, -1].tolist() == [0.5] * len(graphs)


def test_tree_estimator_fits_scores_and_survives_a_round_trip(graphs, tmp_path):
    """A tree estimator's estimates are in the metric's units and order-preserving through its quantile table;
    ``estimate`` and ``predict`` agree; saved, the forest goes to quality.safetensors and loads back equal; a
    missing forest file or a forest that reads other columns is a clear error."""
    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    labels = [0.1, 0.3, 0.5, 0.6, 0.8, 0.9]
    q = fit_quality(ghn.model, {"digits": list(zip(graphs, labels))}, estimator="trees")
    est = q["tasks"]["digits"]
    assert est["estimator"] == "trees" and est["columns"] == tree_columns(True) and "coef" not in est
    ghn.record["quality"] = q
    got = ghn.estimate(graphs, "digits")
    assert all(0.0 <= v <= 1.0 for v in got)
    assert got == pytest.approx([m.ghn_info["quality"] for m in ghn.predict_many(graphs, "digits", bn_batches=1)],
                                abs=1e-9)
    assert ghn.estimate(graphs, "mnist1d") == [None] * len(graphs)

    doc, tensors = split_forests(ghn.record)
    assert doc["quality"]["tasks"]["digits"]["forest"] == {"file": FOREST_FILE}
    assert isinstance(ghn.record["quality"]["tasks"]["digits"]["forest"]["split"], torch.Tensor)  # not mutated
    assert set(tensors) == {f"digits/{k}" for k in ("feature", "split", "left", "right", "roots")}
    ghn.save(tmp_path / "g")
    assert (tmp_path / "g" / FOREST_FILE).exists()
    again = load(tmp_path / "g", device="cpu")
    for k, v in est["forest"].items():
        assert torch.equal(again.calibrated("digits")["forest"][k], v)
    assert again.estimate(graphs, "digits") == pytest.approx(got, abs=1e-12)

    write_record(tmp_path / "g", {"note": "no forests"})  # a record without trees drops the stale file
    assert not (tmp_path / "g" / FOREST_FILE).exists() and read_record(tmp_path / "g") == {"note": "no forests"}
    write_record(tmp_path / "g", ghn.record)
    (tmp_path / "g" / FOREST_FILE).unlink()
    with pytest.raises(GHNError, match=FOREST_FILE):
        load(tmp_path / "g", device="cpu")

    ghn.record["quality"]["tasks"]["digits"] = {**est, "columns": est["columns"][:-1]}
    with pytest.raises(GHNError, match="refit"):
        ghn.estimate(graphs, "digits")
    with pytest.raises(ValueError, match="estimator"):
        fit_quality(ghn.model, {"digits": list(zip(graphs, labels))}, estimator="forest")


@pytest.mark.parametrize("estimator", ["ridge", "trees"])
def test_score_measures_the_predicted_metric_once_when_the_estimator_reads_that_figure(graphs, estimator,
                                                                                        monkeypatch):
    """Scored on the estimator's own split and example count, the metric ``score`` reports is the figure the
    estimator reads: no second measurement, and the same estimate as ``estimate``; asked otherwise, it is measured
    for the estimator as before."""
    from mad.ghn.quality import PREDICTED

    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    ghn.record["quality"] = fit_quality(ghn.model, {"digits": list(zip(graphs, [0.1, 0.3, 0.5, 0.6, 0.8, 0.9]))},
                                        estimator=estimator)
    expected = ghn.estimate(graphs, "digits")
    calls = []
    original = GHN.predicted_metrics
    monkeypatch.setattr(GHN, "predicted_metrics", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    same = ghn.score(graphs, "digits", split=PREDICTED["split"], max_examples=PREDICTED["examples"])
    assert not calls and [s["quality"] for s in same] == pytest.approx(expected, abs=1e-12)
    other = ghn.score(graphs, "digits", max_examples=100)
    assert calls and [s["quality"] for s in other] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("estimator", ["ridge", "trees"])
def test_fit_estimator_on_rows_built_once_equals_fit_quality(graphs, estimator):
    """``bench/ghn_calibrate.py`` decodes each graph and counts its FLOPs once and fits on those rows: the entry
    equals the one ``fit_quality`` builds from the model; mismatched rows are a clear error."""
    torch.manual_seed(0)
    model = GHNModel(GHNConfig(**TINY))
    labels = [0.1, 0.3, 0.5, 0.6, 0.8, 0.9]
    direct = fit_quality(model, {"digits": list(zip(graphs, labels))}, estimator=estimator)["tasks"]["digits"]
    pooled, metrics = pooled_and_predicted(model, graphs, "digits")
    costs = cost_rows(graphs, "digits")
    if estimator == "trees":
        rows = tree_rows(graphs, "digits", metrics, costs)
        assert torch.equal(rows, tree_rows(graphs, "digits", metrics))
    else:
        rows = feature_rows(graphs, pooled, "digits", metrics, costs)
        assert torch.equal(rows, feature_rows(graphs, pooled, "digits", metrics))
    once = fit_estimator(rows, labels, "digits", estimator)
    assert set(once) == set(direct)
    for k, v in direct.items():
        if k == "forest":
            assert all(torch.equal(v[a], once[k][a]) for a in v)
        else:
            assert once[k] == v, k
    with pytest.raises(ValueError, match="match"):
        fit_estimator(rows[:-1], labels, "digits", estimator)
    if estimator == "trees":
        with pytest.raises(ValueError, match="columns"):
            fit_estimator(rows[:, :-1], labels, "digits", estimator)


def test_structure_only_tree_estimate_does_not_run_the_encoder(graphs, monkeypatch):
    """A tree estimator that does not read the predicted parameters' metric estimates from the graphs alone."""
    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    ghn.record["quality"] = fit_quality(ghn.model, {"digits": list(zip(graphs, [0.1, 0.3, 0.5, 0.6, 0.8, 0.9]))},
                                        estimator="trees", predicted=False)
    expected = forest_predict(ghn.calibrated("digits")["forest"], tree_rows(graphs, "digits"))
    monkeypatch.setattr(GHNModel, "embed", lambda *a, **k: pytest.fail("the encoder ran"))
    got = ghn.estimate(graphs, "digits")
    from mad.ghn.quality import to_metric

    assert got == pytest.approx([float(v) for v in to_metric(expected, ghn.calibrated("digits"))], abs=1e-12)


@pytest.mark.parametrize("estimator", ["ridge", "trees"])
def test_long_horizon_stage_maps_the_estimate_and_named_columns(graphs, estimator, tmp_path):
    """A long-horizon stage is a ridge over the estimator's own output (``base``) and named tree-row columns:
    ``estimate(long=True)``, ``quality_long`` in ``predict_many`` and ``score`` all give that ridge's output in the
    long labels' units; without a stage they are ``None`` and the brief estimate is unchanged; it survives a save
    and load; a column it cannot read is a clear error."""
    from mad.ghn.quality import fit_long, long_rows, normal_scores, to_metric

    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(**TINY)), device="cpu")
    brief = [0.1, 0.3, 0.5, 0.6, 0.8, 0.9]
    ghn.record["quality"] = fit_quality(ghn.model, {"digits": list(zip(graphs, brief))}, estimator=estimator)
    est = ghn.calibrated("digits")
    before = ghn.estimate(graphs, "digits")
    assert ghn.estimate(graphs, "digits", long=True) == [None] * len(graphs)
    assert all(s["quality_long"] is None for s in ghn.score(graphs, "digits", max_examples=100))

    metrics = ghn.predicted_metrics(graphs, "digits", **est["predicted"])
    trees = tree_rows(graphs, "digits", metrics)
    base = torch.tensor(normal_scores(brief))  # stands for the estimator's out-of-fold output
    long = [0.9, 0.2, 0.95, 0.7, 0.4, 0.97]  # another order than the brief labels
    cols = ["base", "log_params", "predicted_metric"]
    stage = fit_long(base, trees, long, "digits", 1000, cols)
    assert stage["steps"] == 1000 and stage["columns"] == cols and stage["graphs"] == len(graphs)
    assert len(stage["coef"]) == len(cols) and stage["label_max"] == 0.97
    est["long"] = stage
    assert ghn.estimate(graphs, "digits") == pytest.approx(before, abs=1e-12)  # the brief estimate is untouched

    # what the stage must give: its ridge on the estimator's actual output for these graphs
    if estimator == "trees":
        z = forest_predict(est["forest"], trees)
    else:
        pooled, _ = pooled_and_predicted(ghn.model, graphs, "digits")
        z = feature_rows(graphs, pooled, "digits", metrics) @ torch.tensor(est["coef"], dtype=torch.float64) \
            + est["intercept"]
    rows = long_rows(z, trees, cols, tree_columns(True))
    assert torch.equal(rows[:, 0], z) and torch.equal(rows[:, 2], trees[:, -1])
    want = to_metric(rows @ torch.tensor(stage["coef"], dtype=torch.float64) + stage["intercept"], stage)
    got = ghn.estimate(graphs, "digits", long=True)
    assert got == pytest.approx([float(v) for v in want], abs=1e-9)
    assert ghn.estimates(graphs, "digits") == (ghn.estimate(graphs, "digits"), got)  # both from one decode
    assert all(0.0 <= v <= 1.0 for v in got)
    assert [m.ghn_info["quality_long"] for m in ghn.predict_many(graphs, "digits")] == pytest.approx(got, abs=1e-9)
    from mad.ghn.quality import PREDICTED

    scored = ghn.score(graphs, "digits", split=PREDICTED["split"], max_examples=PREDICTED["examples"])
    assert [s["quality_long"] for s in scored] == pytest.approx(got, abs=1e-9)

    ghn.save(tmp_path / "g")
    again = load(tmp_path / "g", device="cpu")
    assert again.calibrated("digits")["long"]["coef"] == stage["coef"]
    assert again.estimate(graphs, "digits", long=True) == pytest.approx(got, abs=1e-12)

    # a graph beyond the fitting graphs' range in a column reads that column at the range's end; base is not held
    from mad.ghn.quality import clip_long

    assert set(stage["clip"]) == {"log_params", "predicted_metric"}
    far = rows.clone()
    far[:, 0] += 100.0
    far[:, 1] = 1e6
    held = clip_long(far, stage)
    assert torch.equal(held[:, 0], far[:, 0]) and torch.equal(held[:, 2], far[:, 2])
    assert held[:, 1].tolist() == [stage["clip"]["log_params"][1]] * len(graphs)
    assert stage["clip"]["log_params"] == [float(trees[:, -3].min()), float(trees[:, -3].max())]

    with pytest.raises(ValueError, match="cannot read 'depth'"):
        fit_long(base, trees, long, "digits", 1000, ["base", "depth"])


def test_long_labels_resume_with_another_job_count(tmp_path):
    """``bench/ghn_calibrate.py``'s long-horizon labels already in any shard file are not trained again when the
    rerun splits the work into another number of shards (the graph texts here cannot even be read)."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from ghn_calibrate import label_long, long_order

    pools = {"a": [(f"g{i}", "not a graph") for i in range(6)], "b": [("h0", "not a graph")]}
    labels = {"a": {f"g{i}": 0.1 * i for i in range(6)}, "b": {"h0": float("nan")}}  # a NaN label is left out
    order = long_order(pools, labels)
    assert sorted(k for k, _ in order) == [f"a:g{i}" for i in range(6)]
    with (tmp_path / "long1000-0.jsonl").open("w") as fh:  # labelled before in one shard
        for k, (key, _) in enumerate(order[:4]):
            fh.write(json.dumps({"id": key, "metric": 0.5 + k}) + "\n")
    got = label_long("mnist5k", pools, labels, tmp_path, 1000, 4, jobs=2)
    assert got == {key: 0.5 + k for k, (key, _) in enumerate(order[:4])}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long1000-0.jsonl"]


def test_exported_labels_fill_an_empty_cache_that_then_trains_nothing(tmp_path):
    """``bench/ghn_calibrate.py --export`` writes pools and labels (brief, long and failed ones) that fill an empty
    cache exactly; labelling that cache trains nothing (the graph texts here cannot even be read), and a file
    of another task or a cache that already has pools is refused."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from ghn_calibrate import _labelled, export_labels, label, label_long, seed_cache

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    pools = {"a": [(f"g{i}", f"text {i}") for i in range(3)], "b": [("h0", "text h")]}
    (src / "pools.json").write_text(json.dumps(pools))
    lines = {"a": [{"id": "g0", "task": "digits", "steps": 100, "metric": 0.5, "seconds": 1.0},
                   {"id": "g1", "task": "digits", "steps": 100, "metric": 0.125, "seconds": 1.5},
                   {"id": "g2", "task": "digits", "steps": 100, "error": "RuntimeError: boom", "seconds": 0.1}],
             "b": [{"id": "h0", "task": "digits", "steps": 100, "metric": 0.25, "seconds": 2.0}]}
    for name, rows in lines.items():  # shard files as two jobs left them
        for j, r in enumerate(rows):
            (src / f"labels-{name}-{j}.jsonl").write_text(json.dumps(r) + "\n")
    (src / "long1000-0.jsonl").write_text(json.dumps({"id": "a:g0", "task": "digits", "steps": 1000,
                                                      "metric": 0.75, "seconds": 9.0}) + "\n")
    path = tmp_path / "digits.jsonl.xz"
    counts = export_labels(src, "digits", path)
    assert counts == {"graphs": 4, "labelled": 4, "long1000": 1}
    assert seed_cache(path, dst, "digits") == counts
    assert json.loads((dst / "pools.json").read_text()) == json.loads((src / "pools.json").read_text())
    for name in pools:
        assert _labelled(dst, name) == _labelled(src, name)
    got = label("digits", pools, dst, jobs=1)
    assert got == {"a": {"g0": 0.5, "g1": 0.125}, "b": {"h0": 0.25}}  # the failed g2 is not trained again
    assert sorted(p.name for p in dst.iterdir()) == ["labels-a-shipped.jsonl", "labels-b-shipped.jsonl",
                                                     "long1000-shipped.jsonl", "pools.json"]
    assert label_long("digits", pools, {"a": {"g0": 0.5}, "b": {}}, dst, 1000, 1, jobs=1) == {"a:g0": 0.75}
    with pytest.raises(SystemExit, match="already has pools.json"):
        seed_cache(path, dst, "digits")
    with pytest.raises(SystemExit, match="not 'mad.ghn_labels' for 'chars'"):
        seed_cache(path, tmp_path / "other", "chars")
