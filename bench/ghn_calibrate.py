"""Calibrating the GHN's quality estimates (mnist5k, and any other task): labelled pools, brief training of each
graph, a refit and how well it ranks.

    python bench/ghn_calibrate.py --cache ~/.cache/mad/ghn_calibrate --jobs 2     # label (resumable), report
    python bench/ghn_calibrate.py --cache ~/.cache/mad/ghn_calibrate --write      # also store the refit
    python bench/ghn_calibrate.py --task mnist1d --cache ~/.cache/mad/cal_mnist1d --write   # another task
    python bench/ghn_calibrate.py --task chars --cache ~/.cache/mad/cal_chars --long-steps 1000 --write

The estimate (:mod:`mad.ghn.quality`) is a ridge regression from the GHN's pooled graph embedding plus log
#params and log FLOPs and the metric of the GHN's predicted parameters on 250 validation examples (not with
``--no-predicted``) to the normal scores of the validation metric after 100 AdamW steps (read back in the
metric's units through its quantiles; the cross-validated tau of a ridge on the raw metric, and of the other
feature set, are reported beside). mnist5k's labels come from four pools, in this order, each graph
deduplicated by WL hash against everything before it; no graph of the held-out splits
(``bench/train_baselines.py``'s ids) and none of the trainability benchmark's samples
(``bench/generator_eval.py``: 96 suggestions per seed 0-2, random-space seeds 1000-1239) is used:

* ``dataset``: every graph of the dataset's ``train`` split that qualifies for mnist5k under the GHN's pool
  rules (at most 15 MFLOPs, 400 nodes), in the GHN's pool order;
* ``generated-a``: ``suggest()`` samples for four 28x28 digit-classifier prompts (seeds 20+k and 40+k, 48
  each), at most 15 MFLOPs;
* ``random``: fresh random-space CNNs (seeds 50000-50199, 51000-51199, 52000-52199 under 50k, 200k and 1M
  parameters), at most 20 MFLOPs;
* ``generated-b``: ``suggest()`` samples for seven 28x28 prompts (CNNs, residual nets, ViTs, mixers; seeds
  60+k and 80+k, 48 each), at most 20 MFLOPs.

Another task (``--task mnist1d``, ``--task chars``) gets pools drawn where the agent's searches draw
(:func:`search_space_pools`: qualifying dataset graphs, random-space graphs of :class:`mad.agent.GraphSpace`,
``suggest()`` samples for the search loop's prompt, more random-space graphs and mutants of random-space
graphs), its report goes to ``ghn_calibrate_TASK.json``, and the
held-out tau is reported only where ``bench/train_baselines.py`` selected held-out graphs for the task (chars).

The generated pools are drawn from the shipped generator (and the trainability samples excluded are its
own); the shipped pools came from the generator before it was fine-tuned on them
(``bench/generator_finetune.py``), so a rebuild from scratch now draws other graphs.

Two estimators are compared on the same labels: the ridge above and extra-trees on the graph's structure, costs
and the predicted parameters' metric (:func:`mad.ghn.quality.tree_rows`). ``--estimator auto`` (the default)
fits the trees where both their 5-fold and their leave-family-out tau are higher than the ridge's, else the ridge.

``--long-steps 1000`` also trains a seeded uniform sample of the labelled graphs (``--long-graphs``, in
:func:`long_order`, so however many are done they stay a uniform sample; resumable) for 1000 steps with the
held-out graphs' recipe, and fits the estimator's long-horizon stage (:func:`mad.ghn.quality.fit_long`): a ridge
from the estimator's out-of-fold output, with each set of inputs of :data:`LONG_CANDIDATES` beside it, to the
long labels' normal scores; the set whose 20 x 5-fold out-of-fold Kendall tau against the long labels is highest
is fitted, and its held-out tau reported (not used to choose).

Labels: :func:`mad.ghn.quality.collect_labels` (100 AdamW steps, lr 1e-3, cosine, batch 64, seed 0), one
JSONL file per pool shard under ``--cache``, so an interrupted run continues where it stopped (with any
``--jobs``: the graphs still unlabelled are split into that many shards, labelled in parallel processes).
The labels do not depend on the GHN. ``--export`` writes the cache's pools and labels (brief and long) to
``bench/data/ghn_labels/TASK.jsonl.xz`` (or ``--labels``), and a run with an empty ``--cache`` starts from that
file (:func:`seed_cache`; ``--no-labels`` starts from scratch), so refitting a retrained GHN takes minutes:
``python bench/ghn_calibrate.py --ghn runs/ghn --cache /tmp/cal --write``.
Report (``bench/results/ghn_calibrate.json``): labels per pool, 5-fold cross-validated Kendall tau on the
labels (3 repeats), leave-one-family-out tau, and the Kendall tau of the shipped and of the refitted estimate
against the held-out graphs' 100- and 1000-step accuracy. ``--write`` stores the refit's coefficients, with
a ``refits`` entry saying what was done, in the shipped record (or ``--ghn``'s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_baselines import held_out_texts, kendall_tau  # noqa: E402

TASK = "mnist5k"
BENCH_PROMPT = "a convolutional network for 28x28 grayscale digits, 10 classes, under 200k parameters"
PROMPTS_A = ["a CNN for 28x28 grayscale digits with 10 classes",
             "a small residual network for 28x28 grayscale images, 10 classes, under 300k parameters",
             "an image classifier for 1x28x28 inputs and 10 classes with batch norm, under 100k parameters",
             BENCH_PROMPT]
PROMPTS_B = PROMPTS_A + [
    "a vision transformer for 28x28 grayscale images with 10 classes, under 500k parameters",
    "an MLP-mixer for 1x28x28 images, 10 classes",
    "a tiny convolutional classifier with max pooling for 28x28 digits, 10 classes, under 50k parameters"]
RANDOM_CAPS = (50_000, 200_000, 1_000_000)
# the pools of the other tasks (search_space_pools)
DATASET_GRAPHS = 120
SPACE_GRAPHS = 60
SPACE_CAPS = (50_000, 200_000)
SPACE_MAX_FLOPS = 20_000_000
SPACE2_GRAPHS = 80  # per cap: the second random-space pool
MUTANT_GRAPHS = 80  # per cap


def _held_out(task: str) -> tuple[list[str], dict[str, str], dict[str, dict]]:
    """The held-out ids of ``task`` (none for a task ``train_baselines`` did not select), their graph texts and
    their ``train_baselines`` records."""
    base = json.loads((ROOT / "bench" / "results" / "train_baselines.json").read_text())
    ids = base["selection"]["ids"].get(task, [])
    recs = {r["id"]: r for r in base["records"] if r["task"] == task and r.get("status") == "completed"}
    return ids, held_out_texts(base, set(ids)), recs


def build_pools(cache: Path, texts: dict[str, str], task: str = TASK) -> dict[str, list[tuple[str, str]]]:
    """``{pool: [(id, graph JSON on the task), ...]}``, built once and cached in ``cache/pools.json``."""
    path = cache / "pools.json"
    have = json.loads(path.read_text()) if path.exists() else None
    if have is not None and (task == TASK or set(have) >= set(SEARCH_POOLS)):
        return have
    pools = mnist5k_pools(cache, texts) if task == TASK else search_space_pools(cache, texts, task, have)
    path.write_text(json.dumps(pools))
    return pools


def mnist5k_pools(cache: Path, texts: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """The four mnist5k pools of the module docstring, in order."""
    import torch

    from mad.data.random_space import RandomSpaceConfig, sample
    from mad.generator import load as load_generator
    from mad.ghn.pool import task_pool
    from mad.graph import ArchGraph
    from mad.train.proxies import screen

    torch.manual_seed(0)
    gen = load_generator("default", device="cpu")
    seen = {ArchGraph.from_json(t).wl_hash() for t in texts.values()}
    bench_cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000)
    seen |= {sample(s, bench_cfg).wl_hash() for s in range(1000, 1240)}
    for s in (0, 1, 2):
        seen |= {g.wl_hash() for g in gen.suggest(BENCH_PROMPT, n=96, seed=s, oversample=1, rank="likelihood")}
    pools: dict[str, list[tuple[str, str]]] = {}

    def take(name: str, row_id: str, g, max_mflops: float) -> None:
        h = g.wl_hash()
        if h in seen:
            return
        fitted, mflops, _ = screen(g, TASK)
        if fitted is not None and mflops is not None and mflops <= max_mflops:
            seen.add(h)
            pools[name].append((row_id, fitted.to_json()))

    dataset = task_pool(TASK, 100_000, ("train",), cache / "dataset.jsonl", max_mflops=15.0, max_nodes=400, seed=0)
    pools["dataset"] = [(i, g.to_json()) for i, g in dataset]
    seen |= {g.wl_hash() for _, g in dataset}
    pools["generated-a"] = []
    for k, prompt in enumerate(PROMPTS_A):
        for s in (20 + k, 40 + k):
            for g in gen.suggest(prompt, n=48, seed=s, oversample=1, rank="likelihood"):
                take("generated-a", f"gen-{k}-{s}-{len(pools['generated-a'])}", g, 15.0)
    pools["random"] = []
    for k, cap in enumerate(RANDOM_CAPS):
        cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=cap)
        for s in range(50_000 + 1000 * k, 50_200 + 1000 * k):
            take("random", f"rnd{cap}-{s}-{len(pools['random'])}", sample(s, cfg), 20.0)
    pools["generated-b"] = []
    for k, prompt in enumerate(PROMPTS_B):
        for s in (60 + k, 80 + k):
            for g in gen.suggest(prompt, n=48, seed=s, oversample=1, rank="likelihood"):
                take("generated-b", f"gen{k}-{s}-{len(pools['generated-b'])}", g, 20.0)
    return pools


SEARCH_POOLS = ("dataset", "space", "generated", "space2", "mutants")


def search_space_pools(cache: Path, texts: dict[str, str], task: str,
                       have: dict[str, list[tuple[str, str]]] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Pools for a task other than mnist5k, drawn where the agent's searches draw (``bench/agent_eval.py``'s
    limits), each graph deduplicated by WL hash against the held-out graphs and everything before it:

    * ``dataset``: the first ``DATASET_GRAPHS`` graphs of the dataset's ``train`` split that qualify for the task
      under the GHN's pool rules, in the GHN's pool order;
    * ``space``: ``SPACE_GRAPHS`` random-space graphs of :class:`mad.agent.GraphSpace` for the task under each of
      ``SPACE_CAPS`` parameters and ``SPACE_MAX_FLOPS`` (rng seeds 70000+);
    * ``generated``: ``suggest()`` samples for the search loop's own prompt for the task
      (:func:`mad.agent.loop.task_prompt`, 50k parameters), seeds 90 and 91, 48 each;
    * ``space2``: ``SPACE2_GRAPHS`` more random-space graphs per cap (rng seeds 71000+);
    * ``mutants``: ``MUTANT_GRAPHS`` per cap, each a random-space graph mutated one to three times by
      ``GraphSpace.mutate`` (rng seeds 72000+): what the search's evolution and the loop's elites produce.

    Pools already in ``have`` (a cache made before a pool was added) are kept as they are; only the missing ones
    are drawn, deduplicated against them.
    """
    import random

    from mad.agent import GraphSpace
    from mad.agent.loop import task_prompt
    from mad.generator import load as load_generator
    from mad.ghn.pool import task_pool
    from mad.graph import ArchGraph

    have = have or {}
    seen = {ArchGraph.from_json(t).wl_hash() for t in texts.values()}
    pools: dict[str, list[tuple[str, str]]] = {}
    for name in SEARCH_POOLS:
        if name in have:
            pools[name] = have[name]
            seen |= {ArchGraph.from_json(t).wl_hash() for _, t in have[name]}

    def take(name: str, row_id: str, g) -> None:
        h = g.wl_hash()
        if h not in seen:
            seen.add(h)
            pools[name].append((row_id, g.to_json()))

    spaces = [GraphSpace(task, max_params=cap, max_flops=SPACE_MAX_FLOPS) for cap in SPACE_CAPS]

    def draw(name: str, n: int, seed: int, mutations: bool) -> None:
        for k, (cap, space) in enumerate(zip(SPACE_CAPS, spaces)):
            rng = random.Random(seed + k)
            for j in range(n):
                c = space.sample(rng)
                for _ in range(rng.randint(1, 3) if mutations else 0):
                    c = space.mutate(c, rng)
                take(name, f"space{cap}-{j}" if name == "space" else f"{name}-{cap}-{j}", space.to_graph(c))

    for name in SEARCH_POOLS:
        if name in pools:
            continue
        pools[name] = []
        if name == "dataset":
            for i, g in task_pool(task, DATASET_GRAPHS, ("train",), cache / "dataset.jsonl", max_mflops=15.0,
                                  max_nodes=400, seed=0):
                take("dataset", i, g)
        elif name == "space":
            draw("space", SPACE_GRAPHS, 70_000, False)
        elif name == "generated":
            gen = load_generator("default", device="cpu")
            text, kw = task_prompt(task, max_params=SPACE_CAPS[0])
            for s in (90, 91):
                for j, g in enumerate(gen.suggest(text, n=48, seed=s, oversample=1, rank="likelihood", **kw)):
                    try:
                        c = spaces[0].adopt(g, "generator")
                    except Exception:  # noqa: BLE001 - a sample that cannot take the task is not a search candidate
                        continue
                    if spaces[0].within(c.graph):  # the search's limits
                        take("generated", f"gen-{s}-{j}", c.graph)
        elif name == "space2":
            draw("space2", SPACE2_GRAPHS, 71_000, False)
        else:
            draw("mutants", MUTANT_GRAPHS, 72_000, True)
    return pools


LABELS_DIR = ROOT / "bench" / "data" / "ghn_labels"
LABELS_FORMAT = "mad.ghn_labels"


def export_labels(cache: Path, task: str, path: Path) -> dict[str, int]:
    """Write ``cache``'s pools and every label of them (the brief ones, and each ``--long-steps`` run's) to ``path``,
    one xz-compressed JSON line per graph after a header line, in pool order; returns the counts written. The
    labels do not depend on any GHN, so a retrained GHN is refitted from this file in minutes instead of the hours
    of training the labels took (:func:`seed_cache`)."""
    import lzma

    pools = json.loads((cache / "pools.json").read_text())
    runs = {p.name[len("long"):].split("-", 1)[0] for p in cache.glob("long*-*.jsonl")}
    longs = {s: _label_lines(cache, f"long{s}-*.jsonl") for s in sorted((s for s in runs if s.isdigit()), key=int)}
    counts = {"graphs": 0, "labelled": 0, **{f"long{s}": 0 for s in longs}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with lzma.open(tmp, "wt", preset=9) as fh:
        fh.write(json.dumps({"format": LABELS_FORMAT, "version": 1, "task": task, "pools": list(pools),
                             "long_steps": [int(s) for s in longs]}) + "\n")
        for name, rows in pools.items():
            done = _labelled(cache, name)
            for i, text in rows:
                row: dict[str, Any] = {"pool": name, "id": i, "graph": text}
                if i in done:
                    row["label"] = _without_keys(done[i])
                    counts["labelled"] += 1
                for steps, lines in longs.items():
                    if f"{name}:{i}" in lines:
                        row[f"long{steps}"] = _without_keys(lines[f"{name}:{i}"])
                        counts[f"long{steps}"] += 1
                fh.write(json.dumps(row) + "\n")
                counts["graphs"] += 1
    tmp.replace(path)  # a crash mid-write leaves the previous file
    return counts


def _without_keys(line: dict[str, Any]) -> dict[str, Any]:
    """A label line without what the file holds elsewhere (the graph's id, the task): metric, steps, seconds or
    the error that stopped its training."""
    return {k: v for k, v in line.items() if k not in ("id", "task")}


def seed_cache(path: Path, cache: Path, task: str) -> dict[str, int]:
    """Fill an empty ``cache`` from a file :func:`export_labels` wrote for ``task``: its pools become the cache's
    ``pools.json`` and its labels shard files (``labels-POOL-shipped.jsonl``, ``longSTEPS-shipped.jsonl``), so a
    run labels only what the file lacks. Refuses a cache that already has pools, and a file of another task."""
    import lzma

    if (cache / "pools.json").exists():
        raise SystemExit(f"{cache} already has pools.json: pass an empty --cache to read {path}")
    with lzma.open(path, "rt") as fh:
        head = json.loads(fh.readline())
        if head.get("format") != LABELS_FORMAT or head.get("task") != task:
            raise SystemExit(f"{path} holds {head.get('format')!r} labels for {head.get('task')!r}, not "
                             f"{LABELS_FORMAT!r} for {task!r}: pass another --labels")
        rows = [json.loads(line) for line in fh if line.strip()]
    pools: dict[str, list[tuple[str, str]]] = {name: [] for name in head["pools"]}
    brief: dict[str, list[str]] = {name: [] for name in head["pools"]}
    long: dict[int, list[str]] = {s: [] for s in head["long_steps"]}
    for r in rows:
        pools[r["pool"]].append((r["id"], r["graph"]))
        if "label" in r:
            brief[r["pool"]].append(json.dumps({"id": r["id"], "task": task, **r["label"]}))
        for s in long:
            if f"long{s}" in r:
                long[s].append(json.dumps({"id": f"{r['pool']}:{r['id']}", "task": task, **r[f"long{s}"]}))
    cache.mkdir(parents=True, exist_ok=True)
    for name, lines in brief.items():
        if lines:
            (cache / f"labels-{name}-shipped.jsonl").write_text("\n".join(lines) + "\n")
    for s, lines in long.items():
        if lines:
            (cache / f"long{s}-shipped.jsonl").write_text("\n".join(lines) + "\n")
    (cache / "pools.json").write_text(json.dumps(pools))  # last: a cache with pools is a seeded one
    return {"graphs": len(rows), "labelled": sum(map(len, brief.values())),
            **{f"long{s}": len(lines) for s, lines in long.items()}}


def _label_shard(job: tuple[str, list[tuple[str, str]], str, int]) -> int:
    """Train each ``(id, graph JSON)`` of a shard ``steps`` steps on ``task``, appending label lines to ``out``."""
    import torch

    from mad.ghn.quality import collect_labels
    from mad.graph import ArchGraph

    torch.set_num_threads(1)
    task, rows, out, steps = job
    collect_labels(task, [(i, ArchGraph.from_json(t)) for i, t in rows], out, steps, progress=False)
    return len(rows)


def _labelled(cache: Path, name: str) -> dict[str, dict[str, Any]]:
    """Every label line of pool ``name`` in ``cache``, whatever shard file it is in, by graph id."""
    return _label_lines(cache, f"labels-{name}-*.jsonl")


def _label_lines(cache: Path, pattern: str) -> dict[str, dict[str, Any]]:
    """Every label line of the shard files in ``cache`` matching ``pattern``, by graph id."""
    out = {}
    for path in sorted(cache.glob(pattern)):
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                out[r["id"]] = r
    return out


def label(task: str, pools: dict[str, list[tuple[str, str]]], cache: Path, jobs: int) -> dict[str, dict[str, float]]:
    """``{pool: {id: metric}}`` after labelling every graph no shard file holds yet (split into ``jobs`` shards
    per pool, in parallel), so a rerun with another ``jobs`` trains nothing twice."""
    from tqdm.auto import tqdm

    k = max(1, jobs)
    work = []
    for name, rows in pools.items():
        done = _labelled(cache, name)
        todo = [row for row in rows if row[0] not in done]
        size = -(-len(todo) // k)
        work += [(task, todo[j * size:(j + 1) * size], str(cache / f"labels-{name}-{j}.jsonl"), 100)
                 for j in range(k)]
    work = [w for w in work if w[1]]
    if work:
        with mp.get_context("spawn").Pool(k) as pool:
            for _ in tqdm(pool.imap_unordered(_label_shard, work), total=len(work), desc="label shards"):
                pass
    return {name: {i: r["metric"] for i, r in _labelled(cache, name).items() if r.get("metric") is not None}
            for name in pools}


def long_order(pools: dict[str, list[tuple[str, str]]], labels: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """Every graph with a finite label (as the fit keeps them) as ``("pool:id", graph JSON)``, in one seeded random
    order: the long-horizon labels are taken in this order, so however many there are, they are a uniform sample
    of the labelled graphs."""
    import math
    import random

    rows = [(f"{name}:{i}", t) for name, pool in pools.items() for i, t in pool
            if i in labels[name] and math.isfinite(labels[name][i])]
    random.Random(0).shuffle(rows)
    return rows


def label_long(task: str, pools: dict[str, list[tuple[str, str]]], labels: dict[str, dict[str, float]],
               cache: Path, steps: int, n: int, jobs: int) -> dict[str, float]:
    """``{"pool:id": metric}`` after ``steps`` AdamW steps (``bench/train_baselines.py``'s recipe: the held-out
    graphs' figure) for the first ``n`` graphs of :func:`long_order`, those no shard file holds yet labelled in
    ``jobs`` interleaved shards (``cache/long{steps}-{j}.jsonl``; a rerun with another ``jobs`` trains nothing
    twice)."""
    pattern = f"long{steps}-*.jsonl"
    done = _label_lines(cache, pattern)
    rows = [row for row in long_order(pools, labels)[:n] if row[0] not in done]
    k = max(1, jobs)
    work = [(task, rows[j::k], str(cache / f"long{steps}-{j}.jsonl"), steps) for j in range(k) if rows[j::k]]
    if work:
        with mp.get_context("spawn").Pool(len(work)) as pool:
            pool.map(_label_shard, work)
    return {i: r["metric"] for i, r in _label_lines(cache, pattern).items() if r.get("metric") is not None}


# the long-horizon stage's candidate inputs (beside "base", the estimator's out-of-fold output), in the order tried
LONG_CANDIDATES = {"base": [], "params": ["log_params"], "costs": ["log_params", "log_flops"],
                   "costs+predicted": ["log_params", "log_flops", "predicted_metric"],
                   "costs+predicted+shape": ["log_params", "log_flops", "predicted_metric", "log2_depth", "log2_nodes"],
                   "all": None}  # None: every tree-row column


def _out_of_fold(R, y, estimator: str) -> Any:
    """5-fold out-of-fold outputs of the estimator kind ``estimator`` fitted, as the shipped one is, to the normal
    scores of ``y`` on rows ``R``: what it says of a graph it was not fitted on."""
    import numpy as np
    from sklearn.model_selection import KFold

    from mad.ghn.quality import normal_scores

    out = np.zeros(len(y))
    for tr, te in KFold(5, shuffle=True, random_state=0).split(R):
        out[te] = _model(estimator).fit(R[tr], normal_scores(y[tr])).predict(R[te])
    return out


def _model(estimator: str) -> Any:
    """An unfitted estimator of kind ``estimator`` with the shipped settings."""
    import numpy as np
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mad.ghn.quality import TREES

    if estimator == "trees":
        return ExtraTreesRegressor(**TREES, random_state=0)
    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 25)))


def long_stage(R, T, y, keys: list[str], long: dict[str, float], task: str, estimator: str, predicted: bool,
               steps: int, repeats: int = 20) -> tuple[dict[str, Any], dict[str, Any]]:
    """The long-horizon stage (:func:`mad.ghn.quality.fit_long`) and its report: the estimator's out-of-fold
    output for every labelled graph (rows ``R``, brief labels ``y``), and for the graphs with a long label, each of
    :data:`LONG_CANDIDATES` scored by the Kendall tau of its ``repeats`` x 5-fold out-of-fold predictions against
    the long labels; the best is fitted on all of them."""
    import numpy as np
    from sklearn.model_selection import KFold

    from mad.ghn.quality import fit_long, long_rows, normal_scores, tree_columns

    base = _out_of_fold(R, y, estimator)
    idx = [k for k, key in enumerate(keys) if key in long]
    if len(idx) < 20:
        raise SystemExit(f"only {len(idx)} graphs have a {steps}-step label: too few for a long-horizon stage")
    yl = np.array([long[keys[k]] for k in idx])
    names = tree_columns(predicted)
    taus = {}
    for label, cols in LONG_CANDIDATES.items():
        cols = ["base", *(names if cols is None else cols)]
        rows = long_rows(base[idx], T[idx], cols, names).numpy()
        got = []
        for rep in range(repeats):
            pred = np.zeros(len(idx))
            for tr, te in KFold(5, shuffle=True, random_state=rep).split(rows):
                pred[te] = _model("ridge").fit(rows[tr], normal_scores(yl[tr])).predict(rows[te])
            got.append(kendall_tau(list(pred), list(yl)))
        taus[label] = round(float(np.mean(got)), 4)
    best = max(taus, key=lambda k: taus[k])  # the first of equals: the fewest inputs
    cols = ["base", *(names if LONG_CANDIDATES[best] is None else LONG_CANDIDATES[best])]
    entry = fit_long(base[idx], T[idx], yl, task, steps, cols, predicted)
    report = {"steps": steps, "graphs": len(idx), "columns": cols,  # each figure's order is the metric's
              "kendall_tau_brief_label_vs_long": round(kendall_tau(list(y[idx]), list(yl)), 4),
              "kendall_tau_estimate_vs_long": round(kendall_tau(list(base[idx]), list(yl)), 4),
              "cross_validated_kendall_tau": taus, "chosen": best}
    return entry, report


def _cv_tau(X, y, groups=None, repeats: int = 3, target: str = "normal_scores", estimator: str = "ridge") -> float:
    """Kendall tau of out-of-fold predictions (5-fold, or one fold per group) of a ridge (or with
    ``estimator="trees"``, the extra-trees of :data:`mad.ghn.quality.TREES`), fitted to the training folds' normal
    scores (``target="normal_scores"``, as :func:`mad.ghn.quality.fit_quality` does) or to their metric."""
    import numpy as np
    from sklearn.model_selection import GroupKFold, KFold

    from mad.ghn.quality import target_values

    taus = []
    for rep in range(1 if groups is not None else repeats):
        pred = np.zeros_like(y)
        splits = (GroupKFold(len(set(groups))).split(X, y, groups) if groups is not None
                  else KFold(5, shuffle=True, random_state=rep).split(X))
        for tr, te in splits:
            pred[te] = _model(estimator).fit(X[tr], target_values(y[tr], target)).predict(X[te])
        taus.append(kendall_tau(list(pred), list(y)))
    return round(float(np.mean(taus)), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, required=True, help="folder for pools and labels (resumable)")
    ap.add_argument("--ghn", default="default", help="GHN checkpoint folder or 'default'")
    ap.add_argument("--jobs", type=int, default=2, help="labelling processes")
    ap.add_argument("--write", action="store_true", help="store the refit in the GHN's record.json")
    ap.add_argument("--no-predicted", action="store_true", help="fit the estimator without the metric of the "
                    "predicted parameters (embedding and costs only)")
    ap.add_argument("--estimator", choices=("auto", "ridge", "trees"), default="auto",
                    help="the estimator to fit; auto: the trees where both their 5-fold and their leave-family-out "
                    "tau beat the ridge's, else the ridge")
    ap.add_argument("--task", default=TASK, help="mnist5k (its own pools) or another task (search_space_pools)")
    ap.add_argument("--long-steps", type=int, default=0, help="also fit a long-horizon stage on graphs trained "
                    "this many steps (1000: the held-out graphs' figure); 0: none")
    ap.add_argument("--long-graphs", type=int, default=300, help="graphs trained --long-steps steps (a seeded "
                    "uniform sample of the labelled ones; resumable)")
    ap.add_argument("--labels", type=Path, help="pools and labels an earlier run exported (default: "
                    "bench/data/ghn_labels/TASK.jsonl.xz): an empty --cache is filled from it, so only what it lacks "
                    "is labelled")
    ap.add_argument("--no-labels", action="store_true", help="build the pools and labels from scratch, not from "
                    "--labels")
    ap.add_argument("--export", action="store_true", help="write the cache's pools and labels to --labels at the end")
    ap.add_argument("--out", type=Path, help="report (default: bench/results/ghn_calibrate.json for mnist5k, "
                    "ghn_calibrate_TASK.json for another task)")
    args = ap.parse_args()
    task = args.task
    args.out = args.out or ROOT / "bench" / "results" / ("ghn_calibrate.json" if task == TASK
                                                         else f"ghn_calibrate_{task}.json")
    t0 = time.perf_counter()
    import numpy as np
    import torch

    from mad.ghn import load
    from mad.ghn.quality import FITTED, cost_rows, feature_rows, fit_estimator, pooled_and_predicted, tree_rows
    from mad.graph import ArchGraph

    torch.set_num_threads(1)
    args.labels = args.labels or LABELS_DIR / f"{task}.jsonl.xz"
    seeded = None
    if not args.no_labels and args.labels.exists() and not (args.cache / "pools.json").exists():
        seeded = seed_cache(args.labels, args.cache, task)
        print(f"filled {args.cache} from {args.labels}: {seeded}")
    args.cache.mkdir(parents=True, exist_ok=True)
    ids, texts, recs = _held_out(task)
    pools = build_pools(args.cache, texts, task)
    labels = label(task, pools, args.cache, args.jobs)
    pairs, families, keys, per_pool = [], [], [], {}
    for name, rows in pools.items():
        kept = [(i, t) for i, t in rows if i in labels[name] and np.isfinite(labels[name][i])]  # as fit_quality
        got = [(ArchGraph.from_json(t), labels[name][i]) for i, t in kept]
        keys += [f"{name}:{i}" for i, _ in kept]  # as long_order names them
        per_pool[name] = {"graphs": len(rows), "labelled": len(got),
                          "mean_metric": round(float(np.mean([m for _, m in got])), 4) if got else None}
        pairs += got
        families += [name if name.startswith("generated") else g.meta.get("family", "?") for g, _ in got]
    ghn = load(args.ghn, device="cpu")
    held = [i for i in ids if i in recs and i in texts]
    held_graphs = [ArchGraph.from_json(texts[i]) for i in held]
    y100 = [recs[i]["at_step"]["100"] for i in held]
    y1000 = [recs[i]["at_step"]["1000"] for i in held]

    def held_taus() -> dict[str, float] | None:
        if not held_graphs:  # no held-out graphs for this task
            return None
        est, est_long = ghn.estimates(held_graphs, task)
        out = {"vs_1000_steps": round(kendall_tau(est, y1000), 4), "vs_100_steps": round(kendall_tau(est, y100), 4)}
        if (ghn.calibrated(task) or {}).get("long"):  # the long-horizon stage's estimate
            out["long"] = {"vs_1000_steps": round(kendall_tau(est_long, y1000), 4),
                           "vs_100_steps": round(kendall_tau(est_long, y100), 4)}
        return out

    before = held_taus()
    graphs = [g for g, _ in pairs]
    pooled, metrics = pooled_and_predicted(ghn.model, graphs, task)  # the GHN decodes and measures each graph once
    costs = cost_rows(graphs, task)  # and FLOPs are counted once, for both kinds of rows
    full = feature_rows(graphs, pooled, task, metrics, costs).numpy()
    use = not args.no_predicted
    X, other = (full, full[:, :-1]) if use else (full[:, :-1], full)  # the last column: the predicted metric
    T = tree_rows(graphs, task, metrics if use else None, costs).numpy()
    y = np.array([m for _, m in pairs])
    for name, row in per_pool.items():  # the GHN's own predicted parameters on each pool, and how they rank its labels
        idx = [j for j, key in enumerate(keys) if key.split(":", 1)[0] == name and metrics[j] is not None]
        if idx:
            row["predicted_metric_mean"] = round(float(np.mean([metrics[j] for j in idx])), 4)
            row["predicted_metric_tau_vs_label"] = kendall_tau([metrics[j] for j in idx], list(y[idx]))
    fams = sorted(set(families))
    fam_ids = np.array([fams.index(f) for f in families])
    cv = {"kfold5": _cv_tau(X, y), "leave_family_out": _cv_tau(X, y, fam_ids),
          "metric_target": {"kfold5": _cv_tau(X, y, target="metric"),  # a ridge on the raw metric, as before
                            "leave_family_out": _cv_tau(X, y, fam_ids, target="metric")},
          "without_predicted_metric" if use else "with_predicted_metric": {
              "kfold5": _cv_tau(other, y), "leave_family_out": _cv_tau(other, y, fam_ids)},
          "trees": {"kfold5": _cv_tau(T, y, estimator="trees"),
                    "leave_family_out": _cv_tau(T, y, fam_ids, estimator="trees")}}
    estimator = args.estimator
    if estimator == "auto":  # the trees only where they rank better both within and across families
        better = all(cv["trees"][k] > cv[k] for k in ("kfold5", "leave_family_out"))
        estimator = "trees" if better else "ridge"
    cv["chosen"] = estimator
    old = (ghn.record.get("quality") or {}).get("tasks", {}).get(task)
    fitted = fit_estimator(T if estimator == "trees" else X, y, task, estimator, predicted=use)  # the rows above
    long_report = None
    if args.long_steps:
        long = label_long(task, pools, labels, args.cache, args.long_steps, args.long_graphs, args.jobs)
        fitted["long"], long_report = long_stage(T if estimator == "trees" else X, T, y, keys, long, task,
                                                 estimator, use, args.long_steps)
    exported = export_labels(args.cache, task, args.labels) if args.export else None
    ghn.record.setdefault("quality", {}).setdefault("tasks", {})[task] = fitted
    after = held_taus()
    report: dict[str, Any] = {
        "task": task, "pools": per_pool, "labels": len(pairs), "cross_validated_kendall_tau": cv,
        "held_out": {"graphs": len(held), "kendall_tau_before": before, "kendall_tau_after": after},
        "refit": {k: v for k, v in fitted.items() if k not in FITTED and k != "long"},
        "long_horizon": long_report,
        "labels_file": {"path": _shown(args.labels), "seeded_from": seeded, "exported": exported},
        "previous_graphs": old and old.get("graphs"), "written": bool(args.write),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "torch": torch.__version__}}
    if args.write:
        _write(args.ghn, task, fitted, report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("pools", "labels", "cross_validated_kendall_tau", "held_out")},
                     indent=1))
    print(f"wrote {args.out}")


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it (as reports name files)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _write(ghn_path: str, task: str, fitted: dict[str, Any], report: dict[str, Any]) -> None:
    """Store ``fitted`` as the GHN's estimator for ``task`` in its record.json, with a ``refits`` entry."""
    from mad.ghn import DEFAULT_DIR
    from mad.ghn.quality import read_record, write_record

    folder = Path(DEFAULT_DIR) if ghn_path == "default" else Path(ghn_path)
    path = folder / "record.json"
    record = read_record(folder)
    quality = record.setdefault("quality", {})
    quality.setdefault("tasks", {})[task] = fitted
    held = report["held_out"]
    quality.setdefault("refits", []).append({
        "date": date.today().isoformat(), "task": task, "script": f"bench/ghn_calibrate.py --task {task}",
        "labels": {k: v["labelled"] for k, v in report["pools"].items()},
        "cross_validated_kendall_tau": report["cross_validated_kendall_tau"],
        "held_out_kendall_tau_vs_1000_steps": None if held["kendall_tau_after"] is None else {
            "before": (held["kendall_tau_before"] or {}).get("vs_1000_steps"),
            "after": held["kendall_tau_after"]["vs_1000_steps"],
            **({"long_after": held["kendall_tau_after"]["long"]["vs_1000_steps"]}
               if "long" in held["kendall_tau_after"] else {})},
        **({"long_horizon": report["long_horizon"]} if report.get("long_horizon") else {})})
    write_record(folder, record)
    print(f"stored the refit in {path}")


if __name__ == "__main__":
    main()
