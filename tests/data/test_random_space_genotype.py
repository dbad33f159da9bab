"""Genotypes of the random space: build gives sample's graph back, mutate changes one gene into a buildable child."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter

import pytest
import torch

from mad.data.random_space import RandomSpaceConfig, RandomSpaceError, build, genes, mutate, sample
from mad.data.random_space.genotype import CNN_GENES, TRANSFORMER_GENES

SMALL = dict(max_params=400_000, max_flops=300_000_000)
CFGS = {
    "image28": RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), **SMALL),
    "image8": RandomSpaceConfig(modality="image", image_shape=(1, 8, 8), **SMALL),
    "sequence": RandomSpaceConfig(modality="sequence", vocab_size=64, seq_len=16, **SMALL),
}

# the top-level keys a gene may change
_KEYS = {
    **{g: {g} for g in CNN_GENES + TRANSFORMER_GENES},
    **{g: {"stages"} for g in ("stage_width", "stage_cells", "cell", "cell_op", "depth")},
    "width": {"d_model", "head_dim", "heads", "attention", "kv_heads", "mlp_hidden"},
    "attention": {"attention", "kv_heads"},
    "mlp": {"mlp", "mlp_ratio", "mlp_hidden"},
    "placement": {"placement", "embed_norm"},
}


pytestmark = pytest.mark.usefixtures("one_thread")


def _plain(hp: dict) -> dict:
    """The genotype as JSON values, without the stages' derived resolution."""
    hp = json.loads(json.dumps(hp))
    for st in hp.get("stages", []):
        st.pop("resolution", None)
    return hp


def _check_one_gene(parent: dict, child: dict, gene: str) -> None:
    parent, child = _plain(parent), _plain(child)
    assert child != parent
    changed = {k for k in parent.keys() | child.keys() if parent.get(k) != child.get(k)}
    assert changed and changed <= _KEYS[gene], (gene, changed)
    if gene in ("stage_width", "stage_cells", "cell", "cell_op"):
        a, b = parent["stages"], child["stages"]
        assert len(a) == len(b)
        diff = [s for s in range(len(a)) if a[s] != b[s]]
        assert len(diff) == 1  # one stage, also where stages shared the cell
        sa, sb = a[diff[0]], b[diff[0]]
        field = {"stage_width": "width", "stage_cells": "cells"}.get(gene, "cell")
        assert {k for k in sa if sa[k] != sb[k]} == {field}
        if gene == "cell_op":
            ops = [(x["op"], y["op"]) for x, y in zip(sa["cell"]["nodes"], sb["cell"]["nodes"])]
            assert sum(x != y for x, y in ops) == 1
            assert {k: v for k, v in sa["cell"].items() if k != "nodes"} == \
                   {k: v for k, v in sb["cell"].items() if k != "nodes"}
    if gene == "stage_width":
        widths = [st["width"] for st in child["stages"]]
        assert widths == sorted(widths)
    if gene == "depth":
        a, b = parent["stages"], child["stages"]
        assert abs(len(a) - len(b)) == 1
        short, long = sorted((a, b), key=len)
        assert long[: len(short)] == short
        if len(b) > len(a):
            assert b[-1]["cell"] == a[-1]["cell"] and b[-1]["width"] >= a[-1]["width"]


@pytest.mark.parametrize("name", list(CFGS))
def test_build_of_a_samples_genotype_is_the_sample(name):
    cfg = CFGS[name]
    for seed in range(4):
        g = sample(seed, cfg)
        hp_before = copy.deepcopy(g.meta["hparams"])
        b = build(g.meta["hparams"], cfg, name=g.name)
        assert g.meta["hparams"] == hp_before  # not changed by build
        assert "seed" not in b.meta and "tries" not in b.meta
        b.meta.update(seed=g.meta["seed"], tries=g.meta["tries"])
        assert b.to_json() == g.to_json()
        # also from the genotype as it comes back from JSON (shared cells become copies)
        c = build(json.loads(json.dumps(g.meta["hparams"])), cfg, modality=g.meta["modality"])
        assert c.name == g.meta["family"]
        assert c.nodes == g.nodes and c.edges == g.edges and c.num_params == g.num_params


def test_build_is_deterministic_and_leaves_hp_alone():
    cfg = CFGS["image28"]
    child, _ = mutate(sample(3, cfg).meta["hparams"], random.Random(0), cfg)
    before = copy.deepcopy(child)
    a, b = build(child, cfg), build(child, cfg)
    assert a.to_json() == b.to_json()
    assert child == before and all("resolution" not in st for st in child["stages"])
    assert all("resolution" in st for st in a.meta["hparams"]["stages"])
    assert set(a.meta) == {"family", "modality", "space_version", "hparams", "num_params", "flops", "num_nodes"}
    assert a.meta["num_params"] == a.num_params


def test_genes():
    assert genes("image") == CNN_GENES and genes("sequence") == TRANSFORMER_GENES
    assert set(CNN_GENES) == {"norm", "activation", "order", "stem", "downsample", "head", "stage_width",
                              "stage_cells", "cell", "cell_op", "depth"}
    assert set(TRANSFORMER_GENES) == {"width", "num_layers", "attention", "fused_qkv", "causal", "mlp", "norm",
                                      "placement", "residual", "position", "bias", "tie_embeddings"}
    with pytest.raises(RandomSpaceError, match="modality"):
        genes("audio")


@pytest.mark.parametrize("name", list(CFGS))
def test_mutate_changes_exactly_the_named_gene(name):
    cfg = CFGS[name]
    seen = Counter()
    for seed in range(6):
        hp = sample(seed, cfg).meta["hparams"]
        rng = random.Random(seed)
        for _ in range(25):
            before = copy.deepcopy(hp)
            child, gene = mutate(hp, rng, cfg)
            assert hp == before  # the parent is not changed
            assert gene in genes(cfg.modality)
            _check_one_gene(hp, child, gene)
            seen[gene] += 1
            hp = child
    expected = set(genes(cfg.modality)) - ({"stem"} if name == "image8" else set())  # an 8x8 input has one stem
    assert set(seen) == expected


def test_random_mutations_build_valid_graphs():
    runs = [("image28", 0), ("image28", 1), ("image8", 2), ("image8", 3)] + [("sequence", s) for s in range(4)]
    failures, total, ran = [], 0, 0
    for name, seed in runs:
        cfg = CFGS[name]
        hp = sample(seed, cfg).meta["hparams"]
        rng = random.Random(100 + seed)
        for step in range(25):  # 8 chains of 25: 200 mutations
            hp, gene = mutate(hp, rng, cfg)
            total += 1
            try:
                g = build(hp, cfg)
            except RandomSpaceError as e:
                failures.append((name, seed, gene, str(e)))
                continue
            g.validate()
            assert g.meta["num_params"] == g.num_params
            if step % 6 == 5:
                with torch.no_grad():
                    out = g.to_module()(*g.example_inputs(seed=1))
                expected = (cfg.batch_size, cfg.num_classes) if name != "sequence" else \
                    (cfg.batch_size, cfg.seq_len, cfg.vocab_size)
                assert tuple(out.shape) == expected and torch.isfinite(out).all()
                ran += 1
    assert total == 200 and ran >= 24
    assert len(failures) < 0.05 * total, failures


def test_keep_never_changes_causal():
    cfg = CFGS["sequence"]
    hp = sample(5, cfg).meta["hparams"]
    causal = hp["causal"]
    rng = random.Random(7)
    for _ in range(100):
        hp, gene = mutate(hp, rng, cfg, keep={"causal"})
        assert gene != "causal" and hp["causal"] == causal


def test_a_gene_with_one_value_gives_way():
    cfg = RandomSpaceConfig(modality="sequence", vocab_size=64, seq_len=16, num_layers=(2, 2), **SMALL)
    hp = sample(0, cfg).meta["hparams"]
    others = set(TRANSFORMER_GENES) - {"num_layers", "bias"}
    for seed in range(10):
        child, gene = mutate(hp, random.Random(seed), cfg, keep=others)
        assert gene == "bias" and child["bias"] != hp["bias"] and child["num_layers"] == 2
    with pytest.raises(RandomSpaceError, match="no sequence gene"):
        mutate(hp, random.Random(0), cfg, keep=others | {"bias"})


def test_mutate_is_deterministic():
    for name, cfg in CFGS.items():
        hp = sample(1, cfg).meta["hparams"]
        for seed in range(5):
            a = mutate(hp, random.Random(seed), cfg)
            b = mutate(hp, random.Random(seed), cfg)
            assert a == b
            assert build(a[0], cfg).to_json() == build(b[0], cfg).to_json()


def test_bad_genotypes_raise_random_space_error():
    cfg = CFGS["image8"]
    hp = sample(0, cfg).meta["hparams"]
    with pytest.raises(RandomSpaceError, match="not a random-space genotype"):
        build({}, cfg)
    with pytest.raises(RandomSpaceError, match="not a random-space genotype"):
        mutate([1, 2], random.Random(0), cfg)
    bad = copy.deepcopy(hp)
    del bad["head"]
    with pytest.raises(RandomSpaceError, match="lacks the key 'head'"):
        build(bad, cfg)
    with pytest.raises(RandomSpaceError, match="sequence genotype lacks the key"):
        build(hp, cfg, modality="sequence")
    with pytest.raises(RandomSpaceError, match="modality"):
        build(hp, cfg, modality="audio")
    bad = copy.deepcopy(hp)
    bad["stages"] = [copy.deepcopy(hp["stages"][0]) for _ in range(6)]  # 8x8 cannot be pooled 5 times
    bad["downsample"] = "max_pool"
    with pytest.raises(RandomSpaceError, match="invalid graph"):
        build(bad, cfg)
    bad = copy.deepcopy(hp)
    bad["stages"][0]["cell"] = {**bad["stages"][0]["cell"], "nodes": [{"op": "conv7x7", "inputs": [0]}]}
    with pytest.raises(RandomSpaceError, match="conv7x7"):
        build(bad, cfg)
    with pytest.raises(RandomSpaceError, match="image genotype is invalid: its norm is 'batchnorm'; choose from"):
        build({**hp, "norm": "batchnorm"}, cfg)
    with pytest.raises(RandomSpaceError, match="its stem.kind is 'patch'; choose from"):
        build({**hp, "stem": {"kind": "patch", "stride": 1}}, cfg)
    with pytest.raises(RandomSpaceError, match="its stages must be a non-empty list"):
        build({**hp, "stages": []}, cfg)
    seq = sample(0, CFGS["sequence"]).meta["hparams"]
    with pytest.raises(RandomSpaceError, match="its placement is 'middle'"):
        build({**seq, "placement": "middle"}, CFGS["sequence"])
    with pytest.raises(RandomSpaceError, match="build: the sequence genotype"):
        build({**seq, "kv_heads": 3 if seq["heads"] % 3 else 5}, CFGS["sequence"])
    bad = copy.deepcopy(hp)
    bad["stages"][0]["width"] = "wide"
    with pytest.raises(RandomSpaceError, match="build: the image genotype"):
        build(bad, cfg)
    with pytest.raises(RandomSpaceError, match="unknown"):
        mutate(hp, random.Random(0), cfg, keep={"causl"})
    with pytest.raises(RandomSpaceError, match="keep"):
        mutate(hp, random.Random(0), cfg, keep="norm")
