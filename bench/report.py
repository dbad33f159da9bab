"""Regenerate the README's benchmark table from bench/results/*.json.

    python bench/report.py          # rewrites the block between the bench markers in README.md
    python bench/report.py --print  # prints it instead

Each results file is summarised by the formatter registered for its name;
a file without one is listed with its scalar ``summary`` fields.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "n/a"


def _num(x: Any, unit: str = "") -> str:
    if isinstance(x, float):
        return f"{x:.2f}{unit}"
    return f"{x}{unit}" if x is not None else "n/a"


def _zoo(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", {})
    rows = []
    for key, target in (
        ("types", ""),
        ("instantiated", ""),
        ("forward_ok", ""),
        ("converted_validated_rate", ">= 90% of instantiable"),
        ("roundtrip_rate", ">= 80% of types"),
        ("capture_validate_median_s", "<= 1.5 s"),
        ("capture_vs_export_median_ratio", "<= 1.5x bare torch.export"),
        ("export_success_rate", "baseline"),
        ("onnx_success_rate", "baseline"),
        ("meta_7b_seconds", "<= 30 s"),
        ("meta_7b_peak_gib", "<= 2 GiB"),
    ):
        if key in s:
            v = s[key]
            text = _pct(v) if key.endswith("_rate") else _num(v)
            rows.append((key.replace("_", " "), text, target))
    return rows


def _dataset(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for part, target_key, target in (("zoo", "projected_minutes_for_5000", "5,000 in <= 30 min"),
                                     ("random", "projected_minutes_for_50000", "50,000 in <= 30 min")):
        p = d.get(part)
        if not p:
            continue
        rows.append((f"{part}: graphs/s (2 workers)", _num(p.get("graphs_per_second")), ""))
        rows.append((f"{part}: projected minutes", _num(p.get(target_key)), target))
        rows.append((f"{part}: validity of written rows", _pct(p.get("validity_fraction")), "100%"))
        rows.append((f"{part}: distinct WL hashes", _pct(p.get("distinct_wl_fraction")), ""))
        rows.append((f"{part}: MB on disk per 1,000 graphs", _num(p.get("disk_mb_per_1000")), ""))
        if p.get("memory_growth"):
            growth = ", ".join(f"{g['graphs']}: {g['peak_rss_mb']:.0f} MB" for g in p["memory_growth"])
            rows.append((f"{part}: peak RSS by graph count", growth, "flat"))
    return rows


FORMATTERS: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str]]]] = {
    "code2graph_zoo": _zoo,
    "dataset_build": _dataset,
}


def _generic(d: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = d.get("summary", d)
    return [(k, _num(v), "") for k, v in s.items() if isinstance(v, (int, float, str))][:12]


def table() -> str:
    lines = []
    for f in sorted(RESULTS.glob("*.json")):
        d = json.loads(f.read_text())
        rows = FORMATTERS.get(f.stem, _generic)(d)
        if not rows:
            continue
        lines += [f"**{f.stem}** (`bench/{f.stem}.py`)", "", "| figure | value | target |", "| --- | --- | --- |"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        lines.append("")
    return "\n".join(lines).strip() or "(no results yet: run the benchmarks in bench/)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--print", action="store_true")
    args = ap.parse_args()
    text = table()
    if args.print:
        print(text)
        return
    readme = ROOT / "README.md"
    body = readme.read_text()
    if START not in body or END not in body:
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    head, rest = body.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
