"""The random architecture space: samples validate, run, are reproducible and honour the configured ranges."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mad.data.random_space import (
    CELL_OPS,
    RandomSpaceConfig,
    RandomSpaceError,
    config_dict,
    sample,
    sample_image_classifier,
    sample_many,
    sample_sequence_model,
)
from mad.graph import ArchGraph
from mad.graph.validate import validate

SMALL = dict(max_params=400_000, max_flops=300_000_000)


pytestmark = pytest.mark.usefixtures("one_thread")


def _expected_out(g: ArchGraph, cfg: RandomSpaceConfig) -> tuple[int, ...]:
    if g.meta["modality"] == "image":
        return (cfg.batch_size, cfg.num_classes)
    return (cfg.batch_size, cfg.seq_len, cfg.vocab_size)


@settings(max_examples=20)
@given(
    seed=st.integers(0, 2**31 - 1),
    modality=st.sampled_from(["image", "sequence", "any"]),
    image_shape=st.sampled_from([(3, 32, 32), (1, 28, 28), (1, 8, 8), (3, 16, 24)]),
)
def test_sample_validates_compiles_and_runs(seed, modality, image_shape):
    cfg = RandomSpaceConfig(modality=modality, image_shape=image_shape, seq_len=16, vocab_size=97, num_classes=7,
                            **SMALL)
    g = sample(seed, cfg)
    validate(g, shapes=False)  # schema, edges, io, acyclic ...
    summary = g.infer(check=True)  # ... and the interpreter re-run agrees with every recorded shape: g.validate()
    assert summary.num_params == g.meta["num_params"]
    assert summary.flops == g.meta["flops"]
    assert g.meta["num_params"] <= cfg.max_params and g.meta["flops"] <= cfg.max_flops
    model = g.to_module()
    with torch.no_grad():
        out = model(*g.example_inputs(seed=1))
    assert tuple(out.shape) == _expected_out(g, cfg)
    assert torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) == g.meta["num_params"]


def test_same_seed_same_graph():
    cfg = RandomSpaceConfig(**SMALL)
    for seed in (0, 1, 12345):
        a, b = sample(seed, cfg), sample(seed, cfg)
        assert a.to_json() == b.to_json()
        assert a.wl_hash() == b.wl_hash()
        assert ArchGraph.from_json(a.to_json()).to_json() == a.to_json()


def test_seed_stream_does_not_depend_on_global_random_state():
    random.seed(1)
    torch.manual_seed(1)
    a = sample(5).to_json()
    random.seed(2)
    torch.manual_seed(2)
    assert sample(5).to_json() == a


def test_different_seeds_mostly_differ():
    cfg = RandomSpaceConfig(**SMALL)
    graphs = list(sample_many(30, cfg, start=100))
    assert len({g.to_json() for g in graphs}) == 30
    assert len({g.wl_hash() for g in graphs}) >= 28
    assert [g.meta["seed"] for g in graphs] == list(range(100, 130))


@pytest.mark.parametrize("modality", ["image", "sequence"])
def test_param_and_flop_ranges_are_respected(modality):
    cfg = RandomSpaceConfig(modality=modality, min_params=50_000, max_params=150_000, min_flops=5_000_000,
                            max_flops=80_000_000)
    tries = []
    for seed in range(8):
        g = sample(seed, cfg)
        assert 50_000 <= g.meta["num_params"] <= 150_000
        assert 5_000_000 <= g.meta["flops"] <= 80_000_000
        assert g.num_params == g.meta["num_params"]
        tries.append(g.meta["tries"])
    assert max(tries) > 1  # the range is tight enough that rejection actually happened


def test_impossible_range_raises_a_clear_error():
    cfg = RandomSpaceConfig(max_params=10, max_tries=5)
    with pytest.raises(RandomSpaceError, match=r"seed=3.*params \[0, 10\].*after 5 tries.*max_params"):
        sample(3, cfg)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("modality", "audio", "modality"),
        ("num_layers", (3, 1), "num_layers"),
        ("widths", (), "widths"),
        ("cell_ops", {"identity": 1.0}, "cell_ops"),
        ("cell_ops", {"conv7x7": 1.0}, "unknown ops"),
        ("head_dims", (7,), "head_dims"),
        ("image_shape", (3, 32), "image_shape"),
    ],
)
def test_config_check_names_the_bad_field(field, value, match):
    cfg = RandomSpaceConfig(**{field: value})
    with pytest.raises(RandomSpaceError, match=match):
        sample(0, cfg)


def test_meta_describes_the_sample():
    g = sample(11, RandomSpaceConfig(modality="sequence", **SMALL))
    assert g.meta["family"] == "random-transformer" and g.meta["modality"] == "sequence"
    assert g.source == "random" and g.name == "random-transformer-11"
    hp = g.meta["hparams"]
    assert {"d_model", "num_layers", "attention", "mlp", "norm", "placement", "residual", "position"} <= set(hp)
    json.dumps(g.meta)  # JSON values only
    assert json.loads(json.dumps(config_dict(RandomSpaceConfig())))["widths"][0] == 16
    spec = g.inputs[0]
    assert spec.dtype == "int64" and spec.range == [0, 256]


def test_sequence_space_covers_every_block_variant():
    cfg = RandomSpaceConfig(modality="sequence")
    rng = random.Random(0)
    seen: dict[str, set] = {k: set() for k in ("attention", "mlp", "norm", "placement", "residual", "position",
                                               "causal", "fused_qkv", "tie_embeddings")}
    for _ in range(80):
        hp = sample_sequence_model(rng, cfg).meta["hparams"]
        for k in seen:
            seen[k].add(hp[k])
    assert seen["attention"] == {"mha", "mqa", "gqa"}
    assert seen["mlp"] == {"gelu", "relu", "swiglu"}
    assert seen["norm"] == {"layer_norm", "rms_norm"}
    assert seen["placement"] == {"pre", "post"}
    assert seen["residual"] == {"standard", "parallel"}
    assert seen["position"] == {"learned", "none"}
    assert all(seen[k] == {True, False} for k in ("causal", "fused_qkv", "tie_embeddings"))


def test_image_space_covers_every_cell_op_and_norm():
    cfg = RandomSpaceConfig(modality="image")
    rng = random.Random(0)
    ops: Counter = Counter()
    norms, acts, merges, stems = set(), set(), set(), set()
    for _ in range(80):
        g = sample_image_classifier(rng, cfg)
        hp = g.meta["hparams"]
        for stage in hp["stages"]:
            ops.update(n["op"] for n in stage["cell"]["nodes"])
            merges.add(stage["cell"]["merge"])
        norms.add(hp["norm"])
        acts.add(hp["activation"])
        stems.add(hp["stem"]["kind"])
    assert set(ops) == set(CELL_OPS)
    assert norms == {"batch_norm", "group_norm", "layer_norm"}
    assert acts == {"relu", "gelu", "silu", "hardswish"}
    assert merges == {"sum", "concat"} and stems == {"conv", "patchify"}


def test_grouped_query_attention_has_fewer_key_value_heads():
    cfg = RandomSpaceConfig(modality="sequence", d_models=(128,), head_dims=(16,))
    for seed in range(40):
        g = sample(seed, cfg)
        if g.meta["hparams"]["attention"] == "gqa":
            break
    else:
        pytest.fail("no grouped-query sample in 40 seeds")
    hp = g.meta["hparams"]
    assert 1 < hp["kv_heads"] < hp["heads"] == 8
    for n in g.nodes.values():
        if n.op == "scaled_dot_product_attention":
            q, k, v = (g.nodes[p].shape for p in g.predecessors(n.id)[:3])
            assert q[1] == 8 and k[1] == v[1] == hp["kv_heads"]
            assert n.attrs["enable_gqa"] is True and n.attrs["is_causal"] == hp["causal"]


def test_tied_lm_head_shares_the_embedding_weight():
    cfg = RandomSpaceConfig(modality="sequence", **SMALL)
    g = next(g for g in sample_many(40, cfg) if g.meta["hparams"]["tie_embeddings"])
    head = g.nodes[g.outputs[0]]
    assert head.op == "linear" and head.param_name("weight") == "embeddings.token.weight"
    model = g.to_module()
    names = {n for n, _ in model.named_parameters()}
    assert "lm_head.weight" not in names and "embeddings.token.weight" in names
    assert g.num_params == sum(p.numel() for p in model.parameters())


def test_cell_ops_restrict_the_cells():
    only_conv = RandomSpaceConfig(modality="image", cell_ops={"conv3x3": 1.0}, max_params=None, max_flops=None)
    for g in sample_many(5, only_conv):
        assert all(n["op"] == "conv3x3" for s in g.meta["hparams"]["stages"] for n in s["cell"]["nodes"])
        assert not any(n.op == "scaled_dot_product_attention" for n in g.nodes.values())
        assert all(n.attrs["groups"] == 1 and n.attrs["dilation"] == [1, 1] for n in g.nodes.values()
                   if n.op == "conv2d")


def test_spatial_attention_only_at_coarse_resolutions():
    cfg = RandomSpaceConfig(modality="image", cell_ops={"attention": 1.0}, max_attn_tokens=64, max_flops=None,
                            max_params=None)
    attended = 0
    for g in sample_many(6, cfg):
        for n in g.nodes.values():
            if n.op == "scaled_dot_product_attention":
                attended += 1
                assert g.nodes[g.predecessors(n.id)[0]].shape[2] <= 64  # (B, heads, tokens, head_dim)
    assert attended > 0


def test_small_images_keep_at_least_two_pixels():
    cfg = RandomSpaceConfig(modality="image", image_shape=(1, 8, 8), num_stages=(4, 4))
    for g in sample_many(10, cfg):
        for n in g.nodes.values():
            if isinstance(n.shape, list) and len(n.shape) == 4:
                assert min(n.shape[2:]) >= 1
        assert all(min(s["resolution"]) >= 2 for s in g.meta["hparams"]["stages"])


@pytest.mark.slow
def test_sampling_throughput():
    cfg = RandomSpaceConfig()
    list(sample_many(5, cfg))
    t = time.perf_counter()
    n = sum(1 for _ in sample_many(100, cfg, start=1000))
    rate = n / (time.perf_counter() - t)
    assert rate >= 30, f"{rate:.1f} graphs/s"
