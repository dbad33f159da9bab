"""Agent evaluation: the MAD loop vs random search vs regularized evolution vs the loop without the GHN, at the
same number of trained evaluations (each training the same steps), on real tasks and on a tabular benchmark.

    python bench/agent_eval.py                                   # mnist5k, mnist1d, chars; 3 seeds each
    python bench/agent_eval.py --tasks digits --seeds 1 --evals 8 --out /tmp/a.json   # a smoke run
    python bench/agent_eval.py --tabular-only --tabular-seeds 20  # NAS-Bench-Graph only (pip install 'mad[nasbench]')
    python bench/agent_eval.py --tasks "" --no-tabular --timed-search 200   # time one 200-evaluation search
    python bench/agent_eval.py --loop-options '{"pool": 4}' --runs out/agent_pool4   # the loop with other options
    python bench/agent_eval.py --tasks mnist1d --seeds 12 --seed-start 100 --out /tmp/dev.json   # other seeds
    python bench/agent_eval.py --tasks mnist1d --seeds 12 --seed-start 100 --pool-with a.json   # and a's seeds too

* Every run is a ``mad.agent.search`` in ``--runs`` (kept, so an interrupted benchmark resumes; a finished run
  is reused). Trained results are cached by (graph, task, training settings) in ``--runs/cache``, so two
  strategies that train the same graph get the same figure and pay for it once; evaluations are still
  counted for each.
* Per task: the mean best-so-far curve of each strategy over seeds; the final best of evolution; the evaluations
  the loop needs to reach it, two ways: per seed, then averaged (a seed where it never does counts as twice the
  budget), and on the seed-averaged curves (the loop's mean best-so-far against evolution's mean final best); the
  loop's proposals' mean trained value by round third (does it learn?); seconds per evaluation, and the
  minutes a 200-evaluation mnist5k search would take at that rate. With ``--pool-with FILE`` (the same task and
  settings on other seeds), the loop-against-evolution figures also over both files' seeds (``pooled``).
* Tabular: NAS-Bench-Graph (cora) validation accuracy, test accuracy at the best validation, over
  ``--tabular-seeds`` seeds, the loop (surrogate on the space's features; no GHN, no generator) vs random vs
  evolution.

Writes ``bench/results/agent_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mad.agent import RunRecords, TrainSettings, search  # noqa: E402

OUT = Path(__file__).parent / "results" / "agent_eval.json"
STRATEGIES = {
    "loop": ("loop", {}),
    "loop-noghn": ("loop", {"ghn": False}),
    "random": ("random", {}),
    "evolution": ("evolution", {"population": 8, "sample_size": 3}),
}


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def _curve(result, evals: int, hib: bool) -> list[float | None]:
    """Best value so far after each evaluation 1..evals (the last value held if the run stopped early)."""
    out, last = [], None
    points = dict(result.curve)
    for i in range(1, evals + 1):
        last = points.get(i, last)
        out.append(last)
    return out


def _reach(curve: list[float | None], target: float, hib: bool) -> int | None:
    """Evaluations until the curve reaches ``target`` (``None`` when it never does)."""
    for i, v in enumerate(curve, 1):
        if v is not None and (v >= target - 1e-12 if hib else v <= target + 1e-12):
            return i
    return None


def _by_round_third(folder: Path) -> dict[str, float | None]:
    trials = RunRecords(folder).history(True).trials
    vals = [t.value for t in trials]
    n = len(vals)
    thirds = [vals[: n // 3], vals[n // 3: 2 * n // 3], vals[2 * n // 3:]]
    gen = [[t.value for t in trials[a:b] if t.proposer == "generator"]
           for a, b in ((0, n // 3), (n // 3, 2 * n // 3), (2 * n // 3, n))]
    return {"all": [_mean(x) for x in thirds], "generator": [_mean(x) for x in gen]}


def _mean_curve(curves: list[list[float | None]], evals: int) -> list[float | None]:
    return [_mean(c[i] for c in curves) if all(c[i] is not None for c in curves) else None for i in range(evals)]


def _against_evolution(s: dict[str, dict], evals: int, hib: bool) -> None:
    """Adds to each loop strategy of ``s`` (name -> ``curves``, ``curve_mean``, ``finals``, ``final_mean``) the
    evaluations it needs to reach evolution's final best, per seed and on the seed-averaged curves."""
    if "evolution" not in s:
        return
    evo = s["evolution"]
    for name in [n for n in s if n.startswith("loop")]:
        reach = [_reach(lc, ef, hib) for lc, ef in zip(s[name]["curves"], evo["finals"]) if ef is not None]
        # a seed where the loop never reaches evolution's best counts as twice the budget (censored)
        counted = [evals * 2 if r is None else r for r in reach]
        s[name]["evals_to_evolution_best"] = reach
        s[name]["seeds_reaching_evolution_best"] = sum(r is not None for r in reach)
        s[name]["evals_to_evolution_best_mean"] = _mean(counted)
        s[name]["fraction_of_evolution_budget"] = _mean(counted) / evals if counted else None
        # the same on the seed-averaged curves: the loop's mean best-so-far against evolution's mean final
        # best (seed i of one strategy shares nothing with seed i of another but the number)
        if evo["final_mean"] is not None and all(v is not None for v in s[name]["curve_mean"]):
            at = _reach(s[name]["curve_mean"], evo["final_mean"], hib)
            s[name]["mean_curve_evals_to_evolution_mean_best"] = at
            s[name]["mean_curve_fraction_of_evolution_budget"] = None if at is None else at / evals


POOL_SAME = ("train", "evals", "max_params", "max_flops", "round_size", "loop_options", "higher_is_better")


def pooled(task: str, mine: dict, path: Path) -> dict:
    """The loop-against-evolution figures over this run's seeds and those of ``path``'s entry for ``task`` (a
    results file of the same settings on other seeds), as :func:`run_task` computes them for one run."""
    other = json.loads(path.read_text()).get("tasks", {}).get(task)
    if other is None:
        raise SystemExit(f"--pool-with {path}: no results for {task}")
    differ = [k for k in POOL_SAME if mine.get(k) != other.get(k)]
    seeds = [range(t.get("seed_start", 0), t.get("seed_start", 0) + t["seeds"]) for t in (mine, other)]
    if differ or set(seeds[0]) & set(seeds[1]):
        raise SystemExit(f"--pool-with {path}: {task} was run with other settings ({', '.join(differ)})" if differ
                         else f"--pool-with {path}: {task}'s seeds overlap this run's")
    s = {}
    for name in [n for n in mine["strategies"] if n in other["strategies"]]:
        curves = mine["strategies"][name]["curves"] + other["strategies"][name]["curves"]
        finals = mine["strategies"][name]["finals"] + other["strategies"][name]["finals"]
        s[name] = {"final_mean": _mean(finals), "finals": finals, "curves": curves,
                   "curve_mean": _mean_curve(curves, mine["evals"])}
    _against_evolution(s, mine["evals"], mine["higher_is_better"])
    for v in s.values():
        del v["curves"], v["finals"]
    return {"with": path.name, "seeds": [f"{r.start}-{r.stop - 1}" for r in seeds],
            "strategies": s}


def run_task(task: str, args, runs: Path) -> dict:
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr)
    out: dict = {"strategies": {}, "train": settings.as_dict(), "evals": args.evals, "seeds": args.seeds,
                 **({"seed_start": args.seed_start} if args.seed_start else {}),
                 "max_params": args.max_params, "max_flops": args.max_flops, "round_size": args.round_size,
                 **({"loop_options": args.loop_options} if args.loop_options else {})}
    hib = True
    seconds, evals_done, cached = 0.0, 0, 0
    per_strategy_seconds: dict[str, list[float]] = {}
    for name in args.strategies:
        strat, opts = STRATEGIES[name]
        opts = {**opts, **args.loop_options} if strat == "loop" else opts
        curves, finals, tests, thirds = [], [], [], []
        for seed in range(args.seed_start, args.seed_start + args.seeds):
            folder = runs / task / f"{name}-s{seed}"
            r = search(task, strat, folder, evals=args.evals, max_params=args.max_params, max_flops=args.max_flops,
                       max_activations=args.max_activations, workers=args.workers,
                       round_size=args.round_size, train=settings, seed=seed, resume=folder.exists(),
                       progress=not args.quiet, cache_dir=runs / "cache", strategy_options=opts)
            seconds += r.seconds  # over all segments of the run (a reused run keeps its own time)
            evals_done += r.evals
            cached += sum(1 for e in RunRecords(folder).events() if e["event"] == "result"
                          and e["result"].get("cached"))
            per_strategy_seconds.setdefault(name, []).append(r.seconds / max(r.evals, 1))
            hib = r.higher_is_better
            curves.append(_curve(r, args.evals, hib))
            finals.append(r.best["value"] if r.best else None)
            tests.append(r.best.get("test_value") if r.best else None)
            thirds.append(_by_round_third(folder))
            print(f"{task} {name} seed {seed}: best {finals[-1]} after {r.evals} evals ({r.seconds:.0f} s)",
                  flush=True)
        mean_curve = _mean_curve(curves, args.evals)
        out["strategies"][name] = {
            "final_mean": _mean(finals), "final_std": statistics.pstdev([f for f in finals if f is not None])
            if len([f for f in finals if f is not None]) > 1 else 0.0, "finals": finals, "test_at_best": tests,
            "curve_mean": mean_curve, "curves": curves,
            "proposal_value_by_third": [_mean(t["all"][k] for t in thirds) for k in range(3)],
            "generator_value_by_third": [_mean(t["generator"][k] for t in thirds) for k in range(3)],
        }
    out["metric"] = "val_accuracy" if hib else "val_bpc"
    out["higher_is_better"] = hib
    _against_evolution(out["strategies"], args.evals, hib)
    out["seconds_per_eval"] = seconds / max(evals_done, 1)
    out["seconds_per_eval_by_strategy"] = {k: _mean(v) for k, v in per_strategy_seconds.items()}
    out["cached_results"] = cached
    return out


def run_tabular(args, runs: Path) -> dict:
    try:
        from mad.agent.nasbench_graph import NasBenchGraphSpace
        space = NasBenchGraphSpace(args.tabular_dataset)
    except ImportError as e:
        return {"skipped": str(e)}
    opt = space.optimum()
    out: dict = {"dataset": args.tabular_dataset, "evals": args.tabular_evals, "seeds": args.tabular_seeds,
                 "optimum": {k: opt[k] for k in ("best_val", "test_at_best_val", "best_test", "num_archs")},
                 "strategies": {}}
    for name in ("loop", "random", "evolution"):
        strat, opts = STRATEGIES[name]
        opts = {**opts, "population": 20, "sample_size": 5} if name == "evolution" else opts
        finals, tests, curves = [], [], []
        for seed in range(args.tabular_seeds):
            folder = runs / f"nasbench-{args.tabular_dataset}" / f"{name}-s{seed}"
            r = search("nasbench-graph", strat, folder, evals=args.tabular_evals, space=space, round_size=10,
                       seed=seed, resume=folder.exists(), progress=False, strategy_options=opts)
            finals.append(r.best["value"])
            tests.append(r.best["test_value"])
            curves.append(_curve(r, args.tabular_evals, True))
        at = {n: _mean(c[n - 1] for c in curves) for n in (10, 50, 100, args.tabular_evals)
              if n <= args.tabular_evals}
        out["strategies"][name] = {"val_mean": _mean(finals), "test_at_best_val_mean": _mean(tests),
                                   "best_val_mean_at": at}
        print(f"nasbench {name}: val {_mean(finals):.4f} test {_mean(tests):.4f}", flush=True)
    return out


def run_timed(args, runs: Path) -> dict:
    """One loop search of ``--timed-search`` evaluations on mnist5k, wall-clock timed (no shared cache)."""
    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr)
    folder = runs / "timed" / f"mnist5k-loop-{args.timed_search}"
    r = search("mnist5k", "loop", folder, evals=args.timed_search, max_params=args.max_params,
               max_flops=args.max_flops, max_activations=args.max_activations, workers=args.workers,
               round_size=args.round_size, train=settings, seed=0, resume=folder.exists(), progress=not args.quiet,
               strategy_options=args.loop_options or None)
    return {"evals": r.evals, "minutes": r.seconds / 60, "best": r.best["value"] if r.best else None,
            "test_at_best": r.best.get("test_value") if r.best else None, "train": settings.as_dict(),
            "status": r.status, "max_activations": args.max_activations}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default="mnist5k,mnist1d,chars")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-start", type=int, default=0, help="the first seed (seeds seed-start .. +seeds-1; other "
                    "seeds than the benchmark's, to choose settings on before measuring them on the usual ones)")
    ap.add_argument("--evals", type=int, default=24)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-params", type=int, default=50_000)
    ap.add_argument("--max-flops", type=int, default=20_000_000, help="FLOPs of a forward pass at batch 2")
    ap.add_argument("--max-activations", type=int, default=None, help="elements of all nodes' outputs for one "
                    "example (mad.agent.search's limit; none by default)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--round-size", type=int, default=4)
    ap.add_argument("--runs", default="out/agent_eval", help="run folders (kept for resuming) and the cache")
    ap.add_argument("--tabular-dataset", default="cora")
    ap.add_argument("--tabular-seeds", type=int, default=20)
    ap.add_argument("--tabular-evals", type=int, default=100)
    ap.add_argument("--tabular-only", action="store_true")
    ap.add_argument("--no-tabular", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--timed-search", type=int, default=0, help="also time one loop search of N evals on mnist5k")
    ap.add_argument("--loop-options", type=json.loads, default={}, help='JSON options of the loop strategies '
                    '(e.g. \'{"pool": 4}\'); use another --runs folder, since a run resumes only with its own')
    ap.add_argument("--pool-with", default=None, help="a results file of the same tasks and settings on other "
                    "seeds: each task also gets the loop-against-evolution figures over both files' seeds (pooled)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    args.strategies = [s for s in args.strategies.split(",") if s]
    runs = Path(args.runs)
    out_path = Path(args.out)
    res = json.loads(out_path.read_text()) if out_path.exists() else {}
    res.update({"machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
                "date": time.strftime("%Y-%m-%d")})
    res.setdefault("tasks", {})
    if not args.tabular_only:
        for task in [t for t in args.tasks.split(",") if t]:
            res["tasks"][task] = {**run_task(task, args, runs), "date": time.strftime("%Y-%m-%d")}  # tasks rerun apart
            if args.pool_with:
                res["tasks"][task]["pooled"] = pooled(task, res["tasks"][task], Path(args.pool_with))
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(res, indent=1))
        if "mnist5k" in res["tasks"]:  # the loop's own rate (its trainings are the first of a task: few cache hits)
            rate = res["tasks"]["mnist5k"]["seconds_per_eval_by_strategy"].get("loop")
            res["mnist5k_200_evals_minutes_estimate"] = None if rate is None else 200 * rate / 60
    if args.timed_search:
        res["mnist5k_timed_search"] = run_timed(args, runs)
    if not args.no_tabular:
        res["tabular"] = run_tabular(args, runs)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(res, indent=1))
    print(json.dumps({t: {n: (v["final_mean"], v.get("fraction_of_evolution_budget"))
                          for n, v in d["strategies"].items()} for t, d in res["tasks"].items()}, indent=1))


if __name__ == "__main__":
    main()
