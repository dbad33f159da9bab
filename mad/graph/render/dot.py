"""Graphviz DOT text of a picture: styled boxes, nested module clusters, shape-labelled edges."""

from __future__ import annotations

import html
import logging

from ..arch_graph import ArchGraph
from .labels import human
from .picture import MAX_UNITS, _picture, _prune_clusters, _Unit, choose_depth
from .style import _CLUSTER_FILLS, _STYLE

log = logging.getLogger(__name__)

_LABEL_EDGES_UP_TO = 200  # up to this many drawn edges, shapes are edge labels placed by the layout
_XLABEL_EDGES_UP_TO = 1000  # up to this many, labels placed after layout (much faster); beyond, none
_FONT = "Helvetica,Arial,sans-serif"


# ----------------------------------------------------------------- DOT
def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _h(s: str) -> str:
    return html.escape(s, quote=True)


def _unit_dot(u: _Unit, ident: str) -> str:
    fill, border, size = _STYLE[u.kind]
    small = max(size - 2, 7)
    if u.kind == "parameter":  # one compact line
        rows = [_h(u.title) + (f' <FONT COLOR="#6b5a12">{_h(u.detail)}</FONT>' if u.detail else "")]
    else:
        rows = [f"<B>{_h(u.title)}</B>"]
    if u.detail and u.kind != "parameter":
        rows.append(f'<FONT POINT-SIZE="{small}">{_h(u.detail)}</FONT>')
    if u.note:
        rows.append(f'<FONT POINT-SIZE="{small}" COLOR="#5f6b7a"><I>{_h(u.note)}</I></FONT>')
    label = "<" + "<BR/>".join(rows) + ">"
    attrs = [
        f"label={label}",
        f'fillcolor="{fill}"',
        f'color="{border}"',
        f"fontsize={size}",
        f"tooltip={_q(u.tooltip or u.title)}",
    ]
    if u.kind == "parameter":
        attrs += ["shape=box", 'style="filled"', "height=0.15", "width=0.3", 'margin="0.09,0.03"']
    elif u.kind == "shape":
        attrs += ['style="rounded,filled"', "height=0.25", 'margin="0.06,0.02"']
    elif u.kind in ("input", "output"):
        attrs += ["shape=box", 'style="rounded,filled,bold"', "penwidth=1.4"]
    elif u.kind == "ref":
        attrs += ['style="rounded,dashed,filled"', 'fontcolor="#55606e"', "height=0.2", 'margin="0.05,0.02"']
    elif u.kind == "block":
        attrs += ["shape=box3d", 'style="filled"', 'margin="0.14,0.06"']
    elif u.kind in ("layer", "attention"):
        attrs += ['style="rounded,filled,bold"', "penwidth=1.3"]
    else:
        attrs += ['style="rounded,filled"']
    return f"  {ident} [{', '.join(attrs)}];"


def to_dot(g: ArchGraph, depth: int | None = None, *, max_units: int = MAX_UNITS, rankdir: str = "TB") -> str:
    """Graphviz DOT text of the picture of ``g`` (see the module docstring).

    Args:
        g: the graph; shapes are read from the nodes, or inferred on a copy.
        depth: collapse scopes at this many levels into one box per block;
            ``None`` draws every node, unless that exceeds ``max_units``
            boxes, in which case :func:`choose_depth` picks a depth.
        max_units: box budget for the automatic collapse (``0`` disables it).
        rankdir: ``"TB"`` (top to bottom) or ``"LR"``.

    Raises:
        ValueError: ``depth`` is negative.
        GraphError: the graph has a cycle.
    """
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    g.topo_order()  # cycles make no picture; fail with the node name
    if depth is None and max_units:
        auto = choose_depth(g, max_units)
        if auto is not None:
            log.info(
                "%s has %d nodes; drawing it collapsed to depth %d (pass depth to change)", g.name, len(g.nodes), auto
            )
            depth = auto
    pic = _picture(g, depth)
    placement = _prune_clusters(pic)
    ident = {key: f"n{i}" for i, key in enumerate(pic.units)}
    n_links = len(pic.links)
    label_key = "label" if n_links <= _LABEL_EDGES_UP_TO else "xlabel" if n_links <= _XLABEL_EDGES_UP_TO else None

    lines = [
        f"digraph {_q(g.name)} {{",
        (
            f'  graph [rankdir={rankdir}, newrank=true, fontname="{_FONT}", fontsize=13, labelloc=t, labeljust=l, '
            f'nodesep=0.22, ranksep=0.32, pad=0.25, bgcolor="white", label={_q(pic.title)}];'
        ),
        f'  node [shape=box, fontname="{_FONT}", margin="0.1,0.04", height=0.3, penwidth=1.0];',
        f'  edge [fontname="{_FONT}", fontsize=8, fontcolor="#55606e", color="#7d8794", arrowsize=0.6, penwidth=0.9];',
    ]
    counter = [0]

    def emit(path: tuple[str, ...], indent: str) -> None:
        for key in placement.get(path, []):
            lines.append(indent + _unit_dot(pic.units[key], ident[key]).lstrip())
        kids = [p for p in placement if len(p) == len(path) + 1 and p[: len(path)] == path]
        for c in kids:
            counter[0] += 1
            fill = _CLUSTER_FILLS[(len(c) - 1) % len(_CLUSTER_FILLS)]
            params = pic.cluster_params.get(c, 0)
            label = (
                f"<<B>{_h(c[-1])}</B>"
                + (f' <FONT POINT-SIZE="9" COLOR="#5f6b7a">{human(params)} params</FONT>' if params else "")
                + ">"
            )
            lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
            lines.append(
                f'{indent}  label={label}; style="rounded,filled"; fillcolor="{fill}"; '
                f'color="#b7c0cc"; fontsize=11; tooltip={_q(".".join(c))};'
            )
            emit(c, indent + "  ")
            lines.append(f"{indent}}}")

    emit((), "  ")
    for link in pic.links:
        attrs = []
        if link.labels and label_key:
            text = link.labels[0] + (f" (+{len(link.labels) - 1})" if len(link.labels) > 1 else "")
            attrs.append(f"{label_key}={_q(' ' + text)}")
        if link.invisible:
            attrs = ["style=invis", "arrowhead=none"]
        elif link.dashed:
            attrs += ["style=dashed", 'color="#c9a92c"', "arrowsize=0.4"]
        lines.append(f"  {ident[link.src]} -> {ident[link.dst]}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
