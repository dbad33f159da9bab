"""``mad info``, ``mad show``, ``mad code``, ``mad ops``: look at a graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import CliError, log, _busy, _command, _emit_json, _first_line, _human, _load_graph, _stdout


# ----------------------------------------------------------------- info
@_command
def info(
    graph: Annotated[Path, typer.Argument(metavar="GRAPH", help="Graph JSON file (from `mad convert`).")],
    top: Annotated[int, typer.Option("--top", metavar="N", help="Rows of the op histogram to show.")] = 12,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Nodes, edges, parameters, FLOPs, depth, inputs/outputs and op histogram of a graph."""
    from mad.graph import get_op

    g, s = _load_graph(graph)
    categories: dict[str, int] = {}
    for n in g.nodes.values():
        cat = get_op(n.op).category
        categories[cat] = categories.get(cat, 0) + 1
    keys = g.output_keys or [None] * len(g.outputs)
    data = {
        "file": str(graph),
        "name": g.name,
        "source": g.source,
        **s.as_dict(),
        "categories": categories,
        "inputs": [{"name": i.name, "shape": i.shape, "dtype": i.dtype} for i in g.inputs],
        "outputs": [
            {"node": o, "key": k, "shape": g.nodes[o].shape, "dtype": g.nodes[o].dtype} for o, k in zip(g.outputs, keys)
        ],
        "output_kind": g.output_kind,
        "dims": dict(g.dims),
    }
    if g.meta.get("specialised_dims"):
        data["specialised_dims"] = g.meta["specialised_dims"]
    if s.unchecked:
        data["unchecked_shapes"] = s.unchecked
    if as_json:
        _emit_json(data)
        return
    from mad.graph.render import shape_text

    out = _stdout()
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("graph", f"{g.name}" + (f"  [dim]({g.source})[/dim]" if g.source else ""))
    head.add_row(
        "nodes", f"{s.num_nodes:,}  [dim]" + ", ".join(f"{k} {v}" for k, v in sorted(categories.items())) + "[/]"
    )
    head.add_row("edges", f"{s.num_edges:,}")
    head.add_row("params", f"{_human(s.num_params)}  [dim]({s.num_params:,})[/dim]")
    at = ", ".join(f"{k}={v}" for k, v in g.dims.items())
    head.add_row("FLOPs", f"{_human(s.flops)}  [dim]({s.flops:,} per forward{f' at {at}' if at else ''})[/dim]")
    if g.dims:
        head.add_row("dims", ", ".join(f"{k} (example {v})" for k, v in g.dims.items()) + "  [dim]symbolic: any size[/dim]")
    if g.meta.get("specialised_dims"):
        head.add_row("fixed", ", ".join(sorted(g.meta["specialised_dims"])) + "  [dim]export kept these sizes concrete[/dim]")
    head.add_row("depth", f"{s.depth}  [dim](longest path, in ops)[/dim]")
    for i in g.inputs:
        head.add_row("input", f"{i.name}  {shape_text(i.shape, i.dtype) or 'scalar'}")
    for o, k in zip(g.outputs, keys):
        node = g.nodes[o]
        head.add_row("output", f"{k or o}  {shape_text(node.shape, node.dtype)}")
    out.print(head)
    hist = Table(title="ops", title_justify="left", show_edge=False, pad_edge=False)
    hist.add_column("op")
    hist.add_column("count", justify="right")
    hist.add_column("category", style="dim")
    items = list(s.as_dict()["op_histogram"].items())
    for op, count in items[:top]:
        hist.add_row(op, str(count), get_op(op).category)
    if len(items) > top:
        hist.add_row(f"… {len(items) - top} more", str(sum(c for _, c in items[top:])), "")
    out.print(hist)


# ----------------------------------------------------------------- show
@_command
def show(
    graph: Annotated[Path, typer.Argument(metavar="GRAPH", help="Graph JSON file.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Picture to write: .svg, .png, .pdf or .dot.")
    ] = None,
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth", "-d", min=0, metavar="N", help="Collapse scopes this many levels deep into one box per block."
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", metavar="FORMAT", help="svg, png, pdf or dot (default: from the suffix).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Draw a graph: nested module clusters, op labels, tensor shapes on edges."""
    from mad.graph.render import FORMATS, choose_depth, render

    output = output or graph.with_suffix(".svg")
    kind = (fmt or output.suffix.lstrip(".")).lower()
    if kind not in FORMATS and kind != "gv":
        raise CliError(f"cannot write {output}: unknown picture format {kind!r}; use one of {', '.join(FORMATS)}")
    g, _ = _load_graph(graph)
    auto = depth is None and choose_depth(g) is not None
    used = choose_depth(g) if auto else depth
    if auto:
        log.warning("%s has %d nodes: drawing it collapsed to depth %d (pass --depth to choose)", graph, len(g), used)
    with _busy(f"Drawing {len(g)} nodes…"):
        path = render(g, output, depth=used, fmt=fmt)
    size = path.stat().st_size
    if as_json:
        _emit_json({"path": str(path), "format": kind, "depth": used, "nodes": len(g), "bytes": size})
        return
    _stdout().print(
        f"wrote [bold]{path}[/bold] ({_human(size)}B, {len(g)} nodes"
        + (f", depth {used}" if used is not None else "")
        + ")"
    )


# ----------------------------------------------------------------- code
@_command
def code(
    graph: Annotated[Path, typer.Argument(metavar="GRAPH", help="Graph JSON file.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the code here instead of stdout.")
    ] = None,
    class_name: Annotated[
        str | None, typer.Option("--class-name", metavar="NAME", help="Name of the generated nn.Module class.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Readable PyTorch source of an nn.Module equivalent to the graph."""
    g, _ = _load_graph(graph, shapes=False)
    try:
        text = g.to_code(class_name=class_name)
    except ImportError as e:
        raise CliError(f"code generation is not available in this install ({_first_line(e)})", code=1) from None
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    if as_json:
        _emit_json({"path": str(output) if output else None, "name": g.name, "code": text})
    elif output is not None:
        _stdout().print(f"wrote [bold]{output}[/bold] ({len(text.splitlines())} lines)")
    else:
        typer.echo(text, nl=not text.endswith("\n"))


# ----------------------------------------------------------------- ops
@_command
def ops(
    pattern: Annotated[
        str | None, typer.Argument(metavar="PATTERN", help="Only ops whose name contains this text.")
    ] = None,
    category: Annotated[
        str | None,
        typer.Option(
            "--category", "-c", metavar="CATEGORY", help="Only this category: layer, primitive, source or structural."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """List the op vocabulary with category, inputs, attributes and documentation."""
    from mad.graph import VOCAB_VERSION, get_op, op_id, op_names

    rows = []
    for name in op_names():
        op = get_op(name)
        if pattern and pattern.lower() not in name.lower():
            continue
        if category and op.category != category:
            continue
        rows.append(
            {
                "name": name,
                "id": op_id(name),
                "category": op.category,
                "inputs": [a.name for a in op.args if a.name not in op.param_args],
                "params": list(op.param_args),
                "attrs": sorted(op.attrs),
                "doc": op.doc,
            }
        )
    if category and not rows and category not in {get_op(n).category for n in op_names()}:
        raise CliError(f"unknown category {category!r}; use layer, primitive, source or structural")
    if as_json:
        _emit_json({"vocab_version": VOCAB_VERSION, "count": len(rows), "ops": rows})
        return
    table = Table(
        title=f"op vocabulary v{VOCAB_VERSION}: {len(rows)} ops",
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    table.add_column("op", style="bold", no_wrap=True)
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("category", style="cyan", no_wrap=True)
    table.add_column("inputs / params; attrs", overflow="fold", ratio=2)
    table.add_column("doc", overflow="fold", ratio=1)
    for r in rows:
        sig = ", ".join(r["inputs"] + [f"[dim]{p}[/dim]" for p in r["params"]])
        if r["attrs"]:
            sig += "; [dim]" + ", ".join(r["attrs"]) + "[/dim]"
        table.add_row(r["name"], str(r["id"]), r["category"], sig, r["doc"].removeprefix("torch.ops."))
    _stdout().print(table)
