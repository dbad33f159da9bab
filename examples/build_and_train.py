"""Symbolic sizes, GraphBuilder, retargeting and training, in one short run (~30 s on 2 cores).

    python examples/build_and_train.py
"""

import torch
from transformers import GPT2Config, GPT2Model

from mad.code2graph import from_module
from mad.data import tasks
from mad.graph import GraphBuilder
from mad.graph.passes import retarget
from mad.train import fit

torch.manual_seed(0)

# 1. a captured model keeps its batch and sequence sizes symbolic
model = GPT2Model(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=500, n_positions=64, use_cache=False,
                             bos_token_id=0, eos_token_id=0)).eval()
g = from_module(model, (), {"input_ids": torch.randint(0, 500, (2, 16))})
print("inputs:", [(s.name, s.shape) for s in g.inputs], "dims:", g.dims)
m = g.to_module()
m.load_state_dict(model.state_dict())
x = torch.randint(0, 500, (5, 9))  # another batch size and length
with torch.no_grad():
    err = (m(input_ids=x)["last_hidden_state"] - model(input_ids=x).last_hidden_state).abs().max()
print(f"batch 5, length 9: max difference to the source {err:.1e}")

# 2. build a CNN op by op: every step is checked, shapes are inferred at once
b = GraphBuilder("small_cnn")
h = b.input("x", ("B", 1, 8, 8))
h = b.op("relu", b.op("conv2d", h, out_channels=16, kernel_size=3, padding=1))
h = b.op("max_pool2d", h, kernel_size=2, stride=2)
h = b.op("relu", b.op("conv2d", h, out_channels=32, kernel_size=3, padding=1))
b.output(b.op("linear", b.op("flatten", h, start_dim=1), out_features=10))  # its width follows the image size
net = b.build()
print(f"built {net.name}: {len(net)} nodes, {net.num_params:,} parameters")

# 3. put it on other tasks: stem, head and sizes are re-inferred
cifar = retarget(net, (3, 32, 32), num_classes=10)
print("retargeted to 3x32x32:", cifar.inputs[0].shape, "->", cifar.nodes[cifar.outputs[0]].shape)
print("fitted to mnist5k:", tasks.fit(net, "mnist5k").inputs[0].shape)

# 4. train it on the digits task
result = fit(net, "digits", steps=300, batch_size=64, lr=3e-3, progress=False)
print(f"digits after {result.steps} steps: validation accuracy {result.val_accuracy:.1%}")
