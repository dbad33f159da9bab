"""Export an ArchGraph's module to ONNX (:func:`to_onnx`) and run ONNX files with onnxruntime (:func:`run_onnx`)."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..arch_graph import ArchGraph
from .errors import OnnxExportError

log = logging.getLogger(__name__)


def _output_names(g: ArchGraph) -> list[str]:
    if g.output_kind == "dict" and g.output_keys:
        return [str(k) for k in g.output_keys]
    names = g.meta.get("output_names")
    if isinstance(names, list) and len(names) == len(g.outputs) and len(set(names)) == len(names):
        return [str(n) for n in names]
    out, seen = [], set()
    for i, o in enumerate(g.outputs):
        n = o if o not in seen else f"{o}_{i}"
        seen.add(n)
        out.append(n)
    return out


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flatten(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _flatten(v)]
    raise TypeError(f"module output of type {type(out).__name__} is not a tensor, tuple or dict")


def _dynamic_shapes(g: ArchGraph) -> tuple | None:
    """Per input, its symbolic dims as named export dims: they become ONNX ``dim_param`` s (``B``, ``T``)."""
    from torch.export import Dim

    named: dict[str, Any] = {}
    specs = []
    for s in g.inputs:
        dims = {}
        for i, d in enumerate(s.shape):
            if isinstance(d, str):
                d = d.strip()
                dims[i] = named.setdefault(d, Dim(d)) if d.isidentifier() else Dim.AUTO
        specs.append(dims or None)
    return (tuple(specs),) if named or any(specs) else None  # ArchModule.forward(*args): one var-positional group


def run_onnx(path: str | Path, inputs: Sequence[Any], names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Run an ONNX file with onnxruntime (CPU) on ``inputs`` (tensors or arrays, in graph-input order).

    Args:
        path: the ``.onnx`` file.
        inputs: one value per ONNX graph input.
        names: input names; default: the model's input names in order.

    Returns:
        the outputs as numpy arrays, in graph-output order.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = list(names) if names is not None else [i.name for i in sess.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"{path}: the model takes {len(names)} inputs {names}, got {len(inputs)}")
    to_np = lambda v: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)  # noqa: E731
    feed = {n: to_np(v) for n, v in zip(names, inputs)}
    return sess.run(None, feed)


def to_onnx(
    g: ArchGraph,
    path: str | Path,
    opset: int | None = None,
    *,
    module: torch.nn.Module | None = None,
    inputs: Sequence[torch.Tensor] | None = None,
    seed: int = 0,
    check: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Path:
    """Export the module of ``g`` to an ONNX file with ``torch.onnx.export(dynamo=True)``.

    Symbolic dims of the graph inputs (``B``, ``T``) become ONNX ``dim_param`` s of
    the same names, so the file runs at any batch size (and sequence length).

    Args:
        g: the graph; its ``inputs`` name the ONNX inputs and its outputs
            (``output_keys``, ``meta["output_names"]`` or node ids) the ONNX outputs.
        path: where to write the ``.onnx`` file (parent folders are created).
        opset: ONNX opset version; None lets the exporter choose.
        module: the module to export (e.g. ``g.to_module()`` with loaded
            weights); default a fresh ``g.to_module()`` with random weights.
        inputs: example inputs; default ``g.example_inputs(seed)``.
        seed: seed for the default example inputs.
        check: run the file with onnxruntime and raise :class:`OnnxExportError`
            unless its outputs equal the module's within ``atol``/``rtol``.

    Returns:
        the path of the written file (weights are stored inside it unless the
        model is over ~1.8 GB).

    Example:
        >>> p = to_onnx(g, "mlp.onnx", check=True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module if module is not None else g.to_module()
    was_training = module.training
    module.eval()
    args = tuple(inputs) if inputs is not None else g.example_inputs(seed)
    input_names = [s.name for s in g.inputs]
    output_names = _output_names(g)
    nbytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    t0 = time.perf_counter()
    buf = io.StringIO()

    def export(dynamic: Any) -> None:
        with torch.no_grad(), contextlib.redirect_stdout(buf):
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=True,
                input_names=input_names,
                output_names=output_names,
                opset_version=opset,
                external_data=nbytes > 1_800_000_000,
                dynamic_shapes=dynamic,
                verbose=False,
            )

    dynamic = _dynamic_shapes(g)
    try:
        try:
            export(dynamic)
        except Exception as e:
            if dynamic is None:
                raise
            log.warning("graph %r: ONNX export with symbolic dims failed (%s); exporting with the example sizes",
                        g.name, str(e).split("\n")[0][:200])
            export(None)
    except Exception as e:
        raise OnnxExportError(f"graph {g.name!r}: torch.onnx.export to {path} failed: {e}".split("\n")[0]) from e
    finally:
        module.train(was_training)
        if buf.getvalue():
            log.debug("torch.onnx.export output:\n%s", buf.getvalue())
    log.info("exported %s to %s in %.1f s", g.name, path, time.perf_counter() - t0)
    if check:
        with torch.no_grad():
            want = [t.detach().cpu().numpy() for t in _flatten(module.eval()(*args))]
        module.train(was_training)
        got = run_onnx(path, args, input_names)
        _check_close(want, got, atol, rtol, f"{path} vs the module of graph {g.name!r}")
    return path


def _check_close(want: list[np.ndarray], got: list[np.ndarray], atol: float, rtol: float, what: str) -> float:
    if len(want) != len(got):
        raise OnnxExportError(f"{what}: {len(got)} outputs, expected {len(want)}")
    worst = 0.0
    for i, (w, o) in enumerate(zip(want, got)):
        if tuple(w.shape) != tuple(o.shape):
            raise OnnxExportError(f"{what}: output {i} has shape {list(o.shape)}, expected {list(w.shape)}")
        if w.dtype.kind in "fc":
            err = float(np.max(np.abs(w.astype(np.float64) - o.astype(np.float64)))) if w.size else 0.0
            worst = max(worst, err)
            if not np.allclose(w, o, atol=atol, rtol=rtol, equal_nan=True):
                raise OnnxExportError(f"{what}: output {i} differs by up to {err:.3g} (atol {atol})")
        elif not np.array_equal(w, o):
            raise OnnxExportError(f"{what}: output {i} differs")
    return worst
