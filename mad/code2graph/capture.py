"""from_module(): any ``nn.Module`` -> ArchGraph, through ``torch.export``.

``torch.export`` (non-strict) records the model as aten ops. Standard layers
stay single ops in that IR (``aten.linear``, ``aten.conv2d``,
``aten.layer_norm``, ``aten.embedding``, ``aten.scaled_dot_product_attention``),
so each aten op becomes one node of the vocabulary. Parameters fed into a
layer's weight/bias slots become that node's owned ``params`` under their
state-dict names; other parameters, buffers and constants become
``parameter`` nodes. The module path of every op (``nn_module_stack``) is kept
as its ``scope``. Regions under ``torch.no_grad``/autocast are inlined.
"""

from __future__ import annotations

import logging
import operator
import time
from dataclasses import dataclass
from typing import Any

import sympy
import torch
from torch import nn
from torch.utils import _pytree as pytree

from mad.graph import ArchGraph, GraphError, TensorSpec
from mad.graph.interpreter import describe_value
from mad.graph.module import encode_tensor
from mad.graph.ops import get_op, op_for_target
from mad.graph.ops.registry import PORT
from mad.graph.ops.values import NON_JSON, dtype_name, encode_value
from mad.graph.passes import canonicalize, eliminate_dead_code
from mad.graph.symbolic import SymbolError, normalise

__all__ = ["from_module", "CaptureError", "flatten_output", "CaptureStats"]

log = logging.getLogger(__name__)

# side-effect-only ops that carry no computation
_DROP = {
    "aten._assert_tensor_metadata.default",
    "aten._assert_scalar.default",
    "aten.sym_constrain_range_for_size.default",
    "aten._assert_async.msg",
    "aten._assert_async.default",
}
_INLINE_HOPS = {"wrap_with_set_grad_enabled", "wrap_with_autocast"}
MAX_VALUE_NUMEL = 1 << 20
_UNSUPPORTED = "<unsupported>"  # store values of non-persistent buffers/constants up to this size


class _NotSymbolic(Exception):
    """A size expression of the input sizes that the graph cannot spell; capture again with static sizes."""


class CaptureError(RuntimeError):
    """Capture failed; ``stage`` is ``export`` or ``convert``; ``ops`` lists unsupported ops."""

    def __init__(self, message: str, stage: str = "convert", ops: list[str] | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.ops = ops or []


@dataclass
class CaptureStats:
    export_s: float = 0.0
    convert_s: float = 0.0
    aten_nodes: int = 0


def _key_str(path) -> str:
    parts = []
    for k in path:
        if isinstance(k, pytree.MappingKey):
            parts.append(str(k.key))
        elif isinstance(k, pytree.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, pytree.GetAttrKey):
            parts.append(str(k.name))
        else:
            parts.append(str(k))
    return ".".join(parts)


def flatten_output(out: Any) -> dict[str, torch.Tensor]:
    """Tensor leaves of a model output keyed by path (``"last_hidden_state"``, ``"0"``).

    ``ModelOutput`` and dicts flatten by key, tuples by index; non-tensors are dropped.
    """
    if isinstance(out, torch.Tensor):
        return {"": out}
    if hasattr(out, "to_tuple") and hasattr(out, "keys"):  # transformers ModelOutput
        out = {k: out[k] for k in out.keys()}
    leaves, _ = pytree.tree_flatten_with_path(out)
    return {_key_str(p): v for p, v in leaves if isinstance(v, torch.Tensor)}


def _scope(fx_node: torch.fx.Node) -> str:
    stack = fx_node.meta.get("nn_module_stack")
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.replace("[", ".").replace("]", "").replace("L__self__.", "").strip(".")


def _scope_type(fx_node: torch.fx.Node) -> tuple[str, str] | None:
    stack = fx_node.meta.get("nn_module_stack")
    if not stack:
        return None
    path, cls = list(stack.values())[-1]
    name = cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1]
    return _scope(fx_node), name


def _val(fx_node: torch.fx.Node) -> Any:
    return fx_node.meta.get("val")


def _describe(val: Any, dim: Any = None) -> tuple[Any, Any]:
    """(shape, dtype) of a traced value; ``dim`` turns symbolic sizes into expressions."""
    shape, dtype = describe_value(val, strict=False)
    if dim is not None and shape is not None:
        shape = _map_dims(shape, dim)
    return shape, dtype


def _map_dims(shape: Any, dim: Any) -> Any:
    if isinstance(shape, list):
        return [_map_dims(d, dim) for d in shape]
    return dim(shape) if isinstance(shape, torch.SymInt) else shape


def _is_default(value: Any, spec_default: Any) -> bool:
    return value == spec_default and type(value) is type(spec_default)


class _Converter:
    def __init__(self, ep: torch.export.ExportedProgram, module: nn.Module, name: str, source: str) -> None:
        self.ep = ep
        self.module = module
        self.g = ArchGraph(name=name, source=source)
        self.sig: dict[str, Any] = {}  # placeholder name -> InputSpec
        for spec in ep.graph_signature.input_specs:
            self.sig[spec.arg.name] = spec
        self.env: dict[torch.fx.Node, Any] = {}  # fx node -> node id | list of node ids | python value
        self.param_nodes: dict[str, str] = {}  # fqn -> parameter node id
        self.unsupported: dict[str, int] = {}
        self.used_fqns: set[str] = set()
        self.scope_types: dict[str, str] = {}
        self.concrete: dict[torch.fx.Node, Any] = {}
        self.symbols = _name_symbols(ep)  # export's size symbols -> "B", "T", ...
        self._rename = {k: sympy.Symbol(v) for k, v in self.symbols.items()}
        self.specialised: set[str] = set()
        # tied tensors: name them by their first state-dict name in module order
        self.canonical: dict[str, str] = {}
        first: dict[int, str] = {}
        for fqn, t in list(module.named_parameters(remove_duplicate=False)) + list(
            module.named_buffers(remove_duplicate=False)
        ):
            self.canonical[fqn] = first.setdefault(id(t), fqn)

    def _dim(self, d: Any) -> Any:
        """A traced size as an int or an expression over the graph's dim symbols."""
        if not isinstance(d, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return d
        expr = d.node.expr
        if expr.free_symbols and expr.free_symbols <= set(self.symbols):
            try:
                text = normalise(str(expr.xreplace(self._rename)))
                if text.lstrip("-").isdigit():  # the symbols cancel out
                    return int(text)
                return text if not isinstance(d, torch.SymBool) else bool(d.node.hint)
            except SymbolError:
                pass
        if expr.free_symbols and expr.free_symbols <= set(self.symbols):
            raise _NotSymbolic(str(expr.xreplace(self._rename)))
        hint = d.node.hint
        if hint is None:
            raise CaptureError(f"a size depends on data ({expr}); capture cannot keep it", ops=[str(expr)])
        self.specialised.add(str(expr.xreplace(self._rename)))
        return type(hint)(hint) if not isinstance(hint, bool) else hint

    # ------------------------------------------------------------ placeholders
    def _param_info(self, fx_node: torch.fx.Node) -> tuple[str, str, bool] | None:
        spec = self.sig.get(fx_node.name)
        if spec is None or spec.kind.name == "USER_INPUT":
            return None
        kind = {"PARAMETER": "parameter", "BUFFER": "buffer", "CONSTANT_TENSOR": "constant"}.get(spec.kind.name)
        if kind is None:
            raise CaptureError(f"input {fx_node.name!r} of kind {spec.kind.name} is not supported", ops=[spec.kind.name])
        persistent = True if spec.persistent is None else bool(spec.persistent)
        return self.canonical.get(spec.target, spec.target), kind, persistent

    def _parameter_node(self, fx_node: torch.fx.Node) -> str:
        fqn, kind, persistent = self._param_info(fx_node)  # type: ignore[misc]
        if fqn in self.param_nodes:
            return self.param_nodes[fqn]
        val = _val(fx_node)
        attrs: dict[str, Any] = {"kind": kind, "dtype": dtype_name(val.dtype)}
        if not persistent or kind == "constant":
            attrs["persistent"] = False
            tensor = self.ep.constants.get(fqn)
            if tensor is None and kind == "buffer":
                tensor = _lookup(self.module, fqn)
            if tensor is not None and tensor.device.type != "meta":
                if tensor.numel() <= MAX_VALUE_NUMEL:
                    attrs["value"] = encode_tensor(tensor)
                else:
                    log.warning("%s: value of %s (%d elements) not stored", self.g.name, fqn, tensor.numel())
        if attrs["dtype"] == "float32":
            del attrs["dtype"]
        if attrs["kind"] == "parameter":
            del attrs["kind"]
        nid = self.g.add_node(
            "parameter",
            id=_unique(self.g, "p_" + fqn.replace(".", "_")),
            attrs=attrs,
            params={"data": list(val.shape)},
            param_names={"data": fqn},
            scope=fqn.rpartition(".")[0],
            shape=list(val.shape),
            dtype=dtype_name(val.dtype),
        )
        self.used_fqns.add(fqn)
        self.param_nodes[fqn] = nid
        return nid

    # ------------------------------------------------------------ values
    def _port_source(self, value: Any) -> str:
        """Node id that feeds a port for fx value ``value``."""
        if isinstance(value, torch.fx.Node):
            if value in self.env:
                got = self.env[value]
                if isinstance(got, str):
                    return got
                if self.unsupported:  # fed by an op outside the vocabulary
                    return _UNSUPPORTED
                raise CaptureError(f"value {value.name!r} is not a single tensor")
            if value.op == "placeholder" and self._param_info(value) is not None:
                return self._parameter_node(value)
        raise CaptureError(f"unexpected argument {value!r}")

    def convert_node(self, n: torch.fx.Node, prefix: str = "") -> None:
        target = n.target
        if n in self.concrete and not isinstance(self.concrete[n], (torch.Tensor, list, tuple)):
            return  # a symbolic scalar, replaced by the value it took on the example inputs
        if _is_symbolic_scalar(n):
            return  # a size computed from input sizes: its consumers hold it as an expression
        if n.op == "call_function" and target is operator.getitem:
            src, idx = n.args
            got = self.env.get(src)
            if isinstance(got, list):  # element of an inlined region's outputs
                self.env[n] = got[idx]
                return
            shape, dtype = _describe(self._val(n), self._dim)
            self.env[n] = self.g.add_node(
                "getitem", [self._port_source(src)], id=_unique(self.g, prefix + n.name), attrs={"index": idx},
                scope=_scope(n), shape=shape, dtype=dtype,
            )
            return
        if n.op == "call_function" and isinstance(target, torch._ops.HigherOrderOperator):
            if target.name() in _INLINE_HOPS:
                self._inline(n, prefix)
                return
            self._unsupported(n, f"higher_order.{target.name()}")
            return
        key = str(target)
        if key in _DROP:
            return
        if not isinstance(target, torch._ops.OpOverload):
            self._unsupported(n, key)
            return
        name = op_for_target(target)
        if name is None:
            self._unsupported(n, key.removeprefix("aten."))
            return
        op = get_op(name)
        schema = target._schema
        attrs: dict[str, Any] = {}
        params: dict[str, list[int]] = {}
        pnames: dict[str, str] = {}
        inputs: list[str] = []
        for i, a in enumerate(schema.arguments):
            if i < len(n.args) and not a.kwarg_only:
                value = n.args[i]
            elif a.name in n.kwargs:
                value = n.kwargs[a.name]
            else:
                continue
            value = self._substitute(value)
            if a.name in {t.name for t in op.args}:
                ta = op.arg(a.name)
                if ta.kind in ("list", "optional_list"):
                    entries = []
                    for v in value:
                        if isinstance(v, torch.fx.Node):
                            inputs.append(self._port_source(v))
                            entries.append(PORT)
                        else:
                            entries.append(encode_value(v))
                    attrs[a.name] = entries
                elif isinstance(value, torch.fx.Node):
                    info = self._param_info(value) if value.op == "placeholder" else None
                    if info is not None and a.name in op.param_args and info[1] != "constant" and info[2]:
                        params[a.name] = list(_val(value).shape)
                        pnames[a.name] = info[0]
                        self.used_fqns.add(info[0])
                    else:
                        inputs.append(self._port_source(value))
                        if ta.kind == "optional":
                            attrs[a.name] = PORT
                elif value is None:
                    continue  # an absent optional tensor
                else:
                    enc = encode_value(value)
                    if enc is NON_JSON:
                        raise CaptureError(f"{key}: argument {a.name}={value!r} cannot be stored")
                    attrs[a.name] = enc
                continue
            if isinstance(value, torch.fx.Node) or (
                isinstance(value, (list, tuple)) and any(isinstance(v, torch.fx.Node) for v in value)
            ):
                raise CaptureError(
                    f"{key}: argument {a.name} is a symbolic value; capture with static shapes", ops=[key]
                )
            enc = encode_value(value)
            if enc is NON_JSON:
                raise CaptureError(f"{key}: argument {a.name}={value!r} cannot be stored", ops=[key])
            spec = op.attrs[a.name]
            if spec.type == "device" or _is_default(enc, spec.default):
                continue
            attrs[a.name] = enc
        shape, dtype = _describe(self._val(n), self._dim)
        scope = _scope(n)
        st = _scope_type(n)
        if st and st[0] not in self.scope_types:
            self.scope_types[st[0]] = st[1]
        self.env[n] = self.g.add_node(
            name, inputs, id=_unique(self.g, prefix + n.name), attrs=attrs, params=params, param_names=pnames,
            scope=scope, shape=shape, dtype=dtype,
        )

    def _val(self, n: torch.fx.Node) -> Any:
        """The traced value of ``n``; the real one where the trace left sizes symbolic."""
        return self.concrete.get(n, n.meta.get("val"))

    def _substitute(self, value: Any) -> Any:
        """Symbolic scalars -> expressions over the dim symbols, or (data-dependent ones,
        in ``self.concrete``) the values they took on the example inputs."""
        if isinstance(value, torch.fx.Node):
            got = self.concrete.get(value, value)
            if got is value and _is_symbolic_scalar(value):
                return self._dim(value.meta["val"])
            return value if isinstance(got, (torch.Tensor, list, tuple)) else got
        if isinstance(value, (torch.SymInt, torch.SymFloat, torch.SymBool)):
            return self._dim(value)
        if isinstance(value, (list, tuple)):
            return type(value)(self._substitute(v) for v in value)
        return value

    def _unsupported(self, n: torch.fx.Node, key: str) -> None:
        """Note an op outside the vocabulary; keep converting to find all of them."""
        self.unsupported[key] = self.unsupported.get(key, 0) + 1
        self.env[n] = _UNSUPPORTED

    def _inline(self, n: torch.fx.Node, prefix: str) -> None:
        sub_attr = n.args[1]
        sub = self.ep.graph_module.get_submodule(sub_attr.target)
        operands = n.args[2:]
        placeholders = [p for p in sub.graph.nodes if p.op == "placeholder"]
        for p, v in zip(placeholders, operands):
            if isinstance(v, torch.fx.Node) and _is_symbolic_scalar(v) and v not in self.env:
                continue  # a size: read as an expression where the region uses it
            self.env[p] = self.env[v] if v in self.env else self._port_source(v)
        out_ids: list[Any] = []
        for sn in sub.graph.nodes:
            if sn.op == "call_function":
                self.convert_node(sn, prefix=f"{prefix}{sub_attr.target}_")
            elif sn.op == "output":
                out_ids = [self.env.get(v) if isinstance(v, torch.fx.Node) else v for v in sn.args[0]]
        self.env[n] = out_ids

    # ------------------------------------------------------------ whole graph
    def run(self, example_flat: list[Any]) -> ArchGraph:
        ep, g = self.ep, self.g
        user_inputs = [s for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
        tensors = [x for x in example_flat if isinstance(x, torch.Tensor)]
        needed = _needed_nodes(ep.graph)
        for n in ep.graph.nodes:
            if n.op == "call_function" and n not in needed:
                continue  # feeds only runtime assertions (or nothing)
            if n.op == "placeholder":
                spec = self.sig.get(n.name)
                if spec is not None and spec.kind.name == "USER_INPUT":
                    val = _val(n)
                    if not isinstance(val, torch.Tensor):
                        continue
                    idx = [s.arg.name for s in user_inputs].index(n.name)
                    rng = None
                    if not val.dtype.is_floating_point and val.dtype != torch.bool and idx < len(tensors):
                        t = tensors[idx]
                        if t.numel() and t.device.type != "meta":
                            rng = [int(t.min()), int(t.max()) + 1]
                    shape = [self._dim(d) for d in val.shape]
                    g.inputs.append(TensorSpec(n.name, shape, dtype_name(val.dtype), range=rng))
                    self.env[n] = g.add_node("input", id=_unique(g, n.name), attrs={"name": n.name},
                                             shape=list(shape), dtype=dtype_name(val.dtype))
            elif n.op == "call_function":
                self.convert_node(n)
            elif n.op == "output":
                self._outputs(n)
        if self.unsupported:
            ops = sorted(self.unsupported)
            raise CaptureError(f"{g.name}: ops not in the vocabulary: {', '.join(ops)}", ops=ops)
        self._drop_dead_nodes()
        self._finish()
        canonicalize(g)  # one op per meaning, default attrs dropped
        return g

    def _outputs(self, n: torch.fx.Node) -> None:
        specs = self.ep.graph_signature.output_specs
        values = n.args[0]
        ids = []
        for spec, v in zip(specs, values):
            if spec.kind.name != "USER_OUTPUT":
                log.warning("%s: ignoring %s output %s", self.g.name, spec.kind.name, spec.target)
                continue
            tensor = isinstance(v, torch.fx.Node) and not _is_symbolic_scalar(v)
            ids.append(self._port_source(v) if tensor else None)
        out_spec = self.ep.call_spec.out_spec
        paths = _spec_paths(out_spec)
        keep = [(p, i) for p, i in zip(paths, ids) if i is not None]
        if len(keep) == 1 and paths == [""]:
            self.g.set_outputs([keep[0][1]], kind="tensor")
        elif out_spec.type in (tuple, list):
            if any("." in p for p, _ in keep):
                self.g.set_outputs([i for _, i in keep], kind="dict", keys=[p for p, _ in keep])
            else:
                self.g.set_outputs([i for _, i in keep], kind="tuple")
        else:
            self.g.set_outputs([i for _, i in keep], kind="dict", keys=[p for p, _ in keep])

    def _drop_dead_nodes(self) -> None:
        """Remove nodes whose values reach no output and that mutate nothing (export leaves some)."""
        if eliminate_dead_code(self.g):
            self.used_fqns = {f for n in self.g for f in n.param_names.values()}

    def _finish(self) -> None:
        g, module = self.g, self.module
        g.dims = {name: int(_hint(sym, self.ep)) for sym, name in self.symbols.items()}
        if self.specialised:
            g.meta["specialised_sizes"] = sorted(self.specialised)
        float_dtypes = [p.dtype for p in module.parameters() if p.dtype.is_floating_point]
        g.meta["dtype"] = dtype_name(float_dtypes[0]) if float_dtypes else "float32"
        # tied parameters: every other state-dict name of a used tensor is an alias
        by_id: dict[int, list[str]] = {}
        for fqn, t in list(module.named_parameters(remove_duplicate=False)) + list(
            module.named_buffers(remove_duplicate=False)
        ):
            by_id.setdefault(id(t), []).append(fqn)
        aliases: dict[str, str] = {}
        for names in by_id.values():
            canon = next((f for f in names if f in self.used_fqns), None)
            if canon is not None:
                aliases.update({f: canon for f in names if f != canon})
        if aliases:
            g.meta["aliases"] = aliases
        # state the graph does not use (num_batches_tracked, unused heads) keeps load_state_dict strict
        state = module.state_dict(keep_vars=True)
        extra = []
        for fqn, t in state.items():
            if fqn in self.used_fqns or fqn in aliases:
                continue
            extra.append({"name": fqn, "shape": list(t.shape), "dtype": dtype_name(t.dtype),
                          "buffer": not isinstance(t, nn.Parameter)})
        if extra:
            g.meta["extra_state"] = extra
        if self.scope_types:
            g.meta["scope_types"] = self.scope_types
        train_attrs = _train_mode_attrs(g, module)
        if train_attrs:
            g.meta["train_attrs"] = train_attrs


_SEQ_NAMES = ("T", "S", "T3", "T4", "T5", "T6")


def _name_symbols(ep: torch.export.ExportedProgram) -> dict[Any, str]:
    """Name the size symbols of the user inputs: dim 0 -> ``B``, other dims -> ``T``, ``S``...

    Every input's batch dim is ``B``, even where export leaves them independent
    (a mask that only broadcasts): one batch size for all inputs is what the model means.
    """
    names: dict[Any, str] = {}
    batch, seq = iter(("B",) * 1_000), iter(_SEQ_NAMES)
    user = {s.arg.name for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"}
    for n in ep.graph.nodes:
        if n.op != "placeholder" or n.name not in user or not isinstance(_val(n), torch.Tensor):
            continue
        for i, d in enumerate(_val(n).shape):
            if not isinstance(d, torch.SymInt):
                continue
            for sym in sorted(d.node.expr.free_symbols, key=str):
                if sym not in names:
                    names[sym] = next(batch if i == 0 else seq, None) or f"D{len(names)}"
    return names


def _hint(sym: Any, ep: torch.export.ExportedProgram) -> int:
    for n in ep.graph.nodes:
        if n.op == "placeholder" and isinstance(_val(n), torch.Tensor):
            for d in _val(n).shape:
                if isinstance(d, torch.SymInt) and d.node.expr == sym:
                    return int(d.node.hint)
    raise CaptureError(f"no example size for symbol {sym}")


# module attributes that hold the attention-dropout probability a module uses in training
_DROPOUT_FIELDS = ("attention_dropout", "attn_dropout", "dropout", "dropout_p", "attention_probs_dropout_prob",
                   "attn_pdrop", "dropout_rate")


def _dropout_prob(module: nn.Module, scope: str) -> float:
    try:
        owner = module.get_submodule(scope) if scope else module
    except AttributeError:
        return 0.0
    for name in _DROPOUT_FIELDS:
        v = getattr(owner, name, None)
        if isinstance(v, nn.Dropout):
            v = v.p
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1:
            return float(v)
    return 0.0


def _train_mode_attrs(g: ArchGraph, module: nn.Module) -> dict[str, dict[str, Any]]:
    """Attrs that only the training mode sets: attention dropout written as
    ``p if self.training else 0.0`` reads 0 in an eval capture. The probability
    comes from the module that owns the op (``nn.MultiheadAttention.dropout``,
    ``attention_dropout`` of transformers' attention modules...)."""
    out: dict[str, dict[str, Any]] = {}
    for n in g:
        if n.op == "scaled_dot_product_attention" and not n.attrs.get("dropout_p"):
            p = _dropout_prob(module, n.scope)
            if p:
                out[n.id] = {"dropout_p": p}
        elif n.op == "dropout" and n.attrs.get("p") in (0, 0.0) and not n.attrs.get("train"):
            p = _dropout_prob(module, n.scope)
            if p:
                out[n.id] = {"p": p}
    return out


def _is_symbolic_scalar(n: torch.fx.Node) -> bool:
    return isinstance(n.meta.get("val"), (torch.SymInt, torch.SymFloat, torch.SymBool))


def _concrete_scalars(ep: torch.export.ExportedProgram, user_flat: list[Any]) -> dict[torch.fx.Node, Any]:
    """Values the symbolic scalars of ``ep`` (from ``.item()``, data-dependent sizes) take on the
    example inputs: the graph is specialised to them, as it is to the input shapes."""
    backed = set(_name_symbols(ep))
    sym = [n for n in ep.graph.nodes if _data_dependent_symbols(n, backed)]
    if not sym:
        return {}
    user = iter(x for x in user_flat if isinstance(x, torch.Tensor))
    flat = []
    for spec in ep.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            flat.append(next(user, None))
        elif spec.target in ep.state_dict:
            flat.append(ep.state_dict[spec.target])
        else:
            flat.append(ep.constants.get(spec.target))
    if any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in flat):
        return {}  # no values on the meta device: such graphs keep failing on symbolic sizes
    seen: dict[torch.fx.Node, Any] = {}
    wanted = set(sym)

    class _Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            out = super().run_node(node)
            if node in wanted:
                seen[node] = out
            return out

    try:
        with torch.no_grad():
            _Recorder(ep.graph_module).run(*flat)
    except Exception as e:  # noqa: BLE001 - then symbolic sizes stay unsupported, as without this pass
        log.debug("could not evaluate symbolic scalars: %s", e)
        return {}
    return {n: v for n, v in seen.items() if isinstance(v, (int, float, bool, torch.Tensor, list, tuple))}


def _data_dependent_symbols(n: torch.fx.Node, backed: set) -> bool:
    """True when ``n``'s value or shape involves size symbols other than the inputs' sizes."""
    val = n.meta.get("val")
    vals = val if isinstance(val, (list, tuple)) else [val]
    for v in vals:
        sizes = list(v.shape) if isinstance(v, torch.Tensor) else [v]
        for d in sizes:
            if isinstance(d, (torch.SymInt, torch.SymFloat, torch.SymBool)) and not d.node.expr.free_symbols <= backed:
                return True
    return False


def _is_assertion(n: torch.fx.Node) -> bool:
    name = str(n.target)
    return n.op == "call_function" and ("_assert" in name or "sym_constrain_range" in name)


def _needed_nodes(graph: torch.fx.Graph) -> set[torch.fx.Node]:
    """fx nodes an output or a mutation depends on; chains that only feed
    runtime assertions (symbolic-size checks around data-dependent ops) are not."""
    roots = []
    for n in graph.nodes:
        if n.op == "output":
            roots.append(n)
        elif n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload) and n.target._schema.is_mutable:
            roots.append(n)
        elif n.op == "call_function" and isinstance(n.target, torch._ops.HigherOrderOperator):
            roots.append(n)
    needed: set[torch.fx.Node] = set()
    stack = roots
    while stack:
        n = stack.pop()
        if n in needed or _is_assertion(n):
            continue
        needed.add(n)
        stack.extend(n.all_input_nodes)
    return needed


def _spec_paths(spec: Any, prefix: str = "") -> list[str]:
    """Leaf paths of a pytree spec: dict-like keys by name, sequences by index."""
    if spec.is_leaf():
        return [prefix]
    ctx = spec.context
    keys = list(ctx) if isinstance(ctx, (list, tuple)) and len(ctx) == spec.num_children else None
    if isinstance(ctx, (list, tuple)) and len(ctx) == 2 and isinstance(ctx[1], (list, tuple)) and keys is None:
        keys = list(ctx[1])  # (type, keys) contexts of some registered classes
    out = []
    for i, child in enumerate(spec.children()):
        k = str(keys[i]) if keys is not None and i < len(keys) else str(i)
        out.extend(_spec_paths(child, f"{prefix}.{k}" if prefix else k))
    return out


def _unique(g: ArchGraph, base: str) -> str:
    nid, k = base, 1
    while nid in g.nodes:
        nid = f"{base}_{k}"
        k += 1
    return nid


def _lookup(module: nn.Module, fqn: str) -> torch.Tensor | None:
    path, _, leaf = fqn.rpartition(".")
    try:
        owner = module.get_submodule(path) if path else module
    except AttributeError:
        return None
    t = getattr(owner, leaf, None)
    return t if isinstance(t, torch.Tensor) else None


def from_module(
    module: nn.Module,
    args: tuple | list = (),
    kwargs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    source: str | None = None,
    eval_mode: bool = True,
    dynamic: bool | str = True,
    stats: CaptureStats | None = None,
) -> ArchGraph:
    """Capture ``module`` called as ``module(*args, **kwargs)`` into an ArchGraph.

    Args:
        module: any ``nn.Module`` that ``torch.export`` can trace (non-strict).
        args, kwargs: example inputs; the graph is specialised to their shapes.
        name: graph name (default: the module's class name).
        source: provenance string (default ``module:<ClassName>``).
        eval_mode: capture in eval mode; the module's mode is restored. Mode-dependent
            ops (batch norm, dropout) of the graph then follow ``.train()``/``.eval()``
            of the rebuilt module, as in the source.
        dynamic: keep the batch dim of every tensor input (and the sequence dim of
            integer/bool inputs such as token ids and masks) symbolic (``B``, ``T``),
            so the graph runs at other sizes; ``"batch"``: the batch dims only;
            False: static sizes. Sizes that export specialises anyway stay
            concrete and are listed in ``meta["specialised_dims"]``. Where export
            fails with symbolic sizes, or a size expression cannot be re-derived
            by the graph's shape rules, capture retries with the batch symbolic
            only, then with static sizes, and says why in ``meta["specialised_dims"]``.
        stats: filled with export/convert timings if given.

    Returns:
        The graph, with shapes from the trace. Run ``g.validate()`` to re-check them.

    Raises:
        CaptureError: export failed (``stage="export"``) or the model uses ops
            outside the vocabulary (``.ops`` lists them).

    Example:
        >>> g = from_module(torch.nn.Linear(4, 2), (torch.randn(3, 4),))
        >>> [n.op for n in g]
        ['input', 'linear']
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_module needs an nn.Module, got {type(module).__name__}")
    kwargs = dict(kwargs or {})
    args = tuple(args) if isinstance(args, (list, tuple)) else (args,)
    was_training = module.training
    if eval_mode:
        module.eval()
    stats = stats if stats is not None else CaptureStats()
    t0 = time.perf_counter()
    wanted = _dynamic_spec(module, args, kwargs, seq=dynamic is True) if dynamic else None
    fallback = None

    def export(dynamic_shapes: Any) -> torch.export.ExportedProgram:
        try:
            return torch.export.export(module, args, kwargs, strict=False, dynamic_shapes=dynamic_shapes)
        finally:
            _clear_dim_marks((args, kwargs))  # a failed attempt must not leave its dims marked for the next

    try:
        try:
            ep = export(wanted)
        except Exception as e:
            if wanted is None:
                raise
            fallback = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}" if str(e).strip() else type(e).__name__
            ep = None
            if dynamic is True:
                log.info("export with symbolic sizes failed (%s); retrying with a symbolic batch only", fallback)
                wanted = _dynamic_spec(module, args, kwargs, seq=False)
                try:
                    ep = export(wanted)
                    dynamic = "batch"
                except Exception:  # noqa: BLE001 - then static sizes, below
                    ep = None
            if ep is None:
                log.info("export with symbolic sizes failed (%s); retrying with static sizes", fallback)
                ep = export(None)
                dynamic, wanted = False, None
    except Exception as e:
        msg = str(e).strip().split("\n")[0][:300]
        raise CaptureError(f"torch.export failed: {type(e).__name__}: {msg}", stage="export") from e
    finally:
        module.train(was_training)
    stats.export_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    cls = type(module).__name__
    conv = _Converter(ep, module, name or cls, source or f"module:{cls}")
    kw_spec = ep.call_spec.in_spec.children()[1] if ep.call_spec.in_spec is not None else None
    order = list(kw_spec.context) if kw_spec is not None and isinstance(kw_spec.context, list) else list(kwargs)
    flat = pytree.tree_leaves((args, {k: kwargs[k] for k in order if k in kwargs}))
    conv.concrete = _concrete_scalars(ep, flat)
    why = None
    try:
        g = conv.run(flat)
        if g.dims:
            g.infer(check=True)  # symbolic shapes the shape rules cannot reproduce: keep sizes static
    except _NotSymbolic as e:
        why = f"the size {e} cannot be written as a dim expression"
    except GraphError as e:
        why = f"symbolic shapes did not re-check ({str(e)[:200]})"
    if why is not None:
        if wanted is None:
            raise CaptureError(f"{conv.g.name}: {why}")
        fewer = "batch" if dynamic is True else False  # keep the batch symbolic if the sequence was the trouble
        log.info("%s: %s; capturing with %s", conv.g.name, why, "a symbolic batch only" if fewer else "static sizes")
        g = from_module(module, args, kwargs, name=name, source=source, eval_mode=eval_mode, dynamic=fewer, stats=stats)
        g.meta.setdefault("specialised_dims", {})["all" if not fewer else "sequence"] = why
        return g
    if fallback is not None:
        g.meta.setdefault("specialised_dims", {})["sequence" if dynamic == "batch" else "all"] = (
            f"export with symbolic sizes failed: {fallback}")
    elif wanted is not None:
        _note_specialised(g, ep, wanted)
    stats.convert_s = time.perf_counter() - t1
    stats.aten_nodes = sum(1 for n in ep.graph.nodes if n.op == "call_function")
    return g


def _clear_dim_marks(inputs: Any) -> None:
    """Remove the dynamic-dim marks that ``torch.export`` leaves on input tensors (``_dynamo_*`` attributes):
    left in place, they make a later export of the same tensors symbolic again, even a static one."""
    for leaf in pytree.tree_leaves(inputs):
        if isinstance(leaf, torch.Tensor):
            marks = [k for k in getattr(leaf, "__dict__", {}) if k.startswith(("_dynamo_", "_has_dynamo_"))]
            for key in marks:
                delattr(leaf, key)


def _dynamic_spec(module: nn.Module, args: tuple, kwargs: dict[str, Any], seq: bool = True) -> dict[str, Any] | None:
    """``dynamic_shapes`` for export: batch dims (dim 0) of tensor inputs with at least 2 rows,
    and dim 1 of integer/bool inputs of rank >= 2 (token ids, masks) with at least 2 columns."""
    import inspect

    from torch.export import Dim

    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None

    def spec(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            return None
        dims = {}
        if x.shape[0] >= 2:
            dims[0] = Dim.AUTO
        if seq and x.dim() >= 2 and not x.dtype.is_floating_point and not x.is_complex() and x.shape[1] >= 2:
            dims[1] = Dim.AUTO
        return dims or None

    out = {}
    for name, value in bound.arguments.items():
        out[name] = pytree.tree_map(spec, value)
    return out


def _note_specialised(g: ArchGraph, ep: Any, wanted: dict[str, Any]) -> None:
    """Record in ``g.meta["specialised_dims"]`` the input dims asked to be symbolic that stayed concrete."""
    asked: list[tuple[str, int]] = []
    for name, spec in wanted.items():
        for path, leaf in pytree.tree_flatten_with_path(spec, is_leaf=lambda x: isinstance(x, dict) and all(isinstance(k, int) for k in x))[0]:
            if isinstance(leaf, dict):
                asked.extend((name, d) for d in leaf)
    specs = {s.name: s for s in g.inputs}
    fixed = []
    for name, d in asked:
        s = specs.get(name)
        if s is not None and d < len(s.shape) and isinstance(s.shape[d], int):
            fixed.append(f"{name}.{d}")
    if fixed:
        g.meta.setdefault("specialised_dims", {}).update({k: "export specialised this size" for k in fixed})
