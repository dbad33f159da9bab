"""Capture a transformers model into an ArchGraph and rebuild it: equal outputs, same parameter names.

Run: python examples/round_trip.py
"""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from mad.code2graph import flatten_output, from_module
from mad.graph import ArchGraph


def main() -> None:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=128, use_cache=False)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 512, (2, 16))

    graph = from_module(model, (), {"input_ids": ids}, name="tiny-llama")
    graph.validate()
    summary = graph.infer()
    print(f"{graph.name}: {summary.num_nodes} nodes, {summary.num_params:,} parameters, "
          f"{summary.flops / 1e6:.1f} MFLOPs, depth {summary.depth}")

    text = graph.to_json()
    rebuilt = ArchGraph.from_json(text).to_module()
    rebuilt.load_state_dict(model.state_dict())
    fresh = torch.randint(0, 512, (2, 16))
    with torch.no_grad():
        want = flatten_output(model(input_ids=fresh))["logits"]
        got = rebuilt(input_ids=fresh)["logits"]
    print(f"rebuilt model, max |difference| on fresh inputs: {(want - got).abs().max().item():.2e}")
    assert torch.allclose(want, got, atol=1e-5)


if __name__ == "__main__":
    main()
