"""Entry points that read ONNX files: :func:`from_onnx` and :func:`load_onnx_weights`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..arch_graph import ArchGraph
from ..passes import canonicalize
from .errors import OnnxImportError
from .importer import _Importer

log = logging.getLogger(__name__)


def _load(path: str | Path):
    import onnx

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"ONNX file {str(path)!r} does not exist")
    if path.is_dir():
        raise OnnxImportError(f"{path} is a directory, not an ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as e:
        raise OnnxImportError(f"{path} is not a readable ONNX model ({type(e).__name__}: {e})".split("\n")[0]) from e
    if not model.graph.node and not model.graph.output:
        raise OnnxImportError(f"{path} is not an ONNX model: it has no graph (nodes and outputs are empty)")
    return path, model


def from_onnx(
    path: str | Path,
    name: str | None = None,
    *,
    with_weights: bool = False,
    input_shapes: dict[str, list[int]] | None = None,
    validate: bool = True,
) -> ArchGraph | tuple[ArchGraph, dict[str, torch.Tensor]]:
    """Read an ONNX model into an ArchGraph.

    Args:
        path: the ``.onnx`` file (external weight files next to it are read).
        name: graph name; default the file's stem.
        with_weights: also return the state dict that loads the ONNX weights
            into ``g.to_module()`` (layer weights in torch layout, e.g. a
            ``MatMul`` weight transposed into ``linear``'s ``[out, in]``).
        input_shapes: concrete shapes for inputs with symbolic dims.
        validate: run ``g.validate()`` on the result.

    Returns:
        the graph (canonicalized by :func:`mad.graph.passes.canonicalize`), or
        ``(graph, state_dict)`` with ``with_weights=True``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OnnxImportError: the file is not an ONNX model, or a node has no
            mapping (the message names the node, its op type and every
            unsupported op type of the model).

    Example:
        >>> g, sd = from_onnx("resnet.onnx", with_weights=True)
        >>> m = g.to_module(); m.load_state_dict(sd)
    """
    t0 = time.perf_counter()
    path, model = _load(path)
    imp = _Importer(model, path, name or path.stem, input_shapes)
    imp.check_supported()
    g = imp.run()
    g.infer()
    canonicalize(g)
    if validate:
        g.validate()
    log.info("imported %s: %d ONNX nodes -> %d graph nodes in %.2f s", path, len(model.graph.node), len(g.nodes),
             time.perf_counter() - t0)
    if with_weights:
        return g, dict(imp.state)
    return g


def load_onnx_weights(module: torch.nn.Module, path: str | Path, strict: bool = True):
    """Load the weights of an ONNX file into ``module`` (built by ``from_onnx(path).to_module()``).

    Returns the ``load_state_dict`` result. Example:
        >>> m = from_onnx("model.onnx").to_module()
        >>> load_onnx_weights(m, "model.onnx")
    """
    _, state = from_onnx(path, with_weights=True, validate=False)
    return module.load_state_dict(state, strict=strict)
