"""``mad convert``: a HuggingFace model type, a Python class or an ONNX file to a graph JSON; also the parsing of sources, ``--set`` and ``--input-shape`` that other commands share."""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import CliError, _busy, _command, _emit_json, _first_line, _human, _stdout


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
