"""Benchmark of the MAD dataset builder: throughput, memory, size, validity, diversity.

Builds a zoo part and a random part separately (each in its own directory, with
``--workers`` processes), then reloads what was written and re-checks a sample.

    python bench/dataset_build.py --zoo-types 40 --variants 2 --random 2000 --workers 2

Figures (written to bench/results/dataset_build.json):
- graphs per second for the zoo and the random space, and the time projected
  for 5,000 zoo graphs and 50,000 random graphs at that rate;
- peak RSS of the build (parent + workers) at several points of the random
  build, to show whether memory stays flat as the count grows;
- size on disk per 1,000 graphs (saved Arrow dataset);
- validity: fraction of written rows that validate, compile and run forward
  when re-checked from disk (a sample), and the fraction of specs that failed;
- diversity: distinct WL hashes / rows, and the op histogram.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(me, kids) / 1024


def _dir_mb(p: Path) -> float:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20


def _part(name: str, cfg, out: Path, check: int) -> dict:
    from mad.data.builder import build, check_graph
    from mad.graph import ArchGraph

    t0 = time.perf_counter()
    dd = build(cfg, out, progress=True, overwrite=True)
    secs = time.perf_counter() - t0
    stats = json.loads((out / "stats.json").read_text())
    rows = sum(len(dd[s]) for s in dd)
    written = stats["rows_written"]
    ops: Counter = Counter()
    hashes = set()
    checked = ok = 0
    for split in dd:
        for i, row in enumerate(dd[split]):
            hashes.add(row["wl_hash"])
            g = ArchGraph.from_json(row["graph"])
            ops.update(n.op for n in g)
            if checked < check:
                checked += 1
                try:
                    check_graph(g)
                    ok += 1
                except Exception as e:  # noqa: BLE001
                    logging.error("%s: row %s fails its re-check: %s", name, row["id"], e)
    specs = written + stats["failures"]
    return {
        "specs": specs,
        "rows_written": written,
        "rows_after_dedup": rows,
        "spec_failures": stats["failures"],
        "seconds": round(secs, 1),
        "graphs_per_second": round(written / secs, 2) if secs else None,
        "disk_mb": round(_dir_mb(out / "data"), 2),
        "disk_mb_per_1000": round(_dir_mb(out / "data") / max(rows, 1) * 1000, 2),
        "validity_rechecked": checked,
        "validity_fraction": (ok / checked) if checked else None,
        "distinct_wl_fraction": round(len(hashes) / max(rows, 1), 4),
        "op_histogram_top20": dict(ops.most_common(20)),
        "splits": stats["splits"],
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo-types", type=int, default=30, help="how many zoo model types (0 = none, -1 = all)")
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--random", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=128)
    ap.add_argument("--check", type=int, default=200, help="rows re-checked from disk per part")
    ap.add_argument("--out", default=str(ROOT / "bench/results/dataset_build.json"))
    ap.add_argument("--keep", default=None, help="keep the built datasets under this directory")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from mad.data.builder import BuildConfig

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="mad-bench-"))
    result: dict = {"config": vars(args), "cpu_count": os.cpu_count()}
    if args.zoo_types:
        from mad.code2graph.hf_zoo import model_types

        types = model_types()
        if args.zoo_types > 0:
            step = max(1, len(types) // args.zoo_types)
            types = types[::step][: args.zoo_types]
        cfg = BuildConfig(zoo_types=types, variants=args.variants, workers=args.workers, shard_size=args.shard_size)
        result["zoo"] = _part("zoo", cfg, tmp / "zoo", args.check)
        rate = result["zoo"]["graphs_per_second"] or 0
        result["zoo"]["projected_minutes_for_5000"] = round(5000 / rate / 60, 1) if rate else None
    if args.random:
        cfg = BuildConfig(random_count=args.random, workers=args.workers, shard_size=args.shard_size)
        result["random"] = _part("random", cfg, tmp / "random", args.check)
        rate = result["random"]["graphs_per_second"] or 0
        result["random"]["projected_minutes_for_50000"] = round(50000 / rate / 60, 1) if rate else None
        # memory as the count grows: peak RSS of builds of increasing size
        growth = []
        for n in sorted({max(args.random // 4, 1), max(args.random // 2, 1), args.random}):
            import subprocess

            code = (
                "import resource,sys;sys.path.insert(0,%r);from mad.data.builder import BuildConfig,build;"
                "build(BuildConfig(random_count=%d,workers=1,shard_size=%d),%r,progress=False,overwrite=True);"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
            ) % (str(ROOT), n, args.shard_size, str(tmp / f"growth{n}"))
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            growth.append({"graphs": n, "peak_rss_mb": round(float(out.stdout.strip().splitlines()[-1]), 1)})
        result["random"]["memory_growth"] = growth
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "op_histogram_top20"} if isinstance(v, dict) else v
                      for k, v in result.items() if k != "config"}, indent=1))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
