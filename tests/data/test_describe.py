"""describe(): sentences read off the graph name the right family, attention, conv, MLP and norm kinds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mad.data.describe import analyze, describe, human_count
from mad.data.random_space import RandomSpaceConfig, sample
from mad.graph import ArchGraph, TensorSpec

_NORM = {"batch_norm": "BatchNorm", "group_norm": "GroupNorm", "layer_norm": "LayerNorm", "rms_norm": "RMSNorm"}
_ACT = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "hardswish": "hard-swish"}
_ATTN = {"mha": "multi-head attention", "mqa": "multi-query attention", "gqa": "grouped-query attention"}
_MLP = {"swiglu": "SwiGLU MLPs", "gelu": "GELU MLPs", "relu": "ReLU MLPs"}


@pytest.mark.parametrize(
    "n, text", [(0, "0"), (812, "812"), (1000, "1K"), (45_300, "45.3K"), (1_234_567, "1.2M"), (3_400_000_000, "3.4B")]
)
def test_human_count(n, text):
    assert human_count(n) == text


@pytest.mark.parametrize("seed", range(12))
def test_random_transformers_are_described_from_their_structure(seed):
    g = sample(seed, RandomSpaceConfig(modality="sequence", max_params=None, max_flops=None))
    hp = g.meta["hparams"]
    g.meta = {}  # the sentence must come from the graph, not from what the sampler recorded
    text = describe(g)
    family = "decoder-only transformer" if hp["causal"] else "transformer encoder"
    assert text.startswith(f"A {family} over token sequences (vocabulary 256, length 32)"), text
    assert f"with {hp['num_layers']} block" in text and f"hidden size {hp['d_model']}" in text
    assert _ATTN[hp["attention"]] in text
    assert _MLP[hp["mlp"]] in text
    assert f"{hp['placement']}-norm {_NORM[hp['norm']]}" in text
    assert ("learned position embeddings" in text) == (hp["position"] == "learned")
    assert text.endswith(f"; {human_count(g.num_params)} parameters.")
    facts = analyze(g)
    kv = {"mha": hp["heads"], "mqa": 1, "gqa": hp["kv_heads"]}[hp["attention"]]
    assert f"{hp['heads']} query heads, {kv} key/value head" in text or (kv == hp["heads"] and
                                                                          f"({hp['heads']} head" in text)
    assert facts.blocks == hp["num_layers"] and facts.causal == hp["causal"]


@pytest.mark.parametrize("seed", range(12))
def test_random_cnns_are_described_from_their_structure(seed):
    g = sample(seed, RandomSpaceConfig(modality="image", max_params=None, max_flops=None))
    hp = g.meta["hparams"]
    g.meta = {}
    text = describe(g)
    facts = analyze(g)
    has_attn = any(n.op == "scaled_dot_product_attention" for n in g.nodes.values())
    convs = [n for n in g.nodes.values() if n.op == "conv2d"]  # in topological order
    spatial_conv = any(n.params["weight"][2] > 1 and n.attrs["stride"][0] != n.params["weight"][2] for n in convs[1:])
    family = "convolutional network"
    if has_attn:
        family = "hybrid convolution-attention network" if spatial_conv else "vision transformer"
    assert text.startswith(f"A {family} for 3x32x32 images"), text
    assert _NORM[hp["norm"]] in text and f"{_ACT[hp['activation']]}" in text
    assert facts.stages == len(hp["stages"]) and facts.blocks == sum(s["cells"] for s in hp["stages"])
    ops = {n.op for n in g.nodes.values()}
    depthwise = any(n.op == "conv2d" and n.attrs["groups"] > 1 for n in g.nodes.values())
    dilated = any(n.op == "conv2d" and n.attrs["dilation"] != [1, 1] for n in g.nodes.values())
    assert ("depthwise" in text) == depthwise and ("dilated" in text) == dilated
    assert ("max pooling" in text or "max and average pooling" in text) == ("max_pool2d" in ops)
    if family == "vision transformer":
        assert facts.width in {s["width"] for s in hp["stages"]}
    else:
        assert facts.width_range[0] == hp["stages"][0]["width"]
        assert facts.width_range[1] >= hp["stages"][-1]["width"]


def _mlp_graph() -> ArchGraph:
    g = ArchGraph("mlp", inputs=[TensorSpec("x", [4, 20])])
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("linear", [x], params={"weight": [64, 20], "bias": [64]}, scope="fc1")
    h = g.add_node("gelu", [h])
    h = g.add_node("linear", [h], params={"weight": [3, 64], "bias": [3]}, scope="fc2")
    g.set_outputs([h])
    return g


def test_hand_built_mlp_without_shapes():
    g = _mlp_graph()
    text = describe(g)
    assert text == ("An MLP for 20-feature vectors with 2 layer ops of hidden size 20. "
                    "It uses GELU MLPs; 1.5K parameters.")
    assert all(n.shape is None for n in g.nodes.values())  # describe does not write into the graph


def _attention_graph(kv_heads: int, causal: bool) -> ArchGraph:
    """tokens -> embedding -> q/k/v linears -> sdpa (4 query heads) -> linear, built by hand without scopes."""
    g = ArchGraph("attn", inputs=[TensorSpec("ids", [2, 6], "int64", range=[0, 50])])
    ids = g.add_node("input", attrs={"name": "ids"})
    x = g.add_node("embedding", [ids], params={"weight": [50, 32]}, scope="emb")
    heads = []
    for name, n in (("q", 4), ("k", kv_heads), ("v", kv_heads)):
        y = g.add_node("linear", [x], params={"weight": [8 * n, 32]}, attrs={"bias": None}, scope=name)
        y = g.add_node("view", [y], attrs={"size": [2, 6, n, 8]})
        heads.append(g.add_node("transpose", [y], attrs={"dim0": 1, "dim1": 2}))
    attrs = {"attn_mask": None, "is_causal": causal, "enable_gqa": kv_heads != 4}
    a = g.add_node("scaled_dot_product_attention", heads, attrs=attrs)
    a = g.add_node("transpose", [a], attrs={"dim0": 1, "dim1": 2})
    a = g.add_node("reshape", [a], attrs={"shape": [2, 6, 32]})
    g.set_outputs([g.add_node("linear", [a], params={"weight": [50, 32]}, attrs={"bias": None}, scope="out")])
    return g.validate()


@pytest.mark.parametrize(
    "kv, causal, family, kind",
    [
        (4, False, "transformer encoder", "multi-head attention (4 heads)"),
        (1, True, "decoder-only transformer", "multi-query attention (4 query heads, 1 key/value head)"),
        (2, True, "decoder-only transformer", "grouped-query attention (4 query heads, 2 key/value heads)"),
    ],
)
def test_hand_built_attention_kinds(kv, causal, family, kind):
    g = _attention_graph(kv, causal)
    g.to_module()(*g.example_inputs())  # the graph is real
    text = describe(g)
    assert text.startswith(f"A {family} over token sequences (vocabulary 50, length 6) with 5 layer ops"), text
    assert kind in text


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16), nn.Conv2d(16, 16, 1),
                          nn.BatchNorm2d(16), nn.Hardswish())
            for _ in range(3)
        )
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = x + b(x)
        return self.fc(x.mean((2, 3)))


class _Block(nn.Module):
    def __init__(self, d: int = 32, heads: int = 4, kv: int = 2) -> None:
        super().__init__()
        self.heads, self.kv, self.hd = heads, kv, d // heads
        self.n1, self.n2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, kv * self.hd, bias=False)
        self.v = nn.Linear(d, kv * self.hd, bias=False)
        self.o = nn.Linear(d, d, bias=False)
        self.gate, self.up = nn.Linear(d, 64, bias=False), nn.Linear(d, 64, bias=False)
        self.down = nn.Linear(64, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.n1(x)
        q = self.q(h).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
        h = self.n2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class _LM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.layers = nn.ModuleList(_Block() for _ in range(3))
        self.norm = nn.RMSNorm(32)
        self.head = nn.Linear(32, 100, bias=False)

    def forward(self, ids):
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x))


def test_captured_modules():
    from mad.code2graph import from_module

    cnn = describe(from_module(_ConvNet(), (torch.randn(2, 1, 28, 28),)))
    assert cnn.startswith("A convolutional network for 1x28x28 images with 3 blocks, 16 channels wide."), cnn
    for word in ("depthwise", "dilated", "BatchNorm", "hard-swish", "1x1 and 3x3 convolutions"):
        assert word in cnn, (word, cnn)
    lm = describe(from_module(_LM(), (torch.randint(0, 100, (2, 12)),)))
    assert lm.startswith("A decoder-only transformer over token sequences"), lm
    for words in ("3 blocks of hidden size 32", "grouped-query attention (4 query heads, 2 key/value heads)",
                  "SwiGLU MLPs", "pre-norm RMSNorm"):
        assert words in lm, (words, lm)


@pytest.mark.parametrize(
    "model_type, words",
    [
        ("bert", ["transformer encoder", "post-norm LayerNorm", "GELU MLPs", "multi-head attention"]),
        ("llama", ["decoder-only transformer", "pre-norm RMSNorm", "SwiGLU MLPs", "rotary position"]),
        ("gpt2", ["decoder-only transformer", "pre-norm LayerNorm", "learned position embeddings"]),
        ("mistral", ["grouped-query attention"]),
        ("t5", ["encoder-decoder transformer", "encoder and", "decoder blocks"]),
        ("vit", ["vision transformer", "patchify convolution"]),
        ("resnet", ["convolutional network", "BatchNorm", "ReLU", "stages"]),
    ],
)
def test_captured_hf_models(model_type, words):
    from mad.code2graph import from_hf

    text = describe(from_hf(model_type))
    for w in words:
        assert w in text, (w, text)
