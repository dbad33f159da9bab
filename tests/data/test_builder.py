"""Dataset builder: determinism, valid rows, dedup, splits, resume after an interruption."""

from __future__ import annotations

import json

import pytest

from mad.data import builder
from mad.data.builder import SPLITS, BuildConfig, BuildError, build, load
from mad.graph import ArchGraph
from mad.graph.symbolic import concrete


def _rows(dd):
    return {s: [dict(r) for r in dd[s]] for s in SPLITS}


CFG = dict(random_count=12, shard_size=4, seed=7)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    return out, build(BuildConfig(**CFG), out, progress=False)


def test_rows_round_trip_and_validate(built):
    _, dd = built
    n = 0
    for split in SPLITS:
        for row in dd[split]:
            g = ArchGraph.from_json(row["graph"])
            g.validate()
            assert g.wl_hash() == row["wl_hash"]
            assert row["num_nodes"] == len(g.nodes) and row["num_params"] == g.num_params
            assert row["description"] and row["split"] == split
            assert row["input_shape"] == [concrete(list(s.shape), g.dims) for s in g.inputs]  # at example sizes
            n += 1
    assert n == 12 - json.loads((built[0] / "stats.json").read_text())["duplicates_dropped"]
    assert set(dd["train"].column_names) == set(builder.COLUMNS)


def test_same_seed_same_dataset(built, tmp_path):
    _, dd = built
    again = build(BuildConfig(**CFG), tmp_path / "again", progress=False)
    assert _rows(again) == _rows(dd)


def test_load_from_disk(built):
    out, dd = built
    assert _rows(load(out)) == _rows(dd)
    with pytest.raises(FileNotFoundError, match="mad dataset build"):
        load(out / "missing")


def test_resume_after_interruption_matches(built, tmp_path, monkeypatch):
    _, dd = built
    real = builder._write_shard
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(builder, "_write_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        build(BuildConfig(**CFG), tmp_path / "r", progress=False)
    assert len(list((tmp_path / "r" / "shards").glob("shard_*.arrow"))) == 1
    first = json.loads((tmp_path / "r" / "shards" / "seconds.json").read_text())
    assert list(first) == ["00000"]
    monkeypatch.setattr(builder, "_write_shard", real)
    written = []
    monkeypatch.setattr(builder, "_write_shard", lambda p, *a: (written.append(p.name), real(p, *a)))
    resumed = build(BuildConfig(**CFG), tmp_path / "r", progress=False)
    assert written == ["shard_00001.arrow", "shard_00002.arrow"]  # the finished shard is not redone
    assert _rows(resumed) == _rows(dd)
    # the build time counts both segments: the interrupted one's finished shard too
    timing = json.loads((tmp_path / "r" / "shards" / "seconds.json").read_text())
    assert sorted(timing) == ["00000", "00001", "00002"] and timing["00000"] == first["00000"]
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())
    assert stats["build_seconds"] >= sum(timing.values())


def test_other_config_in_same_dir_is_refused(built):
    out, _ = built
    with pytest.raises(BuildError, match="another config"):
        build(BuildConfig(random_count=3, seed=7), out, progress=False)


def test_duplicates_dropped_and_ood_split(tmp_path, monkeypatch):
    from mad.data.random_space import sample

    def fake_zoo(key, variant, seed):
        g = sample(variant % 2)  # variants 0 and 2 are the same graph
        g.meta["family"] = key
        return g

    monkeypatch.setitem(builder.SOURCES, "zoo", fake_zoo)
    cfg = BuildConfig(zoo_types=["fam_a", "fam_b"], variants=2, ood_families=["fam_b"], shard_size=10)
    dd = build(cfg, tmp_path / "d", progress=False)
    stats = json.loads((tmp_path / "d" / "stats.json").read_text())
    # fam_b repeats fam_a's graphs, and each family repeats graph 0: two distinct graphs in all
    assert stats["rows_written"] == 6 and stats["duplicates_dropped"] == 4
    assert sum(len(dd[s]) for s in SPLITS) == 2
    assert all(r["family"] == "fam_a" for s in SPLITS for r in dd[s])


def test_failed_specs_are_recorded_not_fatal(tmp_path, monkeypatch):
    def broken(key, variant, seed):
        raise RuntimeError(f"cannot build {key}")

    monkeypatch.setitem(builder.SOURCES, "zoo", broken)
    dd = build(BuildConfig(zoo_types=["nope"], random_count=2), tmp_path / "f", progress=False)
    failures = json.loads((tmp_path / "f" / "failures.json").read_text())
    assert failures == [{"spec": ["zoo", "nope", 0, 0], "error": "RuntimeError: cannot build nope"}]
    assert sum(len(dd[s]) for s in SPLITS) == 2
