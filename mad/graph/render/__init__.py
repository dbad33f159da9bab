"""Pictures of an ArchGraph: nested module clusters, readable labels, shapes on edges.

:func:`to_dot` builds the Graphviz DOT text; :func:`render` writes an SVG,
PNG or PDF (chosen by the file suffix) with the ``dot`` program, or, when
``dot`` is not installed, a simpler layered drawing with matplotlib.

What the picture shows:

- nodes grouped in nested clusters by ``scope`` (the module path); a cluster
  that would hold a single node is dropped and the node carries the module
  name instead;
- node labels with the op and its key attributes (``linear 64→128``,
  ``conv2d 3→16 3x3/2``, ``softmax dim=-1``) and the module name;
- colours by op kind: layers (own parameters) blue, activations orange,
  other primitives white, shape/movement ops small and grey, inputs and
  outputs green, free parameters small and yellow;
- edges labelled with the tensor shape (``1×16×64``; dtype when not float32);
  ``getitem`` nodes are folded into the edge label (``[0] 1×16×64``);
- ``depth=N`` collapses every node whose scope is N levels deep or deeper
  into one box per block (its scope's first N levels), labelled with the
  block name, op counts and parameter count. A numeric scope part joins the
  part before it (``encoder.layer.0`` has two levels: ``encoder``,
  ``layer.0``), so ``depth=2`` on BERT draws one box per encoder layer.

Large graphs: when ``depth`` is not given and the graph would draw more than
:data:`MAX_UNITS` boxes, the deepest depth that fits is chosen (and logged).

The work is split over :mod:`.style` (colours per node kind), :mod:`.labels`
(box and edge texts), :mod:`.picture` (boxes, edges, clusters, collapsing),
:mod:`.dot` (DOT text) and :mod:`.fallback` (matplotlib drawing); this module
picks the output format and the drawing program.

Example:
    >>> from mad.graph.render import render, to_dot
    >>> text = to_dot(g, depth=2)         # DOT source, no rendering
    >>> render(g, "bert.svg")            # nested clusters, all nodes
    >>> render(g, "bert.png", depth=2)   # one box per encoder layer
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..arch_graph import ArchGraph
from .dot import to_dot
from .fallback import _render_matplotlib
from .labels import human, op_detail, shape_text
from .picture import MAX_UNITS, choose_depth, scope_levels

__all__ = [
    "FORMATS",
    "MAX_UNITS",
    "choose_depth",
    "human",
    "op_detail",
    "render",
    "scope_levels",
    "shape_text",
    "to_dot",
]

log = logging.getLogger(__name__)

FORMATS = ("svg", "png", "pdf", "dot")


def _format_of(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise ValueError(f"cannot write {path.name!r}: unknown picture format {fmt!r}; use one of {list(FORMATS)}")
    return fmt


def render(g: ArchGraph, path: str | Path, depth: int | None = None, fmt: str | None = None) -> Path:
    """Draw ``g`` to ``path``; the format comes from ``fmt`` or the suffix (svg, png, pdf, dot).

    Uses Graphviz ``dot`` when installed; otherwise logs a warning and draws a
    layered picture with matplotlib (no clusters). Returns the written path.

    Raises:
        ValueError: unknown format or negative depth.
        GraphError: the graph has a cycle.
    """
    path = Path(path)
    fmt = _format_of(path, fmt)
    dot_text = to_dot(g, depth)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        path.write_text(dot_text)
        return path
    if shutil.which("dot") is None:
        log.warning(
            "Graphviz 'dot' is not installed; drawing %s with matplotlib instead (no module clusters). "
            "Install graphviz (e.g. `apt install graphviz`) for the full picture.",
            path.name,
        )
        _render_matplotlib(g, path, fmt, depth)
        return path
    import graphviz

    text = dot_text
    if fmt == "png":
        text = text.replace("  graph [", "  graph [dpi=110, ", 1)
    try:
        data = graphviz.Source(text, engine="dot").pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        log.warning("Graphviz 'dot' could not be run; drawing %s with matplotlib instead.", path.name)
        _render_matplotlib(g, path, fmt, depth)
        return path
    path.write_bytes(data)
    return path
