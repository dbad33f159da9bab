"""Which GHN training recipe gives predicted hidden layers that work as features? Named recipes side by side.

    python bench/ghn_recipes.py                                   # every recipe: mnist5k, 300 graphs, 1500 steps
    python bench/ghn_recipes.py --recipes shipped,readout_loss    # two of them

Each recipe is a set of model options (:class:`mad.ghn.model.GHNConfig`) and training options
(:class:`mad.ghn.train.TrainConfig`) over the shipped recipe (``shipped``: ``head_norm``, the settings of
``mad ghn train``): a closed-form readout's leave-one-out error in the loss (``readout_loss``), a larger full-rank
noise part (``noise``), a higher learning rate, a looser per-tensor gradient clip, a 64 x 64 x 9 tiled block,
2,000 fresh random-space graphs beside the dataset's 300 (``space_2000``), and twice the steps and 10,000 steps
(about five times the mnist5k steps of the shipped GHN) with and without them, and those 10,000 steps on every
dataset training graph that qualifies (``dataset_all``: 692, 2.3 times the 300), alone and beside the random-space
graphs. The runs share the graphs (drawn once and copied), data and seed and train ``--jobs`` at a time, one process
and one thread each (about 13 minutes a pair of 1,500 steps on 2 cores; the 64-wide block takes twice that, a pair
of 10,000-step runs about 80 minutes).
Reported per run: the median training loss (and, where trained, the leave-one-out error of a closed-form output
layer) over fifths of the run, the validation figures during the run, and at the end the metric of each GHN's
predicted parameters on the held-out graphs of ``bench/ghn_eval.py`` (direct, and with the output layer refitted in
closed form), the shipped checkpoint scored alongside, and the same direct figure on 40 of the run's own training
graphs (and 40 of its random-space ones): the gap between the two says how much of the shortfall is fitting the
training graphs and how much is generalising to unseen ones. Results go to
``bench/results/ghn_recipes.json``; run folders (``--runs``) are kept, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ghn_head_norm import _loss_windows, held_out, train_side_by_side  # noqa: E402

ALL = 10_000  # a graph count above the dataset's: every training graph that qualifies

# name -> (GHNConfig options, TrainConfig options), over head_norm and mad ghn train's defaults
RECIPES: dict[str, tuple[dict, dict]] = {
    "shipped": ({}, {}),
    "readout_loss": ({}, {"readout_loss": 1.0}),
    "readout_loss_noise": ({"noise_gain": 1.0}, {"readout_loss": 1.0}),
    "noise": ({"noise_gain": 1.0}, {}),
    "lr_1e-3": ({}, {"lr": 1e-3}),
    "param_clip_10": ({}, {"param_clip": 10.0}),
    "block_64": ({"block": (64, 64, 9)}, {}),
    "block_64_readout_loss": ({"block": (64, 64, 9)}, {"readout_loss": 1.0}),
    "space_2000": ({}, {"space_graphs": {"mnist5k": 2000}}),
    "space_2000_lr_1e-3": ({}, {"space_graphs": {"mnist5k": 2000}, "lr": 1e-3}),
    # twice the steps (the cosine schedule stretched to them), with and without the random-space graphs
    "shipped_3000": ({}, {"steps": 3000}),
    "space_2000_3000": ({}, {"space_graphs": {"mnist5k": 2000}, "steps": 3000}),
    # 10,000 steps (about five times the shipped GHN's mnist5k steps), with and without the random-space graphs
    "shipped_10000": ({}, {"steps": 10000}),
    "space_2000_10000": ({}, {"space_graphs": {"mnist5k": 2000}, "steps": 10000}),
    # every dataset training graph that qualifies for mnist5k (692, 2.3 times the 300), with and without the
    # random-space graphs: more graphs from the distribution the held-out ones come from
    "dataset_all_10000": ({}, {"graphs": {"mnist5k": ALL}, "steps": 10000}),
    "dataset_all_space_2000_10000": ({}, {"graphs": {"mnist5k": ALL}, "space_graphs": {"mnist5k": 2000},
                                          "steps": 10000}),
}


FIT_GRAPHS = 40  # training graphs of each pool (dataset, random-space) scored by training_fit


def _cached(path: Path, steps: int | str, tasks: list[str], compute) -> dict:
    """The rows kept in ``path`` for a GHN at ``steps`` (its steps, or its weights' hash) scored on ``tasks``, or
    ``compute()``'s, then kept there."""
    got = json.loads(path.read_text()) if path.exists() else {}
    if got.get("steps") != steps or got.get("tasks") != tasks:
        got = {"steps": steps, "tasks": tasks, "rows": compute()}
        path.write_text(json.dumps(got, indent=1) + "\n")
    return got["rows"]


def training_fit(folder: Path, task: str, graphs: int, space: int, n: int = FIT_GRAPHS) -> dict[str, float]:
    """Mean metric of the GHN in ``folder`` on ``n`` of its own training graphs, scored as the held-out ones are:
    the first ``n`` of the dataset graphs it trained on and, if it trained on random-space graphs too, the first
    ``n`` of those. Against the held-out figure it splits the shortfall into fitting and generalising."""
    import statistics

    import torch

    from mad.ghn import load
    from mad.ghn.pool import space_pool, task_pool
    from mad.train.objective import TaskSpec

    torch.set_num_threads(2)
    ghn = load(str(folder), device="cpu")
    key = "bpc" if TaskSpec.of(task).is_lm else "accuracy"
    pools = {"dataset": task_pool(task, graphs, ("train",), folder / "pools" / f"{task}.jsonl")[:n]}
    if space:
        pools["space"] = space_pool(task, space, folder / "pools" / f"{task}.space.jsonl")[:n]
    return {name: round(statistics.fmean(ghn.score(g, task)[key] for _, g in pool), 4) for name, pool in pools.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="mnist5k")
    ap.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)} (default: "
                    "all)")
    ap.add_argument("--jobs", type=int, default=2, help="runs trained at once (one thread each)")
    ap.add_argument("--graphs", type=int, default=300, help="training graphs per task")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--val-graphs", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, default=ROOT / "out" / "ghn_recipes")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ghn_recipes.json")
    args = ap.parse_args()
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    names = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in names if r not in RECIPES]
    if unknown:
        ap.error(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    t0 = time.perf_counter()
    runs = {n: ({"head_norm": True, **RECIPES[n][0]}, RECIPES[n][1]) for n in names}
    done = train_side_by_side(args, runs, args.jobs)
    report = {"tasks": args.tasks, "graphs": args.graphs, "steps": args.steps, "val_graphs": args.val_graphs,
              "seed": args.seed, "runs": {}}
    for r in done:
        rec, folder = r["record"], args.runs / r["name"]
        model_options, train_options = RECIPES[r["name"]]
        report["runs"][r["name"]] = {
            "model_options": model_options, "train_options": train_options, "steps": rec["steps"],
            "train_seconds": rec["train_seconds"], "data": rec["data"],
            "loss_by_fifth": {t: _loss_windows(folder, t, rec["steps"]) for t in args.tasks},
            "ridge_by_fifth": {t: _loss_windows(folder, t, rec["steps"], key="ridge") for t in args.tasks},
            "evals": rec["evals"]}
    from mad.ghn import DEFAULT_DIR

    shipped = hashlib.sha1((Path(DEFAULT_DIR) / "model.safetensors").read_bytes()).hexdigest()[:16]
    report["held_out"] = {}
    for name, folder in {"checkpoint": "default", **{n: str(args.runs / n) for n in names}}.items():
        # each GHN's held-out figures are kept beside its run (the checkpoint's in the runs folder), keyed by the
        # steps it trained (the checkpoint's weights), so a rerun that adds recipes scores only the new ones
        cache = (args.runs / "checkpoint_held_out.json") if name == "checkpoint" else Path(folder) / "held_out.json"
        steps = shipped if name == "checkpoint" else report["runs"][name]["steps"]
        rows = _cached(cache, steps, args.tasks, lambda: held_out({name: folder}, args.tasks))
        for task, row in rows.items():
            report["held_out"].setdefault(task, {}).update(row)
    report["training_fit"], report["training_fit_graphs"] = {}, FIT_GRAPHS
    for name in names:  # the same figure on graphs each GHN trained on (kept beside its run, as above)
        folder, run = args.runs / name, report["runs"][name]
        space = run["train_options"].get("space_graphs", {})
        rows = _cached(folder / "training_fit.json", run["steps"], args.tasks, lambda: {
            t: training_fit(folder, t, args.graphs, int(space.get(t, 0))) for t in args.tasks})
        for task, row in rows.items():
            report["training_fit"].setdefault(task, {})[name] = row
    report["wall_seconds"] = round(time.perf_counter() - t0, 1)
    report["machine"] = {"python": platform.python_version(), "cpus": mp.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({n: {"loss": r["loss_by_fifth"], "ridge": r["ridge_by_fifth"]} for n, r in report["runs"].items()},
                     indent=1))
    print(json.dumps(report["held_out"], indent=1))
    print(json.dumps(report["training_fit"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
