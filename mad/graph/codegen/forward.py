"""The body of the generated ``forward``: one line per node, grouped by scope, with shape comments."""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import textwrap
from typing import Any

import torch

from ..arch_graph import GraphError, Node
from ..ops import get_op
from ..ops.registry import OpDef
from .binding import _aten_call, _bind
from ..ops.symbols import symbolic_attr_keys
from ..ops.registry import PORT
from .literals import _FAILURES, SymExpr, _call, _lit
from .naming import _TUPLE_NAMES, _Namer, _op_stem, _scope_stem, _snake
from .op_forms import Emitter

log = logging.getLogger(__name__)


def _emitters() -> dict[str, Emitter]:
    """The table of readable forms, read off the package so that swapping ``codegen._EMITTERS`` takes effect."""
    return importlib.import_module(__package__)._EMITTERS


class _ForwardWriter:
    """Writes ``forward`` (a part of ``_Writer``; reads its tree, shapes and module calls)."""

    def forward_lines(self, arg_names: dict[str, str]) -> list[str]:
        """Body of ``forward``: one line per node (inputs are arguments, parameters are inlined as
        ``self.<path>``, getitems of a tuple are unpacked), then the return of ``output_kind``."""
        g = self.g
        namer = _Namer(set(arg_names.values()) | set(g.dims))
        env: dict[str, str] = {}
        unpacked: dict[str, list[str]] = {}
        getitems: dict[str, list[str]] = {}
        for nid in self.order:
            if g.nodes[nid].op == "getitem":
                getitems.setdefault(g.predecessors(nid)[0], []).append(nid)
        device_expr = self._device_expr(arg_names)
        lines: list[str] = []
        scope = ""
        for nid in self.order:
            node = g.nodes[nid]
            op = get_op(node.op)
            if node.op == "input":
                env[nid] = arg_names[node.attrs["name"]]
                continue
            if node.op == "parameter":
                env[nid] = self.tensor_expr[self.meta._param_refs[nid]["data"]]
                continue
            if node.op == "getitem":
                src = g.predecessors(nid)[0]
                if src in unpacked:
                    env[nid] = unpacked[src][node.attrs["index"]]
                    continue
                expr = f"{env[src]}[{node.attrs['index']}]"
            else:
                expr = self._expr(node, op, [env[p] for p in g.predecessors(nid)], device_expr)
            shown = self._display_scope(node.scope)
            if shown != scope:
                scope = shown
                if lines:
                    lines.append("")
                cls = self._source_type(scope)
                lines.append((f"# {scope}" if scope else "# (top level)") + (f" ({cls})" if cls and scope else ""))
            shape, dtype = self.shapes.get(nid, (None, None))
            count = len(shape) if op.multi_output and isinstance(shape, list) else None
            users = getitems.get(nid, [])
            if count and users and len(g.successors(nid)) == len(users) and \
                    all(0 <= g.nodes[u].attrs["index"] < count for u in users):
                names = ["_"] * count
                stems = _TUPLE_NAMES.get(node.op)
                for u in users:
                    i = g.nodes[u].attrs["index"]
                    if names[i] == "_":
                        names[i] = namer(stems[i] if stems and i < len(stems) else f"{self._stem(node, op)}_{i}")
                unpacked[nid] = names
                target = ", ".join(names) + ("," if count == 1 else "")
                lines.append(f"{target} = {expr}" + _shape_comment([s for s, nm in zip(shape, names) if nm != "_"],
                                                                     _pick(dtype, names)))
                continue
            var = namer(self._stem(node, op))
            env[nid] = var
            lines.append(f"{var} = {expr}" + ("" if op.multi_output else _shape_comment(shape, dtype)))
        binders = self._binder_lines(arg_names)
        if binders:
            lines = binders + [""] + lines
        outs = [env[o] for o in g.outputs]
        lines.append("")
        if g.output_kind == "tensor":
            lines.append(f"return {outs[0]}")
        elif g.output_kind == "dict":
            items = ", ".join(f"{_lit(k)}: {v}" for k, v in zip(g.output_keys or [], outs))
            lines.append(f"return {{{items}}}")
        else:
            lines.append(f"return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        return lines

    def _binder_lines(self, arg_names: dict[str, str]) -> list[str]:
        """``B, T = input_ids.shape`` for the dim symbols that sizes in ``forward`` use."""
        used: set[str] = set()
        for node in self.g.nodes.values():
            op = get_op(node.op)
            for k in symbolic_attr_keys(op, node.attrs):
                used |= _symbols_of(node.attrs[k])
        lines = []
        for spec in self.g.inputs:
            names = [d if isinstance(d, str) and d in used else None for d in spec.shape]
            if not any(names):
                continue
            var = arg_names[spec.name]
            if all(names) and len(set(names)) == len(names):
                lines.append(f"{', '.join(names)}{',' if len(names) == 1 else ''} = {var}.shape")
            else:
                picked = [(n, i) for i, n in enumerate(names) if n]
                lines.append(", ".join(n for n, _ in picked) + " = " + ", ".join(f"{var}.shape[{i}]" for _, i in picked))
            used -= {n for n in names if n}
        return lines

    def _device_expr(self, arg_names: dict[str, str]) -> str:
        if self.g.inputs:
            return f"{arg_names[self.g.inputs[0].name]}.device"
        if any(True for _ in self.meta.parameters()):
            return "next(self.parameters()).device"
        return 'torch.device("cpu")'

    def _display_scope(self, scope: str) -> str:
        """The deepest container on ``scope``'s path: ops of a layer or a parameter-free leaf
        module (an activation, a dropout) are listed with the module that holds it."""
        if scope not in self._scope_cache:
            parts = scope.split(".") if scope else []
            best = ""
            for i in range(1, len(parts) + 1):
                mod = self._find(".".join(parts[:i]))
                if mod is None or mod.kind == "layer":
                    break
                best = mod.path
            self._scope_cache[scope] = best
        return self._scope_cache[scope]

    def _stem(self, node: Node, op: OpDef) -> str:
        if node.id in self.module_calls:
            path = self.module_calls[node.id].path
            return _scope_stem(path) or f"{_op_stem(node.op)}_{path}"
        if node.scope and ((op.category == "layer" and node.params) or self._display_scope(node.scope) != node.scope):
            stem = _scope_stem(node.scope)
            return stem or (f"{_op_stem(node.op)}_{node.scope}" if node.scope.isdigit() else _op_stem(node.op))
        return _op_stem(node.op)

    def _expr(self, node: Node, op: OpDef, inputs: list[str], device_expr: str) -> str:
        if node.id in self.module_calls:
            return f"{self.module_calls[node.id].expr}({inputs[0]})"
        if not op.signature:  # call_op runs fn(*inputs, **attrs)
            return _call(self._external_fn(node, op), *inputs, *[f"{k}={_lit(v)}" for k, v in node.attrs.items()])
        params = {r: self.tensor_expr[f] for r, f in self.meta._param_refs.get(node.id, {}).items()}
        keys = symbolic_attr_keys(op, node.attrs)
        if keys:  # sizes over B, T: written as code
            node = dataclasses.replace(node, attrs={**node.attrs, **{k: _as_code(node.attrs[k]) for k in keys}})
        b = _bind(op, node, inputs, params, device_expr)
        if not isinstance(op.target, torch._ops.OpOverload):
            return _aten_call(b, head=self._external_fn(node, op))
        b.in_shapes = [self.shapes.get(p, (None, None))[0] for p in self.g.predecessors(node.id)]
        b.inplace_graph = self.inplace_graph
        emit = _emitters().get(node.op)
        if emit is not None:
            try:
                expr = emit(b)
            except _FAILURES as e:  # a form that does not fit these attrs: the aten call is always right
                log.debug("to_code: readable form of %s failed (%s); using the aten call", node.id, e)
                expr = None
            if expr is not None:
                return expr
        return _aten_call(b)

    def _external_fn(self, node: Node, op: OpDef) -> str:
        """Name of the run function of an op that is not a torch op, in the file.

        A module-level function that reads no globals of its module (``torch`` aside) is copied into
        the file, which stays self-contained; any other importable function is imported.
        """
        fn = op.fn
        alias = f"_{_snake(op.name)}_op"
        if alias in self.extra_defs:
            return alias
        mod, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
        code = getattr(fn, "__code__", None)
        try:
            src = textwrap.dedent(inspect.getsource(fn)) if code is not None and qual.isidentifier() else ""
        except (OSError, TypeError):
            src = ""
        module_globals = {n for n in (code.co_names if code else ()) if n in getattr(fn, "__globals__", {})}
        copyable = src.startswith(f"def {fn.__name__}(") and not fn.__closure__
        if copyable and not module_globals - {"torch", "nn", "F"}:
            self.extra_defs[alias] = src.replace(f"def {fn.__name__}(", f"def {alias}(", 1).rstrip()
            return alias
        if not mod or mod == "__main__" or not qual.isidentifier():
            raise GraphError(f"to_code: node {node.id!r} ({node.op}): the op is not a torch op and its function "
                             f"{qual or fn!r} can be neither copied nor imported; register the op with a "
                             "module-level function")
        line = f"from {mod} import {qual} as {alias}"
        if line not in self.extra_imports:
            log.info("to_code: node %r (%s) calls %s.%s; the file imports it", node.id, node.op, mod, qual)
            self.extra_imports.append(line)
        return alias


def _shape_comment(shape: Any, dtype: Any) -> str:
    if shape is None:
        return ""
    if shape and isinstance(shape[0], list):
        parts = [_shape_text(s) for s in shape]
        return "  # " + ", ".join(parts)
    dt = f" {dtype}" if isinstance(dtype, str) and dtype != "float32" else ""
    return f"  # {_shape_text(shape)}{dt}"


def _shape_text(shape: list) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _pick(dtype: Any, names: list[str]) -> Any:
    if isinstance(dtype, list):
        return [d for d, n in zip(dtype, names) if n != "_"]
    return dtype


def _as_code(v: Any) -> Any:
    if isinstance(v, list):
        return [_as_code(x) for x in v]
    if isinstance(v, str) and v not in (PORT, "inf", "-inf", "nan"):
        return SymExpr(v)
    return v


def _symbols_of(v: Any) -> set[str]:
    from ..symbolic import free_symbols

    if isinstance(v, list):
        return set().union(*(_symbols_of(x) for x in v)) if v else set()
    if isinstance(v, str) and v not in (PORT, "inf", "-inf", "nan"):
        return set(free_symbols(v))
    return set()
