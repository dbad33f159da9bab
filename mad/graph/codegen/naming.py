"""Names in the generated file: forward's variables, the class name, and which module attributes are safe."""
from __future__ import annotations

import builtins
import functools
import keyword
import re

from torch import nn

# names forward reads: an input may not take them (other builtins it may shadow)
_FORWARD_GLOBALS = {"self", "torch", "nn", "F", "float", "next", "base64", "_tensor_from_base64"}
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | _FORWARD_GLOBALS
_GENERIC = {"dense", "proj", "fc", "linear", "conv", "norm", "output", "out", "layer", "lin", "weight", "bias",
            "act", "mlp", "ffn", "block", "module", "net", "head", "layers", "attention", "attn", "dropout", "drop",
            "layer_norm", "ln", "activation", "convolution", "normalization", "bn", "batch_norm"}
_OP_STEMS = {
    "scaled_dot_product_attention": "attn", "_unsafe_view": "view", "_to_copy": "to", "to_dtype": "to",
    "to_dtype_layout": "to", "to_device": "to", "lift_fresh_copy": "clone", "getitem": "item",
    "constant_pad_nd": "pad", "split_with_sizes": "split", "tensor_split_indices": "split",
    "tensor_split": "split", "arange_start": "arange", "arange_start_step": "arange", "max_dim": "max",
    "min_dim": "min", "pow_scalar_base": "pow", "pow_tensor": "pow", "masked_fill_tensor": "masked_fill",
    "repeat_interleave_tensor": "repeat_interleave", "div_mode": "div", "rsub_tensor": "rsub",
}
_TUPLE_NAMES = {"max_dim": ("values", "indices"), "min_dim": ("values", "indices"), "sort": ("values", "indices"),
                "topk": ("values", "indices"), "var_mean": ("var", "mean")}


def _snake(s: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s)
    s = re.sub(r"\W+", "_", s).strip("_").lower()
    return s or "v"


def _scope_stem(path: str) -> str:
    """Variable stem of a module path: its last part (with the parent when that part says little),
    prefixed by the block it sits in (``encoder.layer.1.attention.self.query`` -> ``layer1_query``)."""
    parts = [p for p in path.split(".") if p]
    if not parts:
        return ""
    last = parts[-1]
    stem = last
    if (last.isdigit() or _snake(last) in _GENERIC or len(last) <= 2) and len(parts) > 1:
        parent = parts[-2]
        if parent.isdigit() and len(parts) > 2:
            return _snake(f"{parts[-3]}{parent}_{last}")
        stem = f"{parent}_{last}" if not last.isdigit() else f"{parent}{last}"
    if stem.isdigit():
        return ""  # a numbered child of the model itself: the op names it
    blocks = [i for i, p in enumerate(parts[:-2]) if p.isdigit() and i > 0]
    if blocks and not last.isdigit():
        i = blocks[-1]
        stem = f"{parts[i - 1]}{parts[i]}_{stem}"
    return _snake(stem)


def _op_stem(op: str) -> str:
    stem = _OP_STEMS.get(op, op)
    for suffix in ("_scalar", "_tensor", "_all"):
        stem = stem.removesuffix(suffix)
    return stem.lstrip("_") or "v"


class _Namer:
    """Unique Python identifiers for forward's variables."""

    def __init__(self, taken: set[str]) -> None:
        self.used = set(_RESERVED) | taken

    def __call__(self, stem: str) -> str:
        stem = _snake(stem)
        if not stem[0].isalpha():
            stem = "v_" + stem
        if stem in _RESERVED:
            stem += "_"
        if stem not in self.used:
            self.used.add(stem)
            return stem
        base = stem.rstrip("_") or stem
        i = 1
        while f"{base}_{i}" in self.used:
            i += 1
        self.used.add(f"{base}_{i}")
        return f"{base}_{i}"


def _class_name(name: str) -> str:
    parts = re.split(r"[^0-9A-Za-z]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p)
    if not out or not out[0].isalpha():
        out = "Model" + out
    return out if not keyword.iskeyword(out) else out + "Model"


@functools.lru_cache(maxsize=4096)
def _safe_attr(owner_kind: str, name: str) -> bool:
    """``name`` can be read and written as ``module.name`` on a module of ``owner_kind``."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
        return False
    fresh = {"plain": nn.Module(), "list": nn.ModuleList(), "dict": nn.ModuleDict()}[owner_kind]
    return not hasattr(fresh, name)
