"""Benchmark of the node features: ``to_pyg`` + ``from_pyg`` over every shipped graph.

    python bench/features_roundtrip.py            # the shipped default dataset
    python bench/features_roundtrip.py --limit 200

Figures (written to bench/results/features_roundtrip.json):
- seconds for ``to_pyg`` and for ``from_pyg`` over the whole dataset, and per graph;
- the share of graphs that round-trip exactly (same JSON text, hence same
  ops, attrs, params, shapes, edges, inputs and outputs, and same WL hash);
- how much of the graph the tensors hold: the share of nodes with anything in
  the side band, and what it was (free text, constants' bytes, multi-output shapes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=None, help="only the first N graphs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "features_roundtrip.json")
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    from mad.data import load_default
    from mad.graph import ArchGraph
    from mad.graph.features import from_pyg, to_pyg

    torch.set_num_threads(1)
    dd = load_default()
    texts = [t for split in dd for t in dd[split]["graph"]][: args.limit]
    t_enc = t_dec = 0.0
    exact = same_hash = nodes = side_nodes = 0
    reasons: Counter = Counter()
    failures = []
    for text in tqdm(texts, desc="to_pyg + from_pyg", unit="graph"):
        g = ArchGraph.from_json(text)
        t0 = time.perf_counter()
        data = to_pyg(g)
        t1 = time.perf_counter()
        back = from_pyg(data)
        t2 = time.perf_counter()
        t_enc, t_dec = t_enc + t1 - t0, t_dec + t2 - t1
        ok = back.to_json() == g.to_json()
        exact += ok
        same_hash += back.wl_hash() == g.wl_hash()
        if not ok and len(failures) < 10:
            failures.append(g.name)
        nodes += len(g)
        side_nodes += len(data.side["nodes"])
        for i, entry in data.side["nodes"].items():
            op = g.nodes[data.node_ids[i]].op
            reasons.update(f"{op}.{k}" for k in entry.get("attrs", {}))
            reasons.update(f"{op}.{f}" for f in ("shape", "params", "attr_order") if f in entry)
    n = len(texts)
    summary = {
        "graphs": n,
        "nodes": nodes,
        "to_pyg_seconds": round(t_enc, 2),
        "from_pyg_seconds": round(t_dec, 2),
        "round_trip_seconds": round(t_enc + t_dec, 2),
        "ms_per_graph": round(1000 * (t_enc + t_dec) / max(n, 1), 2),
        "exact_round_trip_fraction": exact / max(n, 1),
        "same_wl_hash_fraction": same_hash / max(n, 1),
        "nodes_with_side_band_fraction": side_nodes / max(nodes, 1),
    }
    result = {"summary": summary, "side_band_reasons": dict(reasons.most_common()), "failures": failures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print("side band:", ", ".join(f"{k} {v}" for k, v in reasons.most_common(8)))


if __name__ == "__main__":
    main()
