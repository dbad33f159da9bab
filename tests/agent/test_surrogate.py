"""The loop's surrogate: graph features, fitting, and the calibration that keeps GHN scores only when they help."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mad.agent.surrogate import FEATURE_OPS, Surrogate, graph_features
from mad.data.random_space import RandomSpaceConfig, sample


def _data(n: int, signal_in_optional: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = x[:, 4] + 0.5 * x[:, 5] if signal_in_optional else x[:, 0] - x[:, 1]
    return x.tolist(), y.tolist()


@pytest.mark.parametrize("signal_in_optional", [True, False])
def test_calibration_keeps_optional_columns_only_when_they_rank_better(signal_in_optional):
    x, y = _data(40, signal_in_optional)
    s = Surrogate(seed=0).fit(x, y, optional=[4, 5])
    assert s.calibration["optional_used"] is signal_in_optional
    mean, std = s.predict(x)
    assert mean.shape == (40,) and (std >= 0).all()
    assert np.corrcoef(mean, y)[0, 1] > 0.7  # it fits what it was given


def test_few_points_leave_it_unfitted_and_failures_rank_last():
    s = Surrogate(min_points=4)
    assert not s.fit([[0.0], [1.0]], [0.1, 0.2]).fitted
    with pytest.raises(RuntimeError):
        s.predict([[0.0]])
    x = [[float(i)] for i in range(10)]
    y = [float(i) for i in range(9)] + [-math.inf]
    mean, _ = Surrogate(seed=1).fit(x, y).predict([[9.0], [5.0]])
    assert mean[0] < mean[1]  # the failed point's neighbourhood is predicted low
    s = Surrogate(seed=1).fit([[math.inf, 1.0]] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])  # non-finite features are clipped
    assert np.isfinite(s.predict([[math.inf, 0.0]])[0]).all()


def test_graph_features_are_fixed_length_and_describe_the_graph():
    cfg = RandomSpaceConfig(modality="image", image_shape=(1, 8, 8), max_params=50_000)
    graphs = [sample(seed, cfg) for seed in range(3)]
    feats = [graph_features(g) for g in graphs]
    assert {len(f) for f in feats} == {4 + len(FEATURE_OPS)}
    g = graphs[0]
    assert feats[0][0] == pytest.approx(math.log10(g.num_params + 1))
    assert 0 <= min(feats[0][4:]) and sum(feats[0][4:]) <= 1.0 + 1e-9


def test_a_prior_ranks_the_first_rounds_and_is_dropped_when_cross_validation_finds_it_useless():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    truth = x[:, 0] - x[:, 1]
    # four results: the trees alone cannot rank, the prior (a good estimate) does, and the surrogate follows it
    s = Surrogate(seed=0).fit(x[:4].tolist(), truth[:4].tolist(), prior=(truth[:4] + 0.01).tolist())
    assert s.calibration["mode"] == "prior" and s.calibration["optional_used"]
    mean, _ = s.predict(x[4:].tolist(), prior=(truth[4:] + 0.01).tolist())
    assert np.corrcoef(mean, truth[4:])[0, 1] > 0.9
    with pytest.raises(ValueError, match="prior"):
        s.predict(x[4:].tolist())
    # many results and a prior that is noise: cross-validation prefers the features
    noise = rng.normal(size=60) * 5
    s = Surrogate(seed=0).fit(x[:40].tolist(), truth[:40].tolist(), prior=noise[:40].tolist())
    assert s.calibration["mode"] == "features" and set(s.calibration["cv_tau"]) == {"features", "prior"}
    assert s.calibration["cv_tau"]["features"] > s.calibration["cv_tau"]["prior"]
    # without a prior or optional columns nothing is cross-validated
    assert Surrogate(seed=0).fit(x[:40].tolist(), truth[:40].tolist()).calibration == {"points": 40,
                                                                                       "mode": "features"}


@pytest.mark.parametrize("points, mode", [(8, "prior"), (60, "features")])
def test_the_prior_is_left_only_for_a_clearly_better_ranking(monkeypatch, points, mode):
    taus = {True: 0.5}  # the features rank with cross-validated tau 0.5, the prior with 0.3
    monkeypatch.setattr(Surrogate, "_cv_tau", lambda self, x, y, prior=None: taus.get(prior is None, 0.3))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(points, 3)), rng.normal(size=points)
    s = Surrogate(seed=0).fit(x.tolist(), y.tolist(), prior=rng.normal(size=points).tolist())
    assert s.calibration["mode"] == mode  # 0.2 is within tau's standard error at 8 points (0.30), not at 60 (0.09)
