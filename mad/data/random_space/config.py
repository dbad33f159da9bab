"""What the random architecture space draws from: :class:`RandomSpaceConfig` and the cell-op table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RandomSpaceConfig", "RandomSpaceError", "CELL_OPS", "PARAMETRIC", "SPACE_VERSION", "config_dict"]

SPACE_VERSION = 2  # 2: built with GraphBuilder; symbolic batch and sequence dims

# cell ops of the image space and their sampling weights
CELL_OPS: dict[str, float] = {
    "conv3x3": 3.0,
    "conv1x1": 1.0,
    "conv5x5": 1.0,
    "dw_conv3x3": 2.0,
    "dw_conv5x5": 1.0,
    "dil_conv3x3": 1.0,
    "max_pool3x3": 1.0,
    "avg_pool3x3": 1.0,
    "attention": 1.0,
    "mlp": 1.0,
    "identity": 1.0,
}
PARAMETRIC = {"conv3x3", "conv1x1", "conv5x5", "dw_conv3x3", "dw_conv5x5", "dil_conv3x3", "attention", "mlp"}


class RandomSpaceError(RuntimeError):
    """No architecture within the configured ranges was found, or the config is inconsistent."""


@dataclass
class RandomSpaceConfig:
    """What :func:`~mad.data.random_space.sample` draws from.

    Args:
        modality: ``"image"``, ``"sequence"`` or ``"any"`` (each sample picks one).
        batch_size: example size of the symbolic batch dim ``B`` (FLOPs are counted for it).
        image_shape: ``(channels, height, width)`` of image inputs.
        num_classes: outputs of the image classifier head.
        seq_len: example size of the symbolic sequence dim ``T``.
        max_positions: rows of a learned position table (sliced to ``T``; default ``2 * seq_len``).
        vocab_size: token ids lie in ``[0, vocab_size)``; the LM head predicts them.
        min_params, max_params: accepted parameter counts (``None``: no upper bound).
        min_flops, max_flops: accepted FLOPs of one forward pass over the example batch.
        num_stages: inclusive range of image stages (capped by how often the input can be halved).
        cells_per_stage: inclusive range of cells per stage.
        cell_nodes: inclusive range of op nodes per cell.
        widths: channel widths the image stages choose from (stage widths never shrink).
        cell_ops: image cell ops and their sampling weights (keys of :data:`CELL_OPS`).
        max_attn_tokens: spatial self-attention only where ``H * W`` is at most this;
            finer stages use a 3x3 conv in its place.
        num_layers: inclusive range of transformer blocks.
        d_models: hidden sizes the transformer chooses from.
        head_dims: attention head sizes (a hidden size takes those that divide it).
        mlp_ratios: transformer MLP hidden size over model size.
        max_tries: rejection-sampling budget per ``sample`` call.
        seed: first seed of ``sample_many``.

    Example:
        >>> cfg = RandomSpaceConfig(modality="sequence", vocab_size=128, num_layers=(2, 4)).check()
        >>> g = sample(0, cfg)
        >>> g.nodes[g.outputs[0]].shape, g.dims
        (['B', 'T', 128], {'B': 2, 'T': 32})
    """

    modality: str = "any"
    batch_size: int = 2
    image_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    seq_len: int = 32
    max_positions: int | None = None
    vocab_size: int = 256
    min_params: int = 0
    max_params: int | None = 3_000_000
    min_flops: int = 0
    max_flops: int | None = 2_000_000_000
    num_stages: tuple[int, int] = (1, 4)
    cells_per_stage: tuple[int, int] = (1, 3)
    cell_nodes: tuple[int, int] = (1, 4)
    widths: tuple[int, ...] = (16, 24, 32, 48, 64, 96, 128, 192, 256)
    cell_ops: dict[str, float] = field(default_factory=lambda: dict(CELL_OPS))
    max_attn_tokens: int = 256
    num_layers: tuple[int, int] = (1, 6)
    d_models: tuple[int, ...] = (32, 48, 64, 96, 128, 192, 256)
    head_dims: tuple[int, ...] = (16, 32, 64)
    mlp_ratios: tuple[int, ...] = (2, 3, 4)
    max_tries: int = 200
    seed: int = 0

    @property
    def positions(self) -> int:
        """Rows of a learned position table."""
        return self.max_positions or 2 * self.seq_len

    def check(self) -> "RandomSpaceConfig":
        """Raise :class:`RandomSpaceError` naming the first inconsistent field; return self."""

        def bad(name: str, why: str) -> RandomSpaceError:
            return RandomSpaceError(f"RandomSpaceConfig.{name}: {why}")

        if self.modality not in ("image", "sequence", "any"):
            raise bad("modality", f"must be 'image', 'sequence' or 'any', got {self.modality!r}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise bad("image_shape", f"must be (channels, height, width) of positive ints, got {self.image_shape}")
        for name in ("batch_size", "seq_len"):
            if getattr(self, name) < 2:
                raise bad(name, f"is the example size of a symbolic dim and must be >= 2, got {getattr(self, name)}")
        for name in ("num_classes", "vocab_size", "max_tries", "max_attn_tokens"):
            if getattr(self, name) < 1:
                raise bad(name, f"must be >= 1, got {getattr(self, name)}")
        if self.max_positions is not None and self.max_positions <= self.seq_len:
            raise bad("max_positions", f"must exceed seq_len {self.seq_len} (the table is sliced to T), "
                                       f"got {self.max_positions}")
        for name in ("num_stages", "cells_per_stage", "cell_nodes", "num_layers"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise bad(name, f"must be an inclusive range (lo, hi) with 1 <= lo <= hi, got {(lo, hi)}")
        for name in ("widths", "d_models", "head_dims", "mlp_ratios"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise bad(name, f"must be a non-empty tuple of positive ints, got {values}")
        if not any(d % h == 0 for d in self.d_models for h in self.head_dims):
            raise bad("head_dims", f"no head size in {self.head_dims} divides a hidden size in {self.d_models}")
        unknown = sorted(set(self.cell_ops) - set(CELL_OPS))
        if unknown:
            raise bad("cell_ops", f"unknown ops {unknown}; choose from {sorted(CELL_OPS)}")
        if not any(w > 0 and op in PARAMETRIC for op, w in self.cell_ops.items()):
            raise bad("cell_ops", f"needs a positive weight on at least one op with parameters: {sorted(PARAMETRIC)}")
        if self.max_params is not None and self.max_params < self.min_params:
            raise bad("max_params", f"{self.max_params} is below min_params {self.min_params}")
        if self.max_flops is not None and self.max_flops < self.min_flops:
            raise bad("max_flops", f"{self.max_flops} is below min_flops {self.min_flops}")
        return self


def config_dict(cfg: RandomSpaceConfig) -> dict[str, Any]:
    """The config as JSON values (tuples become lists), e.g. to store next to a dataset."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
