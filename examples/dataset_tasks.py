"""Load the shipped MAD dataset, look at one graph, and batch a self-supervised task.

Run: python examples/dataset_tasks.py
"""

from mad.data import load_default
from mad.data.pretext import GraphTaskDataset, loader
from mad.graph import ArchGraph


def main() -> None:
    dd = load_default()
    print({split: len(rows) for split, rows in dd.items()})
    row = dd["train"][0]
    g = ArchGraph.from_json(row["graph"])
    print(f"{row['id']}: {row['description']}")
    print(f"  {len(g.nodes)} nodes, {g.num_params:,} parameters, WL hash {row['wl_hash'][:12]}...")

    masked = GraphTaskDataset(dd["train"], "masked_op", seed=0)
    batch = next(iter(loader(masked, batch_size=16)))
    hidden = int(batch.mask.sum())
    print(f"masked_op batch: {batch.num_graphs} graphs, {batch.num_nodes} nodes, {hidden} ops to recover")


if __name__ == "__main__":
    main()
