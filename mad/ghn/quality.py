"""The GHN's learned quality estimate: what an architecture reaches after brief training, from its embedding.

Labels come from training graphs of the GHN's own pools (the dataset's ``train`` split, never the held-out
ones): each is trained with ``mad.train.fit`` for ``steps`` AdamW steps from default init (lr 1e-3, cosine,
batch 64, seed 0) and its validation metric recorded (:func:`collect_labels`, resumable: one JSON line per
graph). :func:`fit_quality` then fits, per task, a ridge regression from the frozen, pooled graph embedding
plus log parameter count and log FLOPs, and by default the metric of the graph's predicted parameters (log bits
per character for language modelling: the embedding says what the graph is, the prediction how well the GHN's
parameters already do on the task), to the metric; its coefficients are stored in the GHN's record, and
:meth:`GHN.score` reports the estimate in the metric's own units.

``estimator="trees"`` fits an extra-trees ensemble instead, on a graph's structure (node count, depth, the share
of its nodes in each op family: :func:`mad.graph.descriptors.structure_features`), its costs and the metric of its
predicted parameters. On chars and mnist5k it ranks the calibration labels better than the ridge, out of fold and
across held-out families (``bench/ghn_calibrate.py`` compares the two and keeps the trees only where both figures
are higher). A forest is stored as flat arrays (:func:`pack_forest`) in ``quality.safetensors`` beside the record
(:func:`write_record`, :func:`read_record`) and evaluated by :func:`forest_predict` without scikit-learn.

Brief training ranks graphs differently from a long run (on the held-out mnist5k graphs, 100-step accuracy ranks
1000-step accuracy at Kendall tau 0.69): big nets catch up. An estimator may carry a long-horizon stage
(``long``: :func:`fit_long`), a ridge from its own output and tree-row columns (size, costs, structure, the
predicted parameters' metric; each held within the range its fitting graphs span) to the normal scores of the
metric after a longer run, fitted on the few graphs trained that long; ``GHN.estimate(..., long=True)`` and
``quality_long`` in ``GHN.score`` read it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from mad.graph import ArchGraph

__all__ = ["collect_labels", "feature_rows", "features", "fit_quality", "graph_costs", "normal_scores", "target_values",
           "to_metric", "predicted_column", "fit_estimator", "cost_rows", "PREDICTED", "ESTIMATORS", "TREES",
           "tree_rows", "tree_columns", "tree_features", "pooled_and_predicted", "pack_forest", "forest_predict",
           "read_record", "write_record", "split_forests", "fit_long", "long_rows", "clip_long"]

log = logging.getLogger("mad.ghn")


def graph_costs(g: ArchGraph, task: str) -> tuple[float, float]:
    """``(log1p #params, log1p FLOPs per example)`` of ``g`` on ``task``."""
    from mad.train import proxies

    n = g.num_params
    try:
        f = proxies.flops(g, task, batch_size=1) or 0
    except Exception:  # noqa: BLE001 - a graph whose FLOPs cannot be counted gets 0
        f = 0
    return math.log1p(n), math.log1p(f)


def collect_labels(task: str, pool: list[tuple[str, ArchGraph]], out: str | Path, steps: int = 100,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Train every graph of ``pool`` for ``steps`` steps on ``task`` and append ``{"id", "metric", ...}`` lines to
    ``out`` (graphs already there are skipped)."""
    from mad.train import fit

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["id"]] = r
    todo = [(i, g) for i, g in pool if i not in done]
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(pool), initial=len(pool) - len(todo), desc=f"labels {task}", unit="graph")
    with out.open("a") as fh:
        for row_id, g in todo:
            t0 = time.perf_counter()
            rec: dict[str, Any] = {"id": row_id, "task": task, "steps": steps}
            try:
                r = fit(g, task, steps=steps, batch_size=64, lr=1e-3, optimizer="adamw", schedule="cosine", seed=0,
                        eval_every=[steps], progress=False)
                key = "bpc" if r.metric == "bits_per_char" else "accuracy"
                rec["metric"] = r.eval_curve[-1][key]
            except Exception as e:  # noqa: BLE001 - recorded, skipped in fitting
                rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            rec["seconds"] = round(time.perf_counter() - t0, 2)
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            done[row_id] = rec
            if bar:
                bar.update(1)
    if bar:
        bar.close()
    return [done[i] for i, _ in pool if i in done]


# how an estimator that reads the predicted parameters' metric has it measured: batch-norm statistics from the
# task's first ``bn_batches`` training batches, then the first ``examples`` validation examples
PREDICTED = {"examples": 250, "bn_batches": 8, "split": "val"}
QUANTILES = 41  # points of the map from normal scores back to the metric
TARGETS = ("normal_scores", "metric")  # what the ridge regresses (see the module docstring)
FITTED = ("coef", "intercept", "table", "forest")  # an estimator's fitted arrays; the rest of its entry describes it
ESTIMATORS = ("ridge", "trees")
TREES = {"n_estimators": 100, "min_samples_leaf": 3, "max_features": 1.0}  # the tree estimator's settings
FOREST_FILE = "quality.safetensors"  # the forests of a checkpoint's tree estimators, beside its record


def fit_quality(model, data: dict[str, list[tuple[ArchGraph, float]]], seed: int = 0,
                target: str = "normal_scores", predicted: bool = True, estimator: str = "ridge") -> dict[str, Any]:
    """Fit one estimator per task on ``{task: [(graph on task, metric), ...]}``: ridge regression (penalty
    chosen by leave-one-out cross-validation) from the frozen pooled GHN embedding plus log #params and log FLOPs
    (and, with ``predicted``, the metric of the graph's predicted parameters, measured as :data:`PREDICTED` says)
    to the labels' normal scores (``target="normal_scores"``, see the module docstring) or to the metric itself
    (``target="metric"``); ``estimator="trees"``: an extra-trees ensemble (:data:`TREES`) on :func:`tree_rows`
    instead, whose entry holds its ``forest`` (:func:`pack_forest`) and ``columns``. Returns what
    :meth:`GHN.quality` reads (``{"tasks": {task: {"coef", "intercept", "higher_is_better", "graphs", "alpha",
    "target", "table", "predicted"...}}}``), stored in the GHN's record (a forest: :func:`write_record`)."""
    target_values([], target)  # an unknown target fails before any embedding is computed
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    stats = {}
    for task, pairs in data.items():
        pairs = [(g, m) for g, m in pairs if m is not None and math.isfinite(m)]
        if len(pairs) < 4:
            log.warning("task %s: only %d labelled graphs; its quality estimate is not calibrated", task, len(pairs))
            continue
        graphs = [g for g, _ in pairs]
        rows = (tree_features if estimator == "trees" else features)(model, graphs, task, predicted)
        stats[task] = fit_estimator(rows, [m for _, m in pairs], task, estimator, predicted, seed, target)
    if not stats:
        raise ValueError("no task has at least 4 labelled graphs")
    return {"tasks": stats, "label": "validation metric after brief training", "seed": seed}


def fit_estimator(rows, labels, task: str, estimator: str = "ridge", predicted: bool = True, seed: int = 0,
                  target: str = "normal_scores") -> dict[str, Any]:
    """One task's estimator entry (what :func:`fit_quality` stores per task) fitted on ``rows``, the estimator's
    inputs as :func:`feature_rows` (``estimator="ridge"``) or :func:`tree_rows` (``"trees"``) give them, the last
    column the predicted parameters' metric when ``predicted``, and the metric of each row's graph (``labels``)."""
    import numpy as np

    from mad.train.objective import TaskSpec

    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    X = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"rows {X.shape} and labels {y.shape} do not match")
    z = target_values(y, target)
    if estimator == "trees":
        from sklearn.ensemble import ExtraTreesRegressor

        if X.shape[1] != len(tree_columns(predicted)):
            raise ValueError(f"tree rows have {X.shape[1]} columns, not {len(tree_columns(predicted))}")
        forest = ExtraTreesRegressor(**TREES, random_state=seed).fit(X, z)
        entry = {"estimator": "trees", "forest": pack_forest(forest), "columns": tree_columns(predicted),
                 "settings": dict(TREES)}
    else:
        from sklearn.linear_model import RidgeCV

        mu, sd = X.mean(0), X.std(0) + 1e-6
        ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit((X - mu) / sd, z)
        coef = ridge.coef_ / sd
        entry = {"coef": [round(float(c), 8) for c in coef],
                 "intercept": float(ridge.intercept_ - (ridge.coef_ * mu / sd).sum()), "alpha": float(ridge.alpha_)}
    entry.update({"higher_is_better": not TaskSpec.of(task).is_lm, "graphs": len(y), "label_mean": float(y.mean()),
                  "label_std": float(y.std()), "label_min": float(y.min()), "label_max": float(y.max()),
                  "target": target})
    if predicted:
        entry["predicted"] = dict(PREDICTED)
    if target == "normal_scores":
        qs = np.linspace(0.0, 1.0, QUANTILES)
        entry["table"] = {"score": [round(float(v), 6) for v in np.quantile(z, qs)],
                          "metric": [round(float(v), 6) for v in np.quantile(y, qs)]}
    return entry


def long_rows(base, trees, columns: list[str], tree_names: list[str]) -> torch.Tensor:
    """``(G, len(columns))`` float64 rows a long-horizon stage reads: ``"base"`` is the task estimator's own output
    (``base``, ``(G,)``: its normal score, or its metric for a ``target="metric"`` ridge), any other name the tree
    row column of that name (``trees``, :func:`tree_rows`, whose columns are ``tree_names``)."""
    base = torch.as_tensor(base, dtype=torch.float64).reshape(-1)
    trees = torch.as_tensor(trees, dtype=torch.float64)
    cols = []
    for c in columns:
        if c == "base":
            cols.append(base)
        elif c in tree_names:
            cols.append(trees[:, tree_names.index(c)])
        else:
            raise ValueError(f"a long-horizon stage cannot read {c!r}: not 'base' nor one of {tree_names}")
    return torch.stack(cols, 1) if cols else torch.zeros(len(base), 0, dtype=torch.float64)


def fit_long(base, trees, labels, task: str, steps: int, columns: list[str], predicted: bool = True,
             seed: int = 0) -> dict[str, Any]:
    """A long-horizon stage for a task's estimator: a ridge from :func:`long_rows` (the estimator's out-of-fold
    output ``base`` for graphs trained for ``steps`` steps, and the tree-row ``columns`` of ``trees``) to the
    normal scores of their metric after ``steps`` steps (``labels``), read back in that metric's units through
    its own quantiles. Stored as the estimator's ``long`` entry; :meth:`GHN.quality` with ``long=True`` reads it.
    The estimator's own labels (brief training) are plentiful and cheap; long runs are few, so this stage maps
    its output, with the few columns that say how much a graph gains from longer training, to the long run's
    order."""
    rows = long_rows(base, trees, columns, tree_columns(predicted))
    entry = fit_estimator(rows, labels, task, "ridge", predicted=False, seed=seed)
    # a linear map extrapolates: a graph unlike the few long-run ones (say, twice their largest layer-norm share)
    # reads each column within the range those graphs span (the estimator's own output is not held)
    lo, hi = rows.min(0).values, rows.max(0).values
    entry.update({"steps": int(steps), "columns": list(columns),
                  "clip": {c: [float(a), float(b)] for c, a, b in zip(columns, lo, hi) if c != "base"}})
    return entry


def clip_long(rows: torch.Tensor, stage: dict[str, Any]) -> torch.Tensor:
    """``rows`` (:func:`long_rows` for ``stage``) with each column the stage holds to a range (its ``clip``: the
    range its fitting rows spanned) held there."""
    clip = stage.get("clip") or {}
    out = rows.clone()
    for k, c in enumerate(stage["columns"]):
        if c in clip:
            out[:, k] = out[:, k].clamp(*clip[c])
    return out


def target_values(y, target: str) -> Any:
    """What the ridge is fitted to for labels ``y``: their normal scores or ``y`` itself (``target`` one of
    :data:`TARGETS`)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    return normal_scores(y) if target == "normal_scores" else y


def normal_scores(y) -> Any:
    """Each value's rank (ties averaged) mapped through the inverse standard normal CDF: ``(n,)`` floats."""
    import numpy as np
    from scipy.stats import norm, rankdata

    y = np.asarray(y, dtype=np.float64)
    return norm.ppf((rankdata(y) - 0.5) / len(y))


def to_metric(score: torch.Tensor, est: dict[str, Any]) -> torch.Tensor:
    """Predicted normal scores ``score`` (any shape) in the metric's units: piecewise linear through the labels'
    quantiles (``est["table"]``), made strictly increasing, and past the ends a saturating curve that leaves the
    range by at most a tenth of it (within [0, 1] for an accuracy). Strictly increasing everywhere, so the
    order of the predictions is the order of the estimates."""
    zs = torch.tensor(est["table"]["score"], dtype=torch.float64)
    ms = torch.tensor(est["table"]["metric"], dtype=torch.float64)
    n = len(ms)
    span = max(float(ms[-1] - ms[0]), 1e-6)
    ms = ms + (torch.arange(n, dtype=torch.float64) - (n - 1)) * span * 1e-6  # equal quantiles: still increasing
    zs = zs + torch.arange(n, dtype=torch.float64) * 1e-9
    lo, hi = float(ms[0]), float(ms[-1])
    x = score.to(torch.float64)
    i = torch.searchsorted(zs, x.clamp(float(zs[0]), float(zs[-1])).contiguous()).clamp(1, n - 1)
    z0, z1, m0, m1 = zs[i - 1], zs[i], ms[i - 1], ms[i]
    out = m0 + (x - z0) * (m1 - m0) / (z1 - z0)

    def tail(dist: torch.Tensor, slope: float, room: float) -> torch.Tensor:
        # grows with the end segment's slope at the boundary and approaches ``room`` (slowly: float64 still
        # tells far-out scores apart)
        return room * dist * slope / (room + dist * slope) if room > 0 else torch.zeros_like(dist)

    acc = est.get("higher_is_better", True)
    room_lo = min(0.1 * span, max(lo, 0.0))  # an accuracy or a loss stays >= 0, an accuracy <= 1
    room_hi = min(0.1 * span, max(1.0 - hi, 0.0)) if acc else 0.1 * span
    s_lo = float((ms[1] - ms[0]) / (zs[1] - zs[0]))
    s_hi = float((ms[-1] - ms[-2]) / (zs[-1] - zs[-2]))
    below, above = x < zs[0], x > zs[-1]
    out = torch.where(below, lo - tail(float(zs[0]) - x, s_lo, room_lo), out)
    return torch.where(above, hi + tail(x - float(zs[-1]), s_hi, room_hi), out)


def cost_rows(graphs: list[ArchGraph], task: str) -> torch.Tensor:
    """``(G, 2)`` float64: :func:`graph_costs` of each graph (counting FLOPs takes a shape pass per graph, so a
    caller that builds both kinds of rows counts once and passes them as ``costs``)."""
    return torch.tensor([graph_costs(g, task) for g in graphs], dtype=torch.float64).reshape(len(graphs), 2)


def feature_rows(graphs: list[ArchGraph], pooled: list[torch.Tensor], task: str,
                 predicted: list[float] | None = None, costs: torch.Tensor | None = None) -> torch.Tensor:
    """``(G, d + 2)`` float64 rows the estimator reads: each graph's pooled GHN embedding (``pooled``), then its
    log #params and log FLOPs on ``task`` (:func:`cost_rows`, or ``costs``); ``(G, d + 3)`` with the metric of its
    predicted parameters (``predicted``, through :func:`predicted_column`) last."""
    costs = cost_rows(graphs, task) if costs is None else costs
    cols = [torch.stack(list(pooled)).double().cpu(), costs]
    if predicted is not None:
        from mad.train.objective import TaskSpec

        cols.append(predicted_column(predicted, TaskSpec.of(task).is_lm))
    return torch.cat(cols, 1)


def predicted_column(values: list[float | None], is_lm: bool) -> torch.Tensor:
    """``(G, 1)`` float64: the metric of the graphs' predicted parameters as an estimator reads it, the log of the
    bits per character (within [1e-3, 1e3]) for language modelling, else the accuracy; a missing or non-finite
    value reads as the worst (1000 bits, accuracy 0)."""
    out = []
    for v in values:
        v = float("nan") if v is None else float(v)
        if is_lm:
            out.append(math.log(min(max(v, 1e-3), 1e3)) if math.isfinite(v) else math.log(1e3))
        else:
            out.append(v if math.isfinite(v) else 0.0)
    return torch.tensor(out, dtype=torch.float64).reshape(len(out), 1)


def features(model, graphs: list[ArchGraph], task: str, predicted: bool = False) -> torch.Tensor:
    """:func:`feature_rows` of ``graphs`` on ``task`` with ``model``'s pooled embeddings (and, with ``predicted``,
    the metric of the parameters ``model`` predicts for them, measured as :data:`PREDICTED` says)."""
    if not predicted:
        return feature_rows(graphs, list(embeddings(model, graphs, task)), task)
    pooled, metrics = pooled_and_predicted(model, graphs, task)
    return feature_rows(graphs, pooled, task, metrics)


def tree_features(model, graphs: list[ArchGraph], task: str, predicted: bool = False) -> torch.Tensor:
    """:func:`tree_rows` of ``graphs`` on ``task`` (with ``predicted``, the metric of ``model``'s predicted
    parameters measured as :data:`PREDICTED` says)."""
    return tree_rows(graphs, task, pooled_and_predicted(model, graphs, task)[1] if predicted else None)


def pooled_and_predicted(model, graphs: list[ArchGraph], task: str) -> tuple[list[torch.Tensor], list[float]]:
    """Pooled embeddings of ``graphs`` and the metric of the parameters ``model`` predicts for them (decoded once)."""
    from .api import GHN
    from .encode import encode

    was = model.training
    ghn = GHN(model, device=next(model.parameters()).device)
    params, pooled = ghn.predict_encoded([encode(g) for g in graphs], task)
    metrics = ghn.predicted_metrics(graphs, task, params=params, **PREDICTED)
    model.train(was)
    return pooled, metrics


def tree_columns(predicted: bool) -> list[str]:
    """Names of :func:`tree_rows`' columns."""
    from mad.graph.descriptors import STRUCTURE_NAMES

    return [*STRUCTURE_NAMES, "log_params", "log_flops", *(["predicted_metric"] if predicted else [])]


def tree_rows(graphs: list[ArchGraph], task: str, predicted: list[float] | None = None,
              costs: torch.Tensor | None = None) -> torch.Tensor:
    """``(G, k)`` float64 rows the tree estimator reads (:func:`tree_columns`): each graph's structure
    (:func:`mad.graph.descriptors.structure_features`), log #params and log FLOPs on ``task`` (:func:`cost_rows`, or
    ``costs``), and with ``predicted`` the metric of its predicted parameters (through :func:`predicted_column`)."""
    from mad.graph.descriptors import STRUCTURE_NAMES, structure_features

    structure = torch.tensor([structure_features(g) for g in graphs], dtype=torch.float64)
    costs = cost_rows(graphs, task) if costs is None else costs
    rows = torch.cat([structure.reshape(len(graphs), len(STRUCTURE_NAMES)), costs], 1)
    if predicted is None:
        return rows
    from mad.train.objective import TaskSpec

    return torch.cat([rows, predicted_column(predicted, TaskSpec.of(task).is_lm)], 1)


# ---------------------------------------------------------------------- forests as flat arrays
def pack_forest(model) -> dict[str, torch.Tensor]:
    """A fitted scikit-learn tree ensemble (regression, one output) as flat arrays over all its trees' nodes:
    ``feature`` (int16, -1 at a leaf), ``split`` (float32: the threshold, rounded down to float32 so that a float32
    input compares with it exactly as scikit-learn compares it with the float64 threshold; at a leaf its value),
    ``left`` and ``right`` (int32 node indices, -1 at a leaf) and ``roots`` (int32, one per tree)."""
    import numpy as np

    feature, split, left, right, roots = [], [], [], [], []
    offset = 0
    for est in model.estimators_:
        t = est.tree_
        leaf = t.children_left < 0
        thr32 = t.threshold.astype(np.float32)
        thr32 = np.where(thr32.astype(np.float64) > t.threshold, np.nextafter(thr32, np.float32(-np.inf)), thr32)
        feature.append(np.where(leaf, -1, t.feature).astype(np.int16))
        split.append(np.where(leaf, t.value[:, 0, 0], thr32).astype(np.float32))
        left.append(np.where(leaf, -1, t.children_left + offset).astype(np.int32))
        right.append(np.where(leaf, -1, t.children_right + offset).astype(np.int32))
        roots.append(offset)
        offset += t.node_count
    cat = np.concatenate
    return {"feature": torch.from_numpy(cat(feature)), "split": torch.from_numpy(cat(split)),
            "left": torch.from_numpy(cat(left)), "right": torch.from_numpy(cat(right)),
            "roots": torch.tensor(roots, dtype=torch.int32)}


def forest_predict(forest: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """``(G,)`` float64: the mean over the trees of :func:`pack_forest`'s arrays of the leaf each row of ``X``
    ``(G, k)`` reaches (left where ``x[feature] <= split``, as scikit-learn goes, on float32 inputs)."""
    feat, split = forest["feature"].long(), forest["split"]
    left, right = forest["left"].long(), forest["right"].long()
    x = torch.nan_to_num(X.double(), nan=0.0, posinf=1e30, neginf=-1e30).float()
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.float64)
    if int(feat.max()) >= x.shape[1]:
        raise ValueError(f"the forest reads feature {int(feat.max())}, but the rows have {x.shape[1]} columns")
    idx = forest["roots"].long()[None].repeat(len(x), 1)          # (G, trees)
    for _ in range(len(feat)):                                      # at most as deep as the node count
        f = feat[idx]
        inner = f >= 0
        if not bool(inner.any()):
            break
        go_left = x.gather(1, f.clamp(min=0)) <= split[idx]
        idx = torch.where(inner, torch.where(go_left, left[idx], right[idx]), idx)
    return split[idx].double().mean(1)


def split_forests(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``record`` with each tree estimator's ``forest`` replaced by ``{"file": FOREST_FILE}`` (a copy: ``record``
    is left as it is), and the forests' arrays as ``{"TASK/ARRAY": tensor}``."""
    tensors: dict[str, torch.Tensor] = {}
    tasks = (record.get("quality") or {}).get("tasks") or {}
    if not any(isinstance(e.get("forest"), dict) and "file" not in e["forest"] for e in tasks.values()):
        return record, tensors
    out = {**record, "quality": {**record["quality"], "tasks": {}}}
    for task, est in tasks.items():
        forest = est.get("forest")
        if isinstance(forest, dict) and "file" not in forest:
            tensors.update({f"{task}/{k}": v.contiguous() for k, v in forest.items()})
            est = {**est, "forest": {"file": FOREST_FILE}}
        out["quality"]["tasks"][task] = est
    return out, tensors


def write_record(folder: str | Path, record: dict[str, Any]) -> None:
    """Write ``record`` as ``folder/record.json`` and its tree estimators' forests as ``folder/quality.safetensors``
    (removed when there are none)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    doc, tensors = split_forests(record)
    if tensors:
        save_file(tensors, str(folder / FOREST_FILE))
    else:
        (folder / FOREST_FILE).unlink(missing_ok=True)
    (folder / "record.json").write_text(json.dumps(doc, indent=2) + "\n")


def read_record(folder: str | Path) -> dict[str, Any]:
    """``folder/record.json`` (``{}`` when absent) with its tree estimators' forests read back."""
    folder = Path(folder)
    path = folder / "record.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    tasks = (record.get("quality") or {}).get("tasks") or {}
    wanted = [t for t, e in tasks.items() if isinstance(e.get("forest"), dict) and "file" in e["forest"]]
    if wanted:
        from safetensors.torch import load_file

        if not (folder / FOREST_FILE).exists():
            raise FileNotFoundError(f"{path} has tree estimators for {wanted}, but {folder / FOREST_FILE} is missing")
        arrays = load_file(str(folder / FOREST_FILE))
        for t in wanted:
            forest = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.split("/", 1)[0] == t}
            if set(forest) != {"feature", "split", "left", "right", "roots"}:
                raise ValueError(f"{folder / FOREST_FILE} lacks the forest of {t!r}'s quality estimator")
            tasks[t]["forest"] = forest
    return record


@torch.no_grad()
def embeddings(model, graphs: list[ArchGraph], task: str, chunk: int = 8) -> torch.Tensor:
    """Pooled GHN embeddings ``(G, d)`` of graphs on ``task`` (on the CPU; the model runs where it is)."""
    from mad.train.objective import TaskSpec

    from .encode import collate, encode
    from .model import task_features

    spec = TaskSpec.of(task)
    tf = task_features(spec.input_shape, spec.num_outputs, spec.is_lm)
    dev = next(model.parameters()).device
    out = []
    was = model.training
    model.eval()
    for i in range(0, len(graphs), chunk):
        part = [encode(g) for g in graphs[i:i + chunk]]
        b = collate(part).to(dev)
        h = model.embed(b, model.task_ids([spec.name] * len(part)).to(dev), tf[None].repeat(len(part), 1).to(dev))
        out.append(model.pool(h, b).cpu())
    model.train(was)
    return torch.cat(out)
