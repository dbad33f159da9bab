"""Benchmark: mad.train.fit on CPU with one thread.

    python bench/train_cpu.py [--steps 200] [--digits-steps 300]

1. Speed: steps/s of a small CNN (two conv-BN-ReLU-pool blocks, linear head; 20.6K params) on mnist5k at
   batch 64, trained as a graph (``from_module`` -> ``to_module``) and as the plain module.
2. Learning: a small CNN graph on digits for ``--digits-steps`` steps (batch 64, lr 3e-3, validation every
   10 steps): final validation/test accuracy, and the first step and time at which validation passes 90%.

Prints the figures and writes bench/results/train_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "train"))

from mad.code2graph import from_module  # noqa: E402
from mad.train import fit  # noqa: E402


class MnistCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


from train_nets import DigitsCNN  # noqa: E402  (tests/train/train_nets.py)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--digits-steps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_cpu.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: dict = {"torch": torch.__version__, "python": platform.python_version(), "threads": 1}

    torch.manual_seed(0)
    g = from_module(MnistCNN(), (torch.randn(2, 1, 28, 28),), name="mnist_cnn")
    speed = {}
    for kind, model in (("graph", g), ("module", MnistCNN())):
        r = fit(model, "mnist5k", steps=args.steps, batch_size=64, eval_every=0, progress=False, device="cpu")
        speed[kind] = {"steps_per_s": round(r.steps_per_s, 2), "val_accuracy": round(r.val_accuracy, 4),
                       "params": r.params, "steps": r.steps}
        print(f"mnist5k {kind:6s}: {r.steps_per_s:6.2f} steps/s at batch 64 ({r.params:,} params), "
              f"val accuracy {r.val_accuracy:.1%} after {r.steps} steps")
    out["mnist5k_speed"] = speed

    torch.manual_seed(0)
    g = from_module(DigitsCNN(), (torch.randn(2, 1, 8, 8),), name="digits_cnn")
    t0 = time.perf_counter()
    r = fit(g, "digits", steps=args.digits_steps, batch_size=64, lr=3e-3, eval_every=10, progress=False,
            device="cpu")
    wall = time.perf_counter() - t0
    first = next((e for e in r.eval_curve if e["accuracy"] > 0.9), None)
    spent = r.train_seconds * first["step"] / r.steps if first else None
    out["digits"] = {"steps": r.steps, "val_accuracy": round(r.val_accuracy, 4),
                     "test_accuracy": round(r.test_accuracy, 4), "seconds": round(wall, 2),
                     "train_seconds": round(r.train_seconds, 2), "steps_per_s": round(r.steps_per_s, 2),
                     "first_step_over_90": first["step"] if first else None,
                     "train_seconds_to_90": round(spent, 2) if spent else None, "params": r.params}
    print(f"digits: val {r.val_accuracy:.1%}, test {r.test_accuracy:.1%} after {r.steps} steps in {wall:.1f} s "
          f"({r.steps_per_s:.1f} steps/s); validation first over 90% at step "
          f"{first['step'] if first else '-'} (~{spent or float('nan'):.1f} s of training)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
