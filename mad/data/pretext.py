"""Self-supervised tasks on architecture graphs, as transforms that yield PyG data.

Each task turns one dataset row (an ArchGraph) into a ``torch_geometric``
``Data`` with inputs and labels; :class:`GraphTaskDataset` applies a task to a
split and :func:`loader` batches it. All randomness comes from
``(seed, task, row index)``, so an epoch is reproducible.

Inputs common to every task are the node features of
:func:`mad.graph.features.to_pyg`: ``x`` (frozen op id, :data:`~mad.graph.MASK_ID`
where hidden), ``node_int``, ``shape_code``, ``param_code``, ``attr_code``,
``attr_real``, ``node_feat``, ``edge_index``, ``edge_port``. A hidden node
also has its attrs hidden (``attr_code``/``attr_real`` rows and the attr
columns of ``node_feat`` zeroed); degree columns always count the edges the
input keeps.

==========================  =====================================================================
task                        labels
==========================  =====================================================================
``op_classification``       ``y`` (N,): op id of every node; every ``x`` is ``MASK_ID``
``masked_op``               ``mask`` (N,) bool; ``y`` (N,): op id where masked, -100 elsewhere;
                            ``y_attr_code`` (N, C, 5) / ``y_attr_real`` (N, C): the exact attr
                            cells of every node (the targets are the ``mask`` rows)
``masked_edge``             ``edge_label_index`` (2, 2K): K removed edges then K non-edges;
                            ``edge_label`` (2K,): 1 then 0
``incomplete_graph``        ``y`` (1,): 1 when nodes were removed, else 0
``completion``              the prefix of the graph in topological order as the input;
                            ``target_ops`` (M,): op ids of the rest, in order;
                            ``target_edge_index`` (2, E'): edges into the rest, indexed in the
                            full graph's order
``family_classification``   ``y`` (1,): index of the row's family in ``families``
==========================  =====================================================================

Op labels have :func:`mad.graph.vocab_size` classes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch_geometric.data import Data

from mad.graph import MASK_ID, ArchGraph
from mad.graph.features import CELLS, NODE_FEATURES, NODE_INT, to_pyg

__all__ = ["TASKS", "IGNORE", "NODE_KEYS", "GraphTaskDataset", "loader", "apply_task", "task_names"]

IGNORE = -100
MASK_RATE = 0.15
NODE_KEYS = ("x", "node_int", "shape_code", "param_code", "attr_code", "attr_real", "node_feat")
_CELL_COLS = slice(len(NODE_FEATURES) - CELLS, len(NODE_FEATURES))
_DEG = (NODE_INT.index("in_degree"), NODE_INT.index("out_degree"))
_DEG_FEAT = (NODE_FEATURES.index("in_degree"), NODE_FEATURES.index("out_degree"))


def _hide(d: Data, mask: torch.Tensor) -> None:
    """Hide the op and the attrs of the nodes in ``mask``."""
    d.x = torch.where(mask, torch.full_like(d.x, MASK_ID), d.x)
    d.attr_code = d.attr_code.clone()
    d.attr_real = d.attr_real.clone()
    d.node_feat = d.node_feat.clone()
    d.attr_code[mask] = 0
    d.attr_real[mask] = 0
    d.node_feat[mask, _CELL_COLS] = 0


def _refresh_degrees(d: Data) -> None:
    """Degree columns that count the edges ``d`` keeps."""
    n = d.num_nodes
    ins = torch.bincount(d.edge_index[1], minlength=n)
    outs = torch.bincount(d.edge_index[0], minlength=n)
    d.node_int = d.node_int.clone()
    d.node_feat = d.node_feat.clone()
    d.node_int[:, _DEG[0]], d.node_int[:, _DEG[1]] = ins, outs
    d.node_feat[:, _DEG_FEAT[0]], d.node_feat[:, _DEG_FEAT[1]] = ins.float(), outs.float()


class CompletionData(Data):
    """``Data`` whose ``target_edge_index`` indexes the full graph (prefix + rest)."""

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "target_edge_index":
            return self.full_num_nodes
        return super().__inc__(key, value, *args, **kwargs)


@dataclass(frozen=True)
class Task:
    name: str
    fn: Callable[[Data, ArchGraph, random.Random, dict[str, Any]], Data]
    labels: str


def _op_classification(d: Data, g: ArchGraph, rng: random.Random, ctx: dict) -> Data:
    d.y = d.x.clone()
    _hide(d, torch.ones_like(d.x, dtype=torch.bool))
    return d


def _masked_op(d: Data, g: ArchGraph, rng: random.Random, ctx: dict) -> Data:
    n = d.num_nodes
    k = max(1, round(MASK_RATE * n))
    picked = sorted(rng.sample(range(n), k))
    mask = torch.zeros(n, dtype=torch.bool)
    mask[picked] = True
    d.y = torch.where(mask, d.x, torch.full_like(d.x, IGNORE))
    d.y_attr_code, d.y_attr_real = d.attr_code.clone(), d.attr_real.clone()
    _hide(d, mask)
    d.mask = mask
    return d


def _masked_edge(d: Data, g: ArchGraph, rng: random.Random, ctx: dict) -> Data:
    e = d.edge_index.shape[1]
    n = d.num_nodes
    k = max(1, round(MASK_RATE * e)) if e else 0
    removed = sorted(rng.sample(range(e), k)) if k else []
    keep = torch.ones(e, dtype=torch.bool)
    keep[removed] = False
    pos = d.edge_index[:, removed]
    existing = {(int(a), int(b)) for a, b in d.edge_index.t().tolist()}
    neg: list[tuple[int, int]] = []
    tries = 0
    while len(neg) < k and tries < 50 * max(k, 1) and n > 1:
        a, b = sorted(rng.sample(range(n), 2))  # forward in topological order, like real edges
        if (a, b) not in existing and (a, b) not in neg:
            neg.append((a, b))
        tries += 1
    neg_t = torch.tensor(neg, dtype=torch.long).t().reshape(2, len(neg))
    d.edge_index = d.edge_index[:, keep]
    d.edge_port = d.edge_port[keep]
    d.edge_label_index = torch.cat([pos, neg_t], dim=1)
    d.edge_label = torch.cat([torch.ones(pos.shape[1]), torch.zeros(neg_t.shape[1])])
    _refresh_degrees(d)
    return d


def _subgraph(d: Data, keep_nodes: list[int], cls=Data) -> Data:
    idx = torch.tensor(keep_nodes, dtype=torch.long)
    remap = torch.full((d.num_nodes,), -1, dtype=torch.long)
    remap[idx] = torch.arange(len(keep_nodes))
    src, dst = d.edge_index
    ok = (remap[src] >= 0) & (remap[dst] >= 0)
    out = cls(
        **{k: d[k][idx] for k in NODE_KEYS},
        edge_index=torch.stack([remap[src[ok]], remap[dst[ok]]]),
        edge_port=d.edge_port[ok],
        num_nodes=len(keep_nodes),
    )
    out.node_ids = [d.node_ids[i] for i in keep_nodes]
    _refresh_degrees(out)
    return out


def _incomplete_graph(d: Data, g: ArchGraph, rng: random.Random, ctx: dict) -> Data:
    incomplete = rng.random() < 0.5
    if incomplete:
        protected = {i for i, nid in enumerate(d.node_ids) if g.nodes[nid].op == "input" or nid in g.outputs}
        candidates = [i for i in range(d.num_nodes) if i not in protected]
        k = max(1, round(0.1 * len(candidates)))
        if candidates:
            drop = set(rng.sample(candidates, min(k, len(candidates))))
            d = _subgraph(d, [i for i in range(d.num_nodes) if i not in drop])
        else:
            incomplete = False
    d.y = torch.tensor([int(incomplete)], dtype=torch.long)
    return d


def _completion(d: Data, g: ArchGraph, rng: random.Random, ctx: dict) -> Data:
    n = d.num_nodes
    cut = max(1, min(n - 1, int(n * rng.uniform(0.2, 0.8)))) if n > 1 else 1
    out = _subgraph(d, list(range(cut)), cls=CompletionData)
    src, dst = d.edge_index
    into_rest = dst >= cut
    out.target_ops = d.x[cut:].clone()
    out.target_edge_index = d.edge_index[:, into_rest]
    out.target_edge_port = d.edge_port[into_rest]
    out.full_num_nodes = n
    return out


def _family_classification(d: Data, g: ArchGraph, rng: random.Random, ctx: dict) -> Data:
    families = ctx["families"]
    family = ctx["family"]
    d.y = torch.tensor([families.index(family) if family in families else IGNORE], dtype=torch.long)
    return d


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("op_classification", _op_classification, "op id per node (vocab_size() classes)"),
        Task("masked_op", _masked_op, "op id and exact attr cells of the masked nodes"),
        Task("masked_edge", _masked_edge, "1 for removed edges, 0 for sampled non-edges"),
        Task("incomplete_graph", _incomplete_graph, "1 if nodes were removed, else 0"),
        Task("completion", _completion, "op ids and incoming edges of the rest of the graph"),
        Task("family_classification", _family_classification, "family index"),
    )
}


def task_names() -> list[str]:
    return list(TASKS)


def apply_task(task: str, graph: ArchGraph, seed: int = 0, index: int = 0, **ctx: Any) -> Data:
    """Apply ``task`` to one graph; ``ctx`` carries ``family``/``families`` for family classification."""
    if task not in TASKS:
        raise KeyError(f"unknown task {task!r}; tasks are {task_names()}")
    rng = random.Random(f"{seed}/{task}/{index}")
    return TASKS[task].fn(to_pyg(graph), graph, rng, ctx)


class GraphTaskDataset(torch.utils.data.Dataset):
    """A split of the MAD dataset seen through one self-supervised task.

    Args:
        rows: a ``datasets.Dataset`` split (or any sequence of row dicts with
            ``graph`` and ``family``).
        task: a name from :data:`TASKS`.
        seed: seed of the masking/sampling.
        families: label space of family classification (default: sorted families of ``rows``).

    Example:
        >>> ds = GraphTaskDataset(load_default()["train"], "masked_op")
        >>> batch = next(iter(loader(ds, batch_size=8)))
    """

    def __init__(self, rows: Any, task: str, seed: int = 0, families: list[str] | None = None) -> None:
        if task not in TASKS:
            raise KeyError(f"unknown task {task!r}; tasks are {task_names()}")
        self.rows = rows
        self.task = task
        self.seed = seed
        if families is None and task == "family_classification":
            col = rows["family"] if hasattr(rows, "column_names") else [r["family"] for r in rows]
            families = sorted(set(col))
        self.families = families or []

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Data:
        row = self.rows[int(i)]
        g = ArchGraph.from_json(row["graph"])
        return apply_task(self.task, g, self.seed, int(i), family=row.get("family"), families=self.families)


def loader(dataset: GraphTaskDataset, batch_size: int = 32, shuffle: bool = False, **kwargs: Any):
    """A ``torch_geometric`` ``DataLoader`` over a task dataset (``node_ids`` and ``side`` are dropped)."""
    from torch_geometric.loader import DataLoader

    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, exclude_keys=["node_ids", "side"], **kwargs)
