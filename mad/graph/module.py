"""to_module(): a runnable ``nn.Module`` built from an ArchGraph by construction.

Parameters and buffers are registered under the state-dict names of the
source model (``node.param_names``), inside standard ``torch.nn`` layers
where a layer node maps onto one (so ``print(model)`` reads like the source),
so ``load_state_dict(source.state_dict())`` works. ``forward`` walks the graph
and runs each op; nothing is generated as text and executed.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import torch
from torch import nn

from .arch_graph import ArchGraph, GraphError
from .interpreter import describe_value, param_dtype
from .ops import get_op
from .ops.call import call_op
from .ops.symbols import resolve_attrs, symbolic_attr_keys
from .ops.values import dtype_from_name
from .symbolic import SymbolError, concrete

__all__ = ["ArchModule", "Container", "decode_tensor", "encode_tensor", "MODE_ATTRS"]

# ops whose behaviour follows nn.Module.train()/eval(): the attr that says "training".
# A graph is captured in eval mode, so a stored False means "follow the module's mode"
# and a stored True means the source always ran that way (BatchNorm without running stats).
MODE_ATTRS = {
    "batch_norm": "training",
    "dropout": "train",
    "feature_dropout": "train",
    "alpha_dropout": "train",
}


class Container(nn.Module):
    """A plain module that holds children; ``c[0]`` reads child ``"0"``."""

    def __getitem__(self, idx: int | str) -> nn.Module:
        return getattr(self, str(idx))


def encode_tensor(t: torch.Tensor) -> dict[str, Any]:
    """A tensor's value as JSON (``dtype``, ``shape``, base64 ``b64``)."""
    t = t.detach().cpu().contiguous()
    flat = t.reshape(-1)  # a 0-d tensor cannot be viewed as bytes
    raw = flat.view(torch.uint8) if t.dtype != torch.bool else flat.to(torch.uint8)
    return {
        "dtype": str(t.dtype).removeprefix("torch."),
        "shape": list(t.shape),
        "b64": base64.b64encode(raw.numpy().tobytes()).decode("ascii"),
    }


def decode_tensor(d: dict[str, Any]) -> torch.Tensor:
    dtype = dtype_from_name(d["dtype"])
    buf = bytearray(base64.b64decode(d["b64"]))
    if dtype == torch.bool:
        flat = torch.frombuffer(buf, dtype=torch.uint8).bool() if buf else torch.empty(0, dtype=torch.bool)
    else:
        flat = torch.frombuffer(buf, dtype=dtype) if buf else torch.empty(0, dtype=dtype)
    return flat.reshape(d["shape"]).clone()


def _init_tensor(role: str, fqn: str, shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    t = torch.empty(shape, dtype=dtype)
    if t.device.type == "meta":
        return t
    if not dtype.is_floating_point:
        return t.zero_()
    leaf = fqn.rsplit(".", 1)[-1]
    if "running_var" in leaf or (len(shape) == 1 and leaf == "weight"):
        return t.fill_(1.0)
    if len(shape) <= 1:
        return t.zero_()
    fan_in = math.prod(shape[1:])
    return t.normal_(0.0, 1.0 / math.sqrt(max(fan_in, 1)))


class ArchModule(nn.Module):
    """Runs an :class:`ArchGraph`.

    Args:
        graph: the graph (validated structure; shapes are not needed).
        device: where to create parameters (``"meta"`` allocates nothing).

    Shapes:
        inputs as in ``graph.inputs``, symbolic dims (``B``, ``T``) at any size;
        output a tensor, tuple or dict as in ``graph.output_kind``.

    Modes:
        the module starts in eval mode (graphs are captured in eval mode).
        ``.train()`` switches batch norm to batch statistics (updating running
        statistics and ``num_batches_tracked``, at the ``momentum`` of the
        ``nn.BatchNorm*d`` holding them, ``None`` giving the cumulative
        average) and turns dropout on, exactly as the source module does;
        ops the source ran in training mode regardless of its mode keep doing
        so. Attrs that only the training
        mode sets (attention dropout written ``p if self.training else 0``)
        come from ``graph.meta["train_attrs"]`` (node id -> attrs).

    Example:
        >>> m = g.to_module()
        >>> m.load_state_dict(source.state_dict())
        >>> y = m(*g.example_inputs())
    """

    def __init__(self, graph: ArchGraph, device: Any = None) -> None:
        super().__init__()
        self.graph = graph
        self._order = graph.topo_order()
        self._ops = {nid: get_op(graph.nodes[nid].op) for nid in self._order}
        self._preds = {nid: graph.predecessors(nid) for nid in self._order}
        state_keys = set(graph.meta.get("state_keys", []))
        with torch.device(device) if device is not None else _nullctx():
            self._build_params(state_keys)
        self._sym_keys = {nid: symbolic_attr_keys(self._ops[nid], graph.nodes[nid].attrs) for nid in self._order}
        self._sym_keys = {k: v for k, v in self._sym_keys.items() if v}
        self._mode_attr = {nid: MODE_ATTRS[graph.nodes[nid].op] for nid in self._order if graph.nodes[nid].op in MODE_ATTRS}
        self._train_attrs = {k: v for k, v in graph.meta.get("train_attrs", {}).items() if k in graph.nodes}
        self._batches_tracked, self._bn_layers = self._find_batch_norms()
        self._binders = _dim_binders(graph)
        # symbols no input carries (an input replaced by a constant) keep their example size
        self._fixed_dims = {s: v for s, v in graph.dims.items() if s not in self._binders}
        self._input_names = [s.name for s in graph.inputs]
        self._input_node = {graph.nodes[n].attrs["name"]: n for n in self._order if graph.nodes[n].op == "input"}
        last_use: dict[str, int] = {}
        for i, nid in enumerate(self._order):
            for p in self._preds[nid]:
                last_use[p] = i
        keep = set(graph.outputs)
        self._free_after = [[] for _ in self._order]
        for p, i in last_use.items():
            if p not in keep:
                self._free_after[i].append(p)
        self._watch: Any = None  # run_checked's check of each value
        self.eval()  # the mode graphs are captured in; .train() switches batch norm and dropout

    # ------------------------------------------------------------- params
    def _container(self, path: str) -> nn.Module:
        mod: nn.Module = self
        if not path:
            return mod
        for part in path.split("."):
            child = mod._modules.get(part)
            if child is None:
                if part in mod._parameters or part in mod._buffers:
                    raise GraphError(f"parameter path {path!r} clashes with tensor {part!r}")
                child = Container()
                mod.add_module(part, child)
            mod = child
        return mod

    def _exists(self, fqn: str) -> bool:
        path, _, leaf = fqn.rpartition(".")
        try:
            mod = self.get_submodule(path) if path else self
        except AttributeError:
            return False
        return leaf in mod._parameters or leaf in mod._buffers

    def _register(self, fqn: str, tensor: torch.Tensor, buffer: bool, persistent: bool = True) -> None:
        path, _, leaf = fqn.rpartition(".")
        mod = self._container(path)
        if leaf in mod._modules:
            raise GraphError(f"parameter name {fqn!r} clashes with a submodule")
        if buffer:
            mod.register_buffer(leaf, tensor, persistent=persistent)
        else:
            mod.register_parameter(leaf, nn.Parameter(tensor, requires_grad=tensor.dtype.is_floating_point))

    def _try_layer_module(self, node, op, fqns: dict[str, str], state_keys: set[str]) -> bool:
        prefixes = {f.rpartition(".")[0] for f in fqns.values()}
        if op.module is None or len(prefixes) != 1:
            return False
        prefix = prefixes.pop()
        if not prefix or any(fqns[r] != f"{prefix}.{r}" for r in fqns) or any(self._exists(f) for f in fqns.values()):
            return False
        try:
            self.get_submodule(prefix)
            return False  # path already holds a module
        except AttributeError:
            pass
        in_shapes = [self.graph.nodes[p].shape for p in self.graph.predecessors(node.id)]
        try:
            m = op.module(node.attrs, node.params, in_shapes)
        except Exception:
            return False
        if m is None:
            return False
        tensors = dict(m.named_parameters(recurse=False)) | dict(m.named_buffers(recurse=False))
        if any(r not in tensors or list(tensors[r].shape) != node.params[r] for r in node.params):
            return False
        if any(t is not None and name not in node.params for name, t in m._parameters.items()):
            return False  # the layer would add parameters the graph lacks
        if state_keys and any(
            t is not None and name not in node.params and f"{prefix}.{name}" not in state_keys
            for name, t in m._buffers.items()
        ):
            return False  # e.g. a num_batches_tracked the source never had (BatchNorm cannot drop it)
        if any(t.dtype != param_dtype(self.graph, node, r) for r, t in tensors.items() if r in node.params):
            m = m.to(param_dtype(self.graph, node, next(iter(node.params))))
        path, _, leaf = prefix.rpartition(".")
        self._container(path).add_module(leaf, m)
        return True

    def _build_params(self, state_keys: set[str]) -> None:
        g = self.graph
        self._param_refs: dict[str, dict[str, str]] = {}
        for nid in self._order:
            node = g.nodes[nid]
            if not node.params:
                continue
            op = self._ops[nid]
            fqns = {r: node.param_name(r) for r in node.params}
            self._param_refs[nid] = fqns
            if self._try_layer_module(node, op, fqns, state_keys):
                continue
            for role, fqn in fqns.items():
                if self._exists(fqn):
                    continue
                dtype = param_dtype(g, node, role)
                value = node.attrs.get("value") if node.op == "parameter" else None
                if value is not None and torch.empty(0).device.type != "meta":
                    t = decode_tensor(value).to(torch.empty(0).device)
                else:
                    t = _init_tensor(role, fqn, node.params[role], dtype)
                kind = node.attrs.get("kind", "parameter") if node.op == "parameter" else None
                buffer = role in op.buffer_args or kind in ("buffer", "constant")
                persistent = node.attrs.get("persistent", True) and kind != "constant"
                self._register(fqn, t, buffer=buffer, persistent=persistent)
        for alias, target in g.meta.get("aliases", {}).items():
            if self._exists(alias) or not self._exists(target):
                continue
            path, _, leaf = target.rpartition(".")
            owner = self.get_submodule(path) if path else self
            apath, _, aleaf = alias.rpartition(".")
            amod = self._container(apath)
            if leaf in owner._parameters:
                amod.register_parameter(aleaf, owner._parameters[leaf])
            else:
                amod.register_buffer(aleaf, owner._buffers[leaf])
        for extra in g.meta.get("extra_state", []):
            if not self._exists(extra["name"]):
                t = torch.zeros(extra["shape"], dtype=dtype_from_name(extra.get("dtype", "float32")))
                self._register(extra["name"], t, buffer=extra.get("buffer", True))

    def _find_batch_norms(self) -> tuple[dict[str, str], dict[str, nn.modules.batchnorm._BatchNorm]]:
        """BatchNorm nodes with running statistics -> the ``num_batches_tracked`` buffer the source model
        updates with them, and -> the ``nn.BatchNorm*d`` holding their tensors (its ``momentum`` is followed)."""
        counters, layers = {}, {}
        for nid, fqns in self._param_refs.items():
            if self.graph.nodes[nid].op != "batch_norm" or "running_mean" not in fqns:
                continue
            path = fqns["running_mean"].rpartition(".")[0].lstrip(".")
            fqn = f"{path}.num_batches_tracked".lstrip(".")
            if self._exists(fqn):
                counters[nid] = fqn
            try:
                mod = self.get_submodule(path)
            except AttributeError:
                continue
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                layers[nid] = mod
        return counters, layers

    def _momentum(self, nid: str, attrs: dict[str, Any]) -> dict[str, Any]:
        """A training-mode batch norm's attrs with its layer's current ``momentum``; ``None`` (a cumulative
        average, as ``nn.BatchNorm`` does) is ``1 / num_batches_tracked``."""
        layer = self._bn_layers.get(nid)
        if layer is None or layer.momentum == attrs.get("momentum"):
            return attrs
        mom = layer.momentum
        if mom is None:
            if nid not in self._batches_tracked:
                return attrs
            mom = 1.0 / max(1, int(self._tensor(self._batches_tracked[nid])))
        return {**attrs, "momentum": float(mom)}

    def _tensor(self, fqn: str) -> torch.Tensor:
        path, _, leaf = fqn.rpartition(".")
        mod = self.get_submodule(path) if path else self
        t = mod._parameters.get(leaf)
        return t if t is not None else mod._buffers[leaf]

    # ------------------------------------------------------------- forward
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) > len(self._input_names):
            raise TypeError(f"{self.graph.name}: forward takes {len(self._input_names)} inputs, got {len(args)}")
        values = dict(zip(self._input_names, args))
        for k, v in kwargs.items():
            if k not in self._input_names:
                raise TypeError(f"{self.graph.name}: unexpected input {k!r}; inputs are {self._input_names}")
            values[k] = v
        missing = [n for n in self._input_names if n not in values]
        if missing:
            raise TypeError(f"{self.graph.name}: missing inputs {missing}")
        device = _module_device(self, values)
        bindings = self._bind(values)
        env: dict[str, Any] = {}
        nodes = self.graph.nodes
        watch = self._watch
        for i, nid in enumerate(self._order):
            node = nodes[nid]
            op = self._ops[nid]
            if node.op == "input":
                env[nid] = values[node.attrs["name"]]
            elif node.op == "parameter":
                env[nid] = self._tensor(self._param_refs[nid]["data"])
            else:
                params = {r: self._tensor(f) for r, f in self._param_refs.get(nid, {}).items()}
                attrs = node.attrs
                if nid in self._sym_keys:
                    attrs = resolve_attrs(op, attrs, bindings, self._sym_keys[nid])
                if self.training and nid in self._train_attrs:
                    attrs = {**attrs, **self._train_attrs[nid]}
                if nid in self._mode_attr and self.training and not attrs.get(self._mode_attr[nid], False):
                    attrs = {**attrs, self._mode_attr[nid]: True}
                    if nid in self._batches_tracked:
                        with torch.no_grad():
                            self._tensor(self._batches_tracked[nid]).add_(1)
                    if nid in self._bn_layers:
                        attrs = self._momentum(nid, attrs)
                try:
                    env[nid] = call_op(op, attrs, [env[p] for p in self._preds[nid]], params, device)
                except Exception as e:
                    raise RuntimeError(f"node {nid!r} ({node.op}, scope {node.scope!r}) failed: {e}") from e
            if watch is not None:
                watch(node, env[nid], bindings)
            for p in self._free_after[i]:
                env.pop(p, None)
        outs = [env[o] for o in self.graph.outputs]
        if self.graph.output_kind == "tensor":
            return outs[0]
        if self.graph.output_kind == "dict":
            return dict(zip(self.graph.output_keys or [], outs))
        return tuple(outs)

    def run_checked(self, *args: Any, **kwargs: Any) -> Any:
        """``forward(*args, **kwargs)``, checking that every node's value has the shape and dtype the graph
        records for it, its dim symbols at the sizes the inputs give (``B`` from the batch...): the shape rules
        checked against the kernels that really run. (A size that depends on values, as ``nonzero``'s, is held
        to what the graph records too.)

        Raises:
            GraphError: the first node whose value differs, saying how.
        """
        def check(node: Any, value: Any, bindings: dict[str, int]) -> None:
            have, dtype = describe_value(value, strict=False)
            if have is None or node.shape is None:
                return
            try:
                want = concrete(node.shape, bindings)
            except SymbolError:
                return  # a size the inputs do not fix
            if have != want or (node.dtype is not None and dtype != node.dtype):
                raise GraphError(f"node {node.id!r} ({node.op}): the graph records {node.shape} {node.dtype} "
                                 f"({want} at {bindings}), but it ran to {have} {dtype}")

        self._watch = check
        try:
            return self(*args, **kwargs)
        finally:
            self._watch = None

    def _bind(self, values: dict[str, Any]) -> dict[str, int]:
        """Sizes of the symbolic dims, read from the inputs (``B`` from ``x.shape[0]``...). A symbol that no
        input carries (its input was replaced by a constant, as ``retarget`` does) keeps its example size."""
        bindings: dict[str, int] = dict(self._fixed_dims)
        for sym, (name, dim) in self._binders.items():
            v = values.get(name)
            if isinstance(v, torch.Tensor) and v.dim() > dim:
                bindings[sym] = v.shape[dim]
        for s in self.graph.inputs:
            v = values.get(s.name)
            if not isinstance(v, torch.Tensor):
                continue
            if v.dim() != len(s.shape):
                raise ValueError(f"{self.graph.name}: input {s.name!r} needs rank {len(s.shape)} {s.shape}, got {list(v.shape)}")
            for i, d in enumerate(s.shape):  # one size per symbol across inputs
                want = bindings.get(d) if isinstance(d, str) else None
                if isinstance(want, int) and isinstance(v.shape[i], int) and v.shape[i] != want:
                    raise ValueError(
                        f"{self.graph.name}: input {s.name!r} dim {i} is {d} = {want} (from another input), "
                        f"got {list(v.shape)} for shape {s.shape}"
                    )
        return bindings

    def extra_repr(self) -> str:
        return f"graph={self.graph.name!r}, nodes={len(self.graph.nodes)}"


def _dim_binders(graph: ArchGraph) -> dict[str, tuple[str, int]]:
    """For each dim symbol, the first graph input dim that is exactly that symbol."""
    out: dict[str, tuple[str, int]] = {}
    for s in graph.inputs:
        for i, d in enumerate(s.shape):
            if isinstance(d, str) and d.strip().isidentifier() and d.strip() not in out:
                out[d.strip()] = (s.name, i)
    return out


def _module_device(m: nn.Module, values: dict[str, Any]) -> torch.device:
    for v in values.values():
        if isinstance(v, torch.Tensor):
            return v.device
    for p in m.parameters():
        return p.device
    return torch.device("cpu")


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

