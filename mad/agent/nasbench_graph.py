"""A tabular search space on NAS-Bench-Graph (Qin et al., NeurIPS 2022; Apache-2.0): every architecture of its GNN
cell space was trained on nine graph datasets, so a candidate is scored by a table look-up instead of training.

An architecture is a cell of four computing nodes. ``links[i]`` names the input of node ``i``: 0 for the cell's input,
``j`` for node ``j`` (so ``0 <= links[i] <= i``); every node without successors feeds the output. ``ops[i]`` is the
node's operation: one of ``gat, gcn, gin, cheb, sage, arma, graph, fc, skip`` (``proteins``: ``gcn, sage, arma, fc,
skip``). Many (links, ops) pairs are the same network; the benchmark's ``Arch.valid_hash`` maps each to its canonical
form's integer hash, which is the table's key and this space's :meth:`~NasBenchGraphSpace.key`. After removing those
duplicates (and the all-``skip`` cell) each table holds 26,206 architectures (2,021 for ``proteins``).

The tables (``nas_bench_graph/light/<dataset>.bench``, shipped in the package's wheel) hold, per architecture, one
validation accuracy (``valid_perf``), one test accuracy (``perf``), a latency and the parameter count in millions
(``para``), all as the benchmark's authors measured them; the accuracies are means over the benchmark's three training
seeds. There are no training curves in them, so no epoch is selected here: the figures are used as stored.

Needs the optional package: ``pip install 'mad[nasbench]'`` (or ``pip install nas-bench-graph``). Reading the tables
needs only ``numpy`` besides it (they are pickles holding numpy scalars); no torch, torch_geometric or nni.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache
from typing import Any

from mad.agent.space import Candidate, SearchSpace, SpaceError

__all__ = ["NasBenchGraphSpace", "DATASETS"]

DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins")
_NODES = 4


def _package():
    """The ``nas_bench_graph`` modules (``architecture``, ``readbench``), imported on first use."""
    try:
        from nas_bench_graph import architecture, readbench
    except ImportError as e:
        raise ImportError("the NAS-Bench-Graph space needs the nas-bench-graph package: "
                          "pip install 'mad[nasbench]' (or pip install nas-bench-graph)") from e
    return architecture, readbench


@lru_cache(maxsize=None)
def _table(dataset: str) -> dict[int, tuple[float, float, float, float]]:
    """``{hash: (valid_perf, perf, latency, para)}`` of one dataset, as plain floats.

    The accuracies are rounded to 10 decimals: they are seed means of correct counts, and the stored floats of equal
    means differ in the last bit (0.8193333333333334 and 0.8193333333333333 on cora), which would break ties at random.
    """
    _, readbench = _package()
    bench = readbench.light_read(dataset)
    return {int(h): (round(float(r["valid_perf"]), 10), round(float(r["perf"]), 10), float(r["latency"]),
                     float(r["para"])) for h, r in bench.items()}


@lru_cache(maxsize=None)
def _optimum(dataset: str) -> dict[str, Any]:
    table = _table(dataset)
    best_val = max(r[0] for r in table.values())
    tied = sorted(h for h, r in table.items() if r[0] == best_val)
    tests = [table[h][1] for h in tied]
    best_test = max(r[1] for r in table.values())
    return {"dataset": dataset, "num_archs": len(table), "best_val": best_val,
            "test_at_best_val": sum(tests) / len(tests), "best_val_keys": [str(h) for h in tied],
            "best_val_tests": tests, "best_test": best_test,
            "best_test_keys": sorted(str(h) for h, r in table.items() if r[1] == best_test)}


class NasBenchGraphSpace(SearchSpace):
    """NAS-Bench-Graph's GNN cell space on one dataset, scored from the benchmark's table (no training).

    Genotype: ``{"links": [4 ints], "ops": [4 op names]}`` (JSON). ``sample`` draws uniformly over the table's
    distinct architectures and returns the canonical (links, ops) of the drawn one. ``mutate`` changes one thing:
    the link pattern (to another of the benchmark's nine canonical patterns) or one node's op (to another op); the
    changes that give the parent's architecture again (an isomorphic cell) or the all-``skip`` cell are left out,
    and one of the rest is drawn uniformly. The child's genotype keeps the parent's positions (it differs from the
    parent's genotype in exactly that one place, with ``"gene"`` naming it: ``"links"`` or ``"ops[i]"``); it is not
    rewritten to the canonical form, which :meth:`key` computes.

    Args:
        dataset: one of :data:`DATASETS` (``cora``, ``citeseer``, ``pubmed``, ``cs``, ``physics``, ``photo``,
            ``computers``, ``arxiv``, ``proteins``).

    Example:
        >>> s = NasBenchGraphSpace("cora")
        >>> c = s.sample(random.Random(0))
        >>> r = s.evaluate(c)
        >>> sorted(r), 0 <= r["value"] <= 1
        (['latency', 'params', 'status', 'test_value', 'value'], True)
    """

    name = "nasbench-graph"
    metric = "val_accuracy"
    higher_is_better = True

    def __init__(self, dataset: str = "cora") -> None:
        if dataset not in DATASETS:
            raise SpaceError(f"unknown NAS-Bench-Graph dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
        arch, _ = _package()
        self.dataset = dataset
        self._arch = arch
        self.op_names: tuple[str, ...] = tuple(arch.gnn_list_proteins if dataset == "proteins" else arch.gnn_list)
        self.link_patterns: tuple[tuple[int, ...], ...] = tuple(tuple(lk) for lk in arch.link_list)
        self._table = _table(dataset)
        self._keys = sorted(self._table)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dataset": self.dataset, "num_archs": len(self._table),
                "ops": list(self.op_names), "link_patterns": [list(lk) for lk in self.link_patterns]}

    # ------------------------------------------------------------------ encoding
    def _decode(self, h: int) -> dict[str, list]:
        """The canonical (links, ops) of a table key (the inverse of ``Arch.hash_arch``)."""
        base = len(self._arch.gnn_list) + 1  # valid_hash always hashes with the full op list, proteins too
        ops = []
        for _ in range(_NODES):
            h, d = divmod(h, base)
            ops.append(self._arch.gnn_list[d])
        return {"links": list(self.link_patterns[h]), "ops": ops[::-1]}

    def _check(self, genotype: Any) -> tuple[list[int], list[str]]:
        """``(links, ops)`` of a genotype, or a :class:`SpaceError` saying what is wrong with it."""
        if not isinstance(genotype, dict) or "links" not in genotype or "ops" not in genotype:
            raise SpaceError(f"a NAS-Bench-Graph genotype is {{'links': [...], 'ops': [...]}}, not {genotype!r}")
        links, ops = list(genotype["links"]), list(genotype["ops"])
        if len(links) != _NODES or any(type(lk) is not int or not 0 <= lk <= i for i, lk in enumerate(links)):
            raise SpaceError(f"links {links} must be {_NODES} ints with 0 <= links[i] <= i")
        if len(ops) != _NODES or any(op not in self.op_names for op in ops):
            raise SpaceError(f"ops {ops} must be {_NODES} of {', '.join(self.op_names)} ({self.dataset})")
        if all(op == "skip" for op in ops):
            raise SpaceError("a cell of only skip ops is not an architecture of the benchmark")
        return links, ops

    def _hash(self, links: list[int], ops: list[str]) -> int:
        return int(self._arch.Arch(list(links), list(ops)).valid_hash())

    def _row(self, candidate: Candidate) -> tuple[float, float, float, float]:
        h = self._hash(*self._check(candidate.genotype))
        if h not in self._table:  # cannot happen for a checked genotype; kept as a guard on the package's tables
            raise SpaceError(f"architecture {candidate.genotype} (hash {h}) is not in the {self.dataset} table")
        return self._table[h]

    # ------------------------------------------------------------------ the interface
    def sample(self, rng: random.Random) -> Candidate:
        return Candidate("random", self._decode(rng.choice(self._keys)))

    def mutate(self, candidate: Candidate, rng: random.Random) -> Candidate:
        links, ops = self._check(candidate.genotype)
        own = self._hash(links, ops)
        parent = candidate.key if candidate.key is not None else str(own)
        changes: list[tuple[str, int, Any]] = [("links", -1, list(lk)) for lk in self.link_patterns
                                               if list(lk) != links]
        changes += [("ops", i, op) for i in range(_NODES) for op in self.op_names if op != ops[i]]
        while changes:
            field, i, value = changes.pop(rng.randrange(len(changes)))
            child_links, child_ops = (value, list(ops)) if field == "links" else (list(links), list(ops))
            if field == "ops":
                child_ops[i] = value
            if all(op == "skip" for op in child_ops):
                continue
            h = self._hash(child_links, child_ops)
            if h != own and h in self._table:
                gene = "links" if field == "links" else f"ops[{i}]"
                return Candidate("mutation", {"links": child_links, "ops": child_ops, "gene": gene}, parent=parent)
        raise SpaceError(f"no neighbour of {candidate.genotype} in the {self.dataset} table")  # pragma: no cover

    def to_graph(self, candidate: Candidate) -> None:
        return None

    def features(self, candidate: Candidate) -> list[float]:
        """One-hot link pattern and per-node op, plus log parameters (what the loop's surrogate reads)."""
        links, ops = self._check(candidate.genotype)
        x = [float(list(lk) == links) for lk in self.link_patterns]
        x += [float(op == name) for op in ops for name in self.op_names]
        return [*x, math.log10(1 + self._row(candidate)[3] * 1e6)]

    def key(self, candidate: Candidate) -> str:
        """The benchmark's hash of the architecture (``Arch.valid_hash``, the same for isomorphic cells)."""
        return str(self._hash(*self._check(candidate.genotype)))

    def costs(self, candidate: Candidate) -> dict[str, Any]:
        """``num_params``: the table's parameter count (stored in millions) as an int."""
        return {"num_params": int(round(self._row(candidate)[3] * 1e6))}

    def evaluate(self, candidate: Candidate, seed: int = 0) -> dict[str, Any]:
        """The table's figures: ``value`` its validation accuracy (``valid_perf``), ``test_value`` its test accuracy
        (``perf``), both means over the benchmark's three training seeds (``seed`` does not change them);
        ``latency`` and ``params`` as in the table (``params`` as :meth:`costs`)."""
        val, test, latency, para = self._row(candidate)
        return {"status": "completed", "value": val, "test_value": test, "latency": latency,
                "params": int(round(para * 1e6))}

    def optimum(self) -> dict[str, Any]:
        """The best of the table, for reports (computed once per dataset).

        Returns:
            ``best_val`` (the highest validation accuracy), ``test_at_best_val`` (the test accuracy of the
            architecture with that validation accuracy: the figure a perfect validation-driven search reports; the
            mean over architectures tied at ``best_val``, whose keys and tests are ``best_val_keys`` and
            ``best_val_tests``), ``best_test`` (the highest test accuracy, an oracle bound) with its keys,
            ``num_archs`` and ``dataset``.
        """
        out = _optimum(self.dataset)
        return {**out, "best_val_keys": list(out["best_val_keys"]), "best_val_tests": list(out["best_val_tests"]),
                "best_test_keys": list(out["best_test_keys"])}
