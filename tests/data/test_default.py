"""The shipped default dataset loads offline, keyed by split, and its rows are valid graphs."""

from __future__ import annotations

import random

import pytest

from mad.data.builder import COLUMNS, SPLITS
from mad.data.default import DEFAULT_DIR, default_stats, load_default
from mad.graph import ArchGraph

pytestmark = pytest.mark.skipif(not (DEFAULT_DIR / "train.parquet").exists(), reason="default dataset not built")


@pytest.fixture(scope="module")
def dd():
    return load_default()


def test_splits_and_columns(dd):
    assert sorted(dd) == sorted(SPLITS)
    assert set(dd["train"].column_names) == set(COLUMNS)
    stats = default_stats()
    assert {s: len(dd[s]) for s in SPLITS} == stats["splits"]
    for s in SPLITS:
        assert all(x == s for x in dd[s]["split"])


def test_ids_and_hashes_unique(dd):
    ids = [i for s in SPLITS for i in dd[s]["id"]]
    hashes = [h for s in SPLITS for h in dd[s]["wl_hash"]]
    assert len(ids) == len(set(ids)) and len(hashes) == len(set(hashes))


def test_ood_families_are_held_out(dd):
    ood = set(dd["ood"]["family"])
    for s in ("train", "validation", "test"):
        assert not ood & set(dd[s]["family"])


def test_sampled_rows_are_valid_graphs(dd):
    rng = random.Random(0)
    for s in ("train", "ood"):
        if not len(dd[s]):
            continue
        for i in rng.sample(range(len(dd[s])), min(8, len(dd[s]))):
            row = dd[s][i]
            g = ArchGraph.from_json(row["graph"])
            g.validate()
            assert g.wl_hash() == row["wl_hash"] and len(g.nodes) == row["num_nodes"]


def test_both_sources_present(dd):
    sources = {x.split(":")[0] for s in SPLITS for x in dd[s]["source"]}
    assert {"hf", "random"} <= sources


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_default"):
        load_default(tmp_path)
