"""Building a graph from node records: :class:`Assembler` (node by node) and the token-sequence reader.

A :class:`NodeRec` is one node as the tokenizer sees it (positions instead of
ids); :class:`Assembler` adds records through :class:`~mad.graph.GraphBuilder`
(so every prefix is a valid partial graph); ``_Decoder`` reads a token
sequence of :class:`~mad.tokenizer.GraphTokenizer` into an Assembler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mad.graph import ArchGraph, GraphBuilder
from mad.graph.arch_graph import Node
from mad.graph.interpreter import infer_node
from mad.graph.validate import check_node

from .vocab import json_text

__all__ = ["Assembler", "NodeRec", "TokenizeError"]

_STRUCT_END = ("<out>", "<blk>", "</blk>", "<eos>")


class TokenizeError(ValueError):
    """A token sequence that does not decode; the message names the position and token."""


@dataclass
class NodeRec:
    """One node as the tokenizer sees it (positions instead of ids).

    ``refs``/``ties`` hold absolute positions; ``pins`` the ports whose
    reference stays put across the copies of a repeated block.
    """

    op: str
    refs: list[int] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)  # key with namespace ("a.eps") -> value
    ties: dict[str, int] = field(default_factory=dict)
    raw: bool = False
    pins: set[int] = field(default_factory=set)
    exact: bool = False  # attrs are the node's whole attrs (the builder's own defaults are dropped)
    tie_roles: dict[str, str] = field(default_factory=dict)  # tied to another role of the target (when not equal)

    def body_key(self) -> tuple:
        """Everything but the references, for finding repeated blocks."""
        return (self.op, json_text(self.attrs), self.raw, self.exact, tuple(sorted(self.ties)),
                json_text(self.tie_roles), len(self.refs))


class _Decoder:
    """Replays a token sequence through a GraphBuilder."""

    def __init__(self, toks: list[str], name: str, partial: bool) -> None:
        self.toks = toks
        self.i = 0
        self.partial = partial
        self.name = name
        self.asm: Assembler | None = None
        self.complete = False

    def err(self, what: str) -> TokenizeError:
        at = self.toks[self.i] if self.i < len(self.toks) else "<end>"
        return TokenizeError(f"token {self.i} ({at!r}): {what}")

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        if self.i >= len(self.toks):
            raise _End()
        t = self.toks[self.i]
        self.i += 1
        return t

    def run(self) -> ArchGraph:
        dims: dict[str, int] = {}
        if self.peek() != "<bos>":
            raise self.err("a graph starts with <bos>")
        self.i += 1
        try:
            while self.peek() is not None and (self.peek().startswith("g.dim=") or self.peek() == "k:g.dim"):
                sym, size = self.pair()[1]
                dims[sym] = size
        except _End:
            pass
        self.asm = Assembler(dims, self.name)
        try:
            self.nodes()
            self.outputs()
        except _End:
            if not self.partial:
                raise TokenizeError(f"the sequence ends inside the graph (after {len(self.asm)} nodes); pass "
                                    "partial=True to decode a prefix") from None
        return self.asm.graph

    # nodes ----------------------------------------------------------------
    def nodes(self) -> None:
        while True:
            t = self.peek()
            if t is None:
                raise _End()
            if t == "<blk>":
                self.i += 1
                self.block()
            elif t in _STRUCT_END:
                return
            else:
                self.add(self.node())

    def block(self) -> None:
        body: list[NodeRec] = []
        while self.peek() != "</blk>":
            if self.peek() is None:
                raise _End()
            rec = self.node()
            self.add(rec)
            body.append(rec)
        self.i += 1
        times = self.value()
        if not isinstance(times, int) or times < 1:
            raise self.err(f"a block repeats a positive int number of times, got {times!r}")
        length = len(body)
        for c in range(1, times):
            for p, r in enumerate(body):
                refs = [src if port in r.pins else src + c * length for port, src in enumerate(r.refs)]
                ties = {k: v + c * length for k, v in r.ties.items()}
                self.add(NodeRec(r.op, refs, r.attrs, ties, r.raw, exact=r.exact, tie_roles=r.tie_roles))

    def ref(self) -> int:
        t = self.take()
        if t == "@big":
            k = self.value()
        elif t.startswith("@"):
            k = int(t[1:])
        else:
            self.i -= 1
            raise self.err("expected an input reference")
        n = len(self.asm)  # type: ignore[arg-type]
        if not isinstance(k, int) or not 1 <= k <= n:
            self.i -= 1
            raise self.err(f"reference {k} points before the first node ({n} so far)")
        return n - k

    def node(self) -> NodeRec:
        refs: list[int] = []
        pins: set[int] = set()
        while True:
            t = self.peek()
            if t is None:
                raise _End()
            if t == "<pin>":
                self.i += 1
                pins.add(len(refs))
                continue
            if t.startswith("@"):
                refs.append(self.ref())
                continue
            break
        t = self.take()
        if not t.startswith("op:"):
            self.i -= 1
            raise self.err("expected an op token after the input references")
        rec = NodeRec(t[3:], refs, pins=pins)
        if self.peek() == "<raw>":
            self.i += 1
            rec.raw = True
        elif self.peek() == "<exact>":
            self.i += 1
            rec.exact = True
        while True:
            t = self.peek()
            if t is None:
                if self.complete:
                    return rec  # the caller says the prefix ends on a node boundary
                raise _End()  # the node may have more keys: not complete
            if t.startswith("k:t."):
                self.i += 1
                rec.ties[t[4:]] = self.ref()
                if self.peek() is not None and (self.peek().startswith("v:") or self.peek() == "<lit>"):
                    rec.tie_roles[t[4:]] = self.value()
            elif t.startswith("k:") or ("=" in t and t[:2] in ("a.", "s.", "p.", "i.", "x.")):
                key, v = self.pair()
                rec.attrs[key] = v
            else:
                return rec

    def add(self, r: NodeRec) -> None:
        self.asm.add(r)

    # values ----------------------------------------------------------------
    def pair(self) -> tuple[str, Any]:
        t = self.take()
        if t.startswith("k:"):
            return t[2:], self.value()
        key, _, text = t.partition("=")
        return key, json.loads(text)

    def value(self) -> Any:
        t = self.take()
        if t.startswith("v:"):
            return json.loads(t[2:])
        if t == "[":
            out = []
            while self.peek() != "]":
                if self.peek() is None:
                    raise _End()
                out.append(self.value())
            self.i += 1
            return out
        if t == "<lit>":
            buf = bytearray()
            while True:
                x = self.take()
                if x == "</lit>":
                    return json.loads(buf.decode("utf-8"))
                if not x.startswith("b:"):
                    self.i -= 1
                    raise self.err("a literal holds byte tokens only")
                buf.append(int(x[2:], 16))
        self.i -= 1
        raise self.err("expected a value")

    # outputs ----------------------------------------------------------------
    def outputs(self) -> None:
        t = self.take()
        if t == "<eos>":
            if not self.partial:
                raise self.err("the graph has no <out> before <eos>")
            return
        if t != "<out>":
            self.i -= 1
            raise self.err("expected <out>")
        outs = []
        while self.peek() is not None and self.peek().startswith("@"):
            outs.append(self.ref())
        kind, keys = None, None
        while self.peek() is not None and self.peek() != "<eos>":
            key, v = self.pair()
            if key == "g.output_kind":
                kind = v
            elif key == "g.output_keys":
                keys = v
        if self.peek() is None and not self.partial:
            raise _End()
        if not outs:
            if self.partial and self.peek() is None:
                return  # a prefix that stops right after <out>
            raise self.err("<out> names no output")
        self.asm.finish(outs, kind=kind, keys=keys)  # type: ignore[union-attr]


class Assembler:
    """Builds a graph record by record through :class:`~mad.graph.GraphBuilder`: what decoding does,
    one node at a time, for a generator that checks each node as it goes.

    Args:
        dims: example sizes of the dim symbols (``{"B": 2, "T": 16}``).
        name: the graph's name.

    Example:
        >>> asm = Assembler({"B": 2})
        >>> x = asm.add(NodeRec("input", attrs={"i.name": "x", "i.shape": ["B", 8]}))
        >>> y = asm.add(NodeRec("linear", refs=[0], attrs={"s.out_features": 4}))
        >>> asm.finish([1]).nodes[y].shape
        ['B', 4]
    """

    def __init__(self, dims: dict[str, int] | None = None, name: str = "generated") -> None:
        self.b = GraphBuilder(name, dims=dict(dims or {}))
        self.ids: list[str] = []

    @property
    def graph(self) -> ArchGraph:
        return self.b.graph

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, r: NodeRec) -> str:
        """Add the node of record ``r`` (positions refer to earlier records); returns its id.

        Raises :class:`~mad.graph.GraphError` (or another error of the op) and
        leaves the graph unchanged when the node is not valid there.
        """
        b = self.b
        ins = [self.ids[s] for s in r.refs]
        ties = {role: self.ids[s] for role, s in r.ties.items()}
        a = {k[2:]: v for k, v in r.attrs.items() if k.startswith("a.")}
        s = {k[2:]: v for k, v in r.attrs.items() if k.startswith("s.")}
        if r.op == "input":
            nid = b.input(r.attrs["i.name"], r.attrs["i.shape"], r.attrs.get("i.dtype", "float32"),
                          r.attrs.get("i.range"))
            b.graph.inputs[-1].dims = r.attrs.get("i.dims")
            b.graph.nodes[nid].attrs |= a
        elif r.op == "parameter":  # its attrs (a stored value...) checked before it is added
            check_node(Node(id="<new parameter>", op="parameter", attrs=a, params={"data": list(s.get("shape", []))}))
            nid = b.parameter(f"param_{len(self.ids)}", s.get("shape", []), a.get("kind", "parameter"),
                              a.get("dtype", "float32"))
            b.graph.nodes[nid].attrs = a
        elif r.raw:
            nid = self._raw(r, ins, a, ties)
        else:
            nid = b.op(r.op, *ins, tie=ties or None, **a, **s)
            if r.exact:
                b.graph.nodes[nid].attrs = a
        self.ids.append(nid)
        return nid

    def _raw(self, r: NodeRec, ins: list[str], attrs: dict[str, Any], ties: dict[str, str]) -> str:
        """Add a node the builder cannot make from sizes: explicit parameter shapes, inferred (or recorded) output."""
        g = self.b.graph  # type: ignore[union-attr]
        params = {k[2:]: v for k, v in r.attrs.items() if k.startswith("p.")}
        node = Node(id="<raw>", op=r.op, attrs=attrs, params=params)
        if "x.shape" in r.attrs:
            shape, dtype = r.attrs["x.shape"], r.attrs.get("x.dtype")
        else:
            shape, dtype = infer_node(g, node, [(g.nodes[i].shape, g.nodes[i].dtype) for i in ins])
        names = {role: g.nodes[t].param_name(r.tie_roles.get(role, role)) for role, t in ties.items()}
        b = self.b
        scope = f"{r.op}_raw{len(self.ids)}"
        while scope in g.nodes or scope in b._param_scopes:  # noqa: SLF001 - keep the builder's name book
            scope += "_"
        nid = g.add_node(r.op, ins, id=scope, attrs=attrs, params=params, param_names=names, scope=scope,
                         shape=shape, dtype=dtype)
        b.count_flops(nid)
        if params:
            b._param_scopes.add(scope)  # noqa: SLF001
            b._owned.update(g.nodes[nid].param_name(role) for role in params)  # noqa: SLF001
        return nid

    @property
    def flops(self) -> int:
        """FLOPs of the nodes so far, at the graph's example sizes (as the graph builder counts them)."""
        return self.b.flops

    def pop(self) -> None:
        """Take back the last node added (its parameter names and FLOPs become free again)."""
        nid = self.ids.pop()
        self.b.release([nid])
        self.b.graph.remove_nodes([nid])

    def finish(self, outputs: list[int], kind: str | None = None, keys: list[str] | None = None) -> ArchGraph:
        """Declare the outputs (record positions) and return the graph."""
        self.b.graph.set_outputs([self.ids[o] for o in outputs], kind=kind, keys=keys)
        return self.b.graph


class _End(Exception):
    """The token stream ended."""
