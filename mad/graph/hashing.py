"""Canonical Weisfeiler-Lehman hash of an ArchGraph, for dedup and novelty.

Two graphs get the same hash when they describe the same architecture up to
node ids, parameter names, scopes and the order nodes and edges were added in.
The hash changes when an op, an attribute, a parameter shape, an input shape
or an edge (including which port it feeds) changes.

What a node's starting label holds:

- ``op``;
- ``attrs`` with the op's schema defaults filled in (so ``stride=[1, 1]``
  written out and left out hash the same), minus the attrs that carry no
  architecture: an ``input`` node's ``name`` and a ``parameter`` node's
  ``value``;
- the shapes of the parameters it owns, by role;
- for an ``input`` node: its position in ``graph.inputs``, shape, dtype and
  value range;
- for an output node: its position in ``graph.outputs`` and the output kind.

Refinement (``iterations`` rounds) replaces each label by a digest of the
label and the sorted labels of its neighbours, each tagged with direction
and port: ``("in", port, pred)`` for an edge into the node, ``("out", port,
succ)`` for an edge out of it. Nodes that share a tensor (tied weights: the
same state-dict name after resolving ``graph.meta["aliases"]``) are
neighbours too, tagged with both roles. The hash is the digest of the sorted
multisets of labels of every round, so graphs of different sizes or with any
differing label never collide by construction (only by a digest collision).

Digests are BLAKE2b over canonical JSON: deterministic across processes and
machines (no use of Python's salted ``hash()``).

Example:
    >>> a = g.wl_hash()
    >>> ArchGraph.from_json(g.to_json()).wl_hash() == a
    True
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from .arch_graph import ArchGraph, Node
from .ops import get_op
from .ops.registry import has_op

__all__ = ["wl_hash", "node_labels"]

_DIGEST_BYTES = 16


def _digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()


def _canonical_attrs(node: Node) -> dict[str, Any]:
    """Attrs with schema defaults filled in and value-only attrs dropped."""
    attrs = dict(node.attrs)
    if has_op(node.op):
        for key, spec in get_op(node.op).attrs.items():
            if key not in attrs:
                attrs[key] = spec.default
    if node.op == "input":
        attrs.pop("name", None)
    elif node.op == "parameter":
        attrs.pop("value", None)
    return attrs


def node_labels(g: ArchGraph) -> dict[str, str]:
    """Starting (round 0) label digest of every node; see the module docstring."""
    input_pos = {s.name: i for i, s in enumerate(g.inputs)}
    specs = {s.name: s for s in g.inputs}
    output_pos: dict[str, list] = defaultdict(list)
    for i, o in enumerate(g.outputs):
        output_pos[o].append(i)
    labels = {}
    for n in g.nodes.values():
        label: dict[str, Any] = {
            "op": n.op,
            "attrs": _canonical_attrs(n),
            "params": {r: list(s) for r, s in n.params.items()},
        }
        if n.op == "input":
            name = n.attrs.get("name")
            spec = specs.get(name)
            label["input"] = (
                [input_pos[name], list(spec.shape), spec.dtype, spec.range] if spec is not None else None
            )
        if n.id in output_pos:
            label["output"] = [g.output_kind, output_pos[n.id]]
        labels[n.id] = _digest(label)
    return labels


def _tied_neighbours(g: ArchGraph) -> dict[str, list[tuple[str, str, str]]]:
    """For each node, ``(own_role, other_role, other_id)`` for tensors it shares with other nodes."""
    aliases: dict[str, str] = dict(g.meta.get("aliases", {}) or {})

    def resolve(name: str) -> str:
        seen = set()
        while name in aliases and name not in seen:
            seen.add(name)
            name = aliases[name]
        return name

    owners: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for n in g.nodes.values():
        for role in n.params:
            owners[resolve(n.param_name(role))].append((n.id, role))
    ties: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for group in owners.values():
        if len(group) < 2:
            continue
        for nid, role in group:
            for other, other_role in group:
                if (other, other_role) != (nid, role):
                    ties[nid].append((role, other_role, other))
    return ties


def wl_hash(graph: ArchGraph, iterations: int = 3) -> str:
    """Canonical Weisfeiler-Lehman hash of ``graph`` (32 hex characters).

    Args:
        graph: the graph; it need not be validated or have shapes inferred
            (recorded node shapes are not part of the hash).
        iterations: refinement rounds; 3 sees each node's 3-hop neighbourhood.

    Returns:
        A hex digest, equal for isomorphic graphs (same ops, attrs, parameter
        shapes, inputs, outputs and port-labelled edges) whatever their node
        ids, scopes, parameter names or insertion order.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    labels = node_labels(graph)
    ins: dict[str, list[tuple[int, str]]] = defaultdict(list)
    outs: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e in graph.edges:
        if e.src in labels and e.dst in labels:
            ins[e.dst].append((e.port, e.src))
            outs[e.src].append((e.port, e.dst))
    ties = _tied_neighbours(graph)
    rounds = [sorted(labels.values())]
    for _ in range(iterations):
        new = {}
        for nid, label in labels.items():
            neigh = sorted(
                [["in", p, labels[s]] for p, s in ins[nid]]
                + [["out", p, labels[d]] for p, d in outs[nid]]
                + [["tie", r, o, labels[other]] for r, o, other in ties[nid]]
            )
            new[nid] = _digest([label, neigh])
        labels = new
        rounds.append(sorted(labels.values()))
    return _digest({"nodes": len(graph.nodes), "edges": len(graph.edges), "rounds": rounds})
