"""The parameter/module tree read off an ArchModule built on the ``meta`` device, and the layer nodes that read
as module calls."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from torch import nn

from ..arch_graph import Node
from ..module import ArchModule, Container
from ..ops import get_op
from ..ops.registry import OpDef
from .layers import _ctor, _reconstruct
from .literals import _FAILURES
from .naming import _safe_attr

log = logging.getLogger(__name__)


@dataclass
class _Mod:
    """One module of the tree read off a meta ArchModule."""

    path: str
    module: nn.Module
    kind: str  # "plain", "list", "dict" (containers) or "layer"
    expr: str = ""
    ctor: str | None = None
    children: dict[str, _Mod] = field(default_factory=dict)
    own: set[str] = field(default_factory=set)  # tensors the layer constructor makes
    dropped: list[str] = field(default_factory=list)  # constructor buffers the graph does not have
    dtype: torch.dtype | None = None


def _container_kind(module: nn.Module) -> str:
    """``list`` when the children are numbered (gaps become ``nn.Identity()``), ``dict`` when some
    child name cannot be an attribute, else ``plain``."""
    names = list(module._modules)
    if names and all(n.isdigit() and (n == "0" or not n.startswith("0")) for n in names):
        idx = sorted(int(n) for n in names)
        if idx[-1] + 1 <= max(2 * len(idx), len(idx) + 8):
            return "list"
    if any(not _safe_attr("plain", n) for n in names):
        return "dict"
    return "plain"


def _child_expr(parent: _Mod, name: str) -> str:
    if parent.kind == "list":
        return f"{parent.expr}[{name}]"
    if parent.kind == "dict":
        return f'{parent.expr}["{name}"]' if not _safe_attr("dict", name) else f"{parent.expr}.{name}"
    if parent.kind == "layer" or not _safe_attr(parent.kind, name):
        return f'{parent.expr}._modules["{name}"]'
    return f"{parent.expr}.{name}"


class _TreeReader:
    """Reads the module tree and matches layer nodes to its layers (a part of ``_Writer``, which holds
    ``g``, ``meta``, ``order``, ``root``, ``tensor_owner``, ``tensor_expr`` and ``aliases``)."""

    def _read_tree(self) -> _Mod:
        root = _Mod("", self.meta, "plain", expr="self")
        root.kind = _container_kind(self.meta)
        if root.kind == "dict":  # the class itself: numbered children make it an nn.ModuleList subclass
            root.kind = "plain"
        self._walk(root)
        return root

    def _walk(self, mod: _Mod) -> None:
        for leaf, t in list(mod.module._parameters.items()) + list(mod.module._buffers.items()):
            if t is None:
                continue
            fqn = f"{mod.path}.{leaf}" if mod.path else leaf
            self.tensor_owner[fqn] = (mod, leaf)
            if mod.kind == "layer" or _safe_attr(mod.kind, leaf):
                self.tensor_expr[fqn] = f"{mod.expr}.{leaf}"
            else:
                where = "_parameters" if leaf in mod.module._parameters else "_buffers"
                self.tensor_expr[fqn] = f'{mod.expr}.{where}["{leaf}"]'
        for name, child in mod.module._modules.items():
            path = f"{mod.path}.{name}" if mod.path else name
            c = _Mod(path, child, "plain")
            c.expr = _child_expr(mod, name)
            if isinstance(child, (Container, ArchModule)) or _ctor(child) is None:
                if not isinstance(child, (Container, ArchModule)):
                    log.warning("to_code: no constructor source for %s at %r; its tensors are written out one by "
                                "one and its node runs in functional form", type(child).__name__, path)
                c.kind = _container_kind(child)
            else:
                self._layer(c)
            mod.children[name] = c
            self._walk(c)

    def _layer(self, c: _Mod) -> None:
        """Fill constructor source, the tensors it makes and the buffers to drop for a layer module."""
        c.kind = "layer"
        ctor = _ctor(c.module)
        with torch.device("meta"):
            fresh = _reconstruct(c.module)
        fresh_tensors = {n: t for n, t in list(fresh._parameters.items()) + list(fresh._buffers.items())
                         if t is not None}
        have = {n for n, t in list(c.module._parameters.items()) + list(c.module._buffers.items()) if t is not None}
        c.own = have & set(fresh_tensors)
        c.dropped = [n for n in fresh_tensors if n not in have]
        dtypes = {c.module._parameters.get(n, c.module._buffers.get(n)).dtype for n in c.own
                  if fresh_tensors[n].dtype.is_floating_point}
        fresh_dtypes = {fresh_tensors[n].dtype for n in c.own if fresh_tensors[n].dtype.is_floating_point}
        if dtypes and dtypes != fresh_dtypes:
            c.dtype = next(iter(dtypes))
        c.ctor = ctor

    def _module_calls(self) -> dict[str, _Mod]:
        """Layer nodes that read as ``self.<path>(x)``: node id -> the module."""
        out: dict[str, _Mod] = {}
        for nid in self.order:
            node = self.g.nodes[nid]
            op = get_op(node.op)
            if op.module is None or not node.params or node.op == "parameter":
                continue
            fqns = {r: node.param_name(r) for r in node.params}
            mod = self._own_layer(node, op, fqns) or self._tied_layer(node, op, fqns)
            if mod is not None:
                out[nid] = mod
        return out

    def _own_layer(self, node: Node, op: OpDef, fqns: dict[str, str]) -> _Mod | None:
        """The standard layer that holds exactly this node's params, if calling it computes the node."""
        g = self.g
        prefixes = {f.rpartition(".")[0] for f in fqns.values()}
        if len(prefixes) != 1:
            return None
        prefix = prefixes.pop()
        mod = self._find(prefix)
        if mod is None or mod.kind != "layer" or any(fqns[r] != f"{prefix}.{r}" for r in fqns):
            return None
        if not set(fqns) <= mod.own or any(n not in fqns for n in mod.own if n in mod.module._parameters):
            return None
        if len(g.in_edges(node.id)) != 1 or not self._port_is_input(op, node) or not self._module_equivalent(op, node):
            return None
        try:
            with torch.device("meta"):
                built = op.module(node.attrs, node.params, [g.nodes[p].shape for p in g.predecessors(node.id)])
        except _FAILURES:
            return None
        if built is None or type(built) is not type(mod.module) or _ctor(built) != mod.ctor:
            return None
        return mod

    def _tied_layer(self, node: Node, op: OpDef, fqns: dict[str, str]) -> _Mod | None:
        """A layer whose weights are aliases of another layer's (an LM head tied to the embedding).

        ArchModule holds the aliases in a plain container at the node's scope; the code makes that
        container the standard layer (``nn.Linear(..., bias=False)``) and then ties its tensors, which
        keeps the state dict and reads like the source model.
        """
        mod = self._find(node.scope) if node.scope else None
        if mod is None or mod.kind != "plain" or mod.children or mod is self.root:
            return None
        leaves = [n for n, t in list(mod.module._parameters.items()) + list(mod.module._buffers.items())
                  if t is not None]
        if sorted(leaves) != sorted(fqns) or any(self.aliases.get(f"{node.scope}.{r}") != f for r, f in fqns.items()):
            return None
        if len(self.g.in_edges(node.id)) != 1 or not self._port_is_input(op, node) or \
                not self._module_equivalent(op, node):
            return None
        in_shapes = [self.g.nodes[p].shape for p in self.g.predecessors(node.id)]
        try:
            with torch.device("meta"):
                built = op.module(node.attrs, node.params, in_shapes)
        except _FAILURES:
            return None
        ctor = _ctor(built) if built is not None else None
        if ctor is None:
            return None
        made = {n: t for n, t in list(built._parameters.items()) + list(built._buffers.items()) if t is not None}
        if sorted(made) != sorted(fqns) or any(made[r].dtype != self._tensor(f"{node.scope}.{r}").dtype for r in made):
            return None
        mod.kind, mod.ctor, mod.own = "layer", ctor, set(made)
        return mod

    @staticmethod
    def _port_is_input(op: OpDef, node: Node) -> bool:
        """The node's one port feeds the layer's data argument; other tensor args are params or null."""
        data = "indices" if op.name == "embedding" else op.args[0].name
        for a in op.args:
            if a.name == data:
                if a.name in node.params or a.name in node.attrs:
                    return False
            elif a.name not in node.params and (a.kind != "optional" or node.attrs.get(a.name) is not None):
                return False
        return True

    @staticmethod
    def _module_equivalent(op: OpDef, node: Node) -> bool:
        """Attrs that the module call does not reproduce keep the functional form."""
        a = node.attrs
        if op.name == "batch_norm":
            return bool(a.get("training")) == ("running_mean" not in node.params)
        if op.name == "embedding":
            return not a.get("scale_grad_by_freq") and not a.get("sparse")
        return True

    def _find(self, path: str) -> _Mod | None:
        mod = self.root
        if not path:
            return mod
        for part in path.split("."):
            mod = mod.children.get(part)
            if mod is None:
                return None
        return mod

    def _aliases(self) -> dict[str, str]:
        """fqn -> fqn of the tensor registered first under another name (tied weights)."""
        seen: dict[int, str] = {}
        out: dict[str, str] = {}
        declared = {a: t for a, t in self.g.meta.get("aliases", {}).items() if a in self.tensor_owner}
        for fqn in self.tensor_owner:
            if fqn in declared and declared[fqn] in self.tensor_owner and \
                    self._tensor(fqn) is self._tensor(declared[fqn]):
                out[fqn] = declared[fqn]
        for fqn in self.tensor_owner:
            if fqn in out:
                continue
            key = id(self._tensor(fqn))
            if key in seen:
                out[fqn] = seen[key]
            else:
                seen[key] = fqn
        return out

    def _tensor(self, fqn: str) -> torch.Tensor:
        owner, leaf = self.tensor_owner[fqn]
        t = owner.module._parameters.get(leaf)
        return t if t is not None else owner.module._buffers[leaf]
