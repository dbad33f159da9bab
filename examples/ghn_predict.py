"""The shipped GHN: predict every parameter of unseen architectures, score them without training, and
fine-tune from the prediction beside training from default init (~1 min on 2 cores).

    python examples/ghn_predict.py
"""

import torch
from torch import nn

import mad.ghn
from mad.data import tasks
from mad.data.default import load_default
from mad.graph import ArchGraph
from mad.train import fit

torch.manual_seed(0)
ghn = mad.ghn.load("default")
print(f"GHN: {sum(p.numel() for p in ghn.model.parameters()):,} parameters, trained on {ghn.config.tasks} "
      f"for {ghn.record.get('steps')} steps on {ghn.record.get('hardware', {}).get('device')}")

# 1. three held-out dataset graphs (never seen in GHN training), put on mnist5k and scored without training
test = load_default()["test"].filter(lambda r: r["modality"] == "image").select(range(3))
graphs = [tasks.fit(ArchGraph.from_json(r["graph"]), "mnist5k") for r in test]
for s in ghn.score(graphs, "mnist5k"):
    est, est_long = ("n/a" if v is None else f"{v:.1%}" for v in (s["quality"], s["quality_long"]))
    print(f"{s['name']:>24}: {s['params']:>8,} params, predicted-parameter accuracy {s['accuracy']:.1%}, "
          f"expected after 100 / 1000 steps {est} / {est_long}, {s['seconds_predict']:.2f} s")

# 2. any nn.Module: the same object comes back with every parameter predicted
net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                    nn.Flatten(), nn.Linear(256, 10))
out = ghn.predict(net, "digits")
assert out is net
print(f"module: {net.ghn_info['predicted_share']:.0%} of {net.ghn_info['params']:,} parameters predicted")

# 3. fine-tune from the prediction, beside the same run from PyTorch's default init: on unseen mnist5k
#    architectures the prediction's lead is gone within ~50 steps (bench/ghn_finetune.py)
#    (init="ghn" is ghn.predict(graph, task) as the start; `mad train net.json --init ghn` on the command line)
r = fit(graphs[0], "mnist5k", steps=100, lr=1e-3, eval_every=[0, 100], init="ghn", progress=False)
print("fine-tuned from the GHN:   ", {e["step"]: round(e["accuracy"], 3) for e in r.eval_curve})
r = fit(graphs[0], "mnist5k", steps=100, lr=1e-3, eval_every=[0, 100], seed=0, progress=False)
print("trained from default init: ", {e["step"]: round(e["accuracy"], 3) for e in r.eval_curve})
