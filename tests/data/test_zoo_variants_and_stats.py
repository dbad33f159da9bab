"""Sampled zoo variants stay legal configs; dataset statistics and row lookup count what is there."""

from __future__ import annotations

import json

import datasets
import pytest

from mad.data.stats import dataset_stats, find_row
from mad.data.zoo_variants import variant_overrides


@pytest.mark.parametrize("model_type", ["bert", "llama", "vit", "mistral"])
def test_variants_are_deterministic_and_consistent(model_type):
    assert variant_overrides(model_type, 0) == {}
    for k in range(1, 6):
        o = variant_overrides(model_type, k, seed=3)
        assert o == variant_overrides(model_type, k, seed=3)
        heads, width = o.get("num_attention_heads"), o.get("hidden_size")
        if heads and width:
            assert width % heads == 0
        if "num_key_value_heads" in o:
            assert heads % o["num_key_value_heads"] == 0
        if width and "intermediate_size" in o:
            assert o["intermediate_size"] % width == 0
    assert any(variant_overrides(model_type, k) != variant_overrides(model_type, k, seed=1) for k in range(1, 6))


def test_a_variant_builds_and_converts():
    from mad.code2graph import from_hf

    o = variant_overrides("bert", 1)
    g = from_hf("bert", **o)
    g.validate()
    layers = {n.scope.split(".")[2] for n in g if n.scope.startswith("encoder.layer.")}
    assert len(layers) == o["num_hidden_layers"]


def _rows(n: int, split: str) -> list[dict]:
    graph = json.dumps({"nodes": [{"op": "input"}, {"op": "linear"}, {"op": "relu"}]})
    return [{"id": f"{split}/{i}", "family": "mlp" if i % 2 else "cnn", "modality": "image", "source": "random",
             "num_params": 10 * (i + 1), "num_nodes": 3, "num_edges": 2, "flops": 100 * i,
             "wl_hash": f"h{i % 3}", "graph": graph} for i in range(n)]


def test_dataset_stats_counts_rows_ops_and_diversity():
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(_rows(6, "train")),
                               "test": datasets.Dataset.from_list(_rows(2, "test"))})
    s = dataset_stats(dd)
    assert s["rows"] == 8 and s["splits"] == {"train": 6, "test": 2}
    assert s["families"] == 2 and s["by_modality"] == {"image": 8}
    assert s["num_params"] == {"min": 10, "median": 30, "max": 60}
    assert s["op_histogram"] == {"input": 8, "linear": 8, "relu": 8}
    assert s["distinct_wl_fraction"] == round(3 / 8, 4)
    assert find_row(dd, "test/1")["num_params"] == 20
    with pytest.raises(KeyError, match="no row with id 'train/9'"):
        find_row(dd, "train/9")
