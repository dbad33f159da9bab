"""GraphTokenizer: an ArchGraph as a sequence of token ids and back, exactly.

A graph reads as::

    <bos> g.dim=["B",2] ...                     the dim symbols' example sizes
    op:input i.name="x" i.shape=["B",1,28,28]   one run per node, in canonical order
    @1 op:conv2d s.out_channels=16 a.padding=[1,1] ...
    @1 op:relu
    @1 @3 op:add                                 @k: the node k places back feeds the next port
    ...
    <out> @1 <eos>                               the outputs, counted back from the end

A node is its input references, its op, then its keys in sorted order:
attrs (``a.``), layer sizes (``s.``, the few numbers a person states:
``out_features``, ``kernel_size``...; parameter shapes follow from them and
the input shape) and tied parameters (``t.role`` + a reference). Attrs that
:class:`~mad.graph.GraphBuilder` fills in by itself (a null bias, a norm's
``normalized_shape``, ports) are left out when leaving them out rebuilds the
same node. A node the builder cannot rebuild from sizes is written ``<raw>``
with its parameter shapes (``p.``).

Runs of repeated blocks (the layers of a deep transformer) are written once,
``<blk> body </blk> v:n``: the body's references are relative, so they point
into the previous copy in every later copy; a reference marked ``<pin>`` points
to the same node in every copy (a shared rotary table, a mask).

Decoding replays the nodes through :class:`~mad.graph.GraphBuilder`, which
re-infers every shape, so every prefix of a sequence decodes to a valid partial
graph (:meth:`GraphTokenizer.decode` with ``partial=True``).

Not kept: node ids, scopes (parameters are named by their node), the graph's
name and ``meta``. Kept exactly: ops, attrs, parameter shapes and ties, input
specs, outputs, dims, hence the WL hash and, with the same parameters, the
module's outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from mad.graph import ArchGraph, GraphError
from mad.graph.arch_graph import Node
from mad.graph.builder_ops import prepare_node
from mad.graph.interpreter import infer_node
from mad.graph.layer_params import LAYER_RULES, sizes_of

from .assemble import Assembler, NodeRec, TokenizeError, _Decoder
from .order import canonical_order
from .repeats import find_repeat
from .vocab import MAX_REF, Vocab, json_text

__all__ = ["Assembler", "GraphTokenizer", "NodeRec", "TokenizeError"]

DEFAULT_DIR = Path(__file__).parent / "default"
_RESERVED = {"self", "op", "scope", "id", "tie"}  # GraphBuilder.op's own arguments: such nodes are written raw


class GraphTokenizer:
    """ArchGraph <-> token ids; ``decode(encode(g))`` rebuilds ``g`` exactly (see the module docstring).

    Args:
        vocab: the :class:`~mad.tokenizer.vocab.Vocab` (default: the shipped one, see :meth:`load`).
        compress: write repeated blocks once (``<blk> ... </blk> v:n``).

    Example:
        >>> tok = GraphTokenizer.load("default")
        >>> ids = tok.encode(g)
        >>> tok.decode(ids).wl_hash() == g.wl_hash()
        True
        >>> tok.decode(ids[: len(ids) // 2], partial=True).validate(partial=True)  # any prefix
    """

    def __init__(self, vocab: Vocab | None = None, compress: bool = True) -> None:
        self.vocab = vocab if vocab is not None else Vocab()
        self.compress = compress
        v = self.vocab
        self.pad_id, self.bos_id, self.eos_id, self.mask_id = (v.id(t) for t in ("<pad>", "<bos>", "<eos>", "<mask>"))
        self.ref_ids = [v.id(f"@{k}") for k in range(1, MAX_REF + 1)]

    # ------------------------------------------------------------------ persistence
    @classmethod
    def load(cls, name_or_path: str | Path = "default", compress: bool = True) -> "GraphTokenizer":
        """The shipped tokenizer (``"default"``) or one saved with :meth:`save` (a folder or its vocab.json)."""
        path = DEFAULT_DIR if str(name_or_path) == "default" else Path(name_or_path)
        if path.is_dir():
            path = path / "vocab.json"
        if not path.exists():
            raise FileNotFoundError(f"no tokenizer vocabulary at {path}; pass 'default' or a folder saved with "
                                    "GraphTokenizer.save()")
        return cls(Vocab.load(path), compress=compress)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return self.vocab.save(folder / "vocab.json")

    @classmethod
    def train(cls, graphs: Iterable[ArchGraph], min_count: int = 20, version: str = "1") -> "GraphTokenizer":
        """A tokenizer whose frequent pairs and values come from ``graphs``."""
        base = cls(Vocab())

        def fields():
            for g in graphs:
                header, recs, _ = base.records(g)
                for k, v in header:
                    yield k, v
                for r in recs:
                    yield from r.attrs.items()

        return cls(Vocab.build(fields(), min_count=min_count, version=version))

    def __len__(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------ graph -> records
    def records(self, g: ArchGraph) -> tuple[list[tuple[str, Any]], list[NodeRec], list[tuple[str, Any]]]:
        """``(header fields, node records in canonical order, output fields)`` of ``g``."""
        order = canonical_order(g)
        pos = {nid: i for i, nid in enumerate(order)}
        owner: dict[str, int] = {}
        header = [("g.dim", [s, int(n)]) for s, n in sorted(g.dims.items())]
        specs = {s.name: s for s in g.inputs}
        recs = []
        for i, nid in enumerate(order):
            n = g.nodes[nid]
            ins = [e.src for e in sorted(g.in_edges(nid), key=lambda e: e.port)]
            rec = NodeRec(n.op, refs=[pos[s] for s in ins])
            if n.op == "input":
                self._input_rec(rec, n, specs)
            elif n.op == "parameter":
                rec.attrs = {f"a.{k}": v for k, v in n.attrs.items()} | {"s.shape": list(n.params.get("data", []))}
            else:
                self._op_rec(g, rec, n, ins, owner, pos)
            for role in n.params:
                owner.setdefault(n.param_name(role), (i, role))
            recs.append(rec)
        outs: list[tuple[str, Any]] = [("out", [pos[o] for o in g.outputs])]
        default_kind = "tensor" if len(g.outputs) == 1 else "tuple"
        if g.output_kind != default_kind or g.output_keys is not None:
            outs.append(("g.output_kind", g.output_kind))
        if g.output_keys is not None:
            outs.append(("g.output_keys", list(g.output_keys)))
        return header, recs, outs

    @staticmethod
    def _input_rec(rec: NodeRec, n: Node, specs: dict) -> None:
        name = n.attrs.get("name")
        spec = specs.get(name)
        if spec is None:
            raise GraphError(f"input node {n.id!r} names input {name!r}, which graph.inputs lacks")
        rec.attrs = {"i.name": name, "i.shape": list(spec.shape)}
        if spec.dtype != "float32":
            rec.attrs["i.dtype"] = spec.dtype
        if spec.range is not None:
            rec.attrs["i.range"] = list(spec.range)
        if spec.dims is not None:
            rec.attrs["i.dims"] = list(spec.dims)
        rec.attrs |= {f"a.{k}": v for k, v in n.attrs.items() if k != "name"}

    def _op_rec(self, g: ArchGraph, rec: NodeRec, n: Node, ins: list[str], owner: dict[str, int],
                pos: dict[str, int]) -> None:
        ties = {r: owner[n.param_name(r)] for r in n.params if n.param_name(r) in owner}
        rec.ties = {r: p for r, (p, _) in ties.items()}
        rec.tie_roles = {r: other for r, (_, other) in ties.items() if other != r}
        sizes: dict[str, Any] = {}
        if n.params and n.op in LAYER_RULES:
            try:
                sizes = sizes_of(n.op, n.params, n.attrs)
            except Exception:  # noqa: BLE001 - params the rule cannot read: written raw
                sizes = None  # type: ignore[assignment]
        if sizes is not None and not _RESERVED & set(n.attrs) and not rec.tie_roles:
            full = dict(n.attrs)
            reduced = {k: v for k, v in full.items() if not self._implied(n.op, k, v)}
            for attrs in ([reduced, full] if reduced != full else [full]):
                if self._rebuilds(g, n, ins, attrs, sizes):
                    rec.attrs = {f"a.{k}": v for k, v in attrs.items()} | {f"s.{k}": v for k, v in sizes.items()}
                    return
            if self._rebuilds(g, n, ins, full, sizes, attrs_too=False):
                rec.exact = True  # the builder adds attrs the node lacks (a default eps): keep the node's own
                rec.attrs = {f"a.{k}": v for k, v in full.items()} | {f"s.{k}": v for k, v in sizes.items()}
                return
        rec.raw = True
        rec.attrs = {f"a.{k}": v for k, v in n.attrs.items()} | {f"p.{r}": list(s) for r, s in n.params.items()}
        try:
            inferred = infer_node(g, Node(id=n.id, op=n.op, attrs=n.attrs, params=n.params),
                                  [(g.nodes[i].shape, g.nodes[i].dtype) for i in ins])
        except Exception:  # noqa: BLE001 - the interpreter cannot run it (data-dependent output)
            inferred = None
        if inferred is None or list(inferred) != [n.shape, n.dtype]:
            rec.attrs |= {"x.shape": n.shape, "x.dtype": n.dtype}  # the recorded output, kept as is

    @staticmethod
    def _implied(op: str, key: str, value: Any) -> bool:
        if value == "%" or (isinstance(value, list) and value and all(x == "%" for x in value)):
            return True
        rule = LAYER_RULES.get(op)
        if rule is None:
            return False
        if key in rule.defaults and rule.defaults[key] == value:
            return True
        return (key == "normalized_shape" and op in ("layer_norm", "rms_norm")) or (key == "bias" and value is None)

    @staticmethod
    def _rebuilds(g: ArchGraph, n: Node, ins: list[str], attrs: dict[str, Any], sizes: dict[str, Any],
                  attrs_too: bool = True) -> bool:
        try:
            p = prepare_node(g, n.op, ins, dict(attrs) | sizes)
        except Exception:  # noqa: BLE001 - not rebuildable this way
            return False
        return (p.attrs == n.attrs or not attrs_too) and p.params == n.params

    # ------------------------------------------------------------------ records -> tokens
    def tokens(self, g: ArchGraph) -> list[str]:
        """``g`` as token texts."""
        header, recs, outs = self.records(g)
        out = ["<bos>"]
        for k, v in header:
            out += self._pair(k, v)
        if self.compress:
            out += self._compressed(recs)
        else:
            for i, r in enumerate(recs):
                out += self._node_tokens(r, i)
        n = len(recs)
        out.append("<out>")
        for o in outs[0][1]:
            out += self._ref(n - o)
        for k, v in outs[1:]:
            out += self._pair(k, v)
        out.append("<eos>")
        return out

    def prefix_tokens(self, g: ArchGraph) -> list[str]:
        """The tokens of ``g``'s nodes without its outputs: a prefix to continue (``g`` may have no outputs)."""
        toks = self.tokens(g)
        return toks[: len(toks) - 1 - toks[::-1].index("<out>")]

    def encode(self, g: ArchGraph) -> list[int]:
        """Token ids of ``g``."""
        ids = self.vocab.ids
        return [ids[t] for t in self.tokens(g)]

    def _node_tokens(self, r: NodeRec, i: int) -> list[str]:
        out: list[str] = []
        for port, src in enumerate(r.refs):
            if port in r.pins:
                out.append("<pin>")
            out += self._ref(i - src)
        out.append(f"op:{r.op}")
        if r.raw:
            out.append("<raw>")
        elif r.exact:
            out.append("<exact>")
        for k in sorted(r.attrs):
            out += self._pair(k, r.attrs[k])
        for role in sorted(r.ties):
            out.append(f"k:t.{role}")
            out += self._ref(i - r.ties[role])
            if role in r.tie_roles:
                out += self._value(r.tie_roles[role])
        return out

    def _ref(self, k: int) -> list[str]:
        if k < 1:
            raise GraphError(f"reference {k} does not point back; the node order is not topological")
        return [f"@{k}"] if k <= MAX_REF else ["@big"] + self._value(k)

    def _pair(self, key: str, v: Any) -> list[str]:
        tok = f"{key}={json_text(v)}"
        if tok in self.vocab.ids:
            return [tok]
        if f"k:{key}" not in self.vocab.ids:
            raise GraphError(f"key {key!r} is not in the tokenizer vocabulary (op vocabulary newer than it?)")
        return [f"k:{key}"] + self._value(v)

    def _value(self, v: Any) -> list[str]:
        if isinstance(v, list) and not any(isinstance(x, dict) for x in _flat(v)):
            out = ["["]
            for x in v:
                out += self._value(x)
            return out + ["]"]
        text = json_text(v)
        if not isinstance(v, (list, dict)) and f"v:{text}" in self.vocab.ids:
            return [f"v:{text}"]
        return ["<lit>"] + [f"b:{b:02x}" for b in text.encode("utf-8")] + ["</lit>"]

    def _compressed(self, recs: list[NodeRec]) -> list[str]:
        out: list[str] = []
        i = 0
        keys = [r.body_key() for r in recs]
        while i < len(recs):
            found = find_repeat(recs, keys, i)
            if found is None:
                out += self._node_tokens(recs[i], i)
                i += 1
                continue
            length, times, pins = found
            out.append("<blk>")
            for j in range(i, i + length):
                r = recs[j]
                rec = NodeRec(r.op, r.refs, r.attrs, r.ties, r.raw, pins.get(j, set()), r.exact, r.tie_roles)
                out += self._node_tokens(rec, j)
            out += ["</blk>"] + self._value(times)
            i += length * times
        return out

    # ------------------------------------------------------------------ tokens -> graph
    def decode(self, ids: list[int] | list[str], partial: bool = False, name: str = "decoded",
               check: bool = True) -> ArchGraph:
        """The graph of a token sequence.

        Args:
            ids: token ids (or texts).
            partial: accept a prefix: decode every complete node, stop at the
                end (the graph then has no outputs unless ``<out>`` was read).
            name: the graph's name.
            check: run ``validate()`` on the result (``partial=True`` on prefixes).

        Raises:
            TokenizeError: a malformed sequence, naming the position and token.
            GraphError: a node the builder rejects, naming it.
        """
        toks = [t if isinstance(t, str) else self.vocab.tokens[t] for t in ids]
        dec = _Decoder(toks, name, partial)
        g = dec.run()
        if check:
            g.validate(partial=not g.outputs)
        return g

    def assembler(self, ids: list[int] | list[str], name: str = "generated") -> "Assembler":
        """An :class:`Assembler` holding the nodes of a token prefix that ends on a node boundary (as
        :meth:`prefix_tokens` gives), to grow it node by node."""
        toks = [t if isinstance(t, str) else self.vocab.tokens[t] for t in ids]
        dec = _Decoder(toks, name, partial=True)
        dec.complete = True
        dec.run()
        return dec.asm  # type: ignore[return-value]


def _flat(v: list) -> Iterable[Any]:
    for x in v:
        if isinstance(x, list):
            yield from _flat(x)
        else:
            yield x
