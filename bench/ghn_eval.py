"""GHN evaluation: predicted parameters against default init and short training, fine-tuning from the
prediction, ranking architectures without training, prediction speed and coverage.

    python bench/ghn_eval.py                                  # the shipped GHN on the held-out graphs
    python bench/ghn_eval.py --ghn ckpt/ --image 4 --seq 2 --out /tmp/ghn_eval.json   # a smoke run

Graphs: the held-out ids fixed by ``bench/train_baselines.py`` (50 mnist5k graphs, random-space CNNs and zoo
vision models; 50 causal chars graphs, random-space and zoo text models), none of them seen in GHN training (the
GHN trains on the dataset's ``train`` split; these come from ``test`` and ``ood``). For each graph, in one run:

* ``ghn``: the metric of the predicted parameters (``ghn.score``: validation accuracy, or bits per character),
  and the GHN's learned quality estimates (``quality``: of the metric after 100 steps, and ``quality_long``, where
  the estimator has a long-horizon stage: after its longer run, 1000 steps);
* ``default``: ``mad.train.fit`` from PyTorch default init for 100 steps (AdamW, lr 1e-3, cosine over the
  run, batch 64, seed 0), validated at steps 0, 10 and 100;
* ``finetune``: the same recipe from the predicted parameters for ``--finetune-steps`` (200 = 1/5 of 1000),
  validated along the way; "steps to reach" is the first validation step whose metric is at least the
  1000-step one from default init;
* proxies (#params, FLOPs, synflow, NASWOT, grad-norm) computed here, and Kendall tau of every ranking signal
  against the 1000-step metric.

The 1000-step figures are read from ``bench/results/train_baselines.json`` (same graphs, same recipe and seed;
training 100 graphs for 1000 steps takes over an hour on 2 cores and is not repeated here).

Speed: seconds of ``GHN.predict_encoded`` (encode + GHN forward, the parameters) and of ``GHN.predict`` (plus
building the module and recomputing batch-norm statistics) by parameter count, up to a 10M-parameter MLP;
``--speed-only --device cuda`` times the same on a GPU (``speed_gpu``; ``--texts`` carries the held-out graphs
to a machine without the dataset).
Coverage: the share of parameters (by count) and of layer-op parameter roles the GHN predicts over the
whole shipped dataset, of all parameters a graph's module holds and of those its nodes compute with (a
captured model may hold parameters its forward never uses, kept in ``meta["extra_state"]``).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from train_baselines import PROXY_NAMES, held_out_texts_cached, kendall_tau  # noqa: E402

FT_EVALS = (0, 10, 25, 50, 100, 150, 200)
_GHN = None


def _init(ghn_path: str) -> None:
    import logging

    import torch

    global _GHN
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from mad.ghn import load

    _GHN = load(ghn_path, device="cpu")


def _graph_job(job: tuple[str, str, str, int]) -> dict[str, Any]:
    task, row_id, text, ft_steps = job
    from mad.data import tasks
    from mad.graph import ArchGraph
    from mad.train import fit, proxies

    rec: dict[str, Any] = {"id": row_id, "task": task}
    t0 = time.perf_counter()
    try:
        g = tasks.fit(ArchGraph.from_json(text), task)
        rec["nodes"] = len(g.nodes)
        rec["proxies"] = proxies.compute(g, task, list(PROXY_NAMES), batch_size=64, seed=0)
        s = _GHN.score(g, task)
        key = "bpc" if "bpc" in s else "accuracy"
        rec["ghn"] = {"metric": s[key], "loss": s["loss"], "quality": s["quality"], "quality_long": s["quality_long"],
                      "predicted_share": s["predicted_share"], "seconds": s["seconds_predict"]}
        s = _GHN.score(g, task, readout=True)
        rec["ghn_readout"] = {"metric": s[key], "loss": s["loss"], "readout": s["readout"]}
        r = fit(g, task, steps=100, batch_size=64, lr=1e-3, optimizer="adamw", schedule="cosine", seed=0,
                eval_every=[0, 10, 100], device="cpu", progress=False)
        rec["default"] = {str(e["step"]): e[key] for e in r.eval_curve}
        module = _GHN.predict(g, task)
        steps = [e for e in FT_EVALS if e <= ft_steps] + ([ft_steps] if ft_steps not in FT_EVALS else [])
        r = fit(module, task, steps=ft_steps, batch_size=64, lr=1e-3, optimizer="adamw", schedule="cosine", seed=0,
                eval_every=steps, device="cpu", progress=False)
        rec["finetune"] = {str(e["step"]): e[key] for e in r.eval_curve}
        rec["status"] = "completed"
    except Exception as e:  # noqa: BLE001 - recorded and counted
        rec.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return round(statistics.mean(xs), 4) if xs else None


def summarise(records: list[dict], baselines: dict[tuple[str, str], dict], ft_steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task in ("mnist5k", "chars"):
        ok = [r for r in records if r["task"] == task and r.get("status") == "completed"
              and (task, r["id"]) in baselines]
        if not ok:
            continue
        lm = task == "chars"
        sign = -1.0 if lm else 1.0
        final = [baselines[(task, r["id"])]["at_step"]["1000"] for r in ok]
        s: dict[str, Any] = {"graphs": len(ok), "failed": sum(r["task"] == task and r.get("status") != "completed"
                                                               for r in records),
                             "metric": "bits_per_char" if lm else "accuracy"}
        s["mean"] = {
            "ghn": _mean([r["ghn"]["metric"] for r in ok]),
            "ghn_readout": _mean([r["ghn_readout"]["metric"] for r in ok]),
            "default_init": _mean([r["default"]["0"] for r in ok]),
            "steps_10": _mean([r["default"]["10"] for r in ok]),
            "steps_100": _mean([r["default"]["100"] for r in ok]),
            "steps_1000": _mean(final),
            **{f"ghn_finetune_{e}": _mean([r["finetune"].get(str(e)) for r in ok])
               for e in FT_EVALS if 0 < e <= ft_steps},
        }
        m = s["mean"]
        if lm:
            gap = m["default_init"] - m["steps_100"]
            s["gap_closed_vs_100_steps"] = round((m["default_init"] - m["ghn"]) / gap, 4) if gap else None
            per = [(r["default"]["0"] - r["ghn"]["metric"]) / (r["default"]["0"] - r["default"]["100"]) for r in ok
                   if r["default"]["0"] - r["default"]["100"] > 0]
            s["gap_closed_per_graph_median"] = round(statistics.median(per), 4) if per else None
        else:
            s["ghn_minus_100_steps"] = round(m["ghn"] - m["steps_100"], 4)
        reach_g, reach_d = [], []
        for r, fin in zip(ok, final):
            good = (lambda v: v <= fin) if lm else (lambda v: v >= fin)
            hit = [int(k) for k, v in sorted(r["finetune"].items(), key=lambda kv: int(kv[0])) if good(v)]
            reach_g.append(hit[0] if hit else None)
            base = baselines[(task, r["id"])]["at_step"]
            hit_d = [int(k) for k in ("10", "100") if good(base[k])]
            reach_d.append(hit_d[0] if hit_d else 1000)
        s["finetune"] = {
            "steps": ft_steps,
            "reached_1000_step_metric": sum(x is not None for x in reach_g),
            "median_steps_to_reach_ghn": _median_steps(reach_g, ft_steps),
            "median_steps_to_reach_default": statistics.median(reach_d),
        }
        sig = {
            "ghn_score": [sign * r["ghn"]["metric"] for r in ok],
            "ghn_quality": [None if r["ghn"]["quality"] is None else sign * r["ghn"]["quality"] for r in ok],
            **({"ghn_quality_long": [None if r["ghn"].get("quality_long") is None else sign * r["ghn"]["quality_long"]
                                     for r in ok]} if any(r["ghn"].get("quality_long") is not None for r in ok)
               else {}),
            "ghn_readout_score": [sign * r["ghn_readout"]["metric"] for r in ok],
            **{p: [r["proxies"].get(p) for r in ok] for p in PROXY_NAMES},
            "val_at_step_10": [sign * r["default"]["10"] for r in ok],
            "val_at_step_100": [sign * r["default"]["100"] for r in ok],
        }
        fin = [sign * v for v in final]
        s["kendall_tau_vs_1000_steps"] = {k: kendall_tau(v, fin) for k, v in sig.items()}
        at100 = sig.pop("val_at_step_100")  # the figure the quality estimate is fitted to (its labels' steps)
        s["kendall_tau_vs_100_steps"] = {k: kendall_tau(v, at100) for k, v in sig.items()}
        out[task] = s
    return out


def _median_steps(reach: list[int | None], cap: int) -> str | int | float:
    vals = sorted(x if x is not None else math.inf for x in reach)
    med = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
    return f">{cap}" if math.isinf(med) else med


def speed(ghn_path: str, graphs: list, device: str = "cpu", repeats: int = 3) -> list[dict[str, Any]]:
    """Seconds per prediction by size (the main process, one CPU thread; on ``device``, waiting for the GPU's
    work to finish before each clock read): the median of ``repeats`` timings of each graph."""
    import torch
    from torch import nn

    from mad.code2graph import from_module
    from mad.ghn import encode, load

    ghn = load(ghn_path, device=device)

    def clock() -> float:
        if ghn.device.type == "cuda":
            torch.cuda.synchronize(ghn.device)
        return time.perf_counter()

    extra = []
    for name, widths in (("mlp_1M", [784, 1024, 256, 10]), ("mlp_10M", [784, 2048, 2048, 2048, 10])):
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        extra.append(from_module(nn.Sequential(*layers[:-1]), (torch.randn(2, 1, 28, 28),), name=name))
    def task_of(g) -> str:
        return "chars" if g.inputs[0].dtype in ("int64", "long") else "mnist5k"

    rows = []
    if graphs:  # warm up (first-call allocations and caches) before timing
        ghn.predict(graphs[0], task_of(graphs[0]))
    for g in list(graphs) + extra:
        task = task_of(g)
        times = []
        for _ in range(repeats):
            t0 = clock()
            enc = encode(g)
            t1 = clock()
            ghn.predict_encoded([enc], task)
            t2 = clock()
            module = ghn.predict(g, task)
            t3 = clock()
            times.append((t1 - t0, t2 - t1, t2 - t0, t3 - t2))
        enc_s, fwd_s, params_s, predict_s = (round(statistics.median(col), 4) for col in zip(*times))
        rows.append({"name": g.name, "task": task, "nodes": len(g.nodes), "params": module.ghn_info["params"],
                     "encode_s": enc_s, "ghn_forward_s": fwd_s, "params_s": params_s, "predict_s": predict_s,
                     "repeats": repeats})
    return rows


def _speed_graphs(ids: dict[str, list[str]], texts: dict[str, str]) -> list:
    """The first 6 held-out graphs of each task, fitted to it (the graphs :func:`speed` times)."""
    from mad.data import tasks
    from mad.graph import ArchGraph

    sizes = []
    for task, v in ids.items():
        for i in v[:6]:
            try:
                sizes.append(tasks.fit(ArchGraph.from_json(texts[i]), task))
            except Exception:  # noqa: BLE001
                pass
    return sizes


def _replace(path: Path, key: str, value: Any) -> None:
    """Put ``value`` under ``key`` in the results file ``path``, the rest as it was, and print it."""
    prev = json.loads(path.read_text())
    prev[key] = value
    path.write_text(json.dumps(prev, indent=1) + "\n")
    print(json.dumps(value, indent=1))


def _requality(path: Path, ghn_path: str, ids: dict[str, list[str]], texts: dict[str, str], baselines: dict) -> None:
    """Replace every record's quality estimate in ``path`` with the GHN's current one, and the summary."""
    from mad.ghn import load
    from mad.graph import ArchGraph

    prev = json.loads(path.read_text())
    ghn = load(ghn_path, device="cpu")
    for task in ids:
        recs = [r for r in prev["records"] if r["task"] == task and "ghn" in r]
        graphs = [ArchGraph.from_json(texts[r["id"]]) for r in recs]
        for r, q, q_long in zip(recs, *ghn.estimates(graphs, task)):
            r["ghn"]["quality"], r["ghn"]["quality_long"] = q, q_long
    prev["summary"] = summarise(prev["records"], baselines, prev["setup"]["finetune_steps"])
    prev["quality_estimator"] = _estimators(ghn.record)
    path.write_text(json.dumps(prev, indent=1) + "\n")
    print(json.dumps({t: {k: s.get(k) for k in ("kendall_tau_vs_1000_steps", "kendall_tau_vs_100_steps")}
                      for t, s in prev["summary"].items()}, indent=1))


def _estimators(record: dict[str, Any]) -> dict[str, Any]:
    """The settings of a GHN record's quality estimators, per task, without their fitted numbers."""
    from mad.ghn.quality import FITTED

    def settings(est: dict[str, Any]) -> dict[str, Any]:
        return {k: settings(v) if k == "long" else v for k, v in est.items() if k not in FITTED}

    return {t: settings(est) for t, est in (record.get("quality") or {}).get("tasks", {}).items()}


def _kept_gpu_speed(prev: dict[str, Any], ghn: dict[str, Any]) -> dict[str, Any]:
    """``prev``'s GPU timings (only ``--speed-only --device cuda`` measures them), marked ``earlier_checkpoint``
    when ``prev`` was written for another GHN than ``ghn`` (a GPU may not be at hand to time the new one)."""
    gpu = dict(prev.get("speed_gpu") or {})
    if gpu and prev.get("ghn") != ghn:
        gpu["earlier_checkpoint"] = gpu.get("earlier_checkpoint") or prev.get("ghn")
    return {"speed_gpu": gpu} if gpu else {}


def coverage() -> dict[str, Any]:
    """Share of parameters and of layer-op roles the GHN predicts over the whole shipped dataset."""
    from mad.data.default import load_default
    from mad.ghn.encode import param_slots
    from mad.graph import ArchGraph
    from mad.graph.layer_params import is_layer
    from mad.graph.ops import get_op

    dd = load_default()
    predicted = total = used = roles = roles_predicted = graphs = 0
    worst: list[tuple[float, str]] = []
    for split in dd:
        for r in dd[split].select_columns(["id", "graph"]):
            g = ArchGraph.from_json(r["graph"])
            slots = param_slots(g)
            names = {s.fqn for s in slots}
            module = g.to_module(device="meta")
            own = dict(module.named_parameters())
            n_all = sum(p.numel() for p in own.values())
            n_pred = sum(p.numel() for k, p in own.items() if k in names)
            owned = {n.param_name(role) for n in g.nodes.values() for role in n.params}
            n_used = sum(p.numel() for k, p in own.items() if k in owned)  # the rest: held by the source, unused
            predicted, total, used, graphs = predicted + n_pred, total + n_all, used + n_used, graphs + 1
            if n_all and n_pred < n_all:
                worst.append((n_pred / n_all, r["id"]))
            for n in g.nodes.values():
                if is_layer(n.op):
                    for role in n.params:
                        if role not in get_op(n.op).buffer_args:
                            roles += 1
                            roles_predicted += n.param_name(role) in names
    worst.sort()
    return {"graphs": graphs, "params": total, "params_used_by_graphs": used, "predicted_params": predicted,
            "predicted_share": round(predicted / total, 6) if total else None,
            "predicted_share_of_used": round(predicted / used, 6) if used else None,
            "layer_roles": roles, "layer_roles_predicted": roles_predicted,
            "graphs_not_fully_covered": len(worst), "lowest": [{"id": i, "share": round(s, 4)} for s, i in worst[:5]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ghn", default="default", help="GHN checkpoint folder or 'default'")
    ap.add_argument("--image", type=int, default=None, help="use only the first N mnist5k graphs")
    ap.add_argument("--seq", type=int, default=None, help="use only the first N chars graphs")
    ap.add_argument("--finetune-steps", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-coverage", action="store_true")
    ap.add_argument("--baselines", type=Path, default=ROOT / "bench" / "results" / "train_baselines.json")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ghn_eval.json")
    ap.add_argument("--coverage-only", action="store_true", help="recompute only the coverage in --out")
    ap.add_argument("--quality-only", action="store_true", help="recompute only the quality estimates in --out and "
                    "the summary (after the GHN's quality estimator was refitted; its coefficients live in its record)")
    ap.add_argument("--speed-only", action="store_true", help="recompute only the CPU speed rows in --out (on an "
                    "otherwise idle machine)")
    ap.add_argument("--device", default="cpu", help="with --speed-only: cuda times a GPU (rows under speed_gpu)")
    ap.add_argument("--add-missing", action="store_true", help="keep --out's records, speed and coverage and evaluate "
                    "only the held-out graphs it lacks (after bench/train_baselines.py --extend)")
    ap.add_argument("--texts", type=Path, default=None, help="read the held-out graphs from this JSON file (id -> "
                    "graph JSON) instead of the dataset; written there first when it does not exist")
    args = ap.parse_args()
    t_start = time.perf_counter()
    if args.coverage_only:
        _replace(args.out, "coverage", coverage())
        return

    import torch

    torch.set_num_threads(1)
    from mad.ghn import load

    base = json.loads(args.baselines.read_text())
    ids = dict(base["selection"]["ids"])
    if args.image is not None:
        ids["mnist5k"] = ids["mnist5k"][:args.image]
    if args.seq is not None:
        ids["chars"] = ids["chars"][:args.seq]
    baselines = {(r["task"], r["id"]): r for r in base["records"] if r.get("status") == "completed"}
    wanted = {i for v in ids.values() for i in v}
    texts = held_out_texts_cached(base, wanted, args.texts)
    if args.speed_only:
        if args.device == "cpu":
            _replace(args.out, "speed_cpu", speed(str(args.ghn), _speed_graphs(ids, texts)))
        else:
            rows = speed(str(args.ghn), _speed_graphs(ids, texts), args.device)
            name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else args.device
            _replace(args.out, "speed_gpu", {"device": name, "torch": torch.__version__, "rows": rows})
        return
    if args.quality_only:
        _requality(args.out, args.ghn, ids, texts, baselines)
        return
    jobs = jobs_all = [(task, i, texts[i], args.finetune_steps) for task, v in ids.items() for i in v]
    record_ghn = load(args.ghn, device="cpu").record
    from tqdm.auto import tqdm

    records, prev = [], {}
    if args.add_missing:
        prev = json.loads(args.out.read_text()) if args.out.exists() else {}
        if prev.get("setup", {}).get("finetune_steps") != args.finetune_steps or \
                prev.get("ghn", {}).get("path") != str(args.ghn):
            raise SystemExit(f"--add-missing: {args.out} holds no records of this GHN and --finetune-steps")
        wanted_keys = {(t, i) for t, i, _, _ in jobs_all}
        records = [r for r in prev["records"] if (r["task"], r["id"]) in wanted_keys]
        have = {(r["task"], r["id"]) for r in records}
        jobs = [j for j in jobs_all if (j[0], j[1]) not in have]
        print(f"{len(records)} graphs kept from {args.out}; {len(jobs)} to evaluate")
    with mp.get_context("spawn").Pool(args.workers, initializer=_init, initargs=(str(args.ghn),)) as pool:
        for rec in tqdm(pool.imap_unordered(_graph_job, jobs), total=len(jobs), desc="graphs", unit="graph"):
            records.append(rec)
    order = {(t, i): k for k, (t, i, _, _) in enumerate(jobs_all)}
    records.sort(key=lambda r: order[(r["task"], r["id"])])
    summary = summarise(records, baselines, args.finetune_steps)

    if args.add_missing:  # the speed rows and the coverage do not depend on the held-out graphs' number
        speed_rows, cov = prev["speed_cpu"], prev["coverage"]
    else:
        speed_rows = speed(str(args.ghn), _speed_graphs(ids, texts))
        cov = None if args.skip_coverage else coverage()
    ghn_doc = {"path": str(args.ghn), "train_seconds": record_ghn.get("train_seconds"),
               "steps": record_ghn.get("steps"), "hardware": record_ghn.get("hardware"),
               "params": record_ghn.get("ghn_params")}
    out = {
        **_kept_gpu_speed(json.loads(args.out.read_text()) if args.out.exists() else {}, ghn_doc),
        "quality_estimator": _estimators(record_ghn),
        "summary": summary,
        "speed_cpu": speed_rows,
        "coverage": cov,
        "ghn": ghn_doc,
        "setup": {"finetune_steps": args.finetune_steps, "finetune_evals": list(FT_EVALS),
                  "baselines": str(args.baselines.relative_to(ROOT)) if args.baselines.is_relative_to(ROOT)
                  else str(args.baselines), "optimizer": "adamw", "lr": 1e-3, "batch_size": 64, "seed": 0},
        "records": records,
        "wall_seconds": round(time.perf_counter() - t_start + prev.get("wall_seconds", 0.0), 1),
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "torch": torch.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({"summary": summary, "coverage": cov,
                      "speed": [{k: r[k] for k in ("name", "params", "params_s", "predict_s")} for r in speed_rows]},
                     indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
