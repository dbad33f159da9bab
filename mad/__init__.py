"""mad: generative model-architecture design on one graph IR."""

from .graph import ArchGraph, GraphError, TensorSpec

__version__ = "0.1.0"
__all__ = ["ArchGraph", "GraphError", "TensorSpec", "__version__"]
