"""Does a GHN learn image tasks when it predicts classification heads for standardized inputs (``head_norm``)?

    python bench/ghn_head_norm.py                                  # the shipped recipe: four tasks, 6000 steps
    python bench/ghn_head_norm.py --tasks mnist5k --graphs 300 --steps 1500 --val-graphs 24   # one task, quicker

Two GHNs are trained with the same model and training settings (``mad ghn train``'s, the same graphs, data, steps
and seed) side by side in two processes (one thread each): run ``shipped`` without ``head_norm`` (the recipe of the
checkpoint shipped before), run ``head_norm`` with ``GHNConfig(head_norm=True)`` (the GHN shipped since);
``checkpoint`` in the report is the shipped checkpoint (in the results file, the one shipped before). The graphs
(the dataset's ``train`` split retargeted to each task, and ``--val-graphs`` held-out ones from its ``validation``
split) are drawn once and copied to both runs. Reported per run and task: the median training loss (cross-entropy
with predicted parameters; chance is ln 10 = 2.30 for the classification tasks) over fifths of the run, and the
validation metric of predicted parameters on the held-out graphs at every quarter of the run (accuracy, also with a
closed-form output layer; bits per character on chars); at the end, the metric of each GHN's predicted parameters
on the held-out graphs of ``bench/ghn_eval.py`` (50 mnist5k, 50 chars), the shipped checkpoint scored alongside,
and how that figure ranks the graphs' 1000-step one (Kendall tau). Results go to
``bench/results/ghn_head_norm.json``; the run folders (``--runs``) are kept, so a rerun resumes, and each holds a
loadable GHN at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"shipped": {}, "head_norm": {"head_norm": True}}


def _config(args, train_options: dict | None = None):
    """The training settings of a run: ``mad ghn train``'s, at the bench's tasks, steps (unless ``train_options``
    names its own), validation graphs and seed, with ``train_options`` over them."""
    from mad.ghn.train import TrainConfig

    options = dict(train_options or {})
    steps = int(options.pop("steps", args.steps))
    cfg = TrainConfig(tasks=args.tasks, steps=steps, val_graphs=args.val_graphs, eval_every=max(1, steps // 4),
                      quality_tasks=[], quality_graphs={}, seed=args.seed, **options)
    if args.graphs is not None:  # the bench's count, unless a run names its own per task
        cfg.graphs, cfg.default_graphs = dict(options.get("graphs", {})), args.graphs
    return cfg


def _run(job: tuple[str, dict, dict, str, argparse.Namespace]) -> dict:
    import torch

    from mad.ghn.model import GHNConfig
    from mad.ghn.train import train

    name, model_options, train_options, folder, args = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rec = train(_config(args, train_options), folder, model_config=GHNConfig(tasks=args.tasks, **model_options),
                progress=False, device="cpu")
    return {"name": name, "record": rec, "seconds": time.perf_counter() - t0}


def train_side_by_side(args: argparse.Namespace, runs: dict[str, tuple[dict, dict]], jobs: int) -> list[dict]:
    """Train ``runs`` (name -> (GHNConfig options, TrainConfig options)) into ``args.runs / name``, ``jobs`` at a
    time, one process and one thread each. The graphs (each task's training and validation graphs, and the fresh
    random-space graphs any run adds) are drawn once and copied into every run's folder, so the runs train and
    validate on exactly the same graphs; a run already in its folder resumes."""
    from mad.ghn.pool import space_pool, task_pool

    pools = args.runs / "pools"
    cfg = _config(args)
    configs = [_config(args, t) for _, t in runs.values()] or [cfg]  # each run's settings: the most any asks for
    kw = dict(max_mflops=cfg.max_mflops, max_nodes=cfg.max_nodes, seed=args.seed, workers=2, progress=True)
    for task in args.tasks:
        task_pool(task, max(c.n_graphs(task) for c in configs), ("train",), pools / f"{task}.jsonl", **kw)
        task_pool(task, args.val_graphs, ("validation",), pools / f"{task}.val.jsonl", **kw)
        space = max(int(c.space_graphs.get(task, 0)) for c in configs)
        if space:
            space_pool(task, space, pools / f"{task}.space.jsonl", **kw)
    work = []
    for name, (model_options, train_options) in runs.items():
        folder = args.runs / name
        if not (folder / "pools").exists():
            shutil.copytree(pools, folder / "pools")
        work.append((name, model_options, train_options, str(folder), args))
    with mp.get_context("spawn").Pool(max(1, min(jobs, len(work)))) as pool:
        return pool.map(_run, work)


def _loss_windows(folder: Path, task: str, steps: int, windows: int = 5, key: str = "loss") -> list[float | None]:
    """Median logged training loss (or another logged figure, ``key``) of ``task`` in each of ``windows`` equal parts
    of the run."""
    rows = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if f"{key}/{task}" in r]
    out, size = [], max(1, steps // windows)
    for k in range(windows):
        vals = [r[f"{key}/{task}"] for r in rows if k * size < r["step"] <= (k + 1) * size]
        out.append(round(statistics.median(vals), 4) if vals else None)
    return out


def held_out(folders: dict[str, str], tasks: list[str]) -> dict[str, dict]:
    """Mean metric of each GHN's predicted parameters (and with a closed-form output layer) on the held-out graphs
    ``bench/train_baselines.py`` fixed for ``tasks`` (as ``bench/ghn_eval.py`` scores them), with those graphs'
    default-init figure from its records, and the Kendall tau of each GHN's figure against their 1000-step one."""
    import torch

    from mad.data import tasks as task_registry
    from mad.ghn import load
    from mad.graph import ArchGraph
    from mad.train.objective import TaskSpec

    sys.path.insert(0, str(ROOT / "bench"))
    from train_baselines import held_out_texts, kendall_tau

    torch.set_num_threads(2)
    base = json.loads((ROOT / "bench" / "results" / "train_baselines.json").read_text())
    out = {}
    for task in [t for t in tasks if t in base["selection"]["ids"]]:
        ids = base["selection"]["ids"][task]
        recs = {r["id"]: r for r in base["records"] if r["task"] == task and r.get("status") == "completed"}
        ids = [i for i in ids if i in recs]
        texts = held_out_texts(base, set(ids))
        graphs = [task_registry.fit(ArchGraph.from_json(texts[i]), task) for i in ids]
        key = "bpc" if TaskSpec.of(task).is_lm else "accuracy"
        row = {"graphs": len(graphs), "default_init": statistics.fmean(recs[i]["at_step"]["0"] for i in ids)}
        trained = [recs[i]["at_step"]["1000"] for i in ids]
        for name, folder in folders.items():
            ghn = load(folder, device="cpu")
            values = [ghn.score(g, task)[key] for g in graphs]
            row[name] = statistics.fmean(values)
            row[f"{name}_readout"] = statistics.fmean(ghn.score(g, task, readout=True)[key] for g in graphs)
            # how the predicted parameters' metric alone ranks the graphs' 1000-step figure
            row[f"{name}_tau_vs_1000_steps"] = kendall_tau(values, trained)
        out[task] = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="mnist5k,digits,mnist1d,chars")
    ap.add_argument("--graphs", type=int, default=None, help="training graphs per task (default: mad ghn train's, "
                    "300 mnist5k, 250 chars, 150 others)")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--val-graphs", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, default=ROOT / "out" / "ghn_head_norm")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ghn_head_norm.json")
    args = ap.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    t0 = time.perf_counter()
    done = train_side_by_side(args, {name: (options, {}) for name, options in VARIANTS.items()}, len(VARIANTS))
    report = {"tasks": args.tasks, "graphs": args.graphs or "default", "steps": args.steps,
              "val_graphs": args.val_graphs, "seed": args.seed, "runs": {}}
    for r in done:
        rec, folder = r["record"], args.runs / r["name"]
        report["runs"][r["name"]] = {
            "model_options": VARIANTS[r["name"]], "train_seconds": rec["train_seconds"], "data": rec["data"],
            "loss_by_fifth": {t: _loss_windows(folder, t, args.steps) for t in args.tasks},
            "evals": rec["evals"]}
    report["final"] = {}
    for task in args.tasks:
        row = {}
        for name, run in report["runs"].items():
            last = run["evals"][-1][task]
            row[name] = {k: round(v, 4) for k, v in last.items() if k != "graphs"}
            row[name]["last_fifth_loss"] = run["loss_by_fifth"][task][-1]
        report["final"][task] = row
    # the held-out graphs of bench/ghn_eval.py, the shipped checkpoint alongside
    report["held_out"] = held_out({"checkpoint": "default", **{n: str(args.runs / n) for n in VARIANTS}}, args.tasks)
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    report["machine"] = {"python": platform.python_version(), "cpus": mp.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"final": report["final"], "held_out": report["held_out"]}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
