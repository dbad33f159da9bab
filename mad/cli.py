"""The ``mad`` command: convert models to graphs, inspect, draw and print them.

Commands::

    mad convert SOURCE -o graph.json [--set key=value ...] [--device meta] [--input-shape 1,3,32,32]
    mad info graph.json
    mad show graph.json -o graph.svg|png|pdf|dot [--depth N]
    mad code graph.json [-o model.py]
    mad ops [PATTERN] [--category layer]
    mad dataset build OUT [--zoo all] [--variants N] [--random N] [--workers 2]
    mad dataset info DIR|default ; mad dataset show DIR|default ID -o graph.svg

SOURCE is a HuggingFace model type (``bert``: built small from its config,
random weights, nothing downloaded), ``path/file.py:ClassName[:args]`` (the
class is imported from the file and instantiated with ``args``, e.g.
``net.py:MLP:64,depth=2``), or an ``.onnx`` file.

Every command takes ``--json`` (machine-readable output on stdout and
nothing else). Global options go before the command: ``--version``,
``-v/--verbose`` (repeat for debug logs), ``--debug`` (show tracebacks).

Errors in what the user gave (missing file, malformed JSON, invalid graph,
unknown op, unsupported model type, bad SOURCE) print one red line
``error: ...`` to stderr and exit with code 2; a conversion or internal
failure prints one line and exits with code 1.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import inspect
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["CliError", "app", "main"]

log = logging.getLogger("mad.cli")

app = typer.Typer(
    name="mad",
    help="mad: model architectures as graphs. Convert models, inspect, draw and print them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class CliError(Exception):
    """An error in what the user gave; printed as one line, exit code ``code`` (2 by default)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class _State:
    debug: bool = False


_state = _State()


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:600]


def _classify(e: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception escaping a command."""
    from mad.graph import GraphError, UnknownOpError

    if isinstance(e, CliError):
        return e.code, _first_line(e)
    if isinstance(e, FileNotFoundError):
        return 2, _first_line(e) if e.filename is None else f"file not found: {e.filename}"
    if isinstance(e, (GraphError, UnknownOpError)):
        return 2, _first_line(e)
    if isinstance(e, (IsADirectoryError, PermissionError)):
        return 2, f"cannot use {e.filename}: {e.strerror}"
    if isinstance(e, json.JSONDecodeError):
        return 2, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}"
    return 1, f"{type(e).__name__}: {_first_line(e)} (run `mad --debug ...` for the traceback)"


def _command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command; turn exceptions into one red ``error:`` line and an exit code."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            _stderr().print(Text("error: interrupted", style="bold red"))
            raise typer.Exit(130)
        except Exception as e:
            if _state.debug:
                raise
            code, message = _classify(e)
            _stderr().print(Text(f"error: {message}", style="bold red"))
            raise typer.Exit(code) from None

    return run


@contextlib.contextmanager
def _busy(message: str) -> Iterator[None]:
    """A spinner on stderr while long work runs; library output on stdout goes to stderr meanwhile."""
    console = _stderr()
    with contextlib.redirect_stdout(sys.stderr), console.status(message, spinner="dots"):
        yield


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _human(n: float) -> str:
    from mad.graph.render import human

    return human(n)


# ----------------------------------------------------------------- global options
def _version(value: bool) -> None:
    if value:
        from mad import __version__

        typer.echo(f"mad {__version__}")
        raise typer.Exit()


def _setup_logging(verbose: int) -> None:
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("mad")
    for h in list(logger.handlers):
        if getattr(h, "_mad_cli", False):
            logger.removeHandler(h)
    handler = RichHandler(console=_stderr(), show_time=False, show_path=False, markup=False)
    handler._mad_cli = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, show_default=False, help="More logging (-vv for debug).")
    ] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")] = False,
) -> None:
    """mad: model architectures as graphs. Convert models, inspect, draw and print them."""
    _state.debug = debug or os.environ.get("MAD_DEBUG", "") not in ("", "0")
    _setup_logging(verbose)


# ----------------------------------------------------------------- loading graphs
def _load_graph(path: Path, shapes: bool = True):
    """Read, validate and (with ``shapes``) shape-check a graph file; returns (graph, summary)."""
    from mad.graph import ArchGraph, GraphError, validate
    from mad.graph.interpreter import interpret

    if not path.exists():
        raise CliError(f"graph file not found: {path}")
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a graph JSON file")
    try:
        g = ArchGraph.from_json(path)
    except GraphError as e:
        message = _first_line(e)
        raise CliError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a text file; expected a graph JSON written by `mad convert`") from None
    try:
        validate(g, shapes=False)
        summary = interpret(g, update=True, check=True) if shapes else None
    except GraphError as e:
        raise CliError(f"{path}: invalid graph: {_first_line(e)}") from None
    return g, summary


# ----------------------------------------------------------------- info
@app.command()
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
@app.command()
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
@app.command()
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
@app.command()
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


# ----------------------------------------------------------------- convert
def parse_value(text: str) -> Any:
    """``"64"`` -> 64, ``"0.1"`` -> 0.1, ``"true"`` -> True, ``"none"`` -> None, JSON lists/objects; else the text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["hidden_size=64", "text_config.num_layers=2"]`` -> nested keyword dict."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", key):
            raise CliError(f"--set {item!r}: expected key=value, e.g. --set num_hidden_layers=2")
        *parents, leaf = key.split(".")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
            if not isinstance(d, dict):
                raise CliError(f"--set {item!r}: {p!r} is set both as a value and as a group")
        d[leaf] = parse_value(value)
    return out


_DTYPES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "bool"}


def parse_input_shape(text: str, device: str | None = None):
    """``"1,3,32,32"`` -> randn tensor; ``"1,16:int64[:HIGH]"`` -> integers in [0, HIGH) (HIGH=2)."""
    import torch

    parts = text.split(":")
    try:
        shape = [int(x) for x in parts[0].replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise CliError(
            f"--input-shape {text!r}: expected comma-separated sizes, e.g. 1,3,32,32 or 1,16:int64"
        ) from None
    dtype = parts[1] if len(parts) > 1 else "float32"
    if dtype not in _DTYPES:
        raise CliError(f"--input-shape {text!r}: unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}")
    tdtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(0)
    if tdtype.is_floating_point:
        t = torch.randn(shape, generator=gen).to(tdtype)
    else:
        high = int(parts[2]) if len(parts) > 2 else 2
        t = torch.randint(0, high, shape, generator=gen).to(tdtype)
    return t.to(device) if device else t


def _split_source(source: str) -> tuple[str, dict[str, Any]]:
    """Kind of SOURCE (``onnx``, ``file``, ``hf``) and its parts."""
    if source.lower().endswith(".onnx"):
        return "onnx", {"path": Path(source)}
    m = re.fullmatch(r"(?P<path>.+?\.py):(?P<cls>[A-Za-z_]\w*)(?::(?P<args>.*))?", source)
    if m:
        return "file", {"path": Path(m["path"]), "cls": m["cls"], "args": m["args"]}
    if source.endswith(".py") or ".py:" in source:
        raise CliError(f"bad SOURCE {source!r}: name the class as path/file.py:ClassName[:args], e.g. net.py:MLP:64")
    if re.fullmatch(r"[A-Za-z][\w\-]*", source):
        return "hf", {"model_type": source}
    raise CliError(
        f"bad SOURCE {source!r}: use a HuggingFace model type (bert), path/file.py:ClassName[:args] or a .onnx file"
    )


def _split_args(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    """``"64,depth=2"`` -> ([64], {"depth": 2})."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for part in [p for p in (text or "").split(",") if p.strip()]:
        key, sep, value = part.partition("=")
        if sep:
            if not key.strip().isidentifier():
                raise CliError(f"bad constructor argument {part!r}: use value or name=value")
            kwargs[key.strip()] = parse_value(value)
        elif kwargs:
            raise CliError(f"bad constructor arguments {text!r}: positional {part!r} after a keyword")
        else:
            args.append(parse_value(part))
    return args, kwargs


def _import_file(path: Path):
    if not path.exists():
        raise CliError(f"file not found: {path}")
    name = "mad_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise CliError(f"cannot import {path}: {type(e).__name__}: {_first_line(e)}") from e
    finally:
        sys.path.pop(0)
    return module


def _normalize_inputs(value: Any, where: str) -> tuple[tuple, dict]:
    import torch

    if isinstance(value, torch.Tensor):
        return (value,), {}
    if isinstance(value, dict):
        return (), dict(value)
    if isinstance(value, (tuple, list)):
        if len(value) == 2 and isinstance(value[0], (tuple, list)) and isinstance(value[1], dict):
            return tuple(value[0]), dict(value[1])
        return tuple(value), {}
    raise CliError(f"{where} returned {type(value).__name__}; return a tensor, a tuple of tensors or a dict")


def _example_inputs(module: Any, model: Any, where: str) -> tuple[tuple, dict] | None:
    for owner, label in ((model, f"{where}.example_inputs()"), (module, f"{where.split(':')[0]}: example_inputs()")):
        fn = getattr(owner, "example_inputs", None)
        if not callable(fn):
            continue
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        except (TypeError, ValueError):
            params = []
        try:
            value = fn(model) if params and owner is module else fn()
        except Exception as e:
            raise CliError(f"{label} failed: {type(e).__name__}: {_first_line(e)}") from e
        return _normalize_inputs(value, label)
    return None


def _convert_file(
    path: Path, cls_name: str, arg_text: str | None, overrides: dict[str, Any], shapes: list[str], device: str | None
):
    import torch

    from mad.code2graph import from_module

    where = f"{path}:{cls_name}"
    module = _import_file(path)
    cls = getattr(module, cls_name, None)
    if cls is None:
        found = [
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__
        ]
        raise CliError(f"{path} has no class {cls_name!r}" + (f"; it defines {', '.join(found)}" if found else ""))
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise CliError(f"{where} is not a torch.nn.Module class")
    args, kwargs = _split_args(arg_text)
    kwargs.update(overrides)
    try:
        model = cls(*args, **kwargs)
    except Exception as e:
        raise CliError(f"cannot instantiate {cls_name}({arg_text or ''}): {type(e).__name__}: {_first_line(e)}") from e
    if device:
        model = model.to(device)
    if shapes:
        inputs = (tuple(parse_input_shape(s, device) for s in shapes), {})
    else:
        inputs = _example_inputs(module, model, where)
        if inputs is None:
            raise CliError(
                f"{where}: no example inputs; add an example_inputs() method or function to "
                f"{path.name}, or pass --input-shape 1,3,32,32"
            )
        if device:
            inputs = (
                tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in inputs[0]),
                {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs[1].items()},
            )
    return from_module(model, inputs[0], inputs[1], name=cls_name, source=f"module:{path.name}:{cls_name}")


def _convert_hf(model_type: str, overrides: dict[str, Any], device: str | None):
    from mad.code2graph import from_hf
    from mad.code2graph.hf_zoo import ZooError, model_types

    known = model_types()
    if model_type not in known:
        close = difflib.get_close_matches(model_type, known, n=3)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else f"; use one of the {len(known)} transformers model types with a base model, e.g. bert, gpt2, llama"
        )
        raise CliError(f"unsupported model type {model_type!r}{hint}")
    try:
        return from_hf(model_type, device=device, **overrides)
    except ZooError as e:
        if e.stage == "config" or (overrides and e.stage == "instantiate"):
            raise CliError(f"cannot configure {model_type}: {e.reason}") from e
        raise CliError(f"cannot convert {model_type}: {e.stage} failed: {e.reason}", code=1) from e


@app.command()
@_command
def convert(
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="HF model type (bert), path/file.py:ClassName[:args], or file.onnx.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Graph JSON to write (default: NAME.json).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE", help="Config field / constructor argument, key=value (repeatable)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", metavar="DEVICE", help="'meta' builds the model without allocating weights."),
    ] = None,
    input_shape: Annotated[
        list[str] | None,
        typer.Option(
            "--input-shape",
            metavar="SHAPE",
            help="Example input for file.py:Class, e.g. 1,3,32,32 or 1,16:int64:1000 (repeatable).",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Graph name (default: model type or class name).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")] = False,
) -> None:
    """Convert a model (HF model type, Python class or ONNX file) to a graph JSON."""
    from mad.graph import GraphError

    kind, parts = _split_source(source)
    overrides = parse_sets(sets or [])
    input_shape = input_shape or []
    if device not in (None, "cpu", "meta"):
        raise CliError(f"--device {device!r}: use cpu or meta")
    if input_shape and kind != "file":
        raise CliError("--input-shape applies to path/file.py:ClassName sources only")
    t0 = time.perf_counter()
    if kind == "hf":
        with _busy(f"Converting {parts['model_type']} (build small, export, convert)…"):
            g = _convert_hf(parts["model_type"], overrides, device)
    elif kind == "file":
        with _busy(f"Converting {source}…"):
            g = _convert_file(parts["path"], parts["cls"], parts["args"], overrides, input_shape, device)
    else:
        if overrides:
            raise CliError("--set does not apply to ONNX files")
        if not parts["path"].exists():
            raise CliError(f"file not found: {parts['path']}")
        try:
            from mad.graph.onnx_io import OnnxImportError, from_onnx
        except ImportError as e:
            raise CliError(f"ONNX import is not available in this install ({_first_line(e)})", code=1) from None
        with _busy(f"Reading {parts['path']}…"):
            try:
                g = from_onnx(parts["path"])
            except OnnxImportError as e:
                raise CliError(f"{parts['path']}: {_first_line(e)}") from e
    seconds = time.perf_counter() - t0
    if name:
        g.name = name
    out = output or Path(re.sub(r"[^\w.-]", "_", g.name) + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    g.to_json(out)
    try:
        g.validate()
    except GraphError as e:
        raise CliError(
            f"the converted graph is invalid ({_first_line(e)}); written to {out} for inspection", code=1
        ) from None
    s = g.infer()
    if as_json:
        _emit_json(
            {
                "path": str(out),
                "name": g.name,
                "source": g.source,
                "num_nodes": s.num_nodes,
                "num_edges": s.num_edges,
                "num_params": s.num_params,
                "flops": s.flops,
                "seconds": round(seconds, 3),
            }
        )
        return
    _stdout().print(
        f"wrote [bold]{out}[/bold]: {g.name} ({g.source}), {s.num_nodes} nodes, "
        f"{_human(s.num_params)} params, {_human(s.flops)} FLOPs [dim]in {seconds:.1f}s[/dim]"
    )


def _mount_subcommands() -> None:
    from .cli_dataset import dataset_app
    from .cli_train import train_command

    app.add_typer(dataset_app, name="dataset")
    app.command("train")(train_command)


_mount_subcommands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``mad`` console script."""
    app(args=argv, prog_name="mad")


if __name__ == "__main__":  # pragma: no cover
    main()
