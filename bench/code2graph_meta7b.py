"""A 7B-parameter Llama-style config captured on the meta device: time and peak memory.

    python bench/code2graph_meta7b.py

Runs the capture in a fresh process (so the peak RSS is the capture's own,
imports included), then `validate()` and `infer()`. Targets: <= 30 s and
<= 2 GiB peak. Writes bench/results/code2graph_meta7b.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
sys.path.insert(0, ROOT)
from mad.code2graph import from_hf
t_import = time.perf_counter() - t0
t1 = time.perf_counter()
g = from_hf("llama", device="meta", small=False)  # transformers' default Llama config: the 7B shape
t_capture = time.perf_counter() - t1
t2 = time.perf_counter()
g.validate()
s = g.infer()
t_validate = time.perf_counter() - t2
print(json.dumps({"nodes": len(g.nodes), "num_params": s.num_params, "flops": s.flops,
                  "import_s": t_import, "capture_s": t_capture, "validate_s": t_validate,
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD.replace("ROOT", repr(str(ROOT)))],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["total_s"] = r["import_s"] + r["capture_s"] + r["validate_s"]
    r["summary"] = {
        "meta_7b_seconds": round(r["capture_s"] + r["validate_s"], 2),
        "meta_7b_seconds_with_imports": round(r["total_s"], 2),
        "meta_7b_peak_gib": round(r["peak_rss_gib"], 3),
        "meta_7b_params_billion": round(r["num_params"] / 1e9, 3),
        "meta_7b_nodes": r["nodes"],
    }
    path = ROOT / "bench" / "results" / "code2graph_meta7b.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r, indent=1))
    print(json.dumps(r["summary"], indent=1))


if __name__ == "__main__":
    main()
