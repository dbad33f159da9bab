"""from_module -> to_module round trips on real models: equal outputs, strict state-dict loading."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from mad.code2graph import CaptureError, flatten_output, from_module
from mad.graph import ArchGraph

transformers = pytest.importorskip("transformers")


class SkipConcatCNN(nn.Module):
    """A hand-written CNN with a residual skip, a concat and a classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.branch_a = nn.Conv2d(8, 8, 3, padding=1)
        self.branch_b = nn.Sequential(nn.Conv2d(8, 8, 1), nn.GELU())
        self.mix = nn.Conv2d(16, 16, 1, groups=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        h = self.stem(x)
        a = self.branch_a(h) + h
        b = self.branch_b(h)
        h = self.mix(torch.cat([a, b], dim=1))
        return self.head(self.pool(h).flatten(1))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 3))

    def forward(self, x):
        return torch.softmax(self.net(x), dim=-1)


def _fresh(inputs: dict[str, torch.Tensor], seed: int = 1) -> dict[str, torch.Tensor]:
    """New random values with the same shapes/dtypes/value ranges as ``inputs``."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in inputs.items():
        if v.dtype.is_floating_point:
            out[k] = torch.randn(v.shape, generator=gen, dtype=v.dtype)
        else:
            lo, hi = int(v.min()), int(v.max()) + 1
            out[k] = torch.randint(lo, max(hi, lo + 1), v.shape, generator=gen, dtype=v.dtype)
    return out


def _round_trip(model: nn.Module, inputs: dict[str, torch.Tensor]) -> ArchGraph:
    model.eval()
    g = from_module(model, (), inputs)
    g.validate()
    again = ArchGraph.from_json(g.to_json())
    assert json.loads(again.to_json()) == json.loads(g.to_json())
    m2 = again.to_module()
    m2.load_state_dict(model.state_dict())  # strict: same names and shapes
    fresh = _fresh(inputs)
    with torch.no_grad():
        want = flatten_output(model(**fresh))
        got = flatten_output(m2(**fresh))
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5, msg=lambda m: f"output {k!r}: {m}")
    return g


def _ids(shape=(2, 8), vocab=100):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(0))


T = transformers
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)

CASES = {
    "bert": lambda: (T.BertModel(T.BertConfig(vocab_size=100, **SMALL)), {"input_ids": _ids()}),
    "gpt2": lambda: (
        T.GPT2LMHeadModel(T.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, use_cache=False)),
        {"input_ids": _ids()},
    ),
    "llama": lambda: (
        T.LlamaForCausalLM(T.LlamaConfig(vocab_size=100, num_key_value_heads=1, use_cache=False, **SMALL)),
        {"input_ids": _ids()},
    ),
    "t5": lambda: (
        T.T5Model(T.T5Config(vocab_size=100, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2, use_cache=False)),
        {"input_ids": _ids(), "decoder_input_ids": _ids((2, 5))},
    ),
    "vit": lambda: (
        T.ViTModel(T.ViTConfig(image_size=16, patch_size=4, **SMALL)),
        {"pixel_values": torch.randn(2, 3, 16, 16)},
    ),
    "resnet": lambda: (
        T.ResNetModel(T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")),
        {"pixel_values": torch.randn(2, 3, 32, 32)},
    ),
    "convnext": lambda: (
        T.ConvNextModel(T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2)),
        {"pixel_values": torch.randn(2, 3, 32, 32)},
    ),
    "mobilenet_v2": lambda: (
        T.MobileNetV2Model(T.MobileNetV2Config(image_size=32, depth_multiplier=0.25)),
        {"pixel_values": torch.randn(2, 3, 32, 32)},
    ),
    "whisper_encoder": lambda: (
        T.WhisperModel(
            T.WhisperConfig(
                d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
                max_source_positions=8, vocab_size=100, use_cache=False, pad_token_id=0, bos_token_id=1,
                eos_token_id=2, decoder_start_token_id=1,
            )
        ).get_encoder(),
        {"input_features": torch.randn(2, 16, 16)},
    ),
    "clip": lambda: (
        T.CLIPModel(
            T.CLIPConfig(
                text_config=dict(vocab_size=100, **SMALL),
                vision_config=dict(image_size=16, patch_size=4, **SMALL),
                projection_dim=16,
            )
        ),
        {"input_ids": _ids(), "pixel_values": torch.randn(2, 3, 16, 16)},
    ),
    "cnn_skip_concat": lambda: (SkipConcatCNN(), {"x": torch.randn(2, 3, 12, 12)}),
    "mlp": lambda: (MLP(), {"x": torch.randn(4, 10)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_equal_outputs(name):
    torch.manual_seed(0)
    model, inputs = CASES[name]()
    g = _round_trip(model, inputs)
    assert g.num_params == sum(p.numel() for p in model.parameters())


def test_layers_are_single_nodes_with_scopes():
    torch.manual_seed(0)
    model, inputs = CASES["bert"]()
    g = from_module(model.eval(), (), inputs)
    linears = [n for n in g if n.op == "linear"]
    assert len(linears) == 2 * 6 + 1  # q, k, v, out, up, down per layer + pooler
    q = next(n for n in linears if n.scope == "encoder.layer.0.attention.self.query")
    assert q.params == {"weight": [32, 32], "bias": [32]}
    assert q.param_names["weight"] == "encoder.layer.0.attention.self.query.weight"
    assert sum(n.op == "scaled_dot_product_attention" for n in g) == 2


def test_tied_weights_become_aliases():
    torch.manual_seed(0)
    model, inputs = CASES["gpt2"]()
    g = from_module(model.eval(), (), inputs)
    assert g.meta["aliases"] == {"lm_head.weight": "transformer.wte.weight"}
    m2 = g.to_module()
    assert m2.get_parameter("lm_head.weight") is m2.get_parameter("transformer.wte.weight")


def test_positional_call_and_output_kinds():
    model = MLP().eval()
    x = torch.randn(4, 10)
    g = from_module(model, (x,))
    assert g.output_kind == "tensor" and [s.name for s in g.inputs] == ["x"]
    m2 = g.to_module()
    m2.load_state_dict(model.state_dict())
    torch.testing.assert_close(m2(x), model(x))

    class TwoOut(nn.Module):
        def forward(self, x):
            return x + 1, {"double": x * 2}

    g2 = from_module(TwoOut(), (x,))
    assert g2.output_kind == "dict" and g2.output_keys == ["0", "1.double"]


def test_integer_inputs_record_their_range():
    model, inputs = CASES["bert"]()
    g = from_module(model.eval(), (), inputs)
    spec = g.inputs[0]
    assert spec.dtype == "int64" and 0 <= spec.range[0] < spec.range[1] <= 100
    ids = g.example_inputs(seed=3)[0]
    assert ids.min() >= spec.range[0] and ids.max() < spec.range[1]


def test_capture_restores_training_mode():
    model = MLP().train()
    from_module(model, (torch.randn(2, 10),))
    assert model.training


def test_unsupported_op_is_named():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(x)

    with pytest.raises(CaptureError) as e:
        from_module(Odd(), (torch.randn(3),))
    assert "special_bessel_j0" in str(e.value) and e.value.ops


def test_export_failure_is_reported():
    class DataDependent(nn.Module):
        def forward(self, x):
            if x.sum() > 0:
                return x
            return -x

    with pytest.raises(CaptureError) as e:
        from_module(DataDependent(), (torch.randn(3),))
    assert e.value.stage == "export"


def test_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        from_module(lambda x: x, (torch.randn(2),))


def test_meta_device_capture_allocates_nothing():
    config = T.LlamaConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=512, use_cache=False)
    with torch.device("meta"):
        model = T.LlamaForCausalLM(config).eval()
    g = from_module(model, (), {"input_ids": torch.zeros(1, 8, dtype=torch.long, device="meta")})
    g.validate()
    assert g.num_params == sum(p.numel() for p in model.parameters())
    m2 = g.to_module(device="meta")
    assert all(p.device.type == "meta" for p in m2.parameters())
