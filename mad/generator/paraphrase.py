"""paraphrase(): many researcher-style requests for one graph, to train a prompt encoder on varied wording.

Each call picks a template (a short "I need a ... for ..." request, a constraint
list, bullet points, a keyword string, a question, or the graph's own
description with its exact size replaced by a budget), a random subset of the
graph's true constraints and a synonym for each ("RMSNorm" / "RMS norm",
"skip connections" / "residual connections", "GQA" / "grouped-query attention").
Budgets are stated as a rounded-up limit ("under 300k params"), so the graph meets
every constraint the prompt states: :func:`~mad.generator.prompt.parse_prompt` reads
the prompt back into constraints the graph satisfies (up to the rare word the parser
reads differently).

Example:
    >>> import random
    >>> from mad.generator.constraints import Constraints
    >>> c = Constraints(modality="image", input_shape=(1, 28, 28), num_classes=10, family="cnn", max_params=81_234)
    >>> a = paraphrase("", c, random.Random(0))
    >>> a == paraphrase("", c, random.Random(0))
    True
"""

from __future__ import annotations

import math
import random
import re

from mad.data.describe import GraphFacts

from .constraints import Constraints, constraints_from_facts

__all__ = ["paraphrase", "nice_ceiling", "format_count"]

_NOUNS = {
    "cnn": ["CNN", "convnet", "convolutional network", "conv net", "convolutional neural network"],
    "hybrid": ["hybrid conv-attention network", "hybrid convolution-attention model", "hybrid CNN-transformer"],
    "vit": ["ViT", "vision transformer", "patch-based transformer"],
    "transformer": ["transformer"],
    "encoder-only": ["transformer encoder", "BERT-style encoder", "encoder-only transformer",
                     "bidirectional transformer"],
    "decoder-only": ["decoder-only transformer", "GPT-style model", "causal transformer", "autoregressive transformer"],
    "encoder-decoder": ["encoder-decoder transformer", "seq2seq transformer"],
    "mlp": ["MLP", "multilayer perceptron"],
    "rnn": ["recurrent network", "RNN"],
    "mixer": ["MLP-Mixer"],
    None: ["model", "network", "architecture", "neural net"],
}
_ATTENTION = {"multi-head": ["multi-head attention", "MHA", "standard multi-head attention"],
              "grouped-query": ["grouped-query attention", "GQA"], "multi-query": ["multi-query attention", "MQA"],
              "any": ["some self-attention", "self-attention layers"], "none": ["no attention"]}
_NORMS = {"layer_norm": ["LayerNorm", "layer norm", "layernorm"], "rms_norm": ["RMSNorm", "RMS norm", "rmsnorm"],
          "batch_norm": ["BatchNorm", "batch norm", "batchnorm", "BN"], "group_norm": ["GroupNorm", "group norm"],
          "instance_norm": ["InstanceNorm", "instance norm"], "none": ["no normalization"]}
_ACTS = {"relu": ["ReLU", "relu"], "relu6": ["ReLU6"], "gelu": ["GELU"], "silu": ["SiLU", "swish"],
         "hardswish": ["hard-swish", "h-swish", "hardswish"], "mish": ["Mish"], "elu": ["ELU"], "selu": ["SELU"],
         "celu": ["CELU"], "leaky_relu": ["leaky ReLU"], "softplus": ["softplus"], "hardsigmoid": ["hard-sigmoid"],
         "hardtanh": ["hardtanh"], "prelu": ["PReLU"], "tanh": ["tanh"], "sigmoid": ["sigmoid"]}
_MLPS = {"swiglu": ["SwiGLU MLPs", "SwiGLU feed-forward blocks", "a SwiGLU FFN"],
         "geglu": ["GeGLU MLPs", "GeGLU feed-forward blocks"], "reglu": ["ReGLU MLPs", "ReGLU feed-forward blocks"]}
_POSITIONS = {"rotary": ["rotary embeddings", "RoPE", "rotary position embeddings"],
              "learned": ["learned position embeddings", "learned positional embeddings",
                          "learnable positional encodings"]}
_CONVS = {"depthwise": ["depthwise convolutions", "depthwise-separable convs", "depth-wise convs"],
          "dilated": ["dilated convolutions", "atrous convolutions"], "grouped": ["grouped convolutions"]}
_PARAM_BUDGET = ["under {} parameters", "under {} params", "at most {} params", "< {} params",
                 "a budget of {} parameters", "fewer than {} parameters", "below {} params"]
_FLOP_BUDGET = ["under {} FLOPs", "at most {} FLOPs", "below {} FLOPs"]
_MANTISSAS = (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8)


def nice_ceiling(n: int, steps: int = 0) -> int:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) >= ``n``,
    then ``steps`` round numbers further up. ``nice_ceiling(81234) == 100000``."""
    if n <= 1:
        return 1
    exp = int(math.floor(math.log10(n)))
    ladder = [int(round(m * 10 ** e)) for e in range(max(0, exp - 1), exp + 3) for m in _MANTISSAS]
    ups = [v for v in ladder if v >= n]
    return ups[min(steps, len(ups) - 1)]


def format_count(n: int, rng: random.Random) -> str:
    """``n`` written the way people write counts: ``300k``, ``300K``, ``0.3M``, ``1.5M``, ``300,000``."""
    styles = ["plain"]
    for div, units in ((1e9, "B"), (1e6, "Mm"), (1e3, "kK")):
        if n >= div:
            text = f"{n / div:.2f}".rstrip("0").rstrip(".")
            styles = [text + u for u in units] + [f"{n:,}"]
            if div == 1e3 and n >= 100_000:
                styles.append(f"{n / 1e6:.2f}".rstrip("0").rstrip(".") + "M")
            break
    style = rng.choice(styles)
    return str(n) if style == "plain" else style


def _flops_text(n: int, rng: random.Random) -> str:
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            value = f"{n / div:.2f}".rstrip("0").rstrip(".")
            return rng.choice([f"{value} {prefix}", f"{value}{prefix} "])
    return f"{n} "


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("s" if n != 1 else "")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" or word.startswith(("MLP", "RNN", "RMS")) else "a"


def _task(c: Constraints, rng: random.Random) -> str:
    """'28x28 grayscale images with 10 classes', 'character-level text with vocabulary 128', ... or ''."""
    kinds = (c.modality or "").split("+")
    shape = c.input_shape
    if "image" in kinds:
        if shape and len(shape) == 3 and all(isinstance(d, int) for d in shape):
            ch, h, w = shape
            opts = {1: [f"{h}x{w} grayscale images", f"{ch}x{h}x{w} images", f"grayscale {h}x{w} inputs"],
                    3: [f"RGB {h}x{w} images", f"{h}x{w} color images", f"{ch}x{h}x{w} images"]}
            text = rng.choice(opts.get(ch, [f"{ch}x{h}x{w} images"]))
        else:
            text = rng.choice(["images", "image classification", "pictures"])
        if c.num_classes:
            k = c.num_classes
            text += rng.choice([f" with {k} classes", f", {k}-way classification", f" ({k} classes)"])
        return text
    if "text" in kinds:
        byte = c.vocab_size == 256 and rng.random() < 0.3
        words = ["character-level text", "token sequences", "text"]
        words += ["language modelling"] if c.family == "decoder-only" else []
        text = "byte-level text" if byte else rng.choice(words)
        if c.vocab_size and not byte:
            v = c.vocab_size
            text += rng.choice([f" with vocabulary {v}", f", a vocab of {v} tokens", f" with a {v}-token vocabulary",
                                f", vocab size {v}"])
        if shape and len(shape) == 1 and isinstance(shape[0], int):
            text += rng.choice([f", sequence length {shape[0]}", f", context of {shape[0]} tokens"])
        return text
    for kind, words in (("audio", ["audio", "speech"]), ("sequence", ["time series", "sequences of vectors"])):
        if kind in kinds:
            return rng.choice(words)
    return ""


def _components(c: Constraints, rng: random.Random) -> list[str]:
    """One phrase per set component, synonyms drawn from ``rng``; negative phrases ("no ...") come last."""
    out: list[str] = []
    family = c.family
    if c.attention and not (c.attention == "none" and family not in ("cnn", "mlp", None)):
        phrase = rng.choice(_ATTENTION[c.attention])
        heads = c.num_heads if c.attention not in ("none", "any") else None
        if heads:
            phrase = rng.choice([f"{phrase} with {_plural(heads, 'head')}", f"{phrase} ({_plural(heads, 'head')})"])
        if c.attention != "multi-head" or family in ("cnn", "hybrid", None) or rng.random() < 0.5:
            out.append(phrase)
        elif heads:
            out.append(rng.choice([_plural(heads, "head"), f"{heads}-head attention",
                                   _plural(heads, "attention head")]))
    elif c.num_heads:
        out.append(_plural(c.num_heads, "attention head"))
    if c.norm:
        phrase = rng.choice(_NORMS[c.norm])
        if c.placement and c.norm != "none" and rng.random() < 0.6:
            phrase = f"{c.placement}-norm {phrase}"
        out.append(phrase)
    if c.activations:
        names = [rng.choice(_ACTS[a]) for a in sorted(c.activations)]
        out.append(" and ".join(names) + rng.choice([" activations", " activation", ""]))
    if c.mlp in _MLPS:
        out.append(rng.choice(_MLPS[c.mlp]))
    if c.position in _POSITIONS:
        out.append(rng.choice(_POSITIONS[c.position]))
    if c.conv_kinds:
        out.extend(rng.choice(_CONVS[k]) for k in sorted(c.conv_kinds))
    if c.depth:
        word = "blocks" if family in ("cnn", "hybrid") else rng.choice(["layers", "blocks"])
        out.append(rng.choice([f"{c.depth} {word}", f"depth {c.depth}"]) if c.depth > 1 else f"1 {word[:-1]}")
    if c.hidden_size and family not in ("cnn", "hybrid"):
        h = c.hidden_size
        out.append(rng.choice([f"hidden size {h}", f"d_model {h}", f"width {h}", f"{h}-dim hidden states"]))
    if c.residual is not None:
        out.append(rng.choice(["residual connections", "skip connections", "shortcut connections"]) if c.residual
                   else rng.choice(["no skip connections", "no residual connections"]))
    if c.downsampling is not None:
        out.append(rng.choice(["downsampling", "strided downsampling", "strided convolutions", "pooling layers"])
                   if c.downsampling else "no downsampling")
    return sorted(out, key=lambda p: p.startswith("no "))  # stable: positives keep their order


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + (", " if items[-1].startswith("no ") else " and ") + items[-1]


def _budget(c: Constraints, rng: random.Random) -> list[str]:
    out = []
    if c.max_params:
        out.append(rng.choice(_PARAM_BUDGET).format(format_count(nice_ceiling(c.max_params, rng.randint(0, 2)), rng)))
    if c.max_flops and rng.random() < 0.35:
        out.append(rng.choice(_FLOP_BUDGET).format(_flops_text(nice_ceiling(c.max_flops, rng.randint(0, 2)), rng))
                   .replace("  ", " "))
    return out


def _from_description(description: str, c: Constraints, budget: list[str], rng: random.Random) -> str:
    text = re.sub(r";\s*[\d.]+[KMBT]? parameters\.\s*$", ".", description.strip())
    if c.downsampling is False:  # its pools keep the resolution: don't let "pooling" read as downsampling
        text = re.sub(r"(?:max|average)(?: and (?:max|average))? pooling(?:, | and )", "", text)
    text = re.sub(r"\s*It has [\d.]+[KMBT]? parameters\.\s*$", "", text)
    if rng.random() < 0.3:
        text = text.split(". ")[0].rstrip(".") + "."
    prefix = rng.choice(["", "", "Something like this: ", "Suggest an architecture like this. ", "Target: "])
    tail = f" Keep it {budget[0]}." if budget and rng.random() < 0.7 else ""
    return prefix + text + tail


def paraphrase(description: str, facts_or_constraints: GraphFacts | Constraints, rng: random.Random) -> str:
    """A researcher-style request for a graph whose description and facts (or true constraints) are given.

    Args:
        description: the graph's description (:func:`~mad.data.describe.describe`); may be empty.
        facts_or_constraints: :class:`~mad.data.describe.GraphFacts` or the graph's true
            :class:`~mad.generator.constraints.Constraints` (:func:`~mad.generator.constraints.constraints_of`,
            which also knows the input shape, classes, residuals and downsampling).
        rng: the only source of randomness: the same state gives the same prompt.

    Example:
        >>> import random
        >>> c = Constraints(modality="text", vocab_size=128, family="decoder-only", position="rotary",
        ...                 norm="rms_norm", num_heads=4, attention="multi-head", max_params=180_000)
        >>> len({paraphrase("", c, random.Random(s)) for s in range(20)}) > 10
        True
    """
    if isinstance(facts_or_constraints, GraphFacts):
        c = constraints_from_facts(facts_or_constraints)
    elif isinstance(facts_or_constraints, Constraints):
        c = facts_or_constraints
    else:
        raise TypeError(f"paraphrase() needs GraphFacts or Constraints, got {type(facts_or_constraints).__name__}; "
                        "pass mad.data.describe.analyze(graph) or constraints_of(graph)")
    budget = _budget(c, rng)
    if description.strip() and rng.random() < 0.15:
        return _from_description(description, c, budget, rng)

    noun = rng.choice(_NOUNS.get(c.family, _NOUNS[None]))
    task = _task(c, rng) if rng.random() < 0.8 else ""
    comps = _components(c, rng)
    keep = [p for p in comps if rng.random() < 0.55]
    if not keep and comps:
        keep = [rng.choice(comps)]
    keep = sorted(keep, key=lambda p: p.startswith("no "))
    budget = [b for b in budget if rng.random() < 0.75]
    size = rng.choice(["", "", "small ", "compact ", "tiny ", "lightweight "])
    for_task = f" for {task}" if task else ""

    template = rng.randrange(7)
    if template == 0:
        parts = keep + budget
        tail = f" with {_join(parts)}" if parts else ""
        return f"I need {_article(size + noun)} {size}{noun}{for_task}{tail}."
    if template == 1:
        items = keep + budget
        head = f"{noun[0].upper()}{noun[1:]}{for_task}"
        return f"{head}: {', '.join(items)}." if items else f"{head}."
    if template == 2:
        body = f"Looking for {_article(size + noun)} {size}{noun}"
        body += f" with {_join(keep)}" if keep else ""
        body += f"{for_task}" if task and rng.random() < 0.5 else ""
        return body + (", " + " and ".join(budget) if budget else "") + "."
    if template == 3:
        items = [noun] + ([task] if task else []) + keep + budget
        return "Requirements:\n" + "\n".join(f"- {i}" for i in items)
    if template == 4:
        return ", ".join([noun] + ([task] if task else []) + keep + budget)
    if template == 5:
        text = f"Design {_article(noun)} {noun}{for_task}"
        text += f" using {_join(keep)}" if keep else ""
        return text + (f"; keep it {' and '.join(budget)}." if budget else ".")
    text = f"Can you suggest {_article(size + noun)} {size}{noun}{for_task}?"
    if keep:
        text += f" It should have {_join(keep)}."
    return text + (f" Budget: {', '.join(budget)}." if budget else "")
