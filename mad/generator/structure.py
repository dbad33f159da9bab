"""Where each graph token sits in its graph: node, role, depth, and the relation of two tokens' nodes.

:func:`token_structure` reads an (uncompressed) token sequence of
:class:`~mad.tokenizer.GraphTokenizer`; :func:`buckets` turns it into the
relation id of every (query, key) token pair that the generator's attention
bias looks up. :class:`NodeDistances` does the same one node at a time while
decoding. Relations (:data:`N_BUCKETS` ids):

===========  ==================================================================
0            same node
1 .. 5       the key's node is an input of the query's node 1, 2, 3, 4, 5+ hops back
6            unrelated nodes
7 .. 10      the key's node consumes the query's node 1, 2, 3, 4+ hops on (masked mode)
11           no structure known: prompt and header tokens, outputs, and a node's
             reference tokens as queries (its inputs are not all known yet)
===========  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["N_BUCKETS", "N_ROLES", "ROLE", "TokenStructure", "token_structure", "buckets", "NodeDistances",
           "bucket_row"]

N_BUCKETS = 12
NONE = 11
UNRELATED = 6
ROLE = {"prefix": 0, "other": 1, "ref": 2, "op": 3, "key": 4, "out": 5}
N_ROLES = len(ROLE)
_FAR = 1_000


@dataclass
class TokenStructure:
    """Per token: ``node`` (index, -1 outside nodes), ``role`` (:data:`ROLE`), ``depth`` of its node;
    per node: ``parents`` (positions)."""

    node: np.ndarray
    role: np.ndarray
    depth: np.ndarray
    parents: list[list[int]]


def token_structure(tokens: list[str], hide: set[int] | None = None) -> TokenStructure:
    """Read nodes, roles and depths off an uncompressed token sequence (a prefix is fine).

    ``hide``: positions of reference tokens whose edge is hidden (masked): they
    keep their role but add no input to their node.
    """
    hide = hide or set()
    n_tok = len(tokens)
    node = np.full(n_tok, -1, dtype=np.int64)
    role = np.full(n_tok, ROLE["other"], dtype=np.int64)
    depth = np.zeros(n_tok, dtype=np.int64)
    parents: list[list[int]] = []
    depths: list[int] = []
    cur_refs: list[int] = []
    ref_start: int | None = None
    in_node = False
    out = False
    lit = 0
    for t, tok in enumerate(tokens):
        if out:
            role[t] = ROLE["out"]
            continue
        if tok == "<out>":
            out = True
            role[t] = ROLE["out"]
            in_node = False
            continue
        if lit:  # inside a value of a key or a big reference: belongs to the current node
            lit = lit - 1 if tok == "</lit>" else lit
            node[t], role[t] = (len(parents) - 1 if in_node else len(parents)), ROLE["key" if in_node else "ref"]
            if in_node:
                depth[t] = depths[-1]
            continue
        if in_node and tok.startswith("@") and t > 0 and tokens[t - 1].startswith("k:t."):
            node[t], role[t], depth[t] = len(parents) - 1, ROLE["key"], depths[-1]  # a tied parameter's owner
            continue
        if tok.startswith("@") or (t in hide and tok == "<mask>"):
            if in_node:
                in_node = False
            if ref_start is None:
                ref_start, cur_refs = t, []
            if t not in hide:
                k = int(tok[1:]) if tok != "@big" else _FAR
                cur_refs.append(len(parents) - k)
            node[t], role[t] = len(parents), ROLE["ref"]
            continue
        if tok == "<pin>":
            node[t], role[t] = len(parents), ROLE["ref"]
            if ref_start is None:
                ref_start, cur_refs = t, []
            continue
        if tok.startswith("op:"):
            refs = [r for r in (cur_refs if ref_start is not None else []) if r >= 0]
            parents.append(refs)
            depths.append(1 + max((depths[r] for r in refs), default=-1))
            ref_start, cur_refs, in_node = None, [], True
            node[t], role[t], depth[t] = len(parents) - 1, ROLE["op"], depths[-1]
            continue
        if tok == "<lit>":
            lit = 1
        if in_node:
            node[t], role[t], depth[t] = len(parents) - 1, ROLE["key"], depths[-1]
    return TokenStructure(node, role, depth, parents)


def node_distances(parents: list[list[int]]) -> np.ndarray:
    """(N, N) int: ``D[i, j]`` = hops from node j forward to node i (0 on the diagonal, ``_FAR`` when none)."""
    n = len(parents)
    d = np.full((n, n), _FAR, dtype=np.int32)
    for i, ps in enumerate(parents):
        if ps:
            d[i] = np.minimum.reduce([d[p] for p in ps]) + 1
        d[i, i] = 0
    return np.minimum(d, _FAR)


def _relation(d_fwd: np.ndarray, d_bwd: np.ndarray) -> np.ndarray:
    """Relation ids from forward hops (key -> query) and backward hops (query -> key)."""
    rel = np.full(d_fwd.shape, UNRELATED, dtype=np.int64)
    anc = d_fwd < _FAR
    rel[anc] = np.minimum(d_fwd[anc], 5)
    desc = (d_bwd < _FAR) & ~anc
    rel[desc] = 6 + np.minimum(d_bwd[desc], 4)
    return rel


def buckets(s: TokenStructure, prefix: int, length: int | None = None) -> np.ndarray:
    """(P+T, P+T) relation ids of every token pair, the prompt's ``prefix`` positions first.

    ``length`` pads the graph part to that many tokens (padding gets :data:`NONE`).
    """
    t = len(s.node)
    length = t if length is None else length
    out = np.full((prefix + length, prefix + length), NONE, dtype=np.int64)
    if s.parents:
        d = node_distances(s.parents)
        rel = _relation(d, d.T)
        has = (s.node >= 0) & (s.node < len(s.parents))  # a cut-off node's references: no structure yet
        idx = np.nonzero(has)[0]
        sub = rel[np.ix_(s.node[idx], s.node[idx])]
        blind = s.role[idx] == ROLE["ref"]  # a reference token does not know its node's inputs yet
        same = s.node[idx][:, None] == s.node[idx][None, :]
        sub = np.where(blind[:, None] & ~same, NONE, sub)
        out[np.ix_(idx + prefix, idx + prefix)] = sub
    return out


class NodeDistances:
    """Forward hop distances to earlier nodes, grown one node at a time while decoding."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []

    def add(self, parents: list[int]) -> None:
        n = len(self.rows)
        row = np.full(n + 1, _FAR, dtype=np.int32)
        for p in parents:
            row[: len(self.rows[p])] = np.minimum(row[: len(self.rows[p])], self.rows[p] + 1)
        row[n] = 0
        self.rows.append(np.minimum(row, _FAR))

    def pop(self) -> None:
        self.rows.pop()

    def copy(self) -> "NodeDistances":
        """An independent copy (rows are never changed in place, so they are shared)."""
        d = NodeDistances()
        d.rows = list(self.rows)
        return d

    def __len__(self) -> int:
        return len(self.rows)


def bucket_row(dist: NodeDistances, q_node: int, q_role: int, key_nodes: np.ndarray) -> np.ndarray:
    """Relation ids of one query token (in causal decoding) against keys of nodes ``key_nodes`` (-1: none)."""
    out = np.full(len(key_nodes), NONE, dtype=np.int64)
    if q_node < 0:
        return out
    has = key_nodes >= 0
    if q_role == ROLE["ref"] or q_node >= len(dist):
        out[has & (key_nodes == q_node)] = 0
        return out
    row = dist.rows[q_node]
    kn = key_nodes[has]
    d = np.where(kn < len(row), row[np.minimum(kn, len(row) - 1)], _FAR)
    rel = np.where(d < _FAR, np.minimum(d, 5), UNRELATED)
    out[has] = rel
    return out
