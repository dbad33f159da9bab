"""The writer of one graph and :func:`to_code`, which assembles the file: docstring, imports, the class."""
from __future__ import annotations

import keyword
import logging
from typing import Any

from ..arch_graph import ArchGraph
from ..module import ArchModule
from ..ops import get_op
from .forward import _ForwardWriter, _shape_text
from .init_tree import _InitWriter
from .literals import _FAILURES
from .module_tree import _Mod, _TreeReader
from .naming import _FORWARD_GLOBALS, _class_name, _snake
from .op_forms import _is_inplace
from .values import _B64_HELPER

log = logging.getLogger(__name__)


class _Writer(_TreeReader, _InitWriter, _ForwardWriter):
    """Builds the source text of one graph; see :func:`to_code`."""

    def __init__(self, g: ArchGraph, class_name: str | None) -> None:
        self.g = g
        self.class_name = class_name or _class_name(g.name)
        if not self.class_name.isidentifier() or keyword.iskeyword(self.class_name):
            raise ValueError(f"to_code: class_name {self.class_name!r} is not a Python identifier")
        self.shapes = self._shapes()
        self.meta = ArchModule(g, device="meta")
        self.order = self.meta._order
        self.constants: list[str] = []  # module-level base64 constants
        self.uses_b64 = False
        self.extra_imports: list[str] = []
        self.extra_defs: dict[str, str] = {}  # run functions of ops that are not torch ops, copied in
        # every tensor of the tree: fqn -> (owning module, leaf name), and its source expression
        self.tensor_owner: dict[str, tuple[_Mod, str]] = {}
        self.tensor_expr: dict[str, str] = {}
        self.root = self._read_tree()
        self.aliases = self._aliases()
        self.module_calls = self._module_calls()
        self._scope_cache: dict[str, str] = {}
        self._values: dict[str, Any] | None = None
        self.inplace_graph = any(_is_inplace(get_op(n.op)) for n in g.nodes.values())

    def _shapes(self) -> dict[str, Any]:
        """Output shape/dtype of every node (inferred on a copy; recorded ones where inference fails)."""
        try:
            h = self.g.copy()
            h.infer()
            return {n.id: (n.shape, n.dtype) for n in h.nodes.values()}
        except _FAILURES as e:  # data-dependent graphs keep their recorded shapes
            log.debug("to_code: shape inference failed (%s); using recorded shapes", e)
            return {n.id: (n.shape, n.dtype) for n in self.g.nodes.values()}


def to_code(g: ArchGraph, class_name: str | None = None) -> str:
    """Readable PyTorch source of an ``nn.Module`` class that computes ``g``.

    Args:
        g: the graph (validated; shapes are inferred on a copy for comments).
        class_name: name of the class; default: the graph name in CamelCase.

    Returns:
        The text of a Python file that imports ``torch`` and defines the
        class. Its ``state_dict()`` has the keys and shapes of
        ``g.to_module().state_dict()``, so that state dict loads strictly,
        and with it ``forward(*inputs)`` returns what ``g.to_module()``
        returns (in ``eval()`` mode; see the module docstring).

    Example:
        >>> src = g.to_code()
        >>> ns = {}
        >>> exec(compile(src, "mlp.py", "exec"), ns)  # or write it to a file and import it
        >>> m = ns["Mlp"]()
        >>> m.load_state_dict(g.to_module().state_dict())
    """
    w = _Writer(g, class_name)
    arg_names: dict[str, str] = {}
    taken: set[str] = set()
    for s in g.inputs:
        name = s.name if s.name.isidentifier() else _snake(s.name)
        if not name[0].isalpha() and name[0] != "_":
            name = "x_" + name
        while name in taken or name in _FORWARD_GLOBALS or keyword.iskeyword(name):
            name += "_"
        taken.add(name)
        arg_names[s.name] = name
    init = w.init_lines()
    fwd = w.forward_lines(arg_names)
    return _assemble(g, w, arg_names, init, fwd)


def _assemble(g: ArchGraph, w: _Writer, arg_names: dict[str, str], init: list[str], fwd: list[str]) -> str:
    """The file: docstring, imports, the class; base64 constants and their decoder go last."""
    out: list[str] = [f'"""{w.class_name}: PyTorch module generated from the architecture graph {g.name!r}.', ""]
    if g.source:
        out += [f"Source: {g.source}.", ""]
    out += ["Its state_dict() matches ArchGraph.to_module(); load weights with load_state_dict().", '"""', ""]
    if w.uses_b64:
        out += ["import base64", ""]
    out += ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", *w.extra_imports]
    for src in w.extra_defs.values():
        out += ["", "", src]
    base = "nn.ModuleList" if w.root.kind == "list" else "nn.Module"
    out += ["", "", f"class {w.class_name}({base}):"]
    out += [f'    """The {g.name!r} architecture ({len(g.nodes)} graph nodes).', "", "    Shapes:"]
    out += [f"        {arg_names[s.name]}: {_shape_text(list(s.shape))} {s.dtype}" for s in g.inputs]
    outs = []
    for o in g.outputs:
        shape = w.shapes.get(o, (None, None))[0]
        single = isinstance(shape, list) and not (shape and isinstance(shape[0], list))
        outs.append(_shape_text(shape) if single else "?")
    kind = {"tensor": "a tensor", "tuple": "a tuple", "dict": "a dict"}[g.output_kind]
    keys = f" with keys {', '.join(g.output_keys)}" if g.output_kind == "dict" and g.output_keys else ""
    out += [f"        output: {kind}{keys}: {', '.join(outs)}", '    """', ""]
    out.append("    def __init__(self) -> None:")
    out += [("        " + ln) if ln else "" for ln in init]
    out.append("")
    out.append(f"    def forward({', '.join(['self', *arg_names.values()])}):")
    out += [("        " + ln) if ln else "" for ln in fwd]
    if w.uses_b64:
        out += ["", "", "# Values of buffers that no state dict restores, as raw bytes in base64."]
        out.append(_B64_HELPER.strip("\n"))
        for const in w.constants:
            out += ["", "", const]
    return "\n".join(out) + "\n"
