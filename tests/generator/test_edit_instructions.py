"""Edit instructions: sentences parse to the pass and arguments they ask for, and apply to graphs."""

from __future__ import annotations

import pytest

from mad.data.random_space import RandomSpaceConfig, sample
from mad.generator.edit import EDITS, EditSpec, apply_edit, parse_instruction
from mad.graph import GraphBuilder, GraphError
from mad.graph.passes import EDIT_PASSES, block_families

CASES = [
    ("add LoRA of rank 8 to the last layer", "add_lora", {"target": "last", "rank": 8}),
    ("add lora r=4 to encoder.layer.1", "add_lora", {"target": "encoder.layer.1", "rank": 4}),
    ("Add a rank-16 LoRA adapter with alpha 32 to `blocks.0.attn`", "add_lora",
     {"target": "blocks.0.attn", "rank": 16, "alpha": 32.0}),
    ("put LoRA on all linear layers", "add_lora", {"target": "all"}),
    ("LoRA (r = 2) on layer 1", "add_lora", {"target": "layer:1", "rank": 2}),
    ("add LoRA adapters (rank 8) to the attention of layers.0", "add_lora", {"target": "layers.0", "rank": 8}),
    ("replace GELU with SwiGLU", "replace_activation", {"old": "gelu", "new": "swiglu"}),
    ("swap relu for gelu", "replace_activation", {"old": "relu", "new": "gelu"}),
    ("Use SiLU instead of ReLU.", "replace_activation", {"old": "relu", "new": "silu"}),
    ("change the activations from tanh to hard-swish", "replace_activation", {"old": "tanh", "new": "hardswish"}),
    ("switch to GeGLU", "replace_activation", {"old": None, "new": "geglu"}),
    ("use grouped-query attention with 2 key-value heads", "set_kv_heads", {"n": 2}),
    ("GQA with four KV heads", "set_kv_heads", {"n": 4}),
    ("use multi-query attention", "set_kv_heads", {"n": 1}),
    ("reduce the key/value heads to 2", "set_kv_heads", {"n": 2}),
    ("use grouped-query attention", "set_kv_heads", {"n": "grouped"}),
    ("go back to multi-head attention", "set_kv_heads", {"n": "all"}),
    ("make it 2x deeper", "deepen", {"factor": 2}),
    ("double the depth", "deepen", {"factor": 2}),
    ("3 times deeper", "deepen", {"factor": 3}),
    ("make the network twice as deep", "deepen", {"factor": 2}),
    ("triple the number of layers", "deepen", {"factor": 3}),
    ("increase the depth by 4x", "deepen", {"factor": 4}),
    ("make it deeper", "deepen", {"factor": 2}),
    ("deepen the model by a factor of 3", "deepen", {"factor": 3}),
    ("use 6 layers", "set_depth", {"n": 6}),
    ("set the depth to 4", "set_depth", {"n": 4}),
    ("make it three blocks deep", "set_depth", {"n": 3}),
    ("change the number of layers to 2", "set_depth", {"n": 2}),
]


@pytest.mark.parametrize("text,name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_parse_instruction(text, name, kwargs):
    assert parse_instruction(text) == EditSpec(name, kwargs)


@pytest.mark.parametrize("text", ["", "   ", "a small CNN for MNIST under 100k parameters",
                                  "encoder-only transformer with rotary attention", "gelu", "make it wider"])
def test_unrecognised_text_gives_none(text):
    assert parse_instruction(text) is None


def test_every_pass_is_dispatchable():
    assert set(EDITS) == set(EDIT_PASSES)
    with pytest.raises(GraphError, match="unknown edit 'prune'"):
        apply_edit(sample(0, RandomSpaceConfig(modality="sequence")), EditSpec("prune"))


def _transformer(seed: int = 0):
    """A random transformer with 4 query heads and a GELU MLP."""
    cfg = RandomSpaceConfig(modality="sequence", d_models=(64,), head_dims=(16,), num_layers=(2, 2))
    for s in range(seed, seed + 50):
        g = sample(s, cfg)
        if g.meta["hparams"]["mlp"] == "gelu" and g.meta["hparams"]["attention"] == "mha":
            return g
    raise AssertionError("no GELU MHA transformer in 50 seeds")


def test_instructions_apply_to_a_random_transformer():
    g = _transformer()
    lora = apply_edit(g, parse_instruction("add LoRA of rank 4 to layer 1"))
    assert all(n.scope.startswith("blocks.1.") for n in lora if n.scope.endswith("lora_A"))
    swiglu = apply_edit(g, parse_instruction("replace GELU with SwiGLU"))
    assert swiglu.num_params > g.num_params and not any(n.op == "gelu" for n in swiglu)
    back = apply_edit(swiglu, parse_instruction("switch to GELU"))  # the current activation is the gated one
    assert back.wl_hash() == g.wl_hash()
    gqa = apply_edit(g, parse_instruction("use grouped-query attention"))
    assert gqa.meta["edits"][-1]["kv_heads"] == 2
    mha = apply_edit(apply_edit(g, parse_instruction("use MQA")), parse_instruction("back to multi-head attention"))
    assert mha.num_params == g.num_params
    deep = apply_edit(g, parse_instruction("double the depth"))
    assert block_families(deep) == {"blocks.": [0, 1, 2, 3]}
    three = apply_edit(g, parse_instruction("use 3 layers"))
    assert block_families(three) == {"blocks.": [0, 1, 2]}
    # a graph without module paths (as generated) has its layers found first
    plain = g.copy()
    for n in plain.nodes.values():
        n.scope, n.param_names = "", {}
    five = apply_edit(plain, parse_instruction("set the depth to 5"))
    assert block_families(five) == {"layers.": [0, 1, 2, 3, 4]} and not block_families(plain)
    for h in (lora, swiglu, gqa, deep, three, five):
        h.validate()
        out = h.to_module()(*h.example_inputs())
        out.sum().backward()


def test_graph_dependent_targets_fail_clearly():
    b = GraphBuilder("mlp")
    x = b.input("x", ("B", 4))
    b.output(b.op("linear", b.op("relu", b.op("linear", x, out_features=8, scope="fc1")), out_features=2, scope="fc2"))
    g = b.build()
    with pytest.raises(GraphError, match="no numbered block 3"):
        apply_edit(g, parse_instruction("add LoRA to layer 3"))
    with pytest.raises(GraphError, match="no scaled_dot_product_attention"):
        apply_edit(g, parse_instruction("use grouped-query attention"))
    with pytest.raises(GraphError, match="no repeated blocks"):
        apply_edit(g, parse_instruction("make it 2x deeper"))
    assert apply_edit(g, parse_instruction("switch to tanh")).meta["edits"][-1]["old"] == "relu"


def test_an_attention_cell_by_instruction():
    assert parse_instruction("add self-attention") == EditSpec("add_attention", {})
    assert parse_instruction("make it a hybrid") == EditSpec("add_attention", {})
    g = sample(5, RandomSpaceConfig(modality="image", image_shape=(1, 28, 28)))
    h = apply_edit(g, parse_instruction("add a multi-head self-attention cell"))
    assert sum(n.op == "scaled_dot_product_attention" for n in h) == 1
    h.to_module()(*h.example_inputs()).sum().backward()


@pytest.mark.parametrize("text", ["use rotary position embeddings", "add RoPE", "switch to rotary positions"])
def test_rotary_positions_by_instruction(text):
    assert parse_instruction(text) == EditSpec("add_rotary", {})
    g = sample(2, RandomSpaceConfig(modality="sequence"))
    if {"sin", "cos"} <= {n.op for n in g}:
        pytest.skip("this random transformer already has rotary positions")
    h = apply_edit(g, parse_instruction(text))
    assert {"sin", "cos"} <= {n.op for n in h} and h.num_params == g.num_params
    assert parse_instruction("rotate the image by 90 degrees") is None


def test_a_residual_instruction_parses_to_the_residual_edit():
    assert parse_instruction("add a residual connection") == EditSpec("add_residual", {})
    assert parse_instruction("Add skip connections") == EditSpec("add_residual", {})
    assert parse_instruction("a residual network for MNIST") is None
