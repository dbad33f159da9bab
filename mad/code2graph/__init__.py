"""code2graph: real models (PyTorch modules, HuggingFace model types, ONNX files) -> ArchGraph."""

from .capture import CaptureError, CaptureStats, flatten_output, from_module

__all__ = ["CaptureError", "CaptureStats", "flatten_output", "from_module", "from_hf", "from_onnx"]


def from_hf(model_type: str, device=None, small: bool = True, **overrides):
    """Build the transformers model ``model_type`` small (random weights, no download) and capture it."""
    from .hf import from_hf as _from_hf  # imports transformers only when asked

    return _from_hf(model_type, device=device, small=small, **overrides)


def from_onnx(path, **kwargs):
    """Read an ONNX file into an ArchGraph."""
    from mad.graph.onnx_io import from_onnx as _from_onnx

    return _from_onnx(path, **kwargs)
