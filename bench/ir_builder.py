"""GraphBuilder growth: time to grow a 10,000-node graph op by op (target < 2 s).

    python bench/ir_builder.py [--nodes 10000]

Grows a deep pre-norm residual MLP (layer_norm -> linear -> gelu -> linear ->
add, repeated) with :class:`mad.graph.GraphBuilder`: every node is checked
and its shape inferred as it is added. Adding a node must cost O(1)
amortised, so the time per node of the last thousand nodes is printed next
to that of the first thousand (equal up to noise when nothing re-walks the
graph). Also times ``build()`` (one full validation) separately. Writes
bench/results/ir_builder.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def grow(n_nodes: int, width: int = 64) -> tuple[object, list[float]]:
    """Grow the graph; return the builder and the wall time at every 1,000th node."""
    from mad.graph import GraphBuilder

    b = GraphBuilder("deep-mlp")
    x = b.input("x", ("B", width))
    stamps = [time.perf_counter()]
    i = 0
    while len(b.graph.nodes) < n_nodes:
        with b.scope(f"blocks.{i}"):
            h = b.op("layer_norm", x, scope="norm")
            h = b.op("linear", h, out_features=2 * width, scope="fc1")
            h = b.op("gelu", h)
            h = b.op("linear", h, out_features=width, scope="fc2")
            x = b.op("add", x, h)
        i += 1
        while len(stamps) <= len(b.graph.nodes) // 1000:
            stamps.append(time.perf_counter())
    b.output(x)
    return b, stamps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--out", default=str(ROOT / "bench/results/ir_builder.json"))
    args = ap.parse_args()

    grow(200)  # warm imports and the op registry
    t0 = time.perf_counter()
    b, stamps = grow(args.nodes)
    grow_s = time.perf_counter() - t0
    per_k = [b - a for a, b in zip(stamps, stamps[1:])]
    t1 = time.perf_counter()
    g = b.build()
    build_s = time.perf_counter() - t1
    result = {
        "nodes": len(g.nodes),
        "edges": len(g.edges),
        "grow_seconds": round(grow_s, 3),
        "us_per_node": round(1e6 * grow_s / len(g.nodes), 1),
        "first_1000_ms": round(1e3 * per_k[0], 1) if per_k else None,
        "last_1000_ms": round(1e3 * per_k[-1], 1) if per_k else None,
        "build_validate_seconds": round(build_s, 3),
        "target_grow_seconds": 2.0,
        "meets_target": grow_s < 2.0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
