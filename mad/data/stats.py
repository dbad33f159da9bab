"""Statistics of a MAD dataset and lookup of one row (for ``mad dataset info/show``)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

__all__ = ["dataset_stats", "find_row"]


def _spread(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    v = sorted(values)
    return {"min": v[0], "median": v[len(v) // 2], "max": v[-1]}


def dataset_stats(dd: Any, op_histogram: bool = True) -> dict[str, Any]:
    """Rows per split, families, modalities, sources, size spreads, diversity and op histogram."""
    cols = ["family", "modality", "source", "num_params", "num_nodes", "num_edges", "flops", "wl_hash"]
    rows = [r for split in dd for r in dd[split].select_columns(cols)]
    ops: Counter = Counter()
    if op_histogram:
        for split in dd:
            for text in dd[split]["graph"]:
                ops.update(n["op"] for n in json.loads(text)["nodes"])
    return {
        "rows": len(rows),
        "splits": {s: len(dd[s]) for s in dd},
        "families": len({r["family"] for r in rows}),
        "by_modality": dict(Counter(r["modality"] for r in rows).most_common()),
        "by_source": dict(Counter(r["source"].split(":")[0] for r in rows).most_common()),
        "top_families": dict(Counter(r["family"] for r in rows).most_common(10)),
        "num_params": _spread([r["num_params"] for r in rows]),
        "num_nodes": _spread([r["num_nodes"] for r in rows]),
        "num_edges": _spread([r["num_edges"] for r in rows]),
        "flops": _spread([r["flops"] for r in rows]),
        "distinct_wl_fraction": round(len({r["wl_hash"] for r in rows}) / max(len(rows), 1), 4),
        "op_histogram": dict(ops.most_common()),
    }


def find_row(dd: Any, row_id: str) -> dict[str, Any]:
    """The row with ``id == row_id`` in any split; KeyError with near matches otherwise."""
    for split in dd:
        ids = dd[split]["id"]
        if row_id in ids:
            return dict(dd[split][ids.index(row_id)])
    every = [i for split in dd for i in dd[split]["id"]]
    near = [i for i in every if row_id in i][:5] or every[:5]
    raise KeyError(f"no row with id {row_id!r}; e.g. {near}")
