"""from_hf: transformers model types -> graphs, offline, with equal outputs after rebuilding."""

from __future__ import annotations

import pytest
import torch

from mad.code2graph import flatten_output
from mad.code2graph.hf import build_hf, from_hf
from mad.code2graph.hf_zoo import ZooError


@pytest.mark.parametrize("model_type", ["bert", "llama", "vit", "whisper", "mixtral"])
def test_from_hf_round_trip(model_type):
    model, inputs = build_hf(model_type, seed=0)
    g = from_hf(model_type, seed=0)
    assert g.source == f"hf:{model_type}" and g.meta["model_class"] == type(model).__name__
    g.validate()
    m2 = g.to_module()
    m2.load_state_dict(model.state_dict())
    with torch.no_grad():
        want, got = flatten_output(model(**inputs)), flatten_output(m2(**inputs))
    assert want.keys() == got.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], atol=1e-5, rtol=1e-5)


def test_overrides_reach_the_config():
    g1 = from_hf("bert", num_hidden_layers=1)
    g2 = from_hf("bert", num_hidden_layers=2)
    layers = lambda g: {n.scope.split(".")[2] for n in g if n.scope.startswith("encoder.layer.")}  # noqa: E731
    assert layers(g1) == {"0"} and layers(g2) == {"0", "1"}


def test_full_size_on_meta_allocates_nothing():
    g = from_hf("llama", device="meta", small=False, num_hidden_layers=2)
    assert g.meta["dtype"] == "float32"
    # the default Llama width: 4096 hidden, 11008 MLP, 32000 vocabulary
    emb = next(n for n in g if n.op == "embedding")
    assert emb.params["weight"] == [32000, 4096]
    assert g.num_params > 400_000_000


def test_unknown_type():
    with pytest.raises(ZooError, match="no_such_model"):
        from_hf("no_such_model")
