"""validate(): every invariant of an ArchGraph, with errors that name the culprit.

Checked: node ids unique; every op in the vocabulary; attrs match the op's
schema; owned params are roles the op allows; every edge resolves and every
node gets exactly the ports its op needs; input nodes match ``graph.inputs``;
outputs resolve; the graph is acyclic; recorded shapes agree with the shape
rules (the interpreter re-run).
"""

from __future__ import annotations

from .arch_graph import ArchGraph, GraphError, Node
from .ops import UnknownOpError, get_op
from .ops.call import count_ports
from .ops.registry import PORT
from .ops.symbols import attr_symbols
from .symbolic import check_expr, free_symbols

__all__ = ["validate", "check_node"]


def check_node(n: Node, g: ArchGraph | None = None) -> None:
    """Check one node against its op's schema: op known, attrs typed, params allowed; with
    ``g``, also that the dim symbols its attrs and shape use are declared in ``g.dims``.

    Raises :class:`GraphError` naming the node, op and attribute. (Edges and
    shapes are checked by :func:`validate`.)
    """
    where = f"node {n.id!r} ({n.op})"
    try:
        op = get_op(n.op)
    except UnknownOpError as e:
        raise GraphError(f"node {n.id!r}: field 'op': {e}") from None
    tensor_args = {a.name: a for a in op.args}
    for key, value in n.attrs.items():
        if key in tensor_args:
            a = tensor_args[key]
            if key in n.params:
                raise GraphError(f"{where}: {key!r} is both an owned param and an attr")
            if a.kind in ("list", "optional_list"):
                if not isinstance(value, list):
                    raise GraphError(f"{where}: attrs[{key!r}] must list its entries ('{PORT}' for a port)")
            elif not (
                value is None
                or isinstance(value, (int, float, bool))
                or value in ("inf", "-inf", "nan", PORT)
                or (isinstance(value, str) and check_expr(value) is None and bool(free_symbols(value)))
            ):
                raise GraphError(f"{where}: attrs[{key!r}] must be a number or null, got {value!r}")
            if (value is None or value == PORT) and a.kind == "one":
                raise GraphError(f"{where}: tensor argument {key!r} may not be null or '{PORT}'")
            continue
        spec = op.attrs.get(key)
        if spec is None:
            raise GraphError(f"{where}: unknown attribute {key!r}; {n.op} takes {sorted(op.attrs) or 'none'}")
        reason = spec.check(value)
        if reason:
            raise GraphError(f"{where}: attrs[{key!r}] {reason}")
    for key, spec in op.attrs.items():
        if spec.required and key not in n.attrs:
            raise GraphError(f"{where}: missing required attribute {key!r}")
    for a in op.args:
        if a.kind in ("list", "optional_list") and a.name not in n.attrs and a.name not in n.params:
            raise GraphError(f"{where}: list argument {a.name!r} needs attrs[{a.name!r}]")
    for role in n.params:
        if role not in op.param_args:
            allowed = list(op.param_args) or "none"
            raise GraphError(f"{where}: params[{role!r}] is not a parameter of {n.op} (allowed: {allowed})")
    if n.op == "parameter" and "data" not in n.params:
        raise GraphError(f"{where}: parameter node must own params['data']")
    value = n.attrs.get("value") if n.op == "parameter" else None
    if isinstance(value, dict):  # a stored tensor: it is what the module holds, so it must be what the node says
        want = n.attrs.get("dtype", "float32")
        if value.get("dtype", want) != want:
            raise GraphError(f"{where}: attrs['value'] holds {value.get('dtype')} values, but the node is {want}")
        if "shape" in value and list(value["shape"]) != list(n.params["data"]):
            raise GraphError(f"{where}: attrs['value'] has shape {value['shape']}, but params['data'] is "
                             f"{n.params['data']}")
    if g is not None:
        _check_symbols(g, where, "attrs", attr_symbols(op, n.attrs))
        if n.shape is not None:
            _check_symbols(g, where, "shape", free_symbols(n.shape))


def _check_node_schema(g: ArchGraph) -> None:
    for n in g.nodes.values():
        check_node(n, g)


def _check_symbols(g: ArchGraph, where: str, field: str, used: frozenset[str]) -> None:
    unknown = sorted(used - set(g.dims))
    if unknown:
        raise GraphError(
            f"{where}: field {field!r} uses dim symbols {unknown} that graph.dims does not declare "
            f"(declared: {sorted(g.dims)}); add them with an example size, e.g. g.dims[{unknown[0]!r}] = 8"
        )


def _check_edges(g: ArchGraph) -> None:
    ports: dict[str, list[int]] = {n: [] for n in g.nodes}
    for e in g.edges:
        if e.src not in g.nodes:
            raise GraphError(f"edge {e.src!r} -> {e.dst!r}: source node {e.src!r} does not exist")
        if e.dst not in g.nodes:
            raise GraphError(f"edge {e.src!r} -> {e.dst!r}: destination node {e.dst!r} does not exist")
        ports[e.dst].append(e.port)
    for nid, ps in ports.items():
        n = g.nodes[nid]
        need = count_ports(get_op(n.op), n.attrs, n.params)
        if sorted(ps) != list(range(need)):
            raise GraphError(
                f"node {nid!r} ({n.op}): has input ports {sorted(ps)} but needs exactly ports 0..{need - 1}"
                if need
                else f"node {nid!r} ({n.op}): takes no inputs but has input ports {sorted(ps)}"
            )
        if n.op == "getitem":
            src = g.nodes[g.predecessors(nid)[0]]
            if not get_op(src.op).multi_output:
                raise GraphError(f"node {nid!r} (getitem): reads from {src.id!r} ({src.op}), which has one output")


def _check_io(g: ArchGraph, partial: bool = False) -> None:
    for sym, size in g.dims.items():
        if not sym.isidentifier() or not isinstance(size, int) or isinstance(size, bool) or size < 2:
            raise GraphError(f"graph.dims[{sym!r}]: needs an identifier and an example size >= 2, got {size!r}")
    for s in g.inputs:
        for d in s.shape:
            if isinstance(d, str) and check_expr(d) is not None:
                raise GraphError(f"graph.inputs {s.name!r}: {check_expr(d)}")
        _check_symbols(g, f"graph.inputs {s.name!r}", "shape", free_symbols(list(s.shape)))
    names = [s.name for s in g.inputs]
    if len(set(names)) != len(names):
        raise GraphError(f"graph.inputs: duplicate input names in {names}")
    seen: dict[str, str] = {}
    for n in g.nodes.values():
        if n.op == "input":
            name = n.attrs.get("name")
            if name not in names:
                raise GraphError(f"node {n.id!r} (input): attrs['name'] {name!r} is not in graph.inputs {names}")
            if name in seen:
                raise GraphError(f"node {n.id!r} (input): input {name!r} already has node {seen[name]!r}")
            seen[name] = n.id
    for name in names:
        if name not in seen:
            raise GraphError(f"graph.inputs: input {name!r} has no input node")
    if not g.outputs:
        if partial:
            return
        raise GraphError("graph.outputs: the graph declares no outputs; call set_outputs (or validate(partial=True))")
    for o in g.outputs:
        if o not in g.nodes:
            raise GraphError(f"graph.outputs: node {o!r} does not exist")
    if g.output_kind not in ("tensor", "tuple", "dict"):
        raise GraphError(f"graph.outputs: kind must be tensor, tuple or dict, got {g.output_kind!r}")
    if g.output_kind == "dict" and (g.output_keys is None or len(g.output_keys) != len(g.outputs)):
        raise GraphError("graph.outputs: a dict output needs one key per output node")
    if g.output_kind == "tensor" and len(g.outputs) != 1:
        raise GraphError(f"graph.outputs: kind 'tensor' needs one output node, got {len(g.outputs)}")


def validate(g: ArchGraph, shapes: bool = True, partial: bool = False) -> None:
    """Raise :class:`GraphError` on the first broken invariant.

    Args:
        g: the graph.
        shapes: also re-run the interpreter and compare every recorded shape.
        partial: accept a graph without outputs (a prefix being built, e.g. by
            :class:`~mad.graph.GraphBuilder`); everything else is still checked.
    """
    _check_node_schema(g)
    _check_edges(g)
    _check_io(g, partial)
    g.topo_order()  # acyclic
    if shapes:
        g.infer(check=True)
