"""Architecture edits (LoRA, activations, key/value heads, depth): valid, runnable, and equal where they should be."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mad.data.random_space import RandomSpaceConfig, sample
from mad.data.random_space import layers as L
from mad.graph import GraphBuilder, GraphError
from mad.graph.passes import add_lora, block_families, deepen, replace_activation, set_depth, set_kv_heads


def _mlp(act: str = "relu"):
    b = GraphBuilder("mlp")
    x = b.input("x", ("B", 6))
    h = b.op("linear", x, out_features=8, scope="fc1")
    r = b.op(act, h, scope="act")
    y = b.op("linear", r, out_features=3, scope="fc2")
    b.output(y)
    return b.build()


def _transformer(layers: int = 2, heads: int = 4, kv_heads: int = 4, fused: bool = False, mlp: str = "gelu"):
    """Pre-norm transformer LM; each block is the identity when its o_proj and fc2 are zero."""
    b = GraphBuilder("tf", dims={"B": 2, "T": 8})
    ids = b.input("ids", ("B", "T"), dtype="int64", range=[0, 30])
    x = b.op("embedding", ids, num_embeddings=30, embedding_dim=32, scope="emb")
    for i in range(layers):
        s = f"layers.{i}"
        h = L.seq_norm(b, x, "layer_norm", f"{s}.norm1")
        x = b.op("add", x, L.attention(b, h, heads, kv_heads, 32 // heads, f"{s}.attn", causal=True, fused=fused),
                 scope=s)
        h = L.seq_norm(b, x, "layer_norm", f"{s}.norm2")
        h = L.act(b, L.linear(b, h, 64, f"{s}.mlp.fc1"), mlp, f"{s}.mlp.act")
        x = b.op("add", x, L.linear(b, h, 32, f"{s}.mlp.fc2"), scope=s)
    b.output(L.linear(b, x, 30, "head", bias=False))
    return b.build()


def _first(out):
    """The first tensor of a model output (a tensor, tuple or dict)."""
    return out if torch.is_tensor(out) else next(iter(out.values() if isinstance(out, dict) else out))


def _runs(g):
    """Forward and backward work; returns the (first) output."""
    model = g.to_module()
    out = _first(model(*g.example_inputs(seed=0)))
    out.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    return out


def _same_params(src, dst, rename=lambda k: k):
    """Load ``src``'s parameters into ``dst`` under ``rename``d names; returns the names not loaded."""
    sd = {rename(k): v for k, v in src.state_dict().items()}
    missing, _ = dst.load_state_dict(sd, strict=False)
    return missing


# --------------------------------------------------------------------------- LoRA
def test_lora_on_the_last_layer_is_exact_low_rank_update():
    g = _mlp()
    h = add_lora(g, rank=2, alpha=4)
    assert g.wl_hash() == _mlp().wl_hash()  # input untouched
    info = h.meta["edits"][-1]
    assert info["targets"] == ["linear_3"] and info["zero_init"] == ["fc2.lora_B.weight"]
    assert h.num_params == g.num_params + 2 * 8 + 3 * 2
    base, lora = g.to_module(), h.to_module()
    assert sorted(_same_params(base, lora)) == ["fc2.lora_A.weight", "fc2.lora_B.weight"]
    x = torch.randn(5, 6)
    with torch.no_grad():
        lora.get_parameter("fc2.lora_B.weight").zero_()
        assert torch.equal(lora(x), base(x))  # B = 0: the original model
        lora.get_parameter("fc2.lora_B.weight").normal_()
        a, bw = lora.get_parameter("fc2.lora_A.weight"), lora.get_parameter("fc2.lora_B.weight")
        hidden = torch.relu(base.fc1(x))
        assert torch.allclose(lora(x), base(x) + (4 / 2) * hidden @ a.T @ bw.T, atol=1e-5)
    _runs(h)


def test_lora_on_a_scope_adapts_every_linear_in_it():
    g = sample(0, RandomSpaceConfig(modality="sequence"))
    linears = [n.scope for n in g if n.op == "linear" and n.scope.startswith("blocks.0.")]
    h = add_lora(g, target="blocks.0", rank=4)
    assert sorted(n.scope[: -len(".lora_A")] for n in h if n.scope.endswith(".lora_A")) == sorted(linears)
    assert not any(n.op == "mul" and n.attrs.get("other") is not None for n in h if n.scope in linears)  # alpha=rank
    base, lora = g.to_module(), h.to_module()
    _same_params(base, lora)
    with torch.no_grad():
        for name in h.meta["edits"][-1]["zero_init"]:
            lora.get_parameter(name).zero_()
        ids = g.example_inputs(seed=1)
        assert torch.allclose(lora(*ids), base(*ids), atol=1e-6)
    _runs(h)


def test_lora_errors_name_the_target():
    g = _mlp()
    with pytest.raises(GraphError, match="node 'relu_2' is a 'relu'"):
        add_lora(g, target="relu_2")
    with pytest.raises(GraphError, match="'decoder' is neither"):
        add_lora(g, target="decoder")
    with pytest.raises(GraphError, match="rank must be an int >= 1"):
        add_lora(g, rank=0)


# --------------------------------------------------------------------------- activations
def test_replace_activation_plain_changes_the_function_only():
    g = _mlp("relu")
    h = replace_activation(g, "ReLU", "gelu_tanh")
    assert [n.op for n in h].count("relu") == 0 and h.nodes["relu_2"].attrs == {"approximate": "tanh"}
    base, new = g.to_module(), h.to_module()
    assert _same_params(base, new) == []
    x = torch.randn(4, 6)
    assert torch.allclose(new(x), base.fc2(F.gelu(base.fc1(x), approximate="tanh")), atol=1e-6)


def test_swiglu_gates_the_linear_and_inverts_exactly():
    g = _mlp("gelu")
    h = replace_activation(g, "gelu", "swiglu")
    assert h.num_params == g.num_params + 8 * 6 + 8
    base, new = g.to_module(), h.to_module()
    assert _same_params(base, new) == ["fc1_gate.weight", "fc1_gate.bias"]
    x = torch.randn(4, 6)
    gate = new.get_submodule("fc1_gate")
    assert torch.allclose(new(x), base.fc2(F.silu(base.fc1(x)) * gate(x)), atol=1e-6)
    back = replace_activation(h, "swiglu", "gelu")
    assert back.wl_hash() == g.wl_hash() and back.num_params == g.num_params
    geglu = replace_activation(h, "swiglu", "geglu")
    assert sum(n.op == "gelu" for n in geglu) == 1 and sum(n.op == "silu" for n in geglu) == 0
    _runs(geglu)


@pytest.mark.parametrize("seed", range(4))
def test_replace_activation_on_random_transformers(seed):
    g = sample(seed, RandomSpaceConfig(modality="sequence"))
    old = g.meta["hparams"]["mlp"]
    new = "relu" if old != "relu" else "swiglu"
    h = replace_activation(g, old, new)
    layers = g.meta["hparams"]["num_layers"]
    assert len(h.meta["edits"][-1]["replaced"]) == layers
    assert h.meta["num_params"] == h.num_params
    _runs(h)


def test_gated_activation_needs_a_linear_input():
    g = sample(1, RandomSpaceConfig(modality="image"))
    act = g.meta["hparams"]["activation"]
    before = g.to_json()
    with pytest.raises(GraphError, match=r"activation node '\w+' \(scope 'stem.act'\) reads .* not a linear layer"):
        replace_activation(g, act, "swiglu")
    assert g.to_json() == before
    with pytest.raises(GraphError, match="has no 'mish' activation"):
        replace_activation(g, "mish", "relu")
    with pytest.raises(GraphError, match="unknown activation 'sparkle'"):
        replace_activation(g, act, "sparkle")


# --------------------------------------------------------------------------- key/value heads
def _kv_rename(heads: int, n: int, head_dim: int, fused: bool):
    """Map GQA parameters onto an MHA model: each key/value head repeated for its query-head group."""

    def rep(w):
        return w.reshape(n, head_dim, *w.shape[1:]).repeat_interleave(heads // n, 0).reshape(-1, *w.shape[1:])

    def convert(name, w):
        if fused and "qkv_proj" in name:
            q, k, v = w.split([heads * head_dim, n * head_dim, n * head_dim])
            return torch.cat([q, rep(k), rep(v)])
        if not fused and ("k_proj" in name or "v_proj" in name):
            return rep(w)
        return w

    return convert


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("n", [1, 2])
def test_gqa_equals_mha_with_repeated_key_value_heads(fused, n):
    g = _transformer(heads=4, kv_heads=4, fused=fused)
    h = set_kv_heads(g, n)
    head_dim = 8
    saved = 2 * 2 * (4 - n) * head_dim * (32 + 1)  # 2 layers x (k, v) x removed heads x (weight + bias)
    assert g.num_params - h.num_params == saved
    sdpa = [x for x in h if x.op == "scaled_dot_product_attention"]
    assert len(sdpa) == 2 and all(x.attrs["enable_gqa"] for x in sdpa)
    gqa, mha = h.to_module(), g.to_module()
    convert = _kv_rename(4, n, head_dim, fused)
    mha.load_state_dict({k: convert(k, v) for k, v in gqa.state_dict().items()})
    ids = g.example_inputs(seed=2)
    with torch.no_grad():
        assert torch.allclose(gqa(*ids), mha(*ids), atol=1e-5)
    back = set_kv_heads(h, 4)
    assert back.num_params == g.num_params and not any(x.attrs.get("enable_gqa") for x in back)
    _runs(h)


@pytest.mark.parametrize("seed", range(4))
def test_set_kv_heads_on_random_transformers(seed):
    g = sample(seed, RandomSpaceConfig(modality="sequence"))
    h = set_kv_heads(g, 1)
    k = [x for x in h if x.op == "scaled_dot_product_attention"]
    assert all(h.nodes[h.predecessors(x.id)[1]].shape[1] == 1 for x in k)
    assert len(k) == g.meta["hparams"]["num_layers"]
    _runs(h)


def test_set_kv_heads_rejects_what_it_cannot_do():
    g = _transformer(heads=4)
    with pytest.raises(GraphError, match="has 4 query heads, which 3 key/value heads do not divide"):
        set_kv_heads(g, 3)
    with pytest.raises(GraphError, match="no scaled_dot_product_attention node"):
        set_kv_heads(_mlp(), 1)
    b = GraphBuilder("raw")  # keys made by a matmul: not a projection
    x = b.input("x", ("B", 4, 6, 8))
    w = b.parameter("w", [8, 8])
    k = b.op("matmul", x, w)
    b.output(b.op("scaled_dot_product_attention", x, k, k, attn_mask=None))
    with pytest.raises(GraphError, match=r"the key input is not recognised at node 'matmul_\d+'"):
        set_kv_heads(b.build(), 2)


# --------------------------------------------------------------------------- depth
def test_deepen_interleaves_copies_that_can_be_identities():
    g = _transformer(layers=2)
    h = deepen(g, 2)
    assert block_families(g) == {"layers.": [0, 1]} and block_families(h) == {"layers.": [0, 1, 2, 3]}
    per_layer = sum(n.num_params for n in g if n.scope.startswith("layers.0."))
    assert h.num_params == g.num_params + 2 * per_layer
    # old layers.i is new layers.2i; zero the copies' residual branches and the outputs agree
    base, deep = g.to_module(), h.to_module()

    def rename(k):
        if k.startswith("layers."):
            i, rest = k.split(".", 2)[1:]
            return f"layers.{2 * int(i)}.{rest}"
        return k

    missing = _same_params(base, deep, rename)
    assert missing and all(m.startswith(("layers.1.", "layers.3.")) for m in missing)
    ids = g.example_inputs(seed=3)
    with torch.no_grad():
        for m in missing:
            if "o_proj" in m or "fc2" in m:
                deep.get_parameter(m).zero_()
        assert torch.allclose(deep(*ids), base(*ids), atol=1e-5)
        deep.get_parameter("layers.1.mlp.fc2.bias").fill_(0.1)
        assert not torch.allclose(deep(*ids), base(*ids), atol=1e-5)
    _runs(h)


def test_deepen_cnn_repeats_cells_inside_stages():
    g = sample(2, RandomSpaceConfig(modality="image"))
    fams = block_families(g)
    assert fams and all(b.startswith("stages.") for b in fams)
    h = deepen(g, 3)
    after = block_families(h)
    assert {b: len(v) for b, v in after.items()} == {b: 3 * len(v) for b, v in fams.items()}
    assert h.meta["num_params"] == h.num_params
    _runs(h)


def test_deepen_errors():
    with pytest.raises(GraphError, match="no repeated blocks"):
        deepen(_mlp())
    with pytest.raises(GraphError, match="factor must be an int >= 1"):
        deepen(_transformer(), 0)
    g = _transformer(layers=1)
    assert deepen(g, 1).wl_hash() == g.wl_hash()


def test_set_depth_repeats_or_removes_the_last_blocks():
    g = _transformer(layers=2)
    per_layer = sum(n.num_params for n in g if n.scope.startswith("layers.0."))
    up, down = set_depth(g, 5), set_depth(g, 1)
    assert block_families(up) == {"layers.": [0, 1, 2, 3, 4]} and block_families(down) == {"layers.": [0]}
    assert up.num_params == g.num_params + 3 * per_layer and down.num_params == g.num_params - per_layer
    assert up.meta["edits"][-1] == {"pass": "set_depth", "blocks": 2, "n": 5}
    assert set_depth(g, 2).wl_hash() == g.wl_hash()
    assert down.wl_hash() == _transformer(layers=1).wl_hash()  # removing the last layer: the 1-layer model
    # the kept layers keep their parameters: with the extra layers' residual branches zeroed, outputs agree
    base, deep = g.to_module(), up.to_module()
    missing = _same_params(base, deep)
    assert missing and all(m.startswith(("layers.2.", "layers.3.", "layers.4.")) for m in missing)
    with torch.no_grad():
        for m in missing:
            if "o_proj" in m or "fc2" in m:
                deep.get_parameter(m).zero_()
        ids = g.example_inputs(seed=3)
        assert torch.allclose(deep(*ids), base(*ids), atol=1e-5)
    _runs(up)
    _runs(down)


def test_set_depth_over_several_families_and_errors():
    g = sample(2, RandomSpaceConfig(modality="image"))
    fams = block_families(g)
    total = sum(len(v) for v in fams.values())
    for n in (len(fams), total + 3):
        h = set_depth(g, n)
        assert sum(len(v) for v in block_families(h).values()) == n
        _runs(h)
    assert len(fams) == 3
    with pytest.raises(GraphError, match="keep one block each"):
        set_depth(g, 2)
    with pytest.raises(GraphError, match="no repeated blocks"):
        set_depth(_mlp(), 2)
    with pytest.raises(GraphError, match="n must be an int >= 1"):
        set_depth(_transformer(), 0)


# --------------------------------------------------------------------------- captured HF models
@pytest.fixture(scope="module")
def llama():
    from mad.code2graph import from_hf

    return from_hf("llama")


@pytest.mark.slow
def test_captured_llama_gqa_equals_mha_with_repeated_heads(llama):
    h = set_kv_heads(llama, 2)
    gqa, mha = h.to_module(), llama.to_module()
    heads, head_dim = 4, 16
    assert llama.num_params - h.num_params == 2 * 2 * (heads - 2) * head_dim * 64
    convert = _kv_rename(heads, 2, head_dim, fused=False)
    mha.load_state_dict({k: convert(k, v) for k, v in gqa.state_dict().items()})
    inputs = llama.example_inputs(seed=4)
    with torch.no_grad():
        assert torch.allclose(_first(gqa(*inputs)), _first(mha(*inputs)), atol=1e-5)


@pytest.mark.slow
def test_captured_llama_takes_every_edit(llama):
    edited = [add_lora(llama, "layers.1.self_attn", rank=4), replace_activation(llama, "swiglu", "gelu"),
              replace_activation(llama, "silu", "relu"), set_kv_heads(llama, 1), deepen(llama, 2)]
    assert block_families(edited[-1]) == {"layers.": [0, 1, 2, 3]}
    for h in edited:
        _runs(h)


# --------------------------------------------------------------------------- attention cell
def test_add_attention_makes_a_cnn_hybrid_and_starts_as_a_residual():
    from mad.data.describe import analyze
    from mad.graph.passes import add_attention

    g = sample(3, RandomSpaceConfig(modality="image", image_shape=(3, 32, 32)))
    assert not any(n.op == "scaled_dot_product_attention" for n in g)
    h = add_attention(g)
    info = h.meta["edits"][-1]
    assert info["pass"] == "add_attention" and info["tokens"] <= 256
    assert g.nodes[info["node"]].shape[1] % info["heads"] == 0
    assert analyze(h).family.startswith("hybrid") and "multi-head" in analyze(h).attention
    assert h.nodes[h.outputs[0]].shape == g.nodes[g.outputs[0]].shape
    # the cell is a residual branch: with its output projection zeroed the network is the old one
    base, hyb = g.to_module(), h.to_module()
    missing = _same_params(base, hyb)
    assert missing and all(m.startswith("attn_cell.") for m in missing)
    x = g.example_inputs(seed=1)
    with torch.no_grad():
        for m in missing:
            if "o_proj" in m:
                hyb.get_parameter(m).zero_()
        base.eval(), hyb.eval()
        assert torch.allclose(hyb(*x), base(*x), atol=1e-5)
    _runs(h)
    twice = add_attention(h)  # a second cell gets its own scope
    assert any(n.scope.startswith("attn_cell1.") for n in twice) and twice.num_params > h.num_params
    with pytest.raises(GraphError, match="do not divide"):
        add_attention(g, heads=7)
    with pytest.raises(GraphError, match="no \\(B, C, H, W\\) feature map"):
        add_attention(_mlp())


def _patch_net(d: int = 32):
    """Patch embedding (4x4 patches of a 3x32x32 image), a norm and a linear head over the mean token."""
    b = GraphBuilder(dims={"B": 2})
    x = b.input("pixel_values", ("B", 3, 32, 32))
    y = b.op("conv2d", x, out_channels=d, kernel_size=[4, 4], stride=[4, 4], scope="patch_embed.proj")
    t = b.op("transpose", b.op("flatten", y, start_dim=2, scope="patch_embed"), dim0=1, dim1=2, scope="patch_embed")
    t = b.op("layer_norm", t, eps=1e-5, scope="norm")
    b.output(b.op("linear", b.op("mean", t, dim=[1]), out_features=10, scope="head"))
    return b.graph


def test_add_attention_on_tokens_makes_a_patch_network_a_vision_transformer():
    from mad.data.describe import analyze
    from mad.graph.passes import add_attention

    g = _patch_net()
    assert analyze(g).family != "vision transformer"
    for mlp in (None, "swiglu", "gelu"):
        h = add_attention(g, tokens=True, heads=4, norm="rms_norm", mlp=mlp)
        info = h.meta["edits"][-1]
        assert info["tokens"] == 64 and info["heads"] == 4 and h.nodes[info["node"]].op == "layer_norm"
        facts = analyze(h)
        assert facts.family == "vision transformer" and "rms_norm" in {n.op for n in h}
        assert (facts.mlp or "").lower().startswith("swiglu") if mlp == "swiglu" else True
        ops = {n.op for n in h}
        assert ("silu" in ops and "mul" in ops) if mlp == "swiglu" else ("gelu" in ops) == (mlp == "gelu")
        base, vit = g.to_module(), h.to_module()
        missing = _same_params(base, vit)
        x = g.example_inputs(seed=1)
        with torch.no_grad():  # residual branches: with their output projections zeroed, the old network
            for m in missing:
                if any(k in m for k in ("o_proj", "down_proj", "fc2")):
                    vit.get_parameter(m).zero_()
            assert torch.allclose(vit(*x), base(*x), atol=1e-5)
        _runs(h)
    with pytest.raises(GraphError, match="no \\(B, N, D\\) token sequence"):
        add_attention(sample(3, RandomSpaceConfig(modality="image", image_shape=(3, 32, 32))), tokens=True)
    with pytest.raises(GraphError, match="norm must be"):
        add_attention(g, tokens=True, norm="batch_norm")
    with pytest.raises(GraphError, match="neither an activation"):
        add_attention(g, tokens=True, mlp="swishglu")


# --------------------------------------------------------------------------- rotary positions
def test_add_rotary_rotates_queries_and_keys_and_keeps_the_parameters():
    from mad.data.describe import analyze
    from mad.graph.passes import add_rotary

    g = next(h for h in (sample(s, RandomSpaceConfig(modality="sequence")) for s in range(40))
             if not {"sin", "cos"} <= {n.op for n in h})
    attentions = sum(n.op == "scaled_dot_product_attention" for n in g)
    h = add_rotary(g)
    assert h.meta["edits"][-1] == {"pass": "add_rotary", "attentions": attentions, "base": 10000.0}
    assert "rotary" in (analyze(h).position or "") and h.num_params == g.num_params
    assert sum(n.op == "cos" for n in h) == 1  # one table for every attention of the same sequence and width
    base, rope = g.to_module(), h.to_module()
    rope.load_state_dict(base.state_dict())
    vocab = g.inputs[0].range[1]
    with torch.no_grad():
        base.eval(), rope.eval()
        one = torch.randint(0, vocab, (2, 1))  # position 0: cos 1, sin 0, nothing rotates
        torch.testing.assert_close(_first(rope(one)), _first(base(one)))
        many = torch.randint(0, vocab, (2, 6))
        assert not torch.allclose(_first(rope(many)), _first(base(many)))
    _runs(h)
    with pytest.raises(GraphError, match="already computes"):
        add_rotary(h)
    with pytest.raises(GraphError, match="no attention"):
        add_rotary(sample(3, RandomSpaceConfig(modality="image", image_shape=(3, 32, 32))))


def test_add_downsampling_pools_a_plain_cnn_a_third_of_the_way_in():
    from mad.graph.passes import add_downsampling

    b = GraphBuilder("plain", dims={"B": 2})
    h = b.input("x", ("B", 1, 16, 16))
    acts = []
    for i in range(3):
        h = b.op("relu", b.op("conv2d", h, out_channels=8, kernel_size=3, padding=1, scope=f"conv{i}"))
        acts.append(h)
    b.output(b.op("linear", b.op("flatten", h, start_dim=1), out_features=10, scope="head"))
    g = b.build()
    h2 = add_downsampling(g)
    pool = next(n for n in h2.nodes.values() if n.op == "max_pool2d")
    assert h2.meta["edits"][-1] == {"pass": "add_downsampling", "after": h2.predecessors(pool.id)[0]}
    assert pool.shape == ["B", 8, 8, 8] and h2.nodes[h2.outputs[0]].shape == ["B", 10]
    assert h2.nodes[acts[2]].shape == ["B", 8, 8, 8]  # later layers run at half the size
    head = next(n for n in h2.nodes.values() if n.scope == "head")
    assert head.params["weight"] == [10, 8 * 8 * 8]  # the head follows with fewer input features
    assert "max_pool2d" not in {n.op for n in g.nodes.values()}  # the input graph is left as it was
    assert _runs(h2).shape == (2, 10)
    with pytest.raises(GraphError, match="no \\(B, C, H, W\\) feature map"):
        add_downsampling(_mlp())


def test_add_residual_puts_a_skip_around_a_conv_block_on_the_trunk():
    from mad.generator.constraints import _has_residual
    from mad.graph.passes import add_residual

    b = GraphBuilder("plain", dims={"B": 2})
    h = b.input("x", ("B", 1, 16, 16))
    for i in range(2):
        h = b.op("relu", b.op("conv2d", h, out_channels=8, kernel_size=3, padding=1, scope=f"conv{i}"))
    last = h
    b.output(b.op("linear", b.op("flatten", h, start_dim=1), out_features=10, scope="head"))
    g = b.build()
    assert not _has_residual(g)
    h2 = add_residual(g)
    assert h2.meta["edits"][-1] == {"pass": "add_residual", "node": last, "channels": 8}
    assert _has_residual(h2) and not _has_residual(g)  # the input graph is left as it was
    add = next(n for n in h2.nodes.values() if n.op == "add")
    assert last in h2.predecessors(add.id) and add.shape == ["B", 8, 16, 16]
    assert h2.num_params == g.num_params + 2 * 8 * 8 * 9 + 2 * 8  # two 3x3 convs (no bias) and a batch norm
    assert _runs(h2).shape == (2, 10)
    again = add_residual(h2)  # a second block gets its own scope
    assert {n.scope.split(".")[0] for n in again.nodes.values()} >= {"res_block", "res_block1"}
    with pytest.raises(GraphError, match="no \\(B, C, H, W\\) feature map"):
        add_residual(_mlp())
