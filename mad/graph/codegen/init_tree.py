"""The body of the generated ``__init__``: containers, layer constructors, free tensors and tied weights."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..module import decode_tensor
from .literals import _ints, _lit
from .module_tree import _Mod
from .naming import _safe_attr, _snake
from .values import _B64_LINE, _value_expr


def _container_ctor(kind: str) -> str:
    return {"plain": "nn.Module()", "dict": "nn.ModuleDict()", "list": "nn.ModuleList()"}[kind]


class _InitWriter:
    """Writes ``__init__`` (a part of ``_Writer``; reads the tree it built)."""

    def init_lines(self) -> list[str]:
        """Body of ``__init__``, starting with the ``super().__init__(...)`` call."""
        aliases = self.aliases
        if self.root.kind == "list":
            items = self._list_items(self.root)
            lines = ["super().__init__(["] + [f"    {it}," for it in items] + ["])"]
            lines += self._dropped_lines(self.root)
            self._emit_tensors(self.root, lines, aliases)
            self._emit_list_members(self.root, lines, aliases)
        else:
            lines = ["super().__init__()"]
            self._emit_tensors(self.root, lines, aliases)
            prev_container = False
            for child in self.root.children.values():
                container = child.kind != "layer" or bool(child.children)
                if (container or prev_container) and len(lines) > 1 and lines[-1] != "":
                    lines.append("")
                prev_container = container
                self._emit_module(child, lines, aliases)
        if aliases:
            lines += ["", "# tied weights: one tensor under several names"]
            for alias, target in aliases.items():
                owner, leaf = self.tensor_owner[alias]
                t = self._tensor(alias)
                src = self.tensor_expr[target]
                as_attr = leaf in owner.own if owner.kind == "layer" else _safe_attr(owner.kind, leaf)
                if isinstance(t, nn.Parameter):
                    if as_attr:
                        lines.append(f"{owner.expr}.{leaf} = {src}")
                    else:
                        lines.append(f'{owner.expr}.register_parameter("{leaf}", {src})')
                else:
                    lines.append(f'{owner.expr}.register_buffer("{leaf}", {src})')
        return lines

    def _emit_module(self, mod: _Mod, lines: list[str], aliases: dict[str, str]) -> None:
        if mod.kind == "layer":
            ctor = mod.ctor + (f".to({_lit(mod.dtype)})" if mod.dtype is not None else "")
            lines.append(self._assign_module(mod, ctor))
            for leaf in mod.dropped:
                lines.append(f"{mod.expr}.{leaf} = None  # not in the source model's state dict")
        elif mod.kind == "list":
            items = self._list_items(mod)
            n = len(items)
            if all(it == "nn.Module()" for it in items):
                types = {self._source_type(c.path) for c in mod.children.values()}
                note = f"  # {types.pop()} blocks" if len(types) == 1 and None not in types else ""
                lines.append(self._assign_module(mod, f"nn.ModuleList([nn.Module() for _ in range({n})])") + note)
            elif sum(len(it) + 2 for it in items) < 80:
                lines.append(self._assign_module(mod, f"nn.ModuleList([{', '.join(items)}])"))
            else:
                lines.append(self._assign_module(mod, "nn.ModuleList(["))
                lines += [f"    {it}," for it in items]
                lines.append("])")
            lines += self._dropped_lines(mod)
        else:
            source_type = self._source_type(mod.path)
            note = f"  # {source_type}" if source_type else ""
            lines.append(self._assign_module(mod, _container_ctor(mod.kind)) + note)
        self._emit_tensors(mod, lines, aliases)
        if mod.kind == "list":
            self._emit_list_members(mod, lines, aliases)
        else:
            for c in mod.children.values():
                self._emit_module(c, lines, aliases)

    def _source_type(self, path: str) -> str | None:
        """Class name of the source model's module at ``path`` (``meta["scope_types"]``), if recorded."""
        types = self.g.meta.get("scope_types")
        name = types.get(path) if isinstance(types, dict) else None
        return name if isinstance(name, str) and name.isidentifier() else None

    @staticmethod
    def _list_items(mod: _Mod) -> list[str]:
        """Constructor source of each slot of an ``nn.ModuleList`` (``nn.Identity()`` in gaps)."""
        n = max([int(k) for k in mod.children] + [-1]) + 1
        items = []
        for i in range(n):
            c = mod.children.get(str(i))
            if c is None:
                items.append("nn.Identity()")
            elif c.kind == "layer":
                items.append(c.ctor + (f".to({_lit(c.dtype)})" if c.dtype is not None else ""))
            else:
                items.append(_container_ctor(c.kind))
        return items

    @staticmethod
    def _dropped_lines(mod: _Mod) -> list[str]:
        return [f"{c.expr}.{leaf} = None  # not in the source model's state dict"
                for c in mod.children.values() if c.kind == "layer" for leaf in c.dropped]

    def _emit_list_members(self, mod: _Mod, lines: list[str], aliases: dict[str, str]) -> None:
        """What goes inside the elements of a list (the list made the elements themselves)."""
        for c in mod.children.values():
            self._emit_tensors(c, lines, aliases)
            for cc in c.children.values():
                self._emit_module(cc, lines, aliases)

    def _assign_module(self, mod: _Mod, ctor: str) -> str:
        parent_path, _, name = mod.path.rpartition(".")
        parent = self._find(parent_path)
        assert parent is not None
        if parent.kind in ("plain",) and _safe_attr("plain", name):
            return f"{parent.expr}.{name} = {ctor}"
        if parent.kind == "dict":
            return f'{parent.expr}["{name}"] = {ctor}'
        return f'{parent.expr}.add_module("{name}", {ctor})'

    def _emit_tensors(self, mod: _Mod, lines: list[str], aliases: dict[str, str]) -> None:
        for leaf in list(mod.module._parameters) + list(mod.module._buffers):
            fqn = f"{mod.path}.{leaf}" if mod.path else leaf
            if fqn not in self.tensor_owner or fqn in aliases or leaf in mod.own:
                continue
            t = self._tensor(fqn)
            init = self._init_expr(fqn, t)
            if leaf in mod.module._parameters:
                grad = "" if t.requires_grad else ", requires_grad=False"
                value = f"nn.Parameter({init}{grad})"
                if mod.kind != "layer" and _safe_attr(mod.kind, leaf):
                    lines.append(f"{mod.expr}.{leaf} = {value}")
                else:
                    lines.append(f'{mod.expr}.register_parameter("{leaf}", {value})')
            else:
                persistent = "" if leaf not in mod.module._non_persistent_buffers_set else ", persistent=False"
                lines.append(f'{mod.expr}.register_buffer("{leaf}", {init}{persistent})')

    def _init_expr(self, fqn: str, t: torch.Tensor) -> str:
        """Source of a tensor's initial value: its stored value, else ArchModule's initialisation rule."""
        value = self._stored_value(fqn)
        if value is not None:
            expr, b64 = _value_expr(value)
            if b64 is None:
                return expr
            self.uses_b64 = True
            const = f"_{_snake(fqn).upper()}"
            while any(c.startswith(f"{const} =") for c in self.constants):
                const += "_"
            chunks = [b64[i:i + _B64_LINE] for i in range(0, len(b64), _B64_LINE)] or [""]
            body = "\n".join(f'    "{c}"' for c in chunks)
            self.constants.append(f"{const} = (\n{body}\n)")
            return f"_tensor_from_base64({const}, {_lit(value.dtype)}, {_lit(tuple(value.shape))})"
        shape = _ints(list(t.shape))
        dt = "" if t.dtype == torch.float32 else f", dtype={_lit(t.dtype)}"
        leaf = fqn.rsplit(".", 1)[-1]
        if not t.dtype.is_floating_point or self._is_extra(fqn):
            return f"torch.zeros({shape}{dt})"
        if "running_var" in leaf or (t.dim() == 1 and leaf == "weight"):
            return f"torch.ones({shape}{dt})"
        if t.dim() <= 1:
            return f"torch.zeros({shape}{dt})"
        std = 1.0 / math.sqrt(max(math.prod(t.shape[1:]), 1))
        return f"torch.randn({shape}{dt}) * {std:.4g}"

    def _stored_value(self, fqn: str) -> torch.Tensor | None:
        if self._values is None:
            self._values = {n.param_name("data"): n.attrs["value"] for n in self.g.nodes.values()
                            if n.op == "parameter" and n.attrs.get("value") is not None}
        value = self._values.get(fqn)
        return decode_tensor(value) if value is not None else None

    def _is_extra(self, fqn: str) -> bool:
        return any(e.get("name") == fqn for e in self.g.meta.get("extra_state", []))
