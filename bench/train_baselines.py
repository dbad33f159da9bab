"""Training baselines: held-out dataset graphs trained on mnist5k and chars, and how well zero-cost proxies
rank them. These are the figures the GHN and the agent have to beat.

    python bench/train_baselines.py                    # 50 image + 50 sequence graphs, 1000 steps each
    python bench/train_baselines.py --image 4 --seq 2 --steps 30 --out /tmp/tb.json   # a smoke run

Graphs come from the shipped dataset's held-out splits (``test`` and ``ood``). The image-modality ones
(random-space CNNs, zoo vision models) are put on ``mnist5k`` (1x28x28, 10 classes) and the text/sequence
ones on ``chars`` (64 tokens; only causal models, see ``mad.train.sees_future``) with
``mad.data.tasks.fit``. Candidates are taken in a fixed pseudo-random
order (hash of the row id) and kept when they retarget and cost at most ``--max-mflops`` per example (15 by
default: the budget that makes 1000 CPU steps of every graph fit in about an hour on 2 cores, so the sample
leans to small architectures); the chosen ids are written to the results file, and a later run reuses them
(``--reselect`` picks again; ``--extend --seq 50`` keeps them and their records and adds the next qualifying
graphs of the same order).

Each graph is trained once with ``mad.train.fit`` (AdamW, lr 1e-3, cosine schedule over the whole run,
batch 64, seed 0, one CPU thread per worker), with the validation figure taken at steps 0, 10, 100 and
the last step, and the test figure at the end. Before training, every proxy of ``mad.train.proxies`` is
computed on one batch of the task. Kendall's tau (tau-b) is reported between each proxy and the final
validation figure (accuracy; minus bits per character for chars, so that higher is better everywhere), and
between the figure at 10 and 100 steps and the final one (the "train briefly" baselines).

Results go to bench/results/train_baselines.json; per-graph results are kept in ``--work`` as they finish,
so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing as mp
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUPS = {"mnist5k": ("image", "vision"), "chars": ("sequence", "text")}
HELD_OUT = ("test", "ood")
PROXY_NAMES = ("num_params", "flops", "synflow", "naswot", "grad_norm")


def _init() -> None:
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)


def _order(row_id: str, seed: int) -> str:
    return hashlib.sha1(f"{seed}:{row_id}".encode()).hexdigest()


def _candidates(seed: int) -> dict[str, list[tuple[str, str]]]:
    """task -> [(row id, graph json)] of the held-out splits, in the fixed pseudo-random order."""
    from mad.data.default import load_default

    dd = load_default()
    out: dict[str, list[tuple[str, str]]] = {t: [] for t in GROUPS}
    for split in HELD_OUT:
        for r in dd[split].select_columns(["id", "modality", "graph"]):
            for task, mods in GROUPS.items():
                if r["modality"] in mods:
                    out[task].append((r["id"], r["graph"]))
    return {t: sorted(rows, key=lambda r: _order(r[0], seed)) for t, rows in out.items()}


def _screen(job: tuple[str, str, str]) -> tuple[str, str, float | None, str]:
    """(task, id, MFLOPs per example on the task or None, reason it cannot be used); see
    :func:`mad.train.proxies.screen`."""
    task, row_id, text = job
    from mad.graph import ArchGraph
    from mad.train import proxies

    _, mflops, reason = proxies.screen(ArchGraph.from_json(text), task)
    return task, row_id, mflops, reason


def select(cands: dict[str, list[tuple[str, str]]], n: dict[str, int], max_mflops: float, seed: int,
           workers: int, start: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pick ``n[task]`` of the candidates (from :func:`_candidates` with ``seed``) per task that retarget and cost
    at most ``max_mflops`` per example. With ``start`` (an earlier selection of the same order), its ids are kept
    and screening goes on after the last of them."""
    chosen: dict[str, list[str]] = {t: [] for t in GROUPS}
    screened = {t: {"tried": 0, "retarget_failed": 0, "sees_later_tokens": 0, "over_budget": 0} for t in GROUPS}
    if start is not None:
        for t in GROUPS:
            chosen[t] = list(start["ids"].get(t, []))
            screened[t].update(start["screened"].get(t, {}))
    with mp.get_context("spawn").Pool(workers, initializer=_init) as pool:
        for task, rows in cands.items():
            order = [r for r, _ in rows]
            i = order.index(chosen[task][-1]) + 1 if chosen[task] else 0
            while len(chosen[task]) < n[task] and i < len(rows):
                batch = rows[i:i + 4 * workers]
                i += len(batch)
                for t, row_id, mflops, reason in pool.imap(_screen, [(task, r, g) for r, g in batch]):
                    if len(chosen[t]) >= n[t]:
                        break
                    screened[t]["tried"] += 1
                    if reason == "sees later tokens":
                        screened[t]["sees_later_tokens"] += 1
                    elif mflops is None:
                        screened[t]["retarget_failed"] += 1
                    elif mflops > max_mflops:
                        screened[t]["over_budget"] += 1
                    else:
                        chosen[t].append(row_id)
            if len(chosen[task]) < n[task]:
                print(f"warning: only {len(chosen[task])} of {n[task]} {task} graphs qualify", file=sys.stderr)
    return {"ids": chosen, "screened": screened, "held_out_splits": list(HELD_OUT), "max_mflops": max_mflops,
            "order_seed": seed}


def _train(job: tuple[str, str, str, int, list[int]]) -> dict[str, Any]:
    """Proxies and one training run of a graph on a task."""
    task, row_id, text, steps, evals = job
    from mad.data import tasks
    from mad.graph import ArchGraph
    from mad.train import fit, proxies

    rec: dict[str, Any] = {"id": row_id, "task": task}
    t0 = time.perf_counter()
    try:
        g = tasks.fit(ArchGraph.from_json(text), task)
        rec["nodes"] = len(g.nodes)
        t1 = time.perf_counter()
        rec["proxies"] = proxies.compute(g, task, list(PROXY_NAMES), batch_size=64, seed=0)
        rec["proxy_seconds"] = round(time.perf_counter() - t1, 3)
        r = fit(g, task, steps=steps, batch_size=64, lr=1e-3, optimizer="adamw", schedule="cosine", seed=0,
                eval_every=evals, device="cpu", progress=False)
        key = "accuracy" if r.metric == "accuracy" else "bpc"
        rec.update(status=r.status, params=r.params, sees_future=r.sees_future, steps=r.steps, metric=r.metric,
                   at_step={str(e["step"]): e[key] for e in r.eval_curve},
                   test=r.test_accuracy if key == "accuracy" else r.test_bpc,
                   seconds_per_step=r.train_seconds / max(r.steps, 1), train_seconds=round(r.train_seconds, 2),
                   final_loss=r.loss_curve[-1][1] if r.loss_curve else None)
    except Exception as e:  # noqa: BLE001 - recorded, counted in the summary
        rec.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def held_out_texts(base: dict[str, Any], wanted: set[str]) -> dict[str, str]:
    """Graph JSON of the ``wanted`` ids from the held-out splits named in a baselines file's selection."""
    from mad.data.default import load_default

    dd = load_default()
    texts = {}
    for split in base["selection"]["held_out_splits"]:
        for r in dd[split].select_columns(["id", "graph"]):
            if r["id"] in wanted:
                texts[r["id"]] = r["graph"]
    return texts


def held_out_texts_cached(base: dict[str, Any], wanted: set[str], cache: Path | None) -> dict[str, str]:
    """:func:`held_out_texts`, read from the JSON file ``cache`` (id -> graph JSON) when it exists and written there
    first when it does not (``None``: no cache), to carry the held-out graphs to a machine without the dataset."""
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    texts = held_out_texts(base, wanted)
    if cache is not None:
        cache.write_text(json.dumps(texts))
    return texts


def kendall_tau(x: list[float], y: list[float]) -> float | None:
    """Kendall's tau-b of two equally long lists (pairs with a missing or non-finite value are dropped)."""
    from scipy.stats import kendalltau

    pairs = [(a, b) for a, b in zip(x, y) if a is not None and b is not None and math.isfinite(a)
             and math.isfinite(b)]
    if len(pairs) < 3:
        return None
    tau = kendalltau([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if tau is None or not math.isfinite(tau) else round(float(tau), 4)


def summarise(records: list[dict[str, Any]], steps: int, evals: list[int]) -> dict[str, Any]:
    import statistics

    out: dict[str, Any] = {}
    for task in GROUPS:
        recs = [r for r in records if r["task"] == task]
        ok = [r for r in recs if r.get("status") == "completed"]
        lm = task == "chars"
        sign = -1.0 if lm else 1.0  # quality: higher is better
        final = [sign * r["at_step"][str(steps)] for r in ok]
        s: dict[str, Any] = {"graphs": len(recs), "completed": len(ok),
                             "failed": {r["id"]: r.get("error", r.get("status")) for r in recs if r not in ok},
                             "metric": "bits_per_char" if lm else "accuracy"}
        for e in evals:
            vals = [r["at_step"].get(str(e)) for r in ok]
            vals = [v for v in vals if v is not None and math.isfinite(v)]
            if vals:
                s[f"step_{e}"] = {"mean": round(statistics.mean(vals), 4), "median": round(statistics.median(vals), 4),
                                  "best": round(min(vals) if lm else max(vals), 4),
                                  "worst": round(max(vals) if lm else min(vals), 4)}
        sps = [r["seconds_per_step"] for r in ok]
        if sps:
            s["seconds_per_step"] = {"median": round(statistics.median(sps), 4), "max": round(max(sps), 4)}
        s["kendall_tau_vs_final"] = {
            **{p: kendall_tau([r["proxies"].get(p) for r in ok], final) for p in PROXY_NAMES},
            **{f"val_at_step_{e}": kendall_tau([sign * r["at_step"][str(e)] for r in ok], final)
               for e in evals if 0 < e < steps}}
        out[task] = s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", type=int, default=50, help="graphs on mnist5k")
    ap.add_argument("--seq", type=int, default=50, help="graphs on chars")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--max-mflops", type=float, default=15.0, help="per-example forward MFLOPs budget")
    ap.add_argument("--seed", type=int, default=0, help="seed of the candidate order")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--reselect", action="store_true", help="pick the graphs again instead of reusing --out's")
    ap.add_argument("--extend", action="store_true", help="keep --out's graphs and records and add graphs (the next "
                    "qualifying ones in the same order) up to --image/--seq")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mad-train-baselines")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_baselines.json")
    args = ap.parse_args()
    evals = sorted({0, 10, 100, args.steps} & set(range(args.steps + 1)))
    t_start = time.perf_counter()

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.extend:
        if not previous.get("selection"):
            raise SystemExit(f"--extend: {args.out} holds no selection to extend")
        if args.reselect:
            raise SystemExit("--extend keeps the selection; --reselect replaces it: use one of them")
        start = previous["selection"]
        want = {"mnist5k": args.image, "chars": args.seq}
        short = {t: k for t, k in want.items() if k < len(start["ids"].get(t, []))}
        if short:
            raise SystemExit(f"--extend: {args.out} already holds more graphs than asked for {short}")
        cands = _candidates(start["order_seed"])
        selection = select(cands, want, start["max_mflops"], start["order_seed"], args.workers, start=start)
        print("extended", {t: len(v) for t, v in selection["ids"].items()}, "screened", selection["screened"])
    elif previous.get("selection") and not args.reselect:
        selection = previous["selection"]
        cands = _candidates(selection["order_seed"])
        counts = ", ".join(f"{t}: {len(v)}" for t, v in selection["ids"].items())
        print(f"reusing the held-out ids of {args.out} ({counts})")
    else:
        cands = _candidates(args.seed)
        selection = select(cands, {"mnist5k": args.image, "chars": args.seq}, args.max_mflops, args.seed,
                           args.workers)
        print("selected", {t: len(v) for t, v in selection["ids"].items()}, "screened", selection["screened"])

    args.work.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(json.dumps([args.steps, evals]).encode()).hexdigest()[:12]  # records keyed by (task, id)
    partial = args.work / f"records-{key}.jsonl"
    done = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            r = json.loads(line)
            done[(r["task"], r["id"])] = r
        print(f"resuming: {len(done)} graphs already trained ({partial})")
    if args.extend and previous.get("setup", {}).get("steps") == args.steps and \
            previous["setup"].get("eval_steps") == evals:  # --out's own records stand for the graphs it holds
        for r in previous.get("records", []):
            done.setdefault((r["task"], r["id"]), r)

    texts = {}
    for rows in cands.values():
        texts.update(dict(rows))
    missing = [i for ids in selection["ids"].values() for i in ids if i not in texts]
    if missing:
        raise SystemExit(f"{len(missing)} held-out ids are not in the shipped dataset (e.g. {missing[0]}); "
                         f"rerun with --reselect")
    jobs = [(task, i, texts[i], args.steps, evals) for task, ids in selection["ids"].items() for i in ids
            if (task, i) not in done]
    from tqdm.auto import tqdm

    with mp.get_context("spawn").Pool(args.workers, initializer=_init) as pool, partial.open("a") as fh:
        for rec in tqdm(pool.imap_unordered(_train, jobs), total=len(jobs), desc="training", unit="graph"):
            done[(rec["task"], rec["id"])] = rec
            fh.write(json.dumps(rec) + "\n")
            fh.flush()

    records = [done[(t, i)] for t, ids in selection["ids"].items() for i in ids]
    summary = summarise(records, args.steps, evals)
    out = {"summary": summary, "selection": selection,
           "setup": {"steps": args.steps, "eval_steps": evals, "batch_size": 64, "optimizer": "adamw", "lr": 1e-3,
                     "schedule": "cosine", "seed": 0, "device": "cpu", "threads_per_worker": 1,
                     "workers": args.workers, "proxies": list(PROXY_NAMES)},
           "records": records,
           "wall_seconds": round(time.perf_counter() - t_start + (previous.get("wall_seconds", 0.0) if args.extend
                                                                  else 0.0), 1),
           "machine": {"python": platform.python_version(), "cpus": mp.cpu_count()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    for task, s in summary.items():
        print(f"\n{task}: {s['completed']}/{s['graphs']} trained; {s['metric']} (mean / best) at step "
              + ", ".join(f"{e}: {s[f'step_{e}']['mean']:.4f} / {s[f'step_{e}']['best']:.4f}"
                          for e in evals if f"step_{e}" in s))
        if "seconds_per_step" in s:
            print(f"  seconds per step: median {s['seconds_per_step']['median']:.4f}")
        print("  Kendall tau vs final: " + ", ".join(f"{k} {v}" for k, v in s["kendall_tau_vs_final"].items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
