"""Rebuild the shipped default dataset (datasets/mad-default) exactly, from its seed.

    python datasets/build_default.py [--workers 2] [--work-dir /tmp/mad-default-build]

Builds ``mad.data.default.DEFAULT_CONFIG`` (resumable: rerun after an
interruption), then writes one Parquet file per split and ``stats.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from mad.data.builder import SPLITS, build
    from mad.data.default import DEFAULT_CONFIG, DEFAULT_DIR, export_parquet

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work-dir", default="/tmp/mad-default-build")
    ap.add_argument("--out", default=str(DEFAULT_DIR))
    args = ap.parse_args()
    cfg = dataclasses.replace(DEFAULT_CONFIG, workers=args.workers)
    dd = build(cfg, args.work_dir)
    stats = json.loads((Path(args.work_dir) / "stats.json").read_text())
    rows = [r for s in SPLITS for r in dd[s].select_columns(["family", "modality", "source", "num_params",
                                                              "num_nodes", "flops"])]
    stats["config"] = cfg.identity()
    stats["rows"] = len(rows)
    stats["families"] = len({r["family"] for r in rows})
    stats["by_modality"] = dict(Counter(r["modality"] for r in rows).most_common())
    stats["by_source"] = dict(Counter(r["source"].split(":")[0] for r in rows).most_common())
    for key in ("num_params", "num_nodes", "flops"):
        vals = sorted(r[key] for r in rows)
        stats[key] = {"min": vals[0], "median": vals[len(vals) // 2], "max": vals[-1]} if vals else {}
    out = export_parquet(dd, args.out, stats)
    size = sum(f.stat().st_size for f in out.glob("*.parquet")) / 2**20
    print(json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=1))
    print(f"wrote {out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
