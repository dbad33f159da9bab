"""Rebuild the shipped default dataset (mad/data/mad_default) exactly, from its seed.

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
    stats["workers"] = args.workers
    stats["rows"] = len(rows)
    stats["families"] = len({r["family"] for r in rows})
    stats["by_modality"] = dict(Counter(r["modality"] for r in rows).most_common())
    stats["by_source"] = dict(Counter(r["source"].split(":")[0] for r in rows).most_common())
    for key in ("num_params", "num_nodes", "flops"):
        vals = sorted(r[key] for r in rows)
        stats[key] = {"min": vals[0], "median": vals[len(vals) // 2], "max": vals[-1]} if vals else {}
    from mad.data.stats import dataset_stats

    full = dataset_stats(dd)
    stats["distinct_wl_fraction"] = full["distinct_wl_fraction"]
    stats["op_histogram_top25"] = dict(list(full["op_histogram"].items())[:25])
    stats["top_families"] = full["top_families"]
    out = export_parquet(dd, args.out, stats)
    size = sum(f.stat().st_size for f in out.glob("*.parquet")) / 2**20
    stats["size_mb"] = round(size, 2)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    write_card(stats, ROOT / "datasets" / "README.md")
    print(json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=1))
    print(f"wrote {out} ({size:.1f} MB)")


def write_card(stats: dict, path: Path) -> None:
    """Fill the dataset card's statistics block from ``stats`` (the rest of the card is prose)."""
    lines = [
        f"- rows: {stats['rows']:,} ({', '.join(f'{k} {v:,}' for k, v in stats['splits'].items())})",
        f"- families: {stats['families']:,}; held out as `ood`: {', '.join(stats['ood_families']) or 'none'}",
        f"- by source: {', '.join(f'{k} {v:,}' for k, v in stats['by_source'].items())}",
        f"- by modality: {', '.join(f'{k} {v:,}' for k, v in stats['by_modality'].items())}",
        f"- duplicates dropped (same WL hash): {stats['duplicates_dropped']:,}; specs that failed to build: "
        f"{stats['failures']:,}",
        f"- distinct WL hashes among rows: {stats['distinct_wl_fraction']:.1%}",
    ]
    for key in ("num_params", "num_nodes", "flops"):
        v = stats.get(key) or {}
        if v:
            lines.append(f"- {key}: min {v['min']:,}, median {v['median']:,}, max {v['max']:,}")
    lines.append(f"- most common ops: {', '.join(f'{k} {v:,}' for k, v in stats['op_histogram_top25'].items())}")
    lines.append(f"- size on disk: {stats['size_mb']} MB (zstd Parquet)")
    if stats.get("build_seconds"):
        note = f" ({stats['build_note']})" if stats.get("build_note") else ""
        lines.append(f"- build time: {stats['build_seconds'] / 60:.1f} min with {stats.get('workers', 2)} workers{note}")
    body = path.read_text()
    start, end = "<!-- stats:start -->", "<!-- stats:end -->"
    head, rest = body.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + start + "\n" + "\n".join(lines) + "\n" + end + tail)


if __name__ == "__main__":
    main()
