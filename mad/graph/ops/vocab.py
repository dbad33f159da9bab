"""The frozen op vocabulary: op name <-> integer id, versioned and append-only.

Learned parts of mad (the GHN, the tokenizer, the generator) store op ids in
their weights, so an id must never change meaning. The ids live in the
committed table ``vocab.json`` next to this module, not in the registry:

- ``tables["ops"]`` lists the tokens in id order: the special tokens
  :data:`SPECIAL_TOKENS` first (``<pad>`` = 0, ``<mask>`` = 1, ``<bos>`` = 2,
  ``<eos>`` = 3, ``<unk>`` = 4), then every op of the vocabulary.
- ``tables["dtype"|"memory_format"|"layout"|"str"]`` list the values of the
  enumerated attribute types (id 0 is ``<none>``); the node features
  (:mod:`mad.graph.features`) store those ids.
- ``versions`` records, per :data:`VOCAB_VERSION`, how long each table was
  and a SHA-256 digest of those prefixes; the latest entry also records the
  digest of every op's attribute slots (:func:`op_slots`), the layout the
  node features rely on.

Rules (checked by :func:`vocab_problems` and by ``tests/graph/test_vocab.py``):
tables only grow at the end; every registered op is in the op table; any
change to the tables or to an op's arguments comes with a new version entry
and a new :data:`VOCAB_VERSION`. To add ops: register them, run
``python -m mad.graph.ops.vocab bump <new version>`` (appends the missing
ops, records the version), and set ``VOCAB_VERSION`` in ``registry.py``.

Example:
    >>> op_id("linear") == op_id("linear")  # the same in every process and release
    True
    >>> op_from_id(MASK_ID)
    '<mask>'
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from .registry import VOCAB_VERSION, UnknownOpError, get_op, op_names

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "MASK_ID",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK_ID",
    "VOCAB_FILE",
    "VOCAB_VERSION",
    "enum_from_id",
    "enum_id",
    "op_from_id",
    "op_id",
    "op_slots",
    "vocab_problems",
    "vocab_size",
    "vocab_table",
]

VOCAB_FILE = Path(__file__).with_name("vocab.json")
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<mask>", "<bos>", "<eos>", "<unk>")
PAD_ID, MASK_ID, BOS_ID, EOS_ID, UNK_ID = range(len(SPECIAL_TOKENS))
ENUM_TABLES: tuple[str, ...] = ("dtype", "memory_format", "layout", "str")
_SKIPPED_TYPES = ("device", "generator")  # always null: never a slot


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    return json.loads(VOCAB_FILE.read_text())


@lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, int]]:
    return {name: {v: i for i, v in enumerate(t)} for name, t in _load()["tables"].items()}


def vocab_table(name: str = "ops") -> list[str]:
    """Table ``name`` of the vocabulary in id order (``"ops"`` includes the special tokens)."""
    return list(_load()["tables"][name])


def vocab_size() -> int:
    """Number of op ids, special tokens included (the size of an op embedding)."""
    return len(_load()["tables"]["ops"])


def op_id(name: str, strict: bool = True) -> int:
    """Frozen id of op ``name``.

    Unknown names raise :class:`UnknownOpError` (``strict=True``, the default:
    a graph with such an op is invalid anyway) or map to :data:`UNK_ID`.
    """
    i = _index()["ops"].get(name)
    if i is None or i < len(SPECIAL_TOKENS):
        if not strict:
            return UNK_ID
        raise UnknownOpError(
            f"op {name!r} has no id in vocabulary v{VOCAB_VERSION} ({VOCAB_FILE.name}); "
            "if it is a new op, append it to the table and bump VOCAB_VERSION"
        )
    return i


def op_from_id(i: int) -> str:
    """Token of id ``i`` (an op name, or a special token such as ``'<mask>'``)."""
    table = _load()["tables"]["ops"]
    if not 0 <= int(i) < len(table):
        raise ValueError(f"op id {i} is outside the vocabulary (0..{len(table) - 1})")
    return table[int(i)]


def enum_id(table: str, value: str | None) -> int | None:
    """Id of ``value`` in enum table ``table`` (0 for None); None when the value is not listed."""
    if value is None:
        return 0
    i = _index()[table].get(value)
    return i if i else None  # the literal "<none>" is not a value


def enum_from_id(table: str, i: int) -> str | None:
    """Inverse of :func:`enum_id` (id 0 gives None)."""
    t = _load()["tables"][table]
    if not 0 <= int(i) < len(t):
        raise ValueError(f"{table} id {i} is outside its table (0..{len(t) - 1})")
    return None if i == 0 else t[int(i)]


@lru_cache(maxsize=None)
def op_slots(name: str) -> tuple[str, ...]:
    """The attribute slots of op ``name``: its arguments in schema order, minus
    device and generator arguments (always null).

    A slot is a key a node's ``attrs`` may hold: a typed attribute, or a tensor
    argument given as a constant, ``"%"`` or a list. Tensor arguments always
    fed through a port or owned as a parameter are slots too (then absent).
    """
    op = get_op(name)
    keys = [s[0] for s in op.signature] if op.signature else [a.name for a in op.args] + list(op.attrs)
    return tuple(k for k in keys if not (k in op.attrs and op.attrs[k].type in _SKIPPED_TYPES))


def _slots_digest(names: list[str]) -> str:
    layout = {n: [[k, op_type(n, k)] for k in op_slots(n)] for n in names}
    return _sha(layout)


def op_type(name: str, key: str) -> str:
    """Type of slot ``key`` of op ``name``: an attr type, or ``tensor``/``tensor_list`` for tensor arguments."""
    op = get_op(name)
    if key in op.attrs:
        return op.attrs[key].type
    kind = op.arg(key).kind
    return "tensor_list" if kind in ("list", "optional_list") else "tensor"


def _sha(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(tables: dict[str, list[str]], sizes: dict[str, int]) -> str:
    return _sha({name: tables.get(name, [])[:size] for name, size in sizes.items()})


def vocab_problems(doc: dict[str, Any] | None = None, version: str = VOCAB_VERSION) -> list[str]:
    """Every way the table ``doc`` (default: the committed one) breaks the rules; empty when sound.

    Checked: the special tokens come first; no token is listed twice; each
    recorded version's table prefixes still hash to its digest (so no id of an
    older version changed and no name was removed); the latest version is
    ``version`` and covers the whole table (no change without a version bump);
    every registered op is in the table; op argument slots match the digest.
    """
    doc = doc if doc is not None else _load()
    tables, versions = doc["tables"], doc["versions"]
    ops = tables["ops"]
    problems = []
    if tuple(ops[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        problems.append(f"the op table must start with the special tokens {list(SPECIAL_TOKENS)}")
    for name, t in tables.items():
        dup = sorted({v for v in t if t.count(v) > 1})
        if dup:
            problems.append(f"table {name!r} lists {dup} more than once")
    for v in versions:
        if _digest(tables, v["sizes"]) != v["digest"]:
            problems.append(
                f"the tables no longer match version {v['version']}: an id changed or a name was removed; "
                "tables are append-only (restore them and append new entries at the end)"
            )
    latest = versions[-1] if versions else {"version": None, "sizes": {}}
    if latest["version"] != version:
        problems.append(f"VOCAB_VERSION is {version!r} but the latest version in {VOCAB_FILE.name} is "
                        f"{latest['version']!r}")
    grown = [n for n, t in tables.items() if len(t) != latest["sizes"].get(n, 0)]
    if grown:
        problems.append(f"tables {grown} changed since version {latest['version']}: record a new version "
                        "(python -m mad.graph.ops.vocab bump <version>) and bump VOCAB_VERSION")
    known = set(ops)
    missing = [n for n in op_names() if n not in known]
    if missing:
        problems.append(f"registered ops {missing} are not in the op table: append them to the table "
                        "(python -m mad.graph.ops.vocab bump <version>) and bump VOCAB_VERSION")
    elif latest.get("slots_digest") != _slots_digest([n for n in ops[len(SPECIAL_TOKENS):] if n in set(op_names())]):
        problems.append("the arguments of some op changed (a torch upgrade?): the node feature layout changed; "
                        "record a new version and bump VOCAB_VERSION")
    return problems


def bump(version: str, path: Path = VOCAB_FILE) -> dict[str, Any]:
    """Append every registered op missing from the table, record ``version``, write the file.

    Enum tables are edited by hand (append only) before calling this.
    """
    doc = json.loads(path.read_text())
    if any(v["version"] == version for v in doc["versions"]):
        raise ValueError(f"version {version!r} is already recorded in {path}")
    ops = doc["tables"]["ops"]
    ops.extend(n for n in op_names() if n not in set(ops))
    sizes = {name: len(t) for name, t in doc["tables"].items()}
    registered = set(op_names())
    doc["versions"].append({
        "version": version,
        "sizes": sizes,
        "digest": _digest(doc["tables"], sizes),
        "slots_digest": _slots_digest([n for n in ops[len(SPECIAL_TOKENS):] if n in registered]),
    })
    path.write_text(json.dumps(doc, indent=1) + "\n")
    _load.cache_clear()
    _index.cache_clear()
    return doc


if __name__ == "__main__":  # pragma: no cover - maintainer tool
    if len(sys.argv) != 3 or sys.argv[1] != "bump":
        sys.exit("usage: python -m mad.graph.ops.vocab bump <new version>")
    bump(sys.argv[2])
    print(f"recorded vocabulary {sys.argv[2]} in {VOCAB_FILE}; now set VOCAB_VERSION = {sys.argv[2]!r} in registry.py")
