"""Benchmark: is the IR ready for learning? Symbolic sizes, train/eval modes, the shipped graphs.

    python bench/ir_learning.py [--limit N]

Figures (written to bench/results/ir_learning.json):
- hand-written nets (CNN with BatchNorm, ViT with a class token, GPT with
  learned positions, MLP-Mixer, MLP; tests/graph/nets.py) captured once at
  batch 2: outputs equal to the source at batch 1 and 8 (token models also at
  a shorter sequence), and in train mode outputs and updated running
  statistics equal to the source's on the same batch;
- the shipped dataset's zoo graphs: share that run forward at batch 1 and 4
  with output shapes equal to their symbolic shapes at those sizes
  (baseline: the same graphs with their batch dim frozen, as captured before
  symbolic dims, run at batch 1 and 4);
- the same for the shipped random-space graphs.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "graph"))


def hand_written() -> dict[str, Any]:
    import torch

    from mad.code2graph import from_module
    from nets import at_batch, nets  # tests/graph/nets.py

    out: dict[str, Any] = {}
    for name, (m, args) in nets().items():
        row: dict[str, Any] = {}
        m.eval()
        g = from_module(m, args)
        g.validate()
        row["dims"] = dict(g.dims)
        rebuilt = g.to_module()
        rebuilt.load_state_dict(m.state_dict())
        sizes = [(1, None), (8, None)] + ([(8, 5)] if not args[0].dtype.is_floating_point else [])
        errs = {}
        for b, t in sizes:
            x = at_batch(args, b, t)
            with torch.no_grad():
                errs[f"B={b}" + (f",T={t}" if t else "")] = float((rebuilt(*x) - m(*x)).abs().max())
        row["eval_max_abs_err"] = errs
        src = copy.deepcopy(m).train()
        rb = g.to_module()
        rb.load_state_dict(src.state_dict())
        rb.train()
        x = at_batch(args, 8)
        torch.manual_seed(3)
        want = src(*x)
        torch.manual_seed(3)
        got = rb(*x)
        row["train_max_abs_err"] = float((got - want).abs().max())
        sd = rb.state_dict()
        row["train_state_max_abs_err"] = max(
            (float((sd[k].float() - v.float()).abs().max()) for k, v in src.state_dict().items()), default=0.0
        )
        row["ok"] = max(errs.values()) <= 1e-5 and row["train_max_abs_err"] <= 1e-5 and row["train_state_max_abs_err"] <= 1e-6
        out[name] = row
        print(f"  {name:8s} eval {errs}  train {row['train_max_abs_err']:.2e}  state {row['train_state_max_abs_err']:.2e}")
    return out


def _runs_at(g: Any, batch: int, frozen: bool = False) -> tuple[bool, str]:
    """Forward at ``batch`` with output shapes as the graph says (``frozen``: dim 0 of every
    input cut or tiled to ``batch``, and outputs must lead with ``batch``)."""
    import torch

    from mad.graph.symbolic import concrete

    try:
        m = g.to_module()
        x = g.example_inputs(seed=0, dims={"B": batch})
        if frozen:
            x = tuple(torch.cat([t] * batch)[:batch] if t.dim() else t for t in x)
        with torch.no_grad():
            out = m(*x)
        outs = out if isinstance(out, (tuple, list)) else (list(out.values()) if isinstance(out, dict) else [out])
        sizes = {**g.dims, "B": batch}
        for nid, t in zip(g.outputs, outs):
            want = concrete(g.nodes[nid].shape, sizes)
            if frozen and isinstance(want, list) and want:
                want = [batch] + want[1:]
            if isinstance(t, torch.Tensor) and list(t.shape) != want:
                return False, f"output {nid} has shape {list(t.shape)}, symbolic shape gives {want}"
        return True, ""
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__


def _frozen(g: Any) -> Any:
    """The graph as captured before symbolic dims: every symbol replaced by its example size."""
    from mad.graph import ArchGraph
    from mad.graph.symbolic import concrete

    d = g.to_dict()
    dims = d.pop("dims", {})

    def fix(v: Any) -> Any:
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, str):
            try:
                return concrete(v, dims)
            except Exception:  # noqa: BLE001 - a string attr, not a size
                return v
        return v

    for s in d["inputs"]:
        s["shape"] = fix(s["shape"])
    for n in d["nodes"]:
        n.pop("shape", None)
        for k, v in list(n.get("attrs", {}).items()):
            if k not in ("equation", "reduce", "padding_mode", "approximate", "rounding_mode", "name", "kind", "dtype",
                         "memory_format", "layout", "indexing", "padding", "mode", "side", "dim_param"):
                n["attrs"][k] = fix(v)
    return ArchGraph.from_dict(d)


def shipped(limit: int | None) -> dict[str, Any]:
    from mad.data import load_default
    from mad.graph import ArchGraph

    dd = load_default()
    rows = [r for s in dd for r in dd[s].select_columns(["id", "source", "graph"])]
    groups = {"zoo": [r for r in rows if not r["source"].startswith("random")],
              "random": [r for r in rows if r["source"].startswith("random")]}
    out: dict[str, Any] = {}
    for part, sel in groups.items():
        sel = sel[:limit] if limit else sel
        t0 = time.perf_counter()
        ok = frozen_ok = symbolic = 0
        failures: dict[str, str] = {}
        for r in sel:
            g = ArchGraph.from_json(r["graph"])
            symbolic += bool(g.dims)
            good = True
            for b in (1, 4):
                fine, why = _runs_at(g, b, frozen="B" not in g.dims)
                if not fine:
                    good = False
                    failures.setdefault(r["id"], f"B={b}: {why}")
                    break
            ok += good
            try:
                fz = _frozen(g)
                frozen_ok += all(_runs_at(fz, b, frozen=True)[0] for b in (1, 4))
            except Exception:  # noqa: BLE001
                pass
        n = max(len(sel), 1)
        out[part] = {
            "graphs": len(sel),
            "with_symbolic_dims": symbolic,
            "run_at_batch_1_and_4": ok,
            "rate": round(ok / n, 4),
            "baseline_frozen_batch_rate": round(frozen_ok / n, 4),
            "seconds": round(time.perf_counter() - t0, 1),
            "failures": dict(list(failures.items())[:40]),
        }
        print(f"  {part}: {ok}/{len(sel)} run at batch 1 and 4 ({ok / n:.1%}); frozen-batch baseline "
              f"{frozen_ok / n:.1%}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="graphs per part of the shipped dataset")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ir_learning.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    result: dict[str, Any] = {"torch": torch.__version__}
    print("hand-written nets, captured at batch 2:")
    result["hand_written"] = hand_written()
    print("shipped dataset graphs:")
    result["shipped"] = shipped(args.limit)
    result["summary"] = {
        "hand_written_ok": sum(r["ok"] for r in result["hand_written"].values()),
        "hand_written": len(result["hand_written"]),
        "zoo_rate_batch_1_and_4": result["shipped"]["zoo"]["rate"],
        "zoo_baseline_frozen_rate": result["shipped"]["zoo"]["baseline_frozen_batch_rate"],
        "random_rate_batch_1_and_4": result["shipped"]["random"]["rate"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
