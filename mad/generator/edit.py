"""Edit instructions: a researcher's sentence -> one graph pass (:class:`EditSpec`) -> the edited graph.

:func:`parse_instruction` recognises, by keywords and regular expressions (no
model), the edits of :mod:`mad.graph.passes`:

- LoRA: "add LoRA of rank 8 to the last layer", "add lora r=4 to encoder.layer.1",
  "LoRA with alpha 16 on all linear layers", "rank-4 LoRA on layer 2";
- activations: "replace GELU with SwiGLU", "swap relu for gelu", "use SiLU instead of ReLU",
  "switch to SwiGLU" (the graph's current activation is replaced);
- attention heads: "use grouped-query attention with 2 key-value heads", "GQA with 4 kv heads",
  "use multi-query attention" (1 head), "back to multi-head attention" (one key/value head per query head);
- attention in a CNN: "add self-attention", "add an attention cell", "make it a hybrid" (a residual
  multi-head self-attention cell on the last feature map small enough);
- rotary positions: "use rotary position embeddings", "add RoPE" (on every attention's query and key);
- depth: "make it 2x deeper", "double the depth", "3 times deeper", "twice as many layers";
  "use 6 layers", "set the depth to 4", "make it 3 blocks deep" (a graph without numbered layers, such as a
  generated one, has them found first: :func:`mad.generator.layers.name_blocks`).

Anything else gives ``None``, so a caller can fall back to generation from the prompt.
:func:`apply_edit` runs the pass, resolving what depends on the graph (the current
activation, the query head count, "layer 2" -> the scope ``layers.2``).

Example:
    >>> spec = parse_instruction("add LoRA of rank 8 to the last layer")
    >>> spec
    EditSpec(name='add_lora', kwargs={'target': 'last', 'rank': 8})
    >>> h = apply_edit(g, spec)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from mad.graph import ArchGraph, GraphError
from mad.graph.passes import (ACTIVATIONS, GATED, add_attention, add_downsampling, add_lora, add_residual,
                              add_rotary, block_families, deepen, replace_activation, set_depth, set_kv_heads)
from mad.graph.passes.activation import gated_units

from .layers import name_blocks

__all__ = ["EditSpec", "parse_instruction", "apply_edit", "edit_by_instruction", "EDITS"]


def _on_layers(edit: Callable[..., ArchGraph]) -> Callable[..., ArchGraph]:
    """``edit`` run on a copy of the graph with its layers named when it has no numbered blocks."""
    def run(g: ArchGraph, **kwargs: Any) -> ArchGraph:
        if not block_families(g):
            g = g.copy()
            name_blocks(g)
        return edit(g, **kwargs)

    run.__name__ = run.__qualname__ = edit.__name__
    run.__doc__ = edit.__doc__
    return run


EDITS: dict[str, Callable[..., ArchGraph]] = {
    "add_lora": add_lora,
    "replace_activation": replace_activation,
    "set_kv_heads": set_kv_heads,
    "deepen": _on_layers(deepen),
    "set_depth": _on_layers(set_depth),
    "add_attention": add_attention,
    "add_rotary": add_rotary,
    "add_downsampling": add_downsampling,
    "add_residual": add_residual,
}


@dataclass
class EditSpec:
    """One edit: the name of a pass in :data:`EDITS` and its keyword arguments.

    Args:
        name: a key of :data:`EDITS` (``"add_lora"``, ``"replace_activation"``, ``"set_kv_heads"``, ``"deepen"``,
            ``"set_depth"``, ``"add_attention"``, ``"add_rotary"``, ``"add_downsampling"``, ``"add_residual"``).
        kwargs: the pass's arguments (the graph excepted). Values resolved against the graph
            by :func:`apply_edit`: ``target="layer:<i>"`` (the ``i``-th repeated block),
            ``old=None`` (the graph's most common activation), ``n="all"`` (as many key/value
            heads as query heads) and ``n="grouped"`` (the largest proper divisor of the query heads).

    Example:
        >>> EditSpec("deepen", {"factor": 2})
        EditSpec(name='deepen', kwargs={'factor': 2})
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "single": 1, "twice": 2, "double": 2, "triple": 3, "quadruple": 4}
_NUM = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|single)"


def _int(token: str) -> int:
    return _WORDS[token] if token in _WORDS else int(token)


# --------------------------------------------------------------------------- LoRA
_RANK = re.compile(r"\b(?:rank|r)\s*(?:=|:|of|-)?\s*(\d+)\b")
_ALPHA = re.compile(r"\balpha\s*(?:=|:|of)?\s*(\d+(?:\.\d+)?)\b")
_SCOPE = re.compile(r"\b(?:to|on|in|into|for|at|of)\s+(?:the\s+)?(?:scope\s+|module\s+|node\s+)?[`'\"]?"
                    r"([a-z_][\w]*(?:\.\w+)+|[a-z]\w*_\d+)[`'\"]?")
_BLOCK = re.compile(r"\b(?:layer|block)\s*(?:#|no\.?|number)?\s*(\d+)\b")
_ALL = re.compile(r"\b(?:all|every|each)\s+(?:the\s+)?(?:linear\s+)?(?:layers?|linears?|projections?)\b|\beverywhere\b")


def _lora(text: str, original: str) -> EditSpec | None:
    if not re.search(r"\blora\b|low[- ]rank adapt", text):
        return None
    kwargs: dict[str, Any] = {"target": "last"}
    m = _SCOPE.search(original.lower())
    if m:  # keep the scope's own spelling (scopes are case-sensitive)
        start = original.lower().find(m.group(1), m.start(1))
        kwargs["target"] = original[start: start + len(m.group(1))]
    elif _ALL.search(text):
        kwargs["target"] = "all"
    elif _BLOCK.search(text) and not re.search(r"\b(?:last|final)\s+(?:linear\s+)?layer\b", text):
        kwargs["target"] = f"layer:{_BLOCK.search(text).group(1)}"
    m = _RANK.search(text)
    if m:
        kwargs["rank"] = int(m.group(1))
    m = _ALPHA.search(text)
    if m:
        kwargs["alpha"] = float(m.group(1))
    return EditSpec("add_lora", kwargs)


# --------------------------------------------------------------------------- activations
_ACT_WORDS = {
    **{a.replace("_", r"[ _-]?"): a for a in ACTIVATIONS},
    **{g: g for g in GATED},
    "swish": "silu", r"hard[ _-]?swish|hswish": "hardswish", r"gelu[ _-]?(?:tanh|new)": "gelu_tanh",
    r"leaky[ _-]?relu": "leaky_relu",
}
_ACT = re.compile(r"\b(" + "|".join(sorted(_ACT_WORDS, key=len, reverse=True)) + r")s?\b")


def _act_name(word: str) -> str:
    for pattern, name in _ACT_WORDS.items():
        if re.fullmatch(pattern, word):
            return name
    raise KeyError(word)  # unreachable: the word matched _ACT


def _activation(text: str) -> EditSpec | None:
    names = [_act_name(m.group(1)) for m in _ACT.finditer(text)]
    if not names:
        return None
    if len(names) >= 2:
        if re.search(r"\binstead of\b|\brather than\b|\bin place of\b", text):
            return EditSpec("replace_activation", {"old": names[1], "new": names[0]})
        if re.search(r"\b(?:replace|swap|change|switch|convert|turn|exchange|substitute|go from|from)\b|->|→", text):
            return EditSpec("replace_activation", {"old": names[0], "new": names[1]})
        return None
    if re.search(r"\b(?:use|switch to|change to|convert to|replace with|swap in|make it|go with)\b", text):
        return EditSpec("replace_activation", {"old": None, "new": names[0]})
    return None


# --------------------------------------------------------------------------- attention heads
_KV = re.compile(_NUM + r"\s+(?:shared\s+)?(?:key[- /]?value|kv|k/v)\s+(?:heads?|groups?)")
_KV_TO = re.compile(r"\b(?:key[- /]?value|kv|k/v)\s+heads?\s+(?:to|=|:)\s*" + _NUM + r"\b")
_GROUPS = re.compile(r"\b(?:gqa|grouped[- ]query(?:\s+attention)?)\b[^.]*?\b" + _NUM + r"\s+(?:groups?|heads?)\b")


def _kv_heads(text: str) -> EditSpec | None:
    m = _KV.search(text) or _KV_TO.search(text) or _GROUPS.search(text)
    if m:
        return EditSpec("set_kv_heads", {"n": _int(m.group(1))})
    if re.search(r"\b(?:multi[- ]query(?:\s+attention)?|mqa)\b", text):
        return EditSpec("set_kv_heads", {"n": 1})
    if re.search(r"\b(?:grouped[- ]query(?:\s+attention)?|gqa)\b", text):
        return EditSpec("set_kv_heads", {"n": "grouped"})
    if re.search(r"\b(?:multi[- ]head\s+attention|mha)\b", text) and re.search(r"\b(?:use|back|switch|to)\b", text):
        return EditSpec("set_kv_heads", {"n": "all"})
    return None


# --------------------------------------------------------------------------- depth
_DEPTH = r"(?:deepen|deeper|deep|depth|layers|blocks|number of (?:layers|blocks))"
_FACTOR_PATTERNS = [
    re.compile(r"\b(\d+)\s*(?:x|×|times)\s*(?:as\s+)?" + _DEPTH),
    re.compile(r"\b" + _NUM + r"\s+times\s+(?:as\s+)?" + _DEPTH),
    re.compile(r"\b(double|twice|triple|quadruple)\b[^.]*?\b" + _DEPTH),
    re.compile(r"\b" + _DEPTH + r"\b[^.]*?\bby\s+(?:a\s+factor\s+of\s+)?(\d+|two|three|four)\s*(?:x|×|times)?\b"),
    re.compile(r"\b" + _DEPTH + r"\b[^.]*?\b(\d+)\s*(?:x|×)\b"),
]


_COUNT_PATTERNS = [
    re.compile(r"\b(?:use|with|to|make it|have|give it)\s+" + _NUM + r"\s+(?:layers|blocks)\b"),
    re.compile(r"\b(?:depth|number of (?:layers|blocks))\s+(?:to|of|=|:)\s*" + _NUM + r"\b"),
    re.compile(r"\b" + _NUM + r"\s+(?:layers|blocks)\s+deep\b"),
]


def _depth(text: str) -> EditSpec | None:
    for pattern in _FACTOR_PATTERNS:
        m = pattern.search(text)
        if m:
            return EditSpec("deepen", {"factor": _int(m.group(1))})
    for pattern in _COUNT_PATTERNS:
        m = pattern.search(text)
        if m:
            return EditSpec("set_depth", {"n": _int(m.group(1))})
    if re.search(r"\b(?:make it|make the (?:model|network|net)|go)\s+deeper\b|\bdeepen\b", text):
        return EditSpec("deepen", {"factor": 2})
    return None


def _attention_cell(text: str) -> EditSpec | None:
    if re.search(r"\badd(?:ing)?\s+(?:an?\s+|some\s+)?(?:multi[- ]head\s+)?(?:self[- ])?attention\b", text) or \
            re.search(r"\b(?:make it|turn it into|into)\s+an?\s+hybrid\b", text):
        return EditSpec("add_attention", {})
    return None


def _residual(text: str) -> EditSpec | None:
    if re.search(r"\badd(?:ing)?\s+(?:an?\s+|some\s+)?(?:residual|skip)\s+(?:connection|block)s?\b", text):
        return EditSpec("add_residual", {})
    return None


def _rotary(text: str) -> EditSpec | None:
    if re.search(r"^(?:please\s+)?(?:use|add|apply|switch to)\b.*\b(?:rotary|rope)\b", text):
        return EditSpec("add_rotary", {})
    return None


def parse_instruction(text: str) -> EditSpec | None:
    """The edit a sentence asks for, or ``None`` when it asks for none this module knows.

    Args:
        text: one instruction in English (case and punctuation do not matter).

    Returns:
        an :class:`EditSpec`, some of whose values :func:`apply_edit` resolves against a graph.

    Example:
        >>> parse_instruction("replace GELU with SwiGLU")
        EditSpec(name='replace_activation', kwargs={'old': 'gelu', 'new': 'swiglu'})
        >>> parse_instruction("use multi-query attention")
        EditSpec(name='set_kv_heads', kwargs={'n': 1})
        >>> parse_instruction("3 times deeper"), parse_instruction("a CNN for MNIST")
        (EditSpec(name='deepen', kwargs={'factor': 3}), None)
    """
    if not isinstance(text, str) or not text.strip():
        return None
    lowered = " ".join(text.lower().split())
    for rule in (_lora, _kv_heads, _attention_cell, _residual, _rotary, _depth, _activation):
        spec = rule(lowered, text) if rule is _lora else rule(lowered)
        if spec is not None:
            return spec
    return None


# --------------------------------------------------------------------------- apply
def _query_heads(g: ArchGraph) -> int:
    for n in g.nodes.values():
        if n.op == "scaled_dot_product_attention":
            shape = g.nodes[g.predecessors(n.id)[0]].shape
            if isinstance(shape, list) and len(shape) == 4 and isinstance(shape[1], int):
                return shape[1]
    raise GraphError(f"set_kv_heads: graph {g.name!r} has no scaled_dot_product_attention node with a fixed "
                     "head count; the attention pattern is not recognised")


def _current_activation(g: ArchGraph, new: str) -> str:
    """The activation ``new`` should replace: the most common one other than ``new``; a gated kind
    (``"swiglu"``) when all of that op's uses are gates."""
    counts = Counter(n.op for n in g.nodes.values() if n.op in ACTIVATIONS)
    in_gates = Counter(g.nodes[u[1]].op for u in gated_units(g))
    new_op = GATED.get(new, new)
    for op, count in counts.most_common():
        if in_gates.get(op) == count:
            kind = next(k for k, a in GATED.items() if a == op) if op in GATED.values() else None
            if kind is not None and kind != new:
                return kind
        elif op != new_op:
            return op
    raise GraphError(f"replace_activation: graph {g.name!r} has no activation other than {new!r} to replace; "
                     "name the one to replace ('replace relu with gelu')")


def _resolve(g: ArchGraph, spec: EditSpec) -> dict[str, Any]:
    kwargs = dict(spec.kwargs)
    if spec.name == "add_lora" and str(kwargs.get("target", "")).startswith("layer:"):
        i = int(kwargs["target"].split(":")[1])
        families = block_families(g)
        base = next((b for b, idx in families.items() if i in idx), None)
        if base is None:
            raise GraphError(f"add_lora: the instruction names layer {i}, but graph {g.name!r} has no numbered block "
                             f"{i} (its repeated blocks: {families or 'none'}); name a scope instead")
        kwargs["target"] = f"{base}{i}"
    if spec.name == "replace_activation" and kwargs.get("old") is None:
        kwargs["old"] = _current_activation(g, kwargs["new"])
    if spec.name == "set_kv_heads" and kwargs.get("n") in ("all", "grouped"):
        heads = _query_heads(g)
        if kwargs["n"] == "all":
            kwargs["n"] = heads
        else:
            proper = [d for d in range(2, heads) if heads % d == 0]
            if not proper:
                raise GraphError(f"set_kv_heads: {heads} query heads have no grouping between 1 and {heads}; "
                                 "ask for multi-query attention or a number of key-value heads")
            kwargs["n"] = proper[-1]  # the mildest grouping: pairs of query heads share a key/value head
    return kwargs


def edit_by_instruction(g: ArchGraph, instruction: str) -> ArchGraph | None:
    """``g`` edited by a recognised ``instruction`` (``meta["generator"]`` says which pass), or None."""
    spec = parse_instruction(instruction)
    if spec is None:
        return None
    h = apply_edit(g, spec)
    h.meta["generator"] = {"instruction": instruction, "edit": spec.name, "kwargs": spec.kwargs}
    return h


def apply_edit(g: ArchGraph, spec: EditSpec) -> ArchGraph:
    """Run the pass ``spec`` names on ``g`` (unchanged) and return the edited, validated graph.

    Raises:
        GraphError: an unknown pass name, or what the pass raises (a target, activation or
            attention pattern the graph does not have).
    """
    if spec.name not in EDITS:
        raise GraphError(f"apply_edit: unknown edit {spec.name!r}; known edits are {sorted(EDITS)}")
    return EDITS[spec.name](g, **_resolve(g, spec))
