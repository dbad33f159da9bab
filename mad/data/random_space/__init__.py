"""A random architecture space built on :class:`~mad.graph.GraphBuilder`.

In the spirit of DeepNets-1M, :func:`sample` draws image classifiers (a stem,
stages of small random cells, a pooled linear head; :mod:`.cnn`) or sequence
models (token embedding, random transformer-block variants, an LM head;
:mod:`.transformer`) and returns them as :class:`~mad.graph.ArchGraph` s with a
symbolic batch dim ``B`` (and sequence dim ``T``), so they run at any batch
size. A sample is a pure function of its seed and the
:class:`RandomSpaceConfig`: the same seed gives the same JSON.

Every node is added through the builder, which checks it and infers its shape
at once; FLOPs are summed as nodes are added, so the parameter and FLOP ranges
are enforced by rejection without an interpreter walk per try.

A sample's ``meta["hparams"]`` is its genotype (:mod:`.genotype`): :func:`build`
turns a genotype back into its graph and :func:`mutate` changes one of its
:func:`genes`, e.g. for regularized evolution.

Example:
    >>> cfg = RandomSpaceConfig(modality="image", image_shape=(1, 28, 28), max_params=500_000)
    >>> g = sample(7, cfg)
    >>> g.meta["family"], g.meta["num_params"] <= 500_000, g.inputs[0].shape
    ('random-cnn', True, ['B', 1, 28, 28])
    >>> logits = g.to_module()(*g.example_inputs())   # (2, 10)
"""

from .cnn import sample_image_classifier
from .config import CELL_OPS, SPACE_VERSION, RandomSpaceConfig, RandomSpaceError, config_dict
from .genotype import build, genes, mutate
from .sampling import sample, sample_many
from .transformer import sample_sequence_model

__all__ = [
    "CELL_OPS",
    "SPACE_VERSION",
    "RandomSpaceConfig",
    "RandomSpaceError",
    "build",
    "config_dict",
    "genes",
    "mutate",
    "sample",
    "sample_image_classifier",
    "sample_many",
    "sample_sequence_model",
]
