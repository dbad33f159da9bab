"""Prompt constraints: parsing, a graph's own constraints, checking, paraphrases and the benchmark prompt set."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from mad.data import load_default
from mad.data.describe import analyze
from mad.generator.constraints import (
    ACTIVATIONS,
    FAMILIES,
    Constraints,
    adherence,
    check,
    constraints_of,
    traits_of,
)
from mad.generator.paraphrase import format_count, nice_ceiling
from mad.generator.prompt import PROMPTS, parse_prompt, paraphrase
from mad.graph import ArchGraph

N_GRAPHS = 200


@dataclasses.dataclass
class Item:
    id: str
    graph: ArchGraph
    flops: int
    description: str
    traits: object
    truth: Constraints


@pytest.fixture(scope="module")
def items() -> list[Item]:
    """~200 dataset graphs spread over the captured and the random part, with their traits and true constraints."""
    train = load_default()["train"]
    step = max(1, len(train) // N_GRAPHS)
    rows = train.select(range(0, len(train), step)).select_columns(["id", "graph", "flops", "description"])
    out = []
    for r in rows:
        g = ArchGraph.from_json(r["graph"])
        t = traits_of(g)
        out.append(Item(r["id"], g, r["flops"], r["description"], t, constraints_of(g, flops=r["flops"], traits=t)))
    return out


# --------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("entry", PROMPTS, ids=[p.name for p in PROMPTS])
def test_benchmark_prompt_parses_to_its_expected_constraints(entry):
    assert parse_prompt(entry.text) == entry.expected


def test_benchmark_prompt_set_shape():
    assert 20 <= len(PROMPTS) <= 30
    assert len({p.name for p in PROMPTS}) == len(PROMPTS)
    families = {p.expected.family for p in PROMPTS}
    assert {"cnn", "hybrid", "vit", "encoder-only", "decoder-only"} <= families
    shapes = {p.expected.input_shape for p in PROMPTS}
    assert {(1, 8, 8), (1, 28, 28), (3, 32, 32)} <= shapes
    for p in PROMPTS:
        assert len(p.expected.set_fields()) >= 3, p.name  # every prompt is checkable on several counts


def test_benchmark_prompts_ask_only_for_what_the_dataset_holds(items):
    """Every component value a benchmark prompt asks for is met by some dataset graph."""
    component_fields = ("family", "attention", "norm", "placement", "mlp", "position", "residual", "downsampling")
    for p in PROMPTS:
        for name in component_fields:
            value = getattr(p.expected, name)
            if value is not None:
                probe = Constraints(**{name: value})
                assert any(check(it.graph, probe, traits=it.traits)[name] for it in items), (p.name, name, value)
        for name in ("activations", "conv_kinds"):
            for value in getattr(p.expected, name) or ():
                probe = Constraints(**{name: {value}})
                assert any(check(it.graph, probe, traits=it.traits)[name] for it in items), (p.name, name, value)


@pytest.mark.parametrize("text, field, value", [
    ("under 100k parameters", "max_params", 100_000),
    ("under 2M params", "max_params", 2_000_000),
    ("a 1.5B parameter model", "max_params", 1_500_000_000),
    ("at most 100,000 params", "max_params", 100_000),
    ("parameter budget of 250k", "max_params", 250_000),
    ("under 5 MFLOPs", "max_flops", 5_000_000),
    ("at most 500M FLOPs", "max_flops", 500_000_000),
    ("below 0.5 GFLOPs", "max_flops", 500_000_000),
    ("inputs of 1x28x28", "input_shape", (1, 28, 28)),
    ("28x28x1 images", "input_shape", (1, 28, 28)),
    ("28x28 grayscale images", "input_shape", (1, 28, 28)),
    ("RGB 32x32 images", "input_shape", (3, 32, 32)),
    ("32 by 32 colour photos", "input_shape", (3, 32, 32)),
    ("CIFAR-100", "input_shape", (3, 32, 32)),
    ("CIFAR-100", "num_classes", 100),
    ("MNIST", "num_classes", 10),
    ("10 classes", "num_classes", 10),
    ("ten classes", "num_classes", 10),
    ("a 5-way classifier", "num_classes", 5),
    ("vocabulary 128", "vocab_size", 128),
    ("vocab of 256", "vocab_size", 256),
    ("a 32k-token vocabulary", "vocab_size", 32_000),
    ("byte-level text", "vocab_size", 256),
    ("4 heads", "num_heads", 4),
    ("8 attention heads", "num_heads", 8),
    ("6 layers", "depth", 6),
    ("six layers", "depth", 6),
    ("a 12-layer transformer", "depth", 12),
    ("hidden size 128", "hidden_size", 128),
    ("d_model=256", "hidden_size", 256),
    ("sequence length 64 for text", "input_shape", (64,)),
])
def test_parse_numbers_with_units(text, field, value):
    assert getattr(parse_prompt(text), field) == value


@pytest.mark.parametrize("text, field, value", [
    ("with RMSNorm", "norm", "rms_norm"),
    ("with layernorm", "norm", "layer_norm"),
    ("batchnorm after each conv", "norm", "batch_norm"),
    ("GroupNorm", "norm", "group_norm"),
    ("without normalization", "norm", "none"),
    ("pre-norm blocks", "placement", "pre"),
    ("GELU", "activations", {"gelu"}),
    ("swish activations", "activations", {"silu"}),
    ("SiLU", "activations", {"silu"}),
    ("hard-swish", "activations", {"hardswish"}),
    ("ReLU and GELU", "activations", {"relu", "gelu"}),
    ("leaky ReLU", "activations", {"leaky_relu"}),
    ("SwiGLU MLPs", "mlp", "swiglu"),
    ("rotary attention", "position", "rotary"),
    ("RoPE", "position", "rotary"),
    ("learned positional embeddings", "position", "learned"),
    ("with GQA", "attention", "grouped-query"),
    ("multi-query attention", "attention", "multi-query"),
    ("a CNN with self-attention", "attention", "any"),
    ("an attention-free CNN", "attention", "none"),
    ("with skip connections", "residual", True),
    ("residual blocks", "residual", True),
    ("without skip connections", "residual", False),
    ("no residual connections", "residual", False),
    ("strided convolutions", "downsampling", True),
    ("max pooling", "downsampling", True),
    ("no pooling", "downsampling", False),
    ("depthwise convolutions", "conv_kinds", {"depthwise"}),
    ("dilated convs", "conv_kinds", {"dilated"}),
    ("a ViT", "family", "vit"),
    ("GPT-style LM", "family", "decoder-only"),
    ("BERT-style encoder", "family", "encoder-only"),
    ("small convnet", "family", "cnn"),
    ("a CNN-transformer hybrid", "family", "hybrid"),
    ("an LSTM", "family", "rnn"),
    ("transformer for text", "modality", "text"),
    ("classifier for 28x28 digits", "modality", "image"),
])
def test_parse_component_words_and_synonyms(text, field, value):
    got = getattr(parse_prompt(text), field)
    assert (set(got) if isinstance(got, frozenset) else got) == value


def test_parse_leaves_unmentioned_fields_unconstrained():
    assert parse_prompt("") == Constraints()
    c = parse_prompt("CNN with global average pooling and swish")
    assert c.downsampling is None and c.activations == {"silu"}  # global pooling is not downsampling
    assert parse_prompt("a CNN").set_fields() == ["family"]


def test_overrides_win_over_the_text():
    text = "CNN for MNIST, 10 classes, under 100k params and 5 MFLOPs, vocabulary 64"
    c = parse_prompt(text, input_shape=(3, 64, 64), num_classes=7, vocab_size=99, max_params=1234, max_flops=5678)
    assert (c.input_shape, c.num_classes, c.vocab_size, c.max_params, c.max_flops) == ((3, 64, 64), 7, 99, 1234, 5678)
    assert c.family == "cnn"
    assert parse_prompt(text, num_classes=None).num_classes == 10  # None means "not given"
    assert parse_prompt("anything", input_shape=[1, 8, 8]).modality == "image"
    with pytest.raises(TypeError, match="num_clases"):
        parse_prompt(text, num_clases=3)


# --------------------------------------------------------------------------- Constraints
def test_constraints_dict_round_trip_and_validation(items):
    for it in items[:40]:
        d = it.truth.to_dict()
        assert Constraints.from_dict(json.loads(json.dumps(d))) == it.truth
    for p in PROMPTS:
        assert Constraints.from_dict(p.expected.to_dict()) == p.expected
    with pytest.raises(ValueError, match="norm"):
        Constraints(norm="weight_norm")
    with pytest.raises(ValueError, match="activations"):
        Constraints(activations={"gelu", "swishy"})
    with pytest.raises(ValueError, match="colour"):
        Constraints.from_dict({"colour": "red"})
    assert set(FAMILIES) >= {"cnn", "vit", "decoder-only", "encoder-only"} and "gelu" in ACTIVATIONS


def test_graph_meets_its_own_constraints(items):
    """The invariant that makes (description, graph) pairs usable as conditioning data."""
    for it in items:
        result = check(it.graph, it.truth, traits=it.traits, flops=it.flops)
        assert set(result) == set(it.truth.set_fields())
        assert all(result.values()), (it.id, {k: v for k, v in result.items() if not v})
        assert adherence(it.graph, it.truth, traits=it.traits, flops=it.flops) == 1.0


def test_constraints_of_reads_the_graph(items):
    kinds = {it.truth.family for it in items}
    assert {"cnn", "decoder-only", "encoder-only"} <= kinds
    for it in items:
        c = it.truth
        assert c.max_params == it.graph.num_params and c.max_flops == it.flops
        if it.id.startswith("random/") and c.modality == "image":
            assert (c.input_shape, c.num_classes) == ((3, 32, 32), 10)
            assert c.family in ("cnn", "hybrid", "vit") and c.downsampling is not None  # patchify + attention: a ViT
        if it.id.startswith("random/") and c.modality == "text":
            assert c.vocab_size == 256 and c.input_shape == ("T",) and c.family in ("encoder-only", "decoder-only")
            assert c.attention in ("multi-head", "grouped-query", "multi-query") and c.num_heads >= 1
            assert c.residual is True
        if c.attention == "none":
            assert c.num_heads is None
    some = [it for it in items if it.id.startswith("random/")][:2]
    for it in some:  # without a known FLOPs count one interpreter walk gives the dataset's figure
        assert constraints_of(it.graph).max_flops == it.flops


def _violations(c: Constraints, t) -> dict[str, Constraints]:
    """One constraint set per field that the graph (true constraints ``c``, traits ``t``) cannot meet."""
    other = {"image": "text", "text": "image"}
    v = {
        "max_params": dataclasses.replace(c, max_params=c.max_params - 1),
        "max_flops": dataclasses.replace(c, max_flops=c.max_flops - 1),
        "family": dataclasses.replace(c, family=next(f for f in ("rnn", "mixer") if f not in t.families)),
        "norm": dataclasses.replace(c, norm=next(n for n in ("instance_norm", "group_norm", "batch_norm")
                                                 if n not in t.norms)),
        "activations": dataclasses.replace(c, activations=(c.activations or frozenset()) | {"selu"}),
        "residual": dataclasses.replace(c, residual=not c.residual),
        "attention": dataclasses.replace(c, attention="multi-query" if c.attention != "multi-query" else "none"),
    }
    if c.modality in other:
        v["modality"] = dataclasses.replace(c, modality=other[c.modality])
    if c.num_classes is not None:
        v["num_classes"] = dataclasses.replace(c, num_classes=c.num_classes + 1)
    if c.vocab_size is not None:
        v["vocab_size"] = dataclasses.replace(c, vocab_size=c.vocab_size + 1)
    if c.input_shape is not None:
        v["input_shape"] = dataclasses.replace(c, input_shape=c.input_shape + (1,))
    if c.downsampling is not None:
        v["downsampling"] = dataclasses.replace(c, downsampling=not c.downsampling)
    for name in ("depth", "hidden_size", "num_heads"):
        if getattr(c, name) is not None:
            v[name] = dataclasses.replace(c, **{name: getattr(c, name) + 1})
    if c.position is not None:
        v["position"] = dataclasses.replace(c, position="rotary" if c.position != "rotary" else "learned")
    if c.mlp is not None:
        v["mlp"] = dataclasses.replace(c, mlp="reglu" if c.mlp != "reglu" else "plain")
    return v


def test_check_fails_exactly_the_violated_constraint(items):
    for it in items[::4]:
        for name, bad in _violations(it.truth, it.traits).items():
            result = check(it.graph, bad, traits=it.traits, flops=it.flops)
            failed = [k for k, ok in result.items() if not ok]
            assert failed == [name], (it.id, name, failed)
            assert adherence(it.graph, bad, traits=it.traits, flops=it.flops) == pytest.approx(
                1 - 1 / len(result))


def test_check_rules_for_loose_values(items):
    cnn = next(it for it in items if it.truth.family == "cnn" and it.truth.attention == "none")
    dec = next(it for it in items if it.truth.family == "decoder-only")
    assert check(cnn.graph, Constraints()) == {} and adherence(cnn.graph, Constraints()) == 1.0
    assert check(dec.graph, Constraints(family="transformer", attention="any"), traits=dec.traits) == {
        "family": True, "attention": True}
    assert check(cnn.graph, Constraints(attention="any"), traits=cnn.traits) == {"attention": False}
    free = dataclasses.replace(cnn.truth, input_shape=("C", 32, 32))  # a symbolic entry matches any size
    assert check(cnn.graph, free, traits=cnn.traits, flops=cnn.flops)["input_shape"]


# --------------------------------------------------------------------------- paraphrase
def test_paraphrase_is_deterministic_and_varied(items):
    it = next(i for i in items if i.truth.family == "decoder-only")
    a = [paraphrase(it.description, it.truth, random.Random(s)) for s in range(40)]
    b = [paraphrase(it.description, it.truth, random.Random(s)) for s in range(40)]
    assert a == b
    assert len(set(a)) >= 35
    starts = {p.split(" ")[0] for p in a}
    assert len(starts) >= 5  # several templates, not one sentence with swapped words
    assert any(p.startswith("Requirements:\n- ") for p in a)


def test_paraphrase_states_only_constraints_the_graph_meets(items):
    """Parsed back, a paraphrase asks for nothing the graph lacks (budgets are rounded up, never down)."""
    rng = random.Random(0)
    scores, stated = [], 0
    for it in items[::2]:
        for facts_or_truth in (it.truth, it.truth, it.traits.facts):
            text = paraphrase(it.description, facts_or_truth, rng)
            parsed = parse_prompt(text)
            stated += len(parsed.set_fields())
            if parsed.max_params is not None:
                assert parsed.max_params >= it.graph.num_params, text
            scores.append(adherence(it.graph, parsed, traits=it.traits, flops=it.flops))
    assert stated / len(scores) >= 3  # prompts say something
    assert sum(scores) / len(scores) >= 0.99
    assert sum(s == 1.0 for s in scores) / len(scores) >= 0.97


def test_paraphrase_accepts_facts_and_rejects_other_inputs(items):
    it = items[0]
    text = paraphrase(it.description, analyze(it.graph), random.Random(3))
    assert isinstance(text, str) and text
    with pytest.raises(TypeError, match="GraphFacts or Constraints"):
        paraphrase(it.description, {"family": "cnn"}, random.Random(0))


@pytest.mark.parametrize("n", [1, 7, 999, 1000, 1001, 81_234, 299_999, 1_234_567, 7_654_321_000])
def test_nice_ceiling_rounds_up_to_a_round_number(n):
    up = nice_ceiling(n)
    assert n <= up <= n * 4 / 3 + 1  # the widest step of the ladder is 1.5 -> 2
    assert nice_ceiling(n, steps=2) >= nice_ceiling(n, steps=1) >= up
    rng = random.Random(n)
    for _ in range(5):
        assert parse_prompt(f"under {format_count(up, rng)} parameters").max_params == up
