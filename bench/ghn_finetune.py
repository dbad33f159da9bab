"""What the GHN's prediction is worth as a starting point for training, against PyTorch's default init and a
control of the same scale, on unseen architectures.

    python bench/ghn_finetune.py                   # mnist5k's 50 held-out graphs, 200 steps (~26 min on 2 cores)
    python bench/ghn_finetune.py --graphs 4 --steps 20 --out /tmp/ft.json     # a smoke run
    python bench/ghn_finetune.py --lr 3e-4 --starts default,ghn --out bench/results/ghn_finetune_lr_3e-4.json

On the held-out mnist5k graphs of ``bench/ghn_eval.py`` (fixed by ``bench/train_baselines.py``), each network is
trained for ``--steps`` steps with the recipe of ``bench/ghn_eval.py`` (AdamW, lr 1e-3 unless ``--lr``, cosine over
the run, batch 64, seed 0; validation accuracy on 500 examples at a few steps) from five starting points:

* ``default``: PyTorch's default init (seed 0);
* ``ghn``: the GHN's prediction as ``GHN.predict`` gives it (batch-norm statistics recomputed on 8 training batches,
  the head-norm statistics folded into the output layer);
* ``ghn_default_head``: the prediction with the output layer at default init (nothing folded): does the harm, where
  there is any, sit in the predicted output layer or in the hidden ones?
* ``ghn_plus_default``: every predicted weight of rank >= 2 plus the default init's, then the batch-norm statistics
  and the head fold as ``GHN.predict`` does them;
* ``noise_plus_default``: the control of the previous one: default init plus a second, independent default init
  (seed 1) rescaled, tensor by tensor, to the norm of the predicted tensor it stands in for. The two differ only in
  what is added, the GHN's content or noise of its size.

Every start has its batch-norm statistics recomputed on the same 8 training batches (they matter only for the
step-0 figure: training runs on batch statistics).

Reported: the mean accuracy of each start at each validation step, how many graphs end more than 5 points below
default init, how many reach (at a validation step) their accuracy after 1000 steps from default init (read from
``bench/results/train_baselines.json``, the figure ``bench/ghn_eval.py`` asks the GHN's start to reach in a fifth of
the steps), and paired comparisons over the graphs (wins, losses, mean difference, two-sided sign-test p) of
``ghn`` against ``default`` and of ``ghn_plus_default`` against its control. Writes
``bench/results/ghn_finetune.json``; ``--lr`` and ``--starts`` run the comparison at another learning rate (the
lead of any start shrinks as training gets faster), for ``bench/results/ghn_finetune_lr_*.json``.
"""

from __future__ import annotations

import argparse
import json
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

import ghn_eval  # noqa: E402 - its worker initializer loads the GHN (ghn_eval._GHN)

OUT = ROOT / "bench" / "results" / "ghn_finetune.json"
STARTS = ("default", "ghn", "ghn_default_head", "ghn_plus_default", "noise_plus_default")
PAIRS = (("ghn", "default"), ("ghn_plus_default", "noise_plus_default"), ("ghn_plus_default", "default"))
WORSE = 0.05  # "ends below default init" means by more than this


def starts(ghn, g, bn_inputs: list, names: tuple[str, ...] = STARTS) -> dict[str, Any]:
    """The modules of graph ``g`` (fitted to mnist5k) at each start of ``names`` (of :data:`STARTS`)."""
    import torch

    from mad.ghn.api import materialise
    from mad.ghn.encode import encode
    from mad.ghn.readout import readout_weight_name
    from mad.train.objective import TaskSpec

    spec = TaskSpec.of("mnist5k")
    norm_head = spec.num_outputs if ghn.config.head_norm else None

    def default_state(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return {k: v.detach().clone() for k, v in g.to_module("cpu").named_parameters()}

    def build(params: dict[str, torch.Tensor], fold: bool):
        return materialise(g, params, bn_inputs, g.to_module("cpu"), "cpu", norm_head if fold else None)[0]

    pred = ghn.predict_encoded([encode(g)], spec.name)[0][0]
    d0 = default_state(0)
    weights = [k for k, v in pred.items() if v.dim() >= 2 and k in d0]
    out = {"default": build(d0, fold=False)}
    if "ghn" in names:
        out["ghn"] = build(pred, fold=True)
    head = readout_weight_name(g, out["default"], spec.num_outputs)
    if "ghn_default_head" in names and head is not None:
        bias = head[:-len("weight")] + "bias"
        out["ghn_default_head"] = build({**pred, head: d0[head], **({bias: d0[bias]} if bias in d0 else {})},
                                        fold=False)
    if "ghn_plus_default" in names:
        out["ghn_plus_default"] = build({**pred, **{k: pred[k] + d0[k] for k in weights}}, fold=True)
    if "noise_plus_default" in names:
        d1 = default_state(1)
        noise = {k: d0[k] + d1[k] * (pred[k].norm() / d1[k].norm().clamp(min=1e-12)) for k in weights}
        out["noise_plus_default"] = build({**d0, **noise}, fold=False)
    return out


def _graph_job(job: tuple[str, str, int, list[int], float, tuple[str, ...]]) -> dict[str, Any]:
    row_id, text, steps, evals, lr, names = job
    from mad.data import tasks
    from mad.graph import ArchGraph
    from mad.train import fit
    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec

    rec: dict[str, Any] = {"id": row_id}
    t0 = time.perf_counter()
    try:
        g = tasks.fit(ArchGraph.from_json(text), "mnist5k")
        data = TaskData(TaskSpec.of("mnist5k"), batch_size=64)
        modules = starts(ghn_eval._GHN, g, [data.train_batch(k)[0] for k in range(8)], names)
        for name, module in modules.items():
            r = fit(module, "mnist5k", steps=steps, batch_size=64, lr=lr, optimizer="adamw", schedule="cosine",
                    seed=0, eval_every=evals, device="cpu", progress=False)
            rec[name] = {str(e["step"]): e["accuracy"] for e in r.eval_curve}
        rec["status"] = "completed"
    except Exception as e:  # noqa: BLE001 - recorded and counted
        rec.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}")
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """Wins, losses and ties of ``a`` over ``b`` (same graphs), the mean difference and a two-sided sign-test p."""
    from scipy.stats import binomtest

    wins, losses = sum(x > y for x, y in zip(a, b)), sum(x < y for x, y in zip(a, b))
    p = binomtest(wins, wins + losses).pvalue if wins + losses else None
    return {"graphs": len(a), "wins": wins, "losses": losses, "ties": len(a) - wins - losses,
            "mean_difference": round(statistics.fmean(x - y for x, y in zip(a, b)), 4),
            "sign_test_p": None if p is None else round(float(p), 4)}


def summarise(records: list[dict[str, Any]], steps: int, long: dict[str, float],
              names: tuple[str, ...] = STARTS) -> dict[str, Any]:
    """Means by start (of ``names``, ``default`` among them) and validation step, graphs ending below default init,
    graphs reaching their figure after 1000 steps from default init (``long``, by id) within the run, and the paired
    comparisons of :data:`PAIRS` between starts that ran."""
    ok = [r for r in records if r.get("status") == "completed"]
    last = str(steps)
    out: dict[str, Any] = {"graphs": len(ok), "failed": len(records) - len(ok), "mean": {}, "below_default": {},
                           "reached_1000_step_figure": {}}
    for name in names:
        rs = [r for r in ok if name in r]
        out["mean"][name] = {k: round(statistics.fmean(r[name][k] for r in rs), 4) for k in rs[0][name]} if rs else {}
        out["below_default"][name] = sum(r[name][last] < r["default"][last] - WORSE for r in rs)
        out["reached_1000_step_figure"][name] = sum(r["id"] in long and max(r[name].values()) >= long[r["id"]]
                                                    for r in rs)
    out["missing"] = {name: sum(name not in r for r in ok) for name in names if any(name not in r for r in ok)}
    out["paired_at_end"] = {f"{a}_vs_{b}": paired([r[a][last] for r in ok if a in r and b in r],
                                                  [r[b][last] for r in ok if a in r and b in r])
                            for a, b in PAIRS if a in names and b in names}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ghn", default="default", help="GHN checkpoint folder or 'default'")
    ap.add_argument("--graphs", type=int, default=None, help="only the first N held-out graphs")
    ap.add_argument("--steps", type=int, default=200, help="training steps from each start (200: a fifth of 1000)")
    ap.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (1e-3: bench/ghn_eval.py's)")
    ap.add_argument("--starts", default=",".join(STARTS),
                    help=f"comma-separated, default among them ({','.join(STARTS)})")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baselines", type=Path, default=ROOT / "bench" / "results" / "train_baselines.json")
    ap.add_argument("--texts", type=Path, default=None, help="read the held-out graphs from this JSON file (id -> "
                    "graph JSON) instead of the dataset; written there first when it does not exist")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be >= 1")
    names = tuple(n for n in STARTS if n in args.starts.split(","))
    unknown = set(args.starts.split(",")) - set(STARTS)
    if unknown or "default" not in names:
        ap.error(f"--starts: {', '.join(sorted(unknown)) or 'default is missing'}; choose from {', '.join(STARTS)} "
                 "with default among them")

    import torch
    from tqdm.auto import tqdm
    from train_baselines import held_out_texts_cached

    t0 = time.perf_counter()
    base = json.loads(args.baselines.read_text())
    ids = base["selection"]["ids"]["mnist5k"][:args.graphs]
    texts = held_out_texts_cached(base, set(ids), args.texts)
    evals = sorted({0, args.steps // 4, args.steps // 2, args.steps})
    jobs = [(i, texts[i], args.steps, evals, args.lr, names) for i in ids]
    with mp.get_context("spawn").Pool(args.workers, initializer=ghn_eval._init, initargs=(str(args.ghn),)) as pool:
        records = list(tqdm(pool.imap_unordered(_graph_job, jobs), total=len(jobs), desc="graphs", unit="graph"))
    order = {i: k for k, i in enumerate(ids)}
    records.sort(key=lambda r: order[r["id"]])
    long = {r["id"]: r["at_step"]["1000"] for r in base["records"]
            if r.get("task") == "mnist5k" and r.get("status") == "completed"}
    out = {"task": "mnist5k", "ghn": args.ghn, "summary": summarise(records, args.steps, long, names),
           "setup": {"steps": args.steps, "evals": evals, "optimizer": "adamw", "lr": args.lr, "schedule": "cosine",
                     "batch_size": 64, "seed": 0, "val_examples": 500, "bn_batches": 8, "worse_by": WORSE,
                     "starts": list(names)},
           "records": records, "wall_seconds": round(time.perf_counter() - t0, 1),
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": mp.cpu_count(),
                       "python": platform.python_version(), "torch": torch.__version__},
           "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["summary"], indent=1))


if __name__ == "__main__":
    main()
