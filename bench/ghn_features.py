"""What the GHN's predicted hidden layers are worth as features, against PyTorch's default init.

    python bench/ghn_features.py                  # mnist5k's 50 held-out graphs (~2 min on 2 cores)
    python bench/ghn_features.py --graphs 5 --out /tmp/f.json   # a smoke run

On the held-out mnist5k graphs of ``bench/ghn_eval.py`` (fixed by ``bench/train_baselines.py``) it measures the
validation accuracy (500 examples) of:

* ``default`` / ``ghn``: the network at PyTorch's default init (seed 0) / with the GHN's predicted parameters,
  each also with its output layer refitted in closed form (``readout``, :mod:`mad.ghn.readout`: ridge on 8
  training batches), which scores the hidden layers as features;
* ``mix_<a>``: every predicted weight of rank >= 2 except the output layer's plus ``a`` times the default init's;
* ``flat``: every such predicted weight replaced by its polar factor (same singular vectors, all singular values
  equal) at the same Frobenius norm.

Batch-norm statistics are recomputed on the 8 batches in every case. It also reports the weights' effective rank
(participation ratio of the squared singular values over the smaller dimension; weights with both dimensions >= 16).

Writes ``bench/results/ghn_features.json``.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

OUT = Path(__file__).parent / "results" / "ghn_features.json"
MIXES = (0.5, 1.0, 2.0)


def _matrix(w):
    return w.reshape(w.shape[0], -1).double()


def participation(w) -> float:
    """Effective rank of ``w`` (its rows against the rest) over its smaller dimension; nan for a zero tensor."""
    import torch

    m = _matrix(w)
    s = torch.linalg.svdvals(m) ** 2
    return float((s.sum() ** 2 / (s ** 2).sum()) / min(m.shape))


def flat(w):
    """``w`` with all singular values equal, at the same Frobenius norm."""
    import torch

    m = _matrix(w)
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    q = u @ vh
    return (q * (m.norm() / q.norm())).reshape(w.shape).to(w.dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ghn", default="default")
    ap.add_argument("--graphs", type=int, default=None, help="only the first N held-out graphs")
    ap.add_argument("--baselines", type=Path, default=Path(__file__).parent / "results" / "train_baselines.json")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import torch
    from train_baselines import held_out_texts

    from mad.data import tasks
    from mad.ghn import load
    from mad.ghn.api import evaluate, recalibrate_batch_norm
    from mad.ghn.readout import readout_weight_name, refit_readout
    from mad.graph import ArchGraph
    from mad.train.data import TaskData
    from mad.train.objective import TaskSpec

    t0 = time.perf_counter()
    base = json.loads(args.baselines.read_text())
    ids = base["selection"]["ids"]["mnist5k"][:args.graphs]
    texts = held_out_texts(base, set(ids))
    ghn = load(args.ghn, device="cpu")
    spec = TaskSpec.of("mnist5k")
    data = TaskData(spec, batch_size=64)
    batches = [data.train_batch(k) for k in range(8)]

    def accuracy(g, state: dict, readout: bool) -> float:
        m = g.to_module()
        m.load_state_dict(state)
        recalibrate_batch_norm(m, [x for x, _ in batches])
        if readout:
            refit_readout(g, m, batches, spec.num_outputs)
        return float(evaluate(m, "mnist5k", "val", 500, data=data)["accuracy"])

    ways = ["default", "ghn", *(f"mix_{a:g}" for a in MIXES), "flat"]
    acc: dict[str, dict[str, list[float]]] = {w: {"direct": [], "readout": []} for w in ways}
    ranks: dict[str, list[float]] = {"default": [], "ghn": []}
    for i in ids:
        g = tasks.fit(ArchGraph.from_json(texts[i]), "mnist5k")
        torch.manual_seed(0)
        default = g.to_module().state_dict()
        module = ghn.predict(g, "mnist5k")
        pred = module.state_dict()
        head = readout_weight_name(g, module, spec.num_outputs)
        hidden = [k for k, v in pred.items() if v.is_floating_point() and v.dim() >= 2 and k != head
                  and float(v.norm()) > 0]
        states = {"default": default, "ghn": pred,
                  **{f"mix_{a:g}": {**pred, **{k: pred[k] + a * default[k] for k in hidden}} for a in MIXES},
                  "flat": {**pred, **{k: flat(pred[k]) for k in hidden}}}
        for w, state in states.items():
            for ro in ("direct", "readout"):
                acc[w][ro].append(accuracy(g, state, ro == "readout"))
        for k in hidden:
            if min(pred[k].shape[0], pred[k][0].numel()) >= 16 and float(default[k].norm()) > 0:
                ranks["ghn"].append(participation(pred[k]))
                ranks["default"].append(participation(default[k]))
        print(i, {w: round(acc[w]["readout"][-1], 3) for w in ways}, flush=True)

    out = {"task": "mnist5k", "graphs": len(ids), "examples": 500, "bn_batches": 8, "ghn": args.ghn,
           "accuracy": {w: {ro: statistics.fmean(v) for ro, v in d.items()} for w, d in acc.items()},
           "effective_rank": {w: {"weights": len(v), "median": statistics.median(v), "mean": statistics.fmean(v)}
                              for w, v in ranks.items()},
           "seconds": round(time.perf_counter() - t0, 1),
           "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                       "torch": torch.__version__}, "date": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("accuracy", "effective_rank")}, indent=1))


if __name__ == "__main__":
    main()
