"""The NAS-Bench-Graph tabular space: sampling, mutation, keys and table look-ups (skipped without the package)."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("nas_bench_graph")

from mad.agent.nasbench_graph import NasBenchGraphSpace  # noqa: E402
from mad.agent.space import Candidate, SpaceError  # noqa: E402


@pytest.fixture(scope="module")
def space() -> NasBenchGraphSpace:
    return NasBenchGraphSpace("cora")


def _valid(space: NasBenchGraphSpace, c: Candidate) -> None:
    links, ops = c.genotype["links"], c.genotype["ops"]
    assert len(links) == len(ops) == 4
    assert all(0 <= lk <= i for i, lk in enumerate(links))
    assert all(op in space.op_names for op in ops) and any(op != "skip" for op in ops)
    assert space.to_graph(c) is None


def test_attributes(space):
    assert (space.name, space.metric, space.higher_is_better) == ("nasbench-graph", "val_accuracy", True)
    d = space.describe()
    assert d["dataset"] == "cora" and d["num_archs"] == 26206


def test_sample_valid_and_deterministic(space):
    a = [space.sample(random.Random(7)) for _ in range(2)]
    assert a[0].genotype == a[1].genotype and a[0].proposer == "random"
    rng = random.Random(3)
    for _ in range(50):
        _valid(space, space.sample(rng))


def test_mutate_one_change_and_deterministic(space):
    rng = random.Random(0)
    for _ in range(200):
        parent = space.sample(rng)
        parent.key = space.key(parent)
        child = space.mutate(parent, rng)
        _valid(space, child)
        assert child.parent == parent.key and child.proposer == "mutation"
        assert space.key(child) != parent.key
        p, c = parent.genotype, child.genotype
        diffs = (["links"] if c["links"] != p["links"] else []) + \
            [f"ops[{i}]" for i in range(4) if c["ops"][i] != p["ops"][i]]
        assert diffs == [c["gene"]]
        if diffs != ["links"]:
            assert c["links"] == p["links"]
    parent = space.sample(random.Random(1))
    kids = [space.mutate(parent, random.Random(5)).genotype for _ in range(2)]
    assert kids[0] == kids[1]


def test_mutate_chain(space):
    rng = random.Random(2)
    c = space.sample(rng)
    for _ in range(100):
        c.key = space.key(c)
        c = space.mutate(c, rng)
        assert space.key(c) != c.parent


def test_key_stable_and_canonical(space):
    c = space.sample(random.Random(11))
    k = space.key(c)
    assert isinstance(k, str) and k == space.key(c) == space.key(Candidate("x", dict(c.genotype)))
    # one cell (gcn -> gin -> fc, gcn -> cheb) written in three node orders has one key; another cell has another
    same = [([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"]), ([0, 1, 1, 2], ["gcn", "gin", "cheb", "fc"]),
            ([0, 1, 1, 3], ["gcn", "cheb", "gin", "fc"])]
    keys = {space.key(Candidate("x", {"links": lk, "ops": ops})) for lk, ops in same}
    assert len(keys) == 1
    other = Candidate("x", {"links": [0, 1, 1, 2], "ops": ["gcn", "cheb", "gin", "fc"]})  # fc after cheb
    assert space.key(other) not in keys


def test_distinct_samples(space):
    rng = random.Random(0)
    keys = {space.key(space.sample(rng)) for _ in range(100)}
    assert len(keys) >= 95


def test_evaluate_and_costs(space):
    rng = random.Random(4)
    for _ in range(20):
        c = space.sample(rng)
        r = space.evaluate(c, seed=0)
        assert r["status"] == "completed"
        assert 0.0 <= r["value"] <= 1.0 and 0.0 <= r["test_value"] <= 1.0
        assert r == space.evaluate(c, seed=1)  # seed means: the seed does not change the figures
        n = space.costs(c)["num_params"]
        assert isinstance(n, int) and n > 0 and n == r["params"]


def test_optimum(space):
    o = space.optimum()
    assert o["num_archs"] == 26206
    assert 0.8 < o["best_val"] <= 1.0 and 0.8 < o["test_at_best_val"] <= o["best_test"] <= 1.0
    for k in o["best_val_keys"]:
        cand = Candidate("x", space._decode(int(k)))
        assert space.key(cand) == k and space.evaluate(cand)["value"] == o["best_val"]


def test_bad_input(space):
    with pytest.raises(SpaceError):
        NasBenchGraphSpace("mnist")
    with pytest.raises(SpaceError):
        space.key(Candidate("x", {"links": [0, 0, 0, 0], "ops": ["skip"] * 4}))
    with pytest.raises(SpaceError):
        space.key(Candidate("x", {"links": [0, 2, 0, 0], "ops": ["gcn"] * 4}))
    with pytest.raises(SpaceError):
        NasBenchGraphSpace("proteins").key(Candidate("x", {"links": [0, 0, 0, 0], "ops": ["gat"] * 4}))


def test_proteins_ops():
    s = NasBenchGraphSpace("proteins")
    rng = random.Random(0)
    c = s.sample(rng)
    for _ in range(50):
        _valid(s, c)
        assert 0.0 <= s.evaluate(c)["value"] <= 1.0
        c.key = s.key(c)
        c = s.mutate(c, rng)
