"""The loop's predictor of trained quality: graph features (plus GHN scores) -> fitness, refit on the search's
own trained results every round (a small tree ensemble, in the spirit of BANANAS' predictor on the history).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from mad.graph import ArchGraph

__all__ = ["graph_features", "Surrogate", "FEATURE_OPS"]

# op families counted by graph_features (each: its share of the graph's nodes)
FEATURE_OPS = {
    "conv": ("conv1d", "conv2d", "conv_transpose2d"),
    "linear": ("linear",),
    "batch_norm": ("batch_norm",),
    "layer_norm": ("layer_norm", "rms_norm"),
    "group_norm": ("group_norm",),
    "attention": ("scaled_dot_product_attention", "softmax"),
    "relu": ("relu", "relu6"),
    "gelu": ("gelu",),
    "silu": ("silu",),
    "hardswish": ("hardswish",),
    "pool": ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "mean"),
    "add": ("add",),
    "cat": ("cat",),
    "mul": ("mul",),
    "embedding": ("embedding",),
}
_OP_FAMILY = {op: fam for fam, ops in FEATURE_OPS.items() for op in ops}


def _depth(g: ArchGraph) -> int:
    depth: dict[str, int] = {}
    for nid in g.topo_order():
        preds = g.predecessors(nid)
        depth[nid] = 1 + max((depth[p] for p in preds), default=0)
    return max(depth.values(), default=0)


def graph_features(g: ArchGraph, costs: dict[str, Any] | None = None) -> list[float]:
    """A fixed-length description of a graph: log10 params and FLOPs, log2 nodes and depth, and the share of
    nodes in each op family of :data:`FEATURE_OPS`."""
    costs = costs or {}
    params = costs.get("num_params") or g.num_params
    flops = costs.get("flops") or g.meta.get("flops") or 0
    n = max(len(g.nodes), 1)
    fam = Counter(_OP_FAMILY.get(node.op) for node in g.nodes.values())
    return [math.log10(params + 1), math.log10(flops + 1), math.log2(n), math.log2(_depth(g) + 1),
            *[fam[f] / n for f in FEATURE_OPS]]


class Surrogate:
    """Predicts fitness from features with an extra-trees ensemble; the spread across trees is the uncertainty.

    Args:
        seed: the ensemble's random state (predictions are a function of the data and the seed).
        min_points: fewer trained results than this: :meth:`fit` leaves the surrogate unfitted.
    """

    def __init__(self, seed: int = 0, min_points: int = 4, trees: int = 100) -> None:
        self.seed, self.min_points, self.trees = seed, min_points, trees
        self.model = None
        self.columns: list[int] | None = None  # the features in use (None: all)
        self.calibration: dict[str, Any] = {}

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def _model(self, trees: int):
        from sklearn.ensemble import ExtraTreesRegressor

        return ExtraTreesRegressor(n_estimators=trees, min_samples_leaf=2, random_state=self.seed)

    def _cv_tau(self, x: np.ndarray, y: np.ndarray, folds: int = 4) -> float:
        """Kendall tau between out-of-fold predictions and the targets (how well these features rank)."""
        from scipy.stats import kendalltau

        pred = np.zeros_like(y)
        order = np.random.default_rng(self.seed).permutation(len(y))
        for k in range(folds):
            test = order[k::folds]
            train = np.setdiff1d(order, test)
            pred[test] = self._model(30).fit(x[train], y[train]).predict(x[test])
        tau = kendalltau(pred, y)[0]
        return float(tau) if tau == tau else 0.0

    def fit(self, x: list[list[float]], y: list[float], optional: list[int] | None = None) -> "Surrogate":
        """Fit on features ``x`` and fitness ``y`` (``-inf`` for a failed run ranks last).

        ``optional``: columns kept only if they help: with at least 8 results, 4-fold cross-validated rank
        correlation with and without them decides (``calibration`` records both).
        """
        ok = [i for i, v in enumerate(y) if math.isfinite(v)]
        if len(ok) < self.min_points:
            self.model = None
            return self
        floor = min(y[i] for i in ok)
        spread = max(y[i] for i in ok) - floor
        target = np.asarray([v if math.isfinite(v) else floor - max(spread, 1e-3) for v in y])  # failures last
        xa = _finite(x)
        self.columns, self.calibration = None, {}
        if optional:
            base = [c for c in range(xa.shape[1]) if c not in set(optional)]
            if len(y) >= 8:
                with_opt, without = self._cv_tau(xa, target), self._cv_tau(xa[:, base], target)
                self.calibration = {"cv_tau_with": with_opt, "cv_tau_without": without, "points": len(y)}
                if with_opt <= without:
                    self.columns = base
            else:  # too few results to tell: leave them out
                self.columns = base
            self.calibration["optional_used"] = self.columns is None
        cols = xa if self.columns is None else xa[:, self.columns]
        self.model = self._model(self.trees).fit(cols, target)
        return self

    def predict(self, x: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation across the ensemble's trees."""
        if self.model is None:
            raise RuntimeError("the surrogate is not fitted (too few trained results)")
        xa = _finite(x)
        if self.columns is not None:
            xa = xa[:, self.columns]
        per_tree = np.stack([t.predict(xa) for t in self.model.estimators_])
        return per_tree.mean(0), per_tree.std(0)


def _finite(x: list[list[float]]) -> np.ndarray:
    """Features as a float array with NaN and infinities (an overflowing GHN score) replaced by bounded values."""
    return np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=1e6, neginf=-1e6)
