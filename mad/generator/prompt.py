"""parse_prompt(): a researcher's sentence -> :class:`~mad.generator.constraints.Constraints`.

Keyword and regular-expression parsing, no model: numbers with units ("under 100k
parameters", "5 MFLOPs", "1x28x28", "RGB 32x32", "10 classes", "vocabulary 128",
"4 heads", "6 layers"), component words and their synonyms (RMSNorm, batchnorm,
GELU, SwiGLU, swish, RoPE, GQA, skip connections, strided/pooling, depthwise),
family words (CNN, ViT, decoder-only, BERT-style, ...) and well-known datasets
(MNIST, CIFAR-10/100, ImageNet). A negation right before a word ("no pooling",
"without skip connections") turns a component off.

:data:`PROMPTS` is the fixed benchmark set: prompts whose constraints a graph
can be checked against with :func:`~mad.generator.constraints.check`.

Example:
    >>> c = parse_prompt("a small CNN for 28x28 grayscale digits with batch norm and residual connections "
    ...                  "under 100k parameters")
    >>> c.family, c.input_shape, c.num_classes, c.norm, c.residual, c.max_params
    ('cnn', (1, 28, 28), 10, 'batch_norm', True, 100000)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from .constraints import Constraints
from .paraphrase import paraphrase

__all__ = ["parse_prompt", "parse_count", "BenchmarkPrompt", "PROMPTS", "paraphrase"]

_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "eleven": 11, "twelve": 12, "sixteen": 16, "twenty": 20, "thirty-two": 32, "hundred": 100}
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "g": 1e9, "billion": 1e9, "t": 1e12}
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[+-]?\d+)?"
_NUM = r"(?<![\w.])(" + _DIGITS + "|" + "|".join(sorted(_WORD_NUMBERS, key=len, reverse=True)) + ")"
_UNIT = r"(thousand|million|billion|[kmbg](?![a-z]))?"
_NEGATION = re.compile(r"\b(?:no|without|w/o|not|non|avoid|avoiding|free of)[\s-]+(?:[a-z/]+[\s-]+){0,2}$")

# (pattern, value) tables on lower-cased text: the earliest match wins, except for families, where the first
# rule that matches (the most specific family) wins
_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    (r"\bvit\b|vision[- ]transformer|patch(?:-based)? transformer|image transformer", "vit"),
    (r"encoder[- ]decoder|seq2seq|sequence[- ]to[- ]sequence|t5[- ]style", "encoder-decoder"),
    (r"decoder[- ]only", "decoder-only"),
    (r"encoder[- ]only", "encoder-only"),
    (r"hybrid|conv(?:olution)?[- ]attention|conv(?:olution(?:al)?)?[- ]transformer", "hybrid"),
    (r"\bbert\b|bert[- ]style|bidirectional|transformer encoder|encoder transformer|masked language", "encoder-only"),
    (r"\bgpt\b|gpt[- ]style|causal|autoregressive|language model|\blm\b|next[- ]token", "decoder-only"),
    (r"\blstm\b|\bgru\b|\brnn\b|recurrent", "rnn"),
    (r"mixer", "mixer"),
    (r"transformer", "transformer"),
    (r"\bcnn\b|convnet|conv net|convolutional|resnet|\bconv(?:olution)?s?\b", "cnn"),
    (r"\bmlp\b|multi-?layer perceptron|fully[- ]connected network|feed-?forward network", "mlp"),
)
_ATTENTION_RULES = ((r"grouped[- ]query|\bgqa\b", "grouped-query"), (r"multi[- ]?query|\bmqa\b", "multi-query"),
                    (r"multi[- ]?head|\bmha\b", "multi-head"))
_NORM_RULES = ((r"rms[- ]?norm|root[- ]mean[- ]square norm", "rms_norm"), (r"layer[- ]?norm|\bln\b", "layer_norm"),
               (r"batch[- ]?norm|\bbn\b", "batch_norm"), (r"group[- ]?norm|\bgn\b", "group_norm"),
               (r"instance[- ]?norm", "instance_norm"))
_MLP_RULES = ((r"swiglu", "swiglu"), (r"geglu", "geglu"), (r"reglu", "reglu"))
_ACT_RULES = (  # longer names first: each match is blanked out before the next rule runs
    (r"hard[- ]?swish|\bh[- ]swish", "hardswish"), (r"hard[- ]?sigmoid", "hardsigmoid"),
    (r"leaky[- ]?relu", "leaky_relu"),
    (r"\brelu6\b", "relu6"), (r"\bprelu\b", "prelu"), (r"\brelu\b|rectified linear", "relu"), (r"\bgelu\b", "gelu"),
    (r"\bsilu\b|\bswish\b", "silu"), (r"\bmish\b", "mish"), (r"\bselu\b", "selu"), (r"\bcelu\b", "celu"),
    (r"\belu\b", "elu"), (r"\btanh\b", "tanh"), (r"\bsoftplus\b", "softplus"), (r"\bsigmoid\b", "sigmoid"),
    (r"\bhardtanh\b", "hardtanh"),
)
_POSITION_RULES = ((r"rotary|\brope\b", "rotary"),
                   (r"learn(?:ed|able) (?:absolute )?pos(?:ition(?:al)?)?(?: embeddings?| encodings?)?|"
                    r"absolute pos(?:ition(?:al)?)? (?:embeddings?|encodings?)", "learned"),
                   (r"\bnope\b", "none"))
_CONV_RULES = ((r"depth[- ]?wise|separable conv|mobilenet", "depthwise"), (r"dilated|atrous", "dilated"),
               (r"group(?:ed)? conv|resnext|convolutions \([^)]*grouped", "grouped"))
_IMAGE_WORDS = r"image|picture|photo|pixel|\brgb\b|gr[ae]yscale|mnist|cifar|imagenet|digit|vision|\bvit\b|visual"
_TEXT_WORDS = r"\btext|character|\bchar\b|char-level|byte-level|language|vocab|\bnlp\b|sentence|corpus|\bwords?\b"
_AUDIO_WORDS = r"audio|speech|waveform|spectrogram|sound"
_SEQUENCE_WORDS = r"time[- ]series|sequences? of (?:\d+-d\w* )?(?:vectors|features)|sensor|multivariate"
_DATASETS = (  # name pattern -> (input shape, classes)
    (r"fashion[- ]?mnist|\bmnist\b", (1, 28, 28), 10), (r"cifar[- ]?100", (3, 32, 32), 100),
    (r"cifar(?:[- ]?10)?\b", (3, 32, 32), 10), (r"imagenet", (3, 224, 224), 1000),
)


def parse_count(text: str, unit: str | None = None) -> int:
    """``"100k" -> 100000``, ``"2.5", "m" -> 2500000``, ``"1,000" -> 1000``, ``"ten" -> 10``.

    Raises:
        ValueError: ``text`` is not a number.
    """
    t = text.strip().lower()
    if t in _WORD_NUMBERS:
        value = float(_WORD_NUMBERS[t])
    else:
        m = re.fullmatch("(" + _DIGITS + r")\s*(thousand|million|billion|[kmbgt])?", t)
        if not m:
            raise ValueError(f"not a count: {text!r}; write digits with an optional k/M/B suffix, e.g. '100k'")
        value = float(m.group(1).replace(",", ""))
        unit = unit or m.group(2)
    return int(round(value * _SCALE.get((unit or "").lower(), 1)))


def _negated(text: str, start: int) -> bool:
    return bool(_NEGATION.search(text[max(0, start - 40): start]))


def _first(text: str, rules) -> tuple[str, bool] | None:
    """(value, negated) of the earliest match of any rule's pattern in ``text``."""
    best = None
    for pattern, value in rules:
        m = re.search(pattern, text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), value, _negated(text, m.start()))
    return (best[1], best[2]) if best else None


def _priority(text: str, rules) -> str | None:
    """The value of the first rule with an un-negated match in ``text``."""
    for pattern, value in rules:
        if any(not _negated(text, m.start()) for m in re.finditer(pattern, text)):
            return value
    return None


def _switch(text: str, pattern: str) -> bool | None:
    """True if ``pattern`` occurs un-negated, False if only negated, None if absent."""
    found = [_negated(text, m.start()) for m in re.finditer(pattern, text)]
    if not found:
        return None
    return not all(found)


def _number(text: str, patterns: tuple[str, ...]) -> int | None:
    """The number captured by the earliest match of any pattern."""
    found = [m for m in (re.search(p, text) for p in patterns) if m]
    return parse_count(min(found, key=lambda m: m.start()).group(1)) if found else None


def _image_shape(text: str) -> tuple[int, int, int] | None:
    """The first HxW or CxHxW in ``text`` that is not a kernel or patch size."""
    found: list[tuple[int, ...]] = []
    for m in re.finditer(r"(?<![\d.])(\d+)\s*(?:x|×|by)\s*(\d+)(?:\s*(?:x|×|by)\s*(\d+))?(?![\d.])", text):
        before, after = text[max(0, m.start() - 16): m.start()], text[m.end(): m.end() + 40]
        after = re.split(r"image|input|picture|photo|digit|, |\band\b(?! \d)", after)[0]
        if re.search(r"patch|kernel|filter|stride", before) or re.search(r"patch|conv|kernel|filter|pool", after):
            continue
        dims = tuple(int(g) for g in m.groups() if g)
        if len(dims) == 2 and min(dims) < 4:
            continue
        found.append(dims)
    if not found:
        return None
    dims = next((d for d in found if len(d) == 3), found[0])
    if len(dims) == 3:
        return dims if dims[0] <= 4 or dims[2] > 4 else (dims[2], dims[0], dims[1])
    gray = re.search(r"gr[ae]yscale|gr[ae]y\b|monochrome|single[- ]channel|1[- ]channel|mnist|digit", text)
    rgb = re.search(r"\brgb\b|colou?r|3[- ]channel|cifar|imagenet", text)
    return (1 if gray and not rgb else 3, dims[0], dims[1])


def _modality(text: str, shape: tuple | None, family: str | None) -> str | None:
    image = bool(re.search(_IMAGE_WORDS, text)) or (shape is not None and len(shape) == 3) or family == "vit"
    text_kind = bool(re.search(_TEXT_WORDS, text)) or (not image and bool(re.search(r"\btokens?\b", text)))
    kinds = [k for k, on in (("text", text_kind), ("image", image), ("audio", re.search(_AUDIO_WORDS, text)),
                             ("sequence", re.search(_SEQUENCE_WORDS, text))) if on]
    if "image" in kinds and "text" in kinds and not re.search(r"\btext\b|caption|vocab", text):
        kinds.remove("text")  # "digits", "words" etc. said of an image task
    return "+".join(kinds) if kinds else None


def parse_prompt(text: str, **overrides: Any) -> Constraints:
    """Read the :class:`~mad.generator.constraints.Constraints` a sentence asks for.

    Args:
        text: a request such as ``"decoder-only transformer with rotary attention and RMSNorm for character-level
            text, vocabulary 128, 4 heads"``.
        **overrides: any :class:`Constraints` field (``input_shape=``, ``num_classes=``, ``vocab_size=``,
            ``max_params=``, ``max_flops=``, ...); a value given here wins over the text, ``None`` is ignored.

    A stated parameter or FLOPs count is read as an upper bound whatever the wording ("about 1M parameters").
    Without a channel word an HxW image is taken as RGB, except for digits/MNIST (grayscale).

    Raises:
        TypeError: an override names no :class:`Constraints` field.

    Example:
        >>> c = parse_prompt("decoder-only transformer with rotary attention and RMSNorm for character-level text, "
        ...                  "vocabulary 128, 4 heads", max_params=2_000_000)
        >>> c.family, c.modality, c.position, c.norm, c.vocab_size, c.num_heads, c.max_params
        ('decoder-only', 'text', 'rotary', 'rms_norm', 128, 4, 2000000)
    """
    known = {f.name for f in fields(Constraints)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"parse_prompt() got unknown constraint(s) {unknown}; valid names are {sorted(known)}")
    t = " ".join(text.lower().split())
    c: dict[str, Any] = {}

    m = re.search(_NUM + r"\s*" + _UNIT + r"[\s-]*(?:trainable\s+|learnable\s+)?(?:params?|parameters?|weights)\b", t) \
        or re.search(r"(?:params?|parameters?)(?:\s+(?:budget|count))?\s*(?:of|:|<=?|≤|under|below|at most)\s*"
                     + _NUM + r"\s*" + _UNIT, t)
    if m:
        c["max_params"] = parse_count(m.group(1), m.group(2))
    m = re.search(_NUM + r"\s*" + _UNIT + r"[\s-]*([kmgt])?-?flops?\b", t)
    if m:
        c["max_flops"] = parse_count(m.group(1), m.group(2) or m.group(3))

    family = _priority(t, _FAMILY_RULES)
    if family:
        c["family"] = "hybrid" if family == "cnn" and re.search(r"transformer", t) else family
    shape = _image_shape(t)
    num_classes = _number(t, (_NUM + r"[\s-]*(?:output\s+|target\s+)?(?:classes|class|categories|labels|way)\b",
                              r"(?:classes|num_classes)\s*(?:=|:)\s*(\d+)"))
    for pattern, ds_shape, ds_classes in _DATASETS:
        if re.search(pattern, t):
            shape, num_classes = shape or ds_shape, num_classes or ds_classes
            break
    if num_classes is None and re.search(r"\bdigits?\b", t):
        num_classes = 10
    if num_classes is not None:
        c["num_classes"] = num_classes
    vocab = _number(t, (r"vocab(?:ulary)?(?:[\s_]+size)?\s*(?:of|=|:|is)?\s*(" + _DIGITS + r"k?)\b",
                        "(" + _DIGITS + r"k?)[\s-]*(?:token|word|symbol|character|char)?[\s-]*vocab"))
    if vocab is None and re.search(r"byte[- ]level", t):
        vocab = 256
    if vocab is not None:
        c["vocab_size"] = vocab
    modality = _modality(t, shape, c.get("family"))
    if modality:
        c["modality"] = modality
    seq = _number(t, (r"(?:sequence|seq|context|block)[\s_-]*(?:length|len|size|window)\s*(?:of|=|:|is)?\s*(\d+)",
                      r"context of (\d+)", r"(\d+)[\s-]*tokens?\s+(?:long|of context)"))
    if shape is not None and modality in ("image", None):
        c["input_shape"] = shape
    elif seq is not None:
        c["input_shape"] = (seq,)

    attention = _first(t, _ATTENTION_RULES)
    if attention:
        c["attention"] = "none" if attention[1] else attention[0]
    elif re.search(r"attention[- ]free", t) or _switch(t, r"\b(?:self-)?attention\b") is False:
        c["attention"] = "none"
    elif re.search(r"\battention\b", t) and c.get("family") not in ("vit", "encoder-only", "decoder-only",
                                                                     "encoder-decoder", "transformer", "hybrid"):
        if not re.search(r"(?:rotary|rope)[- ]attention", t):
            c["attention"] = "any"
    heads = _number(t, (_NUM + r"[\s-]*(?:attention\s+|query\s+)?heads?\b", r"(?:num_)?heads\s*(?:=|:)\s*(\d+)"))
    if heads is not None:
        c["num_heads"] = heads
    norm = _first(t, _NORM_RULES)
    if norm:
        c["norm"] = "none" if norm[1] else norm[0]
    elif re.search(r"\b(?:no|without) (?:\w+ )?normali[sz]ation", t):
        c["norm"] = "none"
    m = re.search(r"\b(pre|post)[- ]?(?:norm|ln|layer[- ]?norm)", t)
    if m:
        c["placement"] = m.group(1)
    mlp = _first(t, _MLP_RULES)
    if mlp and not mlp[1]:
        c["mlp"] = mlp[0]
    rest, acts = t, set()
    for pattern, name in _ACT_RULES:
        for m in re.finditer(pattern, rest):
            if not _negated(rest, m.start()):
                acts.add(name)
        rest = re.sub(pattern, lambda m: " " * len(m.group(0)), rest)
    if acts:
        c["activations"] = frozenset(acts)
    position = _first(t, _POSITION_RULES)
    if position:
        c["position"] = "none" if position[1] else position[0]
    elif re.search(r"\b(?:no|without) pos(?:ition(?:al)?)? (?:embeddings?|encodings?)", t):
        c["position"] = "none"
    residual = _switch(t, r"residual|skip[- ]connections?|shortcuts?|resnet")
    if residual is not None:
        c["residual"] = residual
    down = [_switch(t, r"down-?sampl\w*|strided|stride[- ]?2\b")]
    down += [not _negated(t, m.start()) for m in re.finditer(r"(?:(?:max|avg|average)[- ]?)?pool(?:ing|s)?\b", t)
             if not re.search(r"global[\w\s-]{0,10}$", t[max(0, m.start() - 20): m.start()])]
    down = [d for d in down if d is not None]
    if down:
        c["downsampling"] = any(down)
    kinds = {v for p, v in _CONV_RULES for m in re.finditer(p, t) if not _negated(t, m.start())}
    if kinds:
        c["conv_kinds"] = frozenset(kinds)
    depth = _number(t, (_NUM + r"[\s-]*(?:transformer\s+|encoder\s+|decoder\s+|conv(?:olutional)?\s+|residual\s+|"
                        r"hidden\s+|attention\s+)?(?:layers?|blocks?)\b(?!\s+ops?\b|[\s-]*norm)",
                        r"(?:depth|num_layers)\s*(?:of|=|:)?\s*(\d+)"))
    m = re.search(r"(\d+) encoder (?:layers? |blocks? )?and (\d+) decoder (?:layers?|blocks?)", t)
    if m:  # an encoder-decoder counts both stacks
        depth = int(m.group(1)) + int(m.group(2))
    if depth is not None:
        c["depth"] = depth
    hidden = _number(t, (r"(?:hidden|model|embedding|embed)[\s_-]*(?:size|dim\w*|width)\s*(?:of|=|:|is)?\s*(\d+)",
                         r"\bd_?model\s*(?:of|=|:|is)?\s*(\d+)", r"\bwidth\s*(?:of|=|:|is)?\s*(\d+)",
                         r"(\d+)[\s-]*(?:dim\w*|d)\s+(?:hidden|model|embeddings?)"))
    if hidden is not None:
        c["hidden_size"] = hidden

    c.update({k: v for k, v in overrides.items() if v is not None})
    if "modality" not in c and c.get("input_shape") is not None:
        c["modality"] = "image" if len(c["input_shape"]) == 3 else "text" if "vocab_size" in c else None
    return Constraints(**{k: v for k, v in c.items() if v is not None})


@dataclass(frozen=True)
class BenchmarkPrompt:
    """One benchmark request: ``expected`` is what :func:`parse_prompt` reads from ``text`` (a test keeps them equal).

    Args:
        name: a short id, e.g. ``"cnn-mnist-residual"``.
        text: the request, as a researcher would write it.
        expected: the constraints a suggested graph is checked against.
    """

    name: str
    text: str
    expected: Constraints


def _bp(name: str, text: str, **expected: Any) -> BenchmarkPrompt:
    return BenchmarkPrompt(name, text, Constraints(**expected))


# Families asked for are those the default dataset holds: plain/residual/depthwise CNNs, conv nets with attention
# cells, vision transformers, encoder-only and decoder-only transformers. No plain MLP classifiers, MLP-Mixers,
# squeeze-excitation blocks or recurrent nets are in it, so no prompt asks for them. Inputs and heads follow the
# offline tasks (8x8 digits, 28x28 MNIST, 32x32 RGB, character-level text): the dataset's image graphs take
# 3x32x32 and its random transformers a vocabulary of 256, so digits, MNIST and vocabulary-128 prompts are met only
# after retargeting a graph to the task.
PROMPTS: tuple[BenchmarkPrompt, ...] = (
    _bp("cnn-digits8", "a tiny CNN for 8x8 grayscale digits, 10 classes, under 20k parameters",
        family="cnn", modality="image", input_shape=(1, 8, 8), num_classes=10, max_params=20_000),
    _bp("cnn-digits8-bn", "convnet for 8x8 digits with BatchNorm and ReLU, at most 50k params",
        family="cnn", modality="image", input_shape=(1, 8, 8), num_classes=10, norm="batch_norm",
        activations={"relu"}, max_params=50_000),
    _bp("cnn-mnist-residual", "a small CNN for 28x28 grayscale digits with batch norm and residual connections under "
        "100k parameters", family="cnn", modality="image", input_shape=(1, 28, 28), num_classes=10,
        norm="batch_norm", residual=True, max_params=100_000),
    _bp("cnn-mnist-plain", "plain convolutional network for MNIST without skip connections, strided downsampling, "
        "under 200k params", family="cnn", modality="image", input_shape=(1, 28, 28), num_classes=10,
        residual=False, downsampling=True, max_params=200_000),
    _bp("cnn-1x28-flops", "CNN for 1x28x28 inputs with 10 classes, GELU activations, under 5 MFLOPs",
        family="cnn", modality="image", input_shape=(1, 28, 28), num_classes=10, activations={"gelu"},
        max_flops=5_000_000),
    _bp("cnn-cifar-resnet", "ResNet-style CNN for RGB 32x32 images, 10 classes, batchnorm, under 1M parameters",
        family="cnn", modality="image", input_shape=(3, 32, 32), num_classes=10, residual=True, norm="batch_norm",
        max_params=1_000_000),
    _bp("cnn-cifar-depthwise", "a MobileNet-like CNN with depthwise convolutions and hard-swish for CIFAR-10 under "
        "300k params", family="cnn", modality="image", input_shape=(3, 32, 32), num_classes=10,
        conv_kinds={"depthwise"}, activations={"hardswish"}, max_params=300_000),
    _bp("cnn-cifar-dilated", "convolutional net for 3x32x32 color images using dilated and depthwise convolutions, "
        "SiLU activations, 10 classes", family="cnn", modality="image", input_shape=(3, 32, 32), num_classes=10,
        conv_kinds={"dilated", "depthwise"}, activations={"silu"}),
    _bp("cnn-groupnorm-pool", "CNN for 32x32 RGB images with GroupNorm, max pooling and skip connections, below 500k "
        "parameters", family="cnn", modality="image", input_shape=(3, 32, 32), norm="group_norm", downsampling=True,
        residual=True, max_params=500_000),
    _bp("cnn-layernorm-gelu", "ConvNeXt-flavoured CNN for 32x32 RGB pictures: LayerNorm, GELU, depthwise convs, "
        "4 blocks", family="cnn", modality="image", input_shape=(3, 32, 32), norm="layer_norm",
        activations={"gelu"}, conv_kinds={"depthwise"}, depth=4),
    _bp("hybrid-cifar", "hybrid convolution-attention network for 3x32x32 images with multi-head self-attention, "
        "10 classes, under 2M params", family="hybrid", modality="image", input_shape=(3, 32, 32), num_classes=10,
        attention="multi-head", max_params=2_000_000),
    _bp("cnn-attention-cells", "a CNN with some self-attention for RGB 32x32 images, batch norm, under 1M parameters",
        family="cnn", modality="image", input_shape=(3, 32, 32), attention="any", norm="batch_norm",
        max_params=1_000_000),
    _bp("vit-small", "a small ViT for 3x32x32 images with 4 heads and pre-norm LayerNorm under 500k params",
        family="vit", modality="image", input_shape=(3, 32, 32), num_heads=4, placement="pre", norm="layer_norm",
        max_params=500_000),
    _bp("vit-rmsnorm-swiglu", "vision transformer on 32x32 RGB images with RMSNorm and SwiGLU MLPs, 2 layers",
        family="vit", modality="image", input_shape=(3, 32, 32), norm="rms_norm", mlp="swiglu", depth=2),
    _bp("vit-patch", "patch-based transformer for 3x32x32 images, 8x8 patches, GELU, hidden size 64",
        family="vit", modality="image", input_shape=(3, 32, 32), activations={"gelu"}, hidden_size=64),
    _bp("dec-char-rope", "decoder-only transformer with rotary attention and RMSNorm for character-level text, "
        "vocabulary 128, 4 heads", family="decoder-only", modality="text", position="rotary", norm="rms_norm",
        vocab_size=128, num_heads=4),
    _bp("dec-gpt-small", "GPT-style language model over a vocab of 256 tokens, 6 layers, learned position "
        "embeddings, under 2M parameters", family="decoder-only", modality="text", vocab_size=256, depth=6,
        position="learned", max_params=2_000_000),
    _bp("dec-gqa-swiglu", "causal transformer LM with GQA, SwiGLU and RMSNorm, vocabulary 256, context length 64",
        family="decoder-only", modality="text", attention="grouped-query", mlp="swiglu", norm="rms_norm",
        vocab_size=256, input_shape=(64,)),
    _bp("dec-mqa", "decoder-only transformer for byte-level text with multi-query attention, pre-norm, "
        "under 500k params", family="decoder-only", modality="text", vocab_size=256, attention="multi-query",
        placement="pre", max_params=500_000),
    _bp("dec-tiny-flops", "autoregressive transformer for text with 2 blocks, hidden size 64, ReLU MLPs, "
        "under 20 MFLOPs", family="decoder-only", modality="text", depth=2, hidden_size=64, activations={"relu"},
        max_flops=20_000_000),
    _bp("enc-bert", "BERT-style transformer encoder for text classification, vocabulary 256, post-norm LayerNorm, "
        "GELU, 4 layers", family="encoder-only", modality="text", vocab_size=256, placement="post",
        norm="layer_norm", activations={"gelu"}, depth=4),
    _bp("enc-rms-mqa", "encoder-only transformer over token sequences with MQA, RMSNorm, vocab size 256, "
        "under 300k parameters", family="encoder-only", modality="text", attention="multi-query", norm="rms_norm",
        vocab_size=256, max_params=300_000),
    _bp("enc-gqa-heads", "bidirectional transformer for text with grouped-query attention, 8 heads, SiLU, "
        "vocabulary 256", family="encoder-only", modality="text", attention="grouped-query", num_heads=8,
        activations={"silu"}, vocab_size=256),
    _bp("transformer-any", "a transformer for character-level text, vocabulary 128, sequence length 128, "
        "under 1M params and 100 MFLOPs", family="transformer", modality="text", vocab_size=128,
        input_shape=(128,), max_params=1_000_000, max_flops=100_000_000),
)
