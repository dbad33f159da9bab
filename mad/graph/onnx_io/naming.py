"""Names of imported nodes and state-dict entries: safe ids, module scopes, and the importer's name claims."""

from __future__ import annotations

import ast
import re

import torch

from .values import _Const, _to_torch

_SAFE = re.compile(r"[^0-9A-Za-z_]")


def _safe_id(name: str) -> str:
    s = _SAFE.sub("_", name) or "v"
    return s if not s[0].isdigit() else f"v{s}"


def _safe_path(name: str) -> str:
    parts = [_SAFE.sub("_", p) or "_" for p in name.split(".")]
    return ".".join(parts)


def _scope_of(node) -> str:
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(p.value)
            except (ValueError, SyntaxError):
                return ""
            return str(scopes[-2]) if isinstance(scopes, list) and len(scopes) >= 2 else ""
    return ""


class _Naming:
    """Node ids and state-dict names for :class:`~.importer._Importer` (a mixin).

    Uses the importer's ``g`` (the graph being built), ``claimed``,
    ``prefixes`` and ``state``: a claimed name is taken by one tensor key,
    and no name may be a module path prefix of another.
    """

    def _new_id(self, base: str) -> str:
        nid = _safe_id(base)
        if nid not in self.g.nodes:
            return nid
        i = 1
        while f"{nid}_{i}" in self.g.nodes:
            i += 1
        return f"{nid}_{i}"

    def _free(self, name: str, key: str) -> bool:
        held = self.claimed.get(name)
        if held is not None:
            return held == key
        if name in self.prefixes:
            return False
        parts = name.split(".")
        return not any(".".join(parts[:i]) in self.claimed for i in range(1, len(parts)))

    def _claim(self, name: str, key: str, tensor: torch.Tensor | None) -> None:
        self.claimed[name] = key
        parts = name.split(".")
        for i in range(1, len(parts)):
            self.prefixes.add(".".join(parts[:i]))
        if tensor is not None:
            self.state[name] = tensor

    def _layer_names(self, node_id: str, params: dict[str, _Const]) -> dict[str, str]:
        cands = [self.scope] if self.scope else []
        for role, c in params.items():
            if c.init and c.init.endswith("." + role):
                cands.append(c.init[: -len(role) - 1])
        cands.append(node_id)
        i = 0
        while True:
            for prefix in cands:
                names = {r: _safe_path(f"{prefix}.{r}") for r in params}
                if all(self._free(n, params[r].key) for r, n in names.items()):
                    for r, n in names.items():
                        self._claim(n, params[r].key, _to_torch(params[r].value))
                    return names
            i += 1
            cands = [f"{node_id}_{i}"]

    def _free_name(self, base: str, key: str) -> str:
        name = _safe_path(base)
        i = 0
        while not self._free(name, key):
            i += 1
            name = _safe_path(f"{base}_{i}")
        return name
