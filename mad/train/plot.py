"""A picture of a training run: the loss curve, and the validation figure on a second axis.

Drawn on matplotlib's Agg canvas directly (no pyplot, no global backend change), so it works on machines
without a display and inside notebooks alike.

Example:
    >>> plot_curves(result, "run/loss_curve.png")
    PosixPath('run/loss_curve.png')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .result import FitResult

__all__ = ["plot_curves"]


def _smooth(values: list[float], span: int) -> list[float]:
    """Exponential moving average with the given span (debiased)."""
    alpha, avg, out = 2.0 / (span + 1), 0.0, []
    for i, v in enumerate(values, 1):
        avg = alpha * v + (1 - alpha) * avg
        out.append(avg / (1 - (1 - alpha) ** i))
    return out


def plot_curves(result: FitResult | dict[str, Any], path: str | Path, dpi: int = 120) -> Path:
    """Write the training-loss curve (raw and smoothed) and the validation metric of ``result`` to ``path``.

    Args:
        result: a :class:`FitResult` or its :meth:`~FitResult.as_dict`.
        path: the picture; the suffix picks the format (``.png``, ``.svg``, ``.pdf``).
        dpi: resolution of raster formats.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    d = result.as_dict() if isinstance(result, FitResult) else result
    curve = [(s, v) for s, v in d.get("loss_curve", []) if v is not None]
    fig = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if curve:
        steps, losses = zip(*curve)
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="train loss")
        ax.plot(steps, _smooth(list(losses), max(2, len(losses) // 50)), color="tab:blue", linewidth=1.6,
                label="train loss (smoothed)")
    evals = [e for e in d.get("eval_curve", []) if e.get("loss") is not None]
    if evals:
        ax.plot([e["step"] for e in evals], [e["loss"] for e in evals], "o-", color="tab:orange", markersize=3,
                linewidth=1.2, label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.grid(alpha=0.3)
    key = "bpc" if d.get("metric") == "bits_per_char" else "accuracy"
    points = [(e["step"], e[key]) for e in evals if e.get(key) is not None]
    handles, labels = ax.get_legend_handles_labels()
    if points and key == "accuracy":
        ax2 = ax.twinx()
        ax2.plot(*zip(*points), "s--", color="tab:green", markersize=3, linewidth=1.0, label="val accuracy")
        ax2.set_ylabel("validation accuracy")
        ax2.set_ylim(0, 1)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize=8)
    figure = d.get("val_accuracy") if key == "accuracy" else d.get("val_bpc")
    title = f"{d.get('model_name', '')} on {d.get('task', '')}"
    if figure is not None:
        title += f": val {'accuracy' if key == 'accuracy' else 'bpc'} {figure:.4g}"
    ax.set_title(title, fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out
