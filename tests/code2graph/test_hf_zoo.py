"""Tests of the HuggingFace zoo: enumeration, tiny configs, example inputs, builds."""

from __future__ import annotations

import pytest
import torch

from mad.code2graph import hf_zoo
from mad.code2graph.hf_zoo import ZooError

FORWARD_TYPES = ["bert", "gpt2", "llama", "t5", "vit", "whisper", "clip", "llava"]


def _sub_configs(cfg):
    from transformers import PretrainedConfig

    yield cfg
    for v in vars(cfg).values():
        if isinstance(v, PretrainedConfig):
            yield from _sub_configs(v)


def test_model_types_lists_the_common_families():
    types = hf_zoo.model_types()
    assert types == sorted(types)
    assert len(types) == len(set(types)) > 100
    for t in ["bert", "gpt2", "llama", "t5", "vit", "whisper", "clip"]:
        assert t in types


@pytest.mark.parametrize("model_type", ["llama", "llava", "qwen2_vl", "whisper"])
def test_small_config_is_small_and_cache_free(model_type):
    cfg = hf_zoo.small_config(model_type)
    for c in _sub_configs(cfg):
        for key in ("hidden_size", "d_model", "intermediate_size"):
            v = getattr(c, key, None)
            if isinstance(v, int):
                assert v <= hf_zoo.INTERMEDIATE, f"{c.model_type}.{key} = {v}"
        layers = getattr(c, "num_hidden_layers", None)
        if isinstance(layers, int):
            assert layers <= 4, f"{c.model_type}.num_hidden_layers = {layers}"
        if hasattr(c, "use_cache"):
            assert c.use_cache is False, f"{c.model_type}.use_cache is on"


def test_small_config_keeps_special_tokens_inside_the_vocabulary():
    cfg = hf_zoo.small_config("qwen2_vl")
    vocab = cfg.text_config.vocab_size
    for name in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        assert 0 <= getattr(cfg, name) < vocab, name
    # distinct tokens stay distinct after remapping
    ids = [cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id]
    assert len(set(ids)) == len(ids)


def test_small_config_overrides_win():
    cfg = hf_zoo.small_config("bert", num_hidden_layers=3, hidden_size=48)
    assert (cfg.num_hidden_layers, cfg.hidden_size) == (3, 48)


def test_mrope_sections_match_the_small_head_dim():
    text = hf_zoo.small_config("qwen2_vl").text_config
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) == head_dim // 2


@pytest.mark.parametrize("model_type", FORWARD_TYPES)
def test_build_gives_a_model_that_runs_on_its_inputs(model_type):
    model, inputs = hf_zoo.build(model_type)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    with torch.no_grad():
        out = model(**inputs)
    assert out is not None
    if "input_ids" in inputs:
        ids = inputs["input_ids"]
        vocabs = [c.vocab_size for c in _sub_configs(model.config) if isinstance(getattr(c, "vocab_size", None), int)]
        assert ids.min() >= 0 and ids.max() < min(vocabs)


def test_vlm_inputs_hold_one_placeholder_per_image_feature():
    model, inputs = hf_zoo.build("llava")
    n_tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
    with torch.no_grad():
        feats = model.get_image_features(pixel_values=inputs["pixel_values"], return_dict=True).pooler_output
    n_feats = sum(f.shape[0] * f.shape[1] if f.dim() == 3 else f.shape[0] for f in feats)
    assert n_tokens == n_feats > 0


def test_example_inputs_are_reproducible_and_fresh_with_a_new_seed():
    model, inputs = hf_zoo.build("bert")
    again = hf_zoo.example_inputs(model, model.config, seed=0)
    other = hf_zoo.example_inputs(model, model.config, seed=1)
    assert torch.equal(inputs["input_ids"], again["input_ids"])
    assert other["input_ids"].shape == inputs["input_ids"].shape
    assert not torch.equal(inputs["input_ids"], other["input_ids"])


def test_unknown_type_raises_zoo_error_naming_it():
    with pytest.raises(ZooError, match="no_such_model") as info:
        hf_zoo.build("no_such_model")
    assert info.value.model_type == "no_such_model"
    assert info.value.stage == "config"


def test_zoo_error_reports_the_failing_stage():
    with pytest.raises(ZooError) as info:  # 30 is not a multiple of 4 heads: the model refuses to build
        hf_zoo.build("bert", hidden_size=30, num_attention_heads=4)
    assert info.value.stage == "instantiate"
    assert "bert" in str(info.value) and "instantiate" in str(info.value)


def test_meta_build_allocates_no_real_tensors():
    model, inputs = hf_zoo.build("llama", device="meta")
    tensors = list(model.parameters()) + list(model.buffers())
    assert tensors and all(t.is_meta for t in tensors)
    assert inputs["input_ids"].shape[0] == 2


def test_overriding_width_keeps_head_dim_derived():
    """A Llama-7B-sized override of the small config counts 6.6B parameters, not 4.7B."""
    import torch
    from transformers import AutoModel

    from mad.code2graph.hf_zoo import small_config

    assert small_config("llama", hidden_size=256, num_attention_heads=4).head_dim == 64
    assert small_config("llama", hidden_size=256, num_attention_heads=4, head_dim=32).head_dim == 32
    cfg = small_config("llama", hidden_size=4096, num_attention_heads=32, num_key_value_heads=32,
                       intermediate_size=11008, num_hidden_layers=32, vocab_size=32000)
    with torch.device("meta"):
        n = sum(p.numel() for p in AutoModel.from_config(cfg).parameters())
    assert round(n / 1e9, 2) == 6.61
