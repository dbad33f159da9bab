"""The shipped generator: suggest architectures from a sentence, complete a cut graph, edit by instruction
(~1 min on 2 cores).

    python examples/generate.py
"""

import torch

import mad.generator
from mad.data.random_space import RandomSpaceConfig, sample
from mad.graph.passes import cut
from mad.tokenizer import GraphTokenizer

torch.manual_seed(0)
gen = mad.generator.load("default")
rec = gen.record
print(f"generator: {gen.model.num_parameters():,} parameters, structure bias {gen.cfg.structure_bias}, "
      f"trained {rec.get('steps')} steps on {rec.get('corpus', {}).get('examples')} graphs")

# 1. graphs as token sequences, exactly
tok = GraphTokenizer.load("default")
g = sample(3, RandomSpaceConfig(modality="sequence", max_params=300_000))
ids = tok.encode(g)
print(f"{g.name}: {len(g.nodes)} nodes -> {len(ids)} tokens; decodes to the same graph: "
      f"{tok.decode(ids).wl_hash() == g.wl_hash()}")

# 2. architectures from a sentence, on the requested task and budget, ranked by the constraints they meet, then
#    (a 1x28x28, 10-class request fits mnist5k) by the GHN's estimate of their accuracy after 100 training steps
for h in gen.suggest("a small CNN for 28x28 grayscale digits with batch norm", n=3, max_params=150_000):
    info = h.meta["generator"]
    q = info.get("quality") or {}
    expected = f", expected {q['task']} accuracy {q['estimate']:.0%}" if q.get("estimate") is not None else ""
    print(f"  suggested {h.name}: {h.num_params:,} params, {len(h.nodes)} nodes, meets {info['adherence']:.0%} "
          f"({', '.join(info['why'])}){expected}")

# 3. complete a graph cut halfway
cnn = sample(11, RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=200_000))
partial = cut(cnn, fraction=0.5)
done = gen.complete(partial, n=1, num_classes=10)[0]
print(f"  completed {len(partial.nodes)} kept nodes of {len(cnn.nodes)} into {len(done.nodes)} nodes, "
      f"{done.num_params:,} params; it runs: {mad.generator.runs(done) is None}")

# 4. edits by instruction, run as graph passes
lm = sample(4, RandomSpaceConfig(modality="sequence", max_params=300_000))
for text in ("add LoRA of rank 8 to the last layer", "make it 2x deeper", "use 5 layers",
             "use rotary position embeddings"):
    e = gen.edit(lm, text)
    print(f"  {text!r}: {lm.num_params:,} -> {e.num_params:,} params, {len(lm.nodes)} -> {len(e.nodes)} nodes")
print(gen.suggest("decoder-only transformer for characters", n=1, vocab_size=96)[0].to_code()[:400])
