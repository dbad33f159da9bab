"""Self-supervised task transforms: well-formed batches whose labels match the source graph."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from mad.data.random_space import sample
from mad.data.pretext import IGNORE, GraphTaskDataset, apply_task, loader, task_names
from mad.graph import MASK_ID, op_id, vocab_size
from mad.graph.features import NODE_INT, from_pyg, to_pyg


@pytest.fixture(scope="module")
def graphs():
    return [sample(s) for s in range(6)]


@pytest.fixture(scope="module")
def rows(graphs):
    return [{"graph": g.to_json(), "family": g.meta["family"]} for g in graphs]


def _ops(g):
    return torch.tensor([op_id(g.nodes[n].op) for n in g.topo_order()])


def test_op_classification_hides_every_op_and_its_attrs(graphs):
    g = graphs[0]
    d = apply_task("op_classification", g)
    assert torch.equal(d.y, _ops(g)) and int(d.y.max()) < vocab_size()
    assert (d.x == MASK_ID).all() and not d.attr_code.any() and not d.attr_real.any()


def test_masked_op_labels_match_graph(graphs):
    g = graphs[1]
    d = apply_task("masked_op", g, seed=3)
    ops = _ops(g)
    m = d.mask
    assert 0 < m.sum() < d.num_nodes
    assert torch.equal(d.y[m], ops[m]) and (d.y[~m] == IGNORE).all()
    assert (d.x[m] == MASK_ID).all() and torch.equal(d.x[~m], ops[~m])
    full = to_pyg(g)
    assert not d.attr_code[m].any() and torch.equal(d.attr_code[~m], full.attr_code[~m])  # attrs hidden too
    # the labels are exact: putting them back gives the graph itself
    d.x, d.attr_code, d.attr_real = torch.where(m, d.y, d.x), d.y_attr_code, d.y_attr_real
    assert from_pyg(d).to_json() == g.to_json()


def test_masked_edge_positives_were_edges_and_negatives_were_not(graphs):
    g = graphs[2]
    full = apply_task("op_classification", g).edge_index
    d = apply_task("masked_edge", g, seed=1)
    edges = Counter(tuple(e) for e in full.t().tolist())  # a multigraph: mul(x, x) has two x edges
    kept = Counter(tuple(e) for e in d.edge_index.t().tolist())
    labelled = [tuple(e) for e in d.edge_label_index.t().tolist()]
    positives = Counter(e for e, lab in zip(labelled, d.edge_label.tolist()) if lab == 1)
    negatives = [e for e, lab in zip(labelled, d.edge_label.tolist()) if lab == 0]
    assert edges - kept == positives and sum(positives.values()) > 0
    assert negatives and all(e not in edges for e in negatives)
    assert d.edge_index.shape[1] + int(d.edge_label.sum()) == full.shape[1]
    in_degree = d.node_int[:, NODE_INT.index("in_degree")]
    assert torch.equal(in_degree, torch.bincount(d.edge_index[1], minlength=d.num_nodes))


def test_incomplete_graph_label_matches_removal(graphs):
    seen = set()
    for i, g in enumerate(graphs):
        d = apply_task("incomplete_graph", g, index=i)
        removed = d.num_nodes < len(g.nodes)
        assert int(d.y) == int(removed)
        seen.add(int(d.y))
    assert seen == {0, 1}


def test_completion_prefix_plus_target_is_the_graph(graphs):
    g = graphs[3]
    d = apply_task("completion", g, seed=2)
    ops = _ops(g)
    assert torch.equal(torch.cat([d.x, d.target_ops]), ops)
    assert (d.target_edge_index[1] >= d.num_nodes).all()
    full = apply_task("op_classification", g).edge_index
    n_prefix_edges = int(((full[0] < d.num_nodes) & (full[1] < d.num_nodes)).sum())
    assert d.edge_index.shape[1] == n_prefix_edges
    assert n_prefix_edges + d.target_edge_index.shape[1] == full.shape[1]


def test_family_classification(rows):
    ds = GraphTaskDataset(rows, "family_classification")
    assert ds.families == sorted({r["family"] for r in rows})
    for i in range(len(ds)):
        assert ds.families[int(ds[i].y)] == rows[i]["family"]


@pytest.mark.parametrize("task", task_names())
def test_batches_are_well_formed_and_reproducible(rows, task):
    ds = GraphTaskDataset(rows, task, seed=5)
    batch = next(iter(loader(ds, batch_size=4)))
    assert batch.num_graphs == 4
    assert batch.edge_index.max() < batch.num_nodes
    assert batch.x.shape[0] == batch.num_nodes == batch.node_feat.shape[0]
    if task == "completion":
        assert batch.target_edge_index.max() < int(batch.full_num_nodes.sum())
    again = ds[1]
    first = ds[1]
    assert torch.equal(again.x, first.x) and torch.equal(again.edge_index, first.edge_index)


def test_unknown_task():
    with pytest.raises(KeyError, match="unknown task"):
        GraphTaskDataset([], "nope")
