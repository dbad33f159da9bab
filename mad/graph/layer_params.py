"""Parameter shapes of layer ops from their sizes and their input shape.

A layer node (``linear``, ``conv2d``, ``layer_norm``, ``embedding``...) owns
its parameters as ``params`` (role -> shape). Those shapes follow from a few
*sizes* a person states (``out_features``, ``out_channels``, ``kernel_size``,
``bias``, ``affine``...) and from the shape of the layer's input. One
:class:`LayerRule` per op, kept in :data:`LAYER_RULES`, says

- which keyword sizes the layer takes and their defaults (``sizes``);
- the parameter shapes they give on an input shape (``params``);
- the sizes a node already has, read back from its params (``sizes_of``),
  so that a pass can re-derive parameter shapes when the input changes
  (``retarget`` changing the stem's input channels keeps ``out_channels``);
- attrs the layer needs filled in when not given (``defaults``: batch norm's
  ``training``, ``momentum``...).

Used by :class:`~mad.graph.GraphBuilder` and by ``mad.graph.passes``.

Example:
    >>> layer_params("conv2d", [[2, 3, 32, 32]], {}, {"out_channels": 16, "kernel_size": 3})
    {'weight': [16, 3, 3, 3], 'bias': [16]}
    >>> sizes_of("linear", {"weight": [10, 64]}, {})
    {'out_features': 10, 'bias': False}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .arch_graph import GraphError

__all__ = ["LayerRule", "LAYER_RULES", "layer_params", "sizes_of", "is_layer", "layer_attrs"]

Shape = list[Any]


def _concrete(dim: Any, op: str, what: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise GraphError(
            f"{op}: {what} is {dim!r}, not a concrete int; parameter shapes must be concrete "
            "(a layer may not act on the batch or sequence dim)"
        )
    return dim


def _rank(op: str) -> int:
    for k in (1, 2, 3):
        if f"{k}d" in op:
            return k
    return 1


def _ks(value: Any, op: str) -> list[int]:
    n = _rank(op)
    ks = [value] * n if isinstance(value, int) else list(value)
    if len(ks) != n:  # a 2-d kernel on conv1d would build a weight the op cannot run with
        raise GraphError(f"{op}: kernel_size {value!r} has {len(ks)} dims; {op} takes {n}")
    return ks


@dataclass(frozen=True)
class LayerRule:
    """How one layer op's parameter shapes follow from its sizes and input shape.

    Args:
        sizes: keyword sizes and their defaults (``None``: required).
        params: ``params(in_shapes, attrs, sizes) -> {role: shape}``.
        sizes_of: ``sizes_of(params, attrs) -> sizes`` (inverse of ``params``).
        defaults: attrs filled in when the caller leaves them out.
    """

    sizes: dict[str, Any]
    params: Callable[[list[Shape], dict[str, Any], dict[str, Any]], dict[str, list[int]]]
    sizes_of: Callable[[dict[str, list[int]], dict[str, Any]], dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)


def _with_bias(params: dict[str, list[int]], bias: bool, n: int) -> dict[str, list[int]]:
    if bias:
        params["bias"] = [n]
    return params


def _linear(in_shapes, attrs, s):
    fin = _concrete(in_shapes[0][-1], "linear", "the input's last dim (in_features)")
    return _with_bias({"weight": [s["out_features"], fin]}, s["bias"], s["out_features"])


def _conv(op: str, transposed: bool):
    def params(in_shapes, attrs, s):
        x = in_shapes[0]
        if len(x) < 2 + _rank(op) - 1:
            raise GraphError(f"{op}: input of shape {x} has no channel dim for a {_rank(op)}-d convolution")
        cin = _concrete(x[1] if len(x) > _rank(op) + 1 else x[0], op, "the input's channel dim")
        groups = attrs.get("groups", 1) or 1
        cout, k = s["out_channels"], _ks(s["kernel_size"], op)
        if cin % groups or cout % groups:
            raise GraphError(f"{op}: groups={groups} must divide in_channels={cin} and out_channels={cout}")
        w = [cin, cout // groups, *k] if transposed else [cout, cin // groups, *k]
        return _with_bias({"weight": w}, s["bias"], cout)

    def sizes(params, attrs):
        w = params["weight"]
        groups = attrs.get("groups", 1) or 1
        cout = w[1] * groups if transposed else w[0]
        return {"out_channels": cout, "kernel_size": list(w[2:]), "bias": "bias" in params}

    return LayerRule({"out_channels": None, "kernel_size": None, "bias": True}, params, sizes)


def _norm_shape(in_shapes, attrs):
    if "normalized_shape" in attrs:
        return list(attrs["normalized_shape"])
    return [in_shapes[0][-1]]


def _layer_norm(in_shapes, attrs, s):
    shape = [_concrete(d, "layer_norm", "normalized_shape") for d in _norm_shape(in_shapes, attrs)]
    if not s["affine"]:
        return {}
    return {"weight": shape, "bias": shape} if s["bias"] else {"weight": shape}


def _rms_norm(in_shapes, attrs, s):
    shape = [_concrete(d, "rms_norm", "normalized_shape") for d in _norm_shape(in_shapes, attrs)]
    return {"weight": shape} if s["affine"] else {}


def _channels(op: str):
    def params(in_shapes, attrs, s):
        x = in_shapes[0]
        if len(x) < 2:
            raise GraphError(f"{op}: input of shape {x} has no channel dim (dim 1)")
        c = _concrete(x[1], op, "the input's channel dim (dim 1)")
        out: dict[str, list[int]] = {}
        if s["affine"]:
            out = {"weight": [c], "bias": [c]}
        if s.get("track_running_stats"):
            out |= {"running_mean": [c], "running_var": [c]}
        return out

    return params


def _embedding(in_shapes, attrs, s):
    return {"weight": [s["num_embeddings"], s["embedding_dim"]]}


def _prelu(in_shapes, attrs, s):
    return {"weight": [s["num_parameters"]]}


LAYER_RULES: dict[str, LayerRule] = {
    "linear": LayerRule(
        {"out_features": None, "bias": True},
        _linear,
        lambda p, a: {"out_features": p["weight"][0], "bias": "bias" in p},
    ),
    "layer_norm": LayerRule(
        {"affine": True, "bias": True},
        _layer_norm,
        lambda p, a: {"affine": "weight" in p, "bias": "bias" in p or "weight" not in p},
        defaults={"eps": 1e-5},
    ),
    "rms_norm": LayerRule({"affine": True}, _rms_norm, lambda p, a: {"affine": "weight" in p}, defaults={"eps": 1e-6}),
    "group_norm": LayerRule(
        {"affine": True}, _channels("group_norm"), lambda p, a: {"affine": "weight" in p}, defaults={"eps": 1e-5}
    ),
    "batch_norm": LayerRule(
        {"affine": True, "track_running_stats": True},
        _channels("batch_norm"),
        lambda p, a: {"affine": "weight" in p, "track_running_stats": "running_mean" in p},
        defaults={"training": False, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True},
    ),
    "instance_norm": LayerRule(
        {"affine": False, "track_running_stats": False},
        _channels("instance_norm"),
        lambda p, a: {"affine": "weight" in p, "track_running_stats": "running_mean" in p},
        defaults={"use_input_stats": True, "momentum": 0.1, "eps": 1e-5, "cudnn_enabled": True},
    ),
    "embedding": LayerRule(
        {"num_embeddings": None, "embedding_dim": None},
        _embedding,
        lambda p, a: {"num_embeddings": p["weight"][0], "embedding_dim": p["weight"][1]},
    ),
    "prelu": LayerRule({"num_parameters": 1}, _prelu, lambda p, a: {"num_parameters": p["weight"][0]}),
}
for _op in ("conv1d", "conv2d", "conv3d", "conv1d_padding", "conv2d_padding"):
    LAYER_RULES[_op] = _conv(_op, transposed=False)
for _op in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
    LAYER_RULES[_op] = _conv(_op, transposed=True)


def is_layer(op: str) -> bool:
    """Whether ``op`` has a :class:`LayerRule` (its params follow from sizes)."""
    return op in LAYER_RULES


def layer_params(op: str, in_shapes: list[Shape], attrs: dict[str, Any], sizes: dict[str, Any]) -> dict[str, list[int]]:
    """Parameter shapes (role -> shape) of layer ``op`` with ``sizes`` on inputs of ``in_shapes``.

    Missing sizes take their defaults; a missing required size raises
    :class:`GraphError` naming it.
    """
    rule = LAYER_RULES[op]
    unknown = sorted(set(sizes) - set(rule.sizes))
    if unknown:
        raise GraphError(f"{op}: unknown size {unknown[0]!r}; {op} takes sizes {sorted(rule.sizes)}")
    full = dict(rule.sizes) | dict(sizes)
    missing = [k for k, v in full.items() if v is None]
    if missing:
        raise GraphError(f"{op}: missing size {missing[0]!r} (e.g. {op}(x, {missing[0]}=...))")
    for k, v in full.items():
        if isinstance(v, bool) != isinstance(rule.sizes[k], bool) and rule.sizes[k] is not None:
            raise GraphError(f"{op}: size {k!r} must be {type(rule.sizes[k]).__name__}, got {v!r}")
        if not isinstance(v, bool) and isinstance(v, int) and v < 1:
            raise GraphError(f"{op}: size {k!r} must be >= 1, got {v}")
    return rule.params(in_shapes, attrs, full)


def sizes_of(op: str, params: dict[str, list[int]], attrs: dict[str, Any]) -> dict[str, Any]:
    """The sizes of an existing layer node, read from its ``params`` (inverse of :func:`layer_params`)."""
    return LAYER_RULES[op].sizes_of(params, attrs)


def layer_attrs(op: str, in_shapes: list[Shape], attrs: dict[str, Any], sizes: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` completed for a layer: its defaults, ``normalized_shape`` (the last
    dim) for layer/RMS norms, and a null ``bias`` when a linear/conv owns none."""
    rule = LAYER_RULES[op]
    out = dict(rule.defaults) | dict(attrs)
    if op in ("layer_norm", "rms_norm") and "normalized_shape" not in out and in_shapes and in_shapes[0]:
        out["normalized_shape"] = [in_shapes[0][-1]]
    if "bias" in rule.sizes and op not in ("layer_norm",) and not sizes.get("bias", rule.sizes["bias"]):
        out["bias"] = None
    return out
