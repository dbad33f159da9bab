"""The token vocabulary of :class:`~mad.tokenizer.GraphTokenizer`, kept as versioned JSON.

Token families (their text says the family):

==================  =====================================================================
``<pad>`` ...       specials: ``<pad> <bos> <eos> <mask> <unk> <gen> <mlm> <out> <blk>
                    </blk> <pin> <lit> </lit> <raw> <exact> [ ] @big``
``@k``              input reference: the node ``k`` places back (``1 <= k <= MAX_REF``)
``op:NAME``         a node of op ``NAME`` (every op of the frozen op vocabulary)
``NS.key=JSON``     a frequent (key, value) pair as one token; ``NS`` is ``a`` (attr),
                    ``s`` (layer size), ``i`` (graph-input field), ``g`` (graph field),
                    ``p`` (explicit parameter shape), ``t`` (tied parameter role),
                    ``x`` (a recorded output shape/dtype the interpreter cannot infer)
``k:NS.key``        a key, followed by its value's tokens
``v:JSON``          a frequent scalar value (ints, floats, strings, ``null``, booleans)
``b:XX``            one byte of a value spelled as JSON text between ``<lit>`` and ``</lit>``
==================  =====================================================================

Every token family but the frequent pairs and values is fixed; those two are
learned from a corpus (:meth:`Vocab.build`), so the vocabulary is open: any
graph encodes exactly, a rare value just takes more tokens.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from mad.graph import op_names

__all__ = ["Vocab", "SPECIALS", "MAX_REF", "VOCAB_FORMAT", "json_text"]

VOCAB_FORMAT = "mad.graph_tokenizer.vocab"
VOCAB_SCHEMA = 1
SPECIALS = ("<pad>", "<bos>", "<eos>", "<mask>", "<unk>", "<gen>", "<mlm>", "<out>", "<blk>", "</blk>", "<pin>",
            "<lit>", "</lit>", "<raw>", "<exact>", "[", "]", "@big")
MAX_REF = 512


def json_text(v: Any) -> str:
    """Canonical JSON text of a value (sorted keys, no spaces)."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"), allow_nan=True)


class Vocab:
    """Token text <-> id, with the corpus-learned pair and value tokens.

    Args:
        pairs: ``"NS.key=JSON"`` texts that are single tokens.
        values: JSON texts of scalar values that are single tokens.
        version: vocabulary version string (saved, checked on load).
    """

    def __init__(self, pairs: Iterable[str] = (), values: Iterable[str] = (), version: str = "1") -> None:
        self.version = version
        self.pairs = sorted(set(pairs))
        self.values = sorted(set(values))
        keys = sorted({p.split("=", 1)[0] for p in self.pairs})
        self.tokens: list[str] = list(SPECIALS)
        self.tokens += [f"@{k}" for k in range(1, MAX_REF + 1)]
        self.tokens += [f"op:{o}" for o in op_names()]
        self.tokens += [f"b:{i:02x}" for i in range(256)]
        self.tokens += [f"v:{v}" for v in self.values]
        self.tokens += [f"k:{k}" for k in sorted(set(keys) | _all_keys())]
        self.tokens += self.pairs
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.ids

    def id(self, token: str) -> int:
        return self.ids[token]

    @classmethod
    def build(cls, fields: Iterable[tuple[str, Any]], min_count: int = 20, max_pairs: int = 6000,
              max_values: int = 2000, version: str = "1") -> "Vocab":
        """Learn the pair and value tokens from ``(NS.key, value)`` occurrences of a corpus.

        A pair becomes a token when it occurs ``min_count`` times (the most
        frequent ``max_pairs``); so does a scalar value (``max_values``).
        """
        pairs: Counter = Counter()
        values: Counter = Counter()
        for key, v in fields:
            pairs[f"{key}={json_text(v)}"] += 1
            for s in _scalars(v):
                values[json_text(s)] += 1
        keep_pairs = [p for p, c in pairs.most_common(max_pairs) if c >= min_count]
        keep_values = [v for v, c in values.most_common(max_values) if c >= min_count]
        return cls(keep_pairs, keep_values, version=version)

    def to_dict(self) -> dict[str, Any]:
        return {"format": VOCAB_FORMAT, "schema": VOCAB_SCHEMA, "version": self.version,
                "op_vocab": len(op_names()), "max_ref": MAX_REF, "pairs": self.pairs, "values": self.values}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=0))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"cannot read tokenizer vocabulary {path}: {e}") from None
        if d.get("format") != VOCAB_FORMAT or d.get("schema") != VOCAB_SCHEMA:
            raise ValueError(f"{path}: not a graph tokenizer vocabulary of schema {VOCAB_SCHEMA} "
                             f"(format {d.get('format')!r}, schema {d.get('schema')!r})")
        if d.get("max_ref") != MAX_REF or d.get("op_vocab", 0) > len(op_names()):
            raise ValueError(f"{path}: made for another op vocabulary ({d.get('op_vocab')} ops, refs up to "
                             f"{d.get('max_ref')}); this installation has {len(op_names())} ops, refs up to {MAX_REF}")
        return cls(d["pairs"], d["values"], version=str(d["version"]))


_BASE_KEYS = ("g.dim", "g.output_kind", "g.output_keys", "i.name", "i.shape", "i.dtype", "i.range", "i.dims",
              "a.name", "s.shape", "x.shape", "x.dtype")


def _all_keys() -> set[str]:
    """Every key a graph of this op vocabulary can use: attrs, layer sizes, parameter roles."""
    from mad.graph import get_op
    from mad.graph.layer_params import LAYER_RULES

    keys = set(_BASE_KEYS)
    for o in op_names():
        d = get_op(o)
        keys.update(f"a.{a}" for a in d.attrs)
        keys.update(f"a.{a.name}" for a in d.args)
        keys.update(f"{ns}.{r}" for r in d.param_args for ns in ("p", "t"))
    for rule in LAYER_RULES.values():
        keys.update(f"s.{k}" for k in rule.sizes)
    keys.update(("p.data", "t.data"))
    return keys


def _scalars(v: Any) -> Iterable[Any]:
    if isinstance(v, list):
        for x in v:
            yield from _scalars(x)
    elif not isinstance(v, dict):
        yield v
