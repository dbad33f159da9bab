"""The loop's predictor of trained quality: graph features (plus GHN scores) -> fitness, refit on the search's
own trained results every round (a small tree ensemble, in the spirit of BANANAS' predictor on the history).

Given a prior (the GHN's quality estimate, calibrated offline on brief training runs), the trees can instead
fit the prior's residuals: the search starts from the estimate's ranking and corrects it with its own results,
rather than ignoring the estimate until there are enough results to cross-validate it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mad.graph.descriptors import FEATURE_OPS, graph_features

__all__ = ["graph_features", "Surrogate", "FEATURE_OPS"]


class Surrogate:
    """Predicts fitness from features with an extra-trees ensemble; the spread across trees is the uncertainty.

    Args:
        seed: the ensemble's random state (predictions are a function of the data and the seed).
        min_points: fewer trained results than this: :meth:`fit` leaves the surrogate unfitted.
    """

    def __init__(self, seed: int = 0, min_points: int = 4, trees: int = 100) -> None:
        self.seed, self.min_points, self.trees = seed, min_points, trees
        self.model = None
        self.columns: list[int] | None = None  # the features in use
        self.mode = "features"  # "features", "optional" (with the optional columns) or "prior" (module docstring)
        self.calibration: dict[str, Any] = {}

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def _model(self, trees: int):
        from sklearn.ensemble import ExtraTreesRegressor

        return ExtraTreesRegressor(n_estimators=trees, min_samples_leaf=2, random_state=self.seed)

    def _cv_tau(self, x: np.ndarray, y: np.ndarray, prior: np.ndarray | None = None, folds: int = 4) -> float:
        """Kendall tau between out-of-fold predictions and the targets (how well these features rank; with
        ``prior``, of the prior plus the residual the trees predict)."""
        from scipy.stats import kendalltau

        pred = np.zeros_like(y)
        base = np.zeros_like(y) if prior is None else prior
        order = np.random.default_rng(self.seed).permutation(len(y))
        for k in range(folds):
            test = order[k::folds]
            train = np.setdiff1d(order, test)
            pred[test] = base[test] + self._model(30).fit(x[train], y[train] - base[train]).predict(x[test])
        tau = kendalltau(pred, y)[0]
        return float(tau) if tau == tau else 0.0

    def fit(self, x: list[list[float]], y: list[float], optional: list[int] | None = None,
            prior: list[float] | None = None) -> "Surrogate":
        """Fit on features ``x`` and fitness ``y`` (``-inf`` for a failed run ranks last).

        ``optional``: columns kept only if they help. ``prior``: an outside estimate of each point's fitness (the
        GHN's calibrated quality estimate); in the ``prior`` mode the trees fit what the estimate gets wrong (the
        residual ``y - prior``) on the other columns, so that with few results the ranking is the estimate's and
        the search's own results correct it as they come. With at least 8 results, 4-fold cross-validated rank
        correlation picks among the plain features, the features with the optional columns, and the prior mode
        (``calibration`` records each), except that the prior mode, validated offline on many more graphs, is
        left only for a mode whose tau is higher by more than tau's standard error at this many points; below 8
        results it is the prior mode when there is a prior, else the plain features.
        """
        ok = [i for i, v in enumerate(y) if math.isfinite(v)]
        if len(ok) < self.min_points:
            self.model = None
            return self
        floor = min(y[i] for i in ok)
        spread = max(y[i] for i in ok) - floor
        target = np.asarray([v if math.isfinite(v) else floor - max(spread, 1e-3) for v in y])  # failures last
        xa = _finite(x)
        base = [c for c in range(xa.shape[1]) if c not in set(optional or ())]
        pa = None if prior is None else np.nan_to_num(np.asarray(prior, dtype=np.float64))
        modes = {"features": (base, None)}
        if optional:
            modes["optional"] = (list(range(xa.shape[1])), None)
        if pa is not None:
            modes["prior"] = (base, pa)
        self.calibration = {"points": len(y)}
        if len(y) >= 8 and len(modes) > 1:
            taus = {m: self._cv_tau(xa[:, cols], target, p) for m, (cols, p) in modes.items()}
            self.calibration["cv_tau"] = taus
            self.mode = max(modes, key=lambda m: (taus[m], -list(modes).index(m)))  # ties: the simpler
            if pa is not None and self.mode != "prior" and taus[self.mode] - taus["prior"] <= _tau_se(len(y)):
                self.mode = "prior"  # the prior was validated offline: a few results must beat it clearly
        else:
            self.mode = "prior" if pa is not None else "features"
        self.calibration["mode"] = self.mode
        if optional or pa is not None:
            self.calibration["optional_used"] = self.mode != "features"
        cols, p = modes[self.mode]
        self.columns = cols
        self.model = self._model(self.trees).fit(xa[:, cols], target if p is None else target - p)
        return self

    def predict(self, x: list[list[float]], prior: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation across the ensemble's trees (``prior``: the pool's estimates, needed in
        the prior mode, where the mean is the prior plus the predicted residual)."""
        if self.model is None:
            raise RuntimeError("the surrogate is not fitted (too few trained results)")
        xa = _finite(x)[:, self.columns]
        per_tree = np.stack([t.predict(xa) for t in self.model.estimators_])
        mean, std = per_tree.mean(0), per_tree.std(0)
        if self.mode == "prior":
            if prior is None:
                raise ValueError("this surrogate was fitted with a prior: predict() needs the pool's prior")
            mean = mean + np.nan_to_num(np.asarray(prior, dtype=np.float64))
        return mean, std


def _tau_se(n: int) -> float:
    """Standard error of Kendall's tau between independent rankings of ``n`` points."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))) if n > 1 else math.inf


def _finite(x: list[list[float]]) -> np.ndarray:
    """Features as a float array with NaN and infinities (an overflowing GHN score) replaced by bounded values."""
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=1e6, neginf=-1e6)
