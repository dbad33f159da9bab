"""Layered matplotlib drawing of a picture, used when Graphviz ``dot`` is not available."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..arch_graph import ArchGraph
from .picture import MAX_UNITS, _picture, choose_depth
from .style import _STYLE


def _render_matplotlib(g: ArchGraph, path: Path, fmt: str, depth: int | None) -> None:
    """Layered drawing without Graphviz: rows by longest path, boxes coloured like the DOT picture."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if depth is None:
        depth = choose_depth(g, MAX_UNITS)
    pic = _picture(g, depth)
    preds: dict[str, list[str]] = defaultdict(list)
    for link in pic.links:
        preds[link.dst].append(link.src)
    order = list(pic.units)
    rank: dict[str, int] = {}
    pending = set(order)
    while pending:  # the units form a DAG because the graph does (blocks may merge; guard anyway)
        progressed = False
        for key in order:
            if key in pending and all(p in rank or p == key for p in preds[key]):
                rank[key] = 1 + max((rank[p] for p in preds[key] if p != key), default=-1)
                pending.discard(key)
                progressed = True
        if not progressed:
            for key in pending:
                rank[key] = max(rank.values(), default=0) + 1
            break
    rows: dict[int, list[str]] = defaultdict(list)
    for key in order:
        rows[rank[key]].append(key)
    width = max(len(r) for r in rows.values())
    pos = {}
    for r, keys in rows.items():
        for i, key in enumerate(keys):
            pos[key] = ((i - (len(keys) - 1) / 2) * 2.6, -r * 1.0)
    fig = Figure(figsize=(min(2.0 + 2.6 * width, 200), min(1.5 + 1.0 * len(rows), 300)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    for link in pic.links:
        if link.invisible:
            continue
        (x0, y0), (x1, y1) = pos[link.src], pos[link.dst]
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0 - 0.22),
                (x1, y1 + 0.22),
                arrowstyle="-|>",
                mutation_scale=8,
                color="#7d8794",
                lw=0.8,
                linestyle="--" if link.dashed else "-",
            )
        )
        if link.labels:
            ax.text(
                (x0 + x1) / 2 + 0.05,
                (y0 + y1) / 2,
                link.labels[0],
                fontsize=6,
                color="#55606e",
                ha="left",
                va="center",
                zorder=1.5,
            )
    for key, u in pic.units.items():
        fill, border, size = _STYLE[u.kind]
        x, y = pos[key]
        ax.add_patch(
            FancyBboxPatch((x - 1.1, y - 0.22), 2.2, 0.44, boxstyle="round,pad=0.02", fc=fill, ec=border, zorder=2)
        )
        text = u.title + (f"\n{u.detail}" if u.detail else "")
        ax.text(x, y, text, ha="center", va="center", fontsize=max(size - 3, 5), zorder=3)
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.4, max(xs) + 1.4)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.8)
    ax.text((min(xs) + max(xs)) / 2, max(ys) + 0.55, pic.title, ha="center", fontsize=9)
    fig.savefig(path, format=fmt, dpi=100)
