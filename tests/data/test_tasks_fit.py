"""tasks.fit: an architecture put on each offline task takes that task's inputs and predicts its targets."""

from __future__ import annotations

import pytest
import torch

from mad.data import tasks
from mad.data.random_space import RandomSpaceConfig, sample
from mad.graph import GraphError

SMALL = dict(max_params=300_000, max_flops=100_000_000)


@pytest.mark.parametrize("task", ["digits", "mnist5k", "cifar10"])
def test_image_classifier_fits_image_tasks(task):
    g = sample(1, RandomSpaceConfig(modality="image", **SMALL))
    info = tasks.info(task)
    g2 = tasks.fit(g, task)
    assert g2.inputs[0].shape == ["B", *info.input_shape]
    x = torch.rand(3, *info.input_shape)
    logits = g2.to_module()(x)
    assert logits.shape == (3, info.num_classes)
    torch.nn.functional.cross_entropy(logits, torch.zeros(3, dtype=torch.long)).backward()


def test_language_model_fits_chars():
    g = sample(2, RandomSpaceConfig(modality="sequence", **SMALL))
    g2 = tasks.fit(g, "chars", seq_len=32)
    ds = tasks.load("chars", "val", seq_len=32)
    x, y = ds[0]
    logits = g2.to_module()(x[None])
    assert logits.shape == (1, 32, ds.vocab_size) and g2.inputs[0].range == [0, ds.vocab_size]
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), y).backward()


def test_fit_names_what_does_not_fit():
    g = sample(1, RandomSpaceConfig(modality="image", **SMALL))
    with pytest.raises(GraphError, match="rank 3"):
        tasks.fit(g, "mnist1d")
    with pytest.raises(tasks.TaskError, match="unknown task"):
        tasks.fit(g, "imagenet")
