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


def test_image_classifier_reads_signals():
    """An image network on a (C, L) signal task reads the signal as a one-pixel-high image: the same module as the
    network retargeted to (C, 1, L) images, behind an unsqueeze."""
    from mad.graph.passes import retarget

    from mad.graph import GraphBuilder

    b = GraphBuilder("cnn32")  # built for 32x32 colour images; its layers can also take a height of 1
    h = b.op("conv2d", b.input("pixel_values", ("B", 3, 32, 32)), out_channels=8, kernel_size=3, padding=1)
    h = b.op("max_pool2d", b.op("relu", b.op("batch_norm", h)), kernel_size=3, stride=2, padding=1)
    b.output(b.op("linear", b.op("flatten", b.op("adaptive_avg_pool2d", h, output_size=[1, 1]), start_dim=1),
                  out_features=4))
    g = b.build()
    info = tasks.info("mnist1d")
    g2 = tasks.fit(g, "mnist1d")
    assert g2.inputs[0].shape == ["B", *info.input_shape] and g2.meta["retarget"]["as_image"] == [1, 1, 40]
    image = retarget(g, (1, 1, 40), num_classes=info.num_classes)
    assert len(g2.nodes) == len(image.nodes) + 1 and g2.num_params == image.num_params
    m2, m = g2.to_module().eval(), image.to_module().eval()
    m2.load_state_dict(m.state_dict())
    x = torch.rand(3, *info.input_shape)
    torch.testing.assert_close(m2(x), m(x[:, :, None, :]), rtol=0, atol=0)
    torch.nn.functional.cross_entropy(m2.train()(x), torch.zeros(3, dtype=torch.long)).backward()


def test_signal_as_image_undoes_image_as_signal():
    """An image network put on a signal task is, without its unsqueeze, the network retargeted to (C, 1, L) images:
    the same nodes, edges and inputs, the same hash, the same outputs; and image_as_signal puts it back."""
    from mad.graph.passes import image_as_signal, retarget, signal_as_image

    g = sample(1, RandomSpaceConfig(modality="image", image_shape=(1, 1, 40), num_classes=10, **SMALL))
    signal = tasks.fit(g, "mnist1d")
    image = retarget(g, (1, 1, 40), num_classes=10)
    back = signal_as_image(signal.copy())
    assert back.inputs == image.inputs and back.inputs[0].dims == ["batch", "channels", "height", "width"]
    for key in ("nodes", "edges", "outputs"):
        assert back.to_dict()[key] == image.to_dict()[key]
    assert back.wl_hash() == image.wl_hash() and image_as_signal(back.copy()).wl_hash() == signal.wl_hash()
    m, m2 = back.to_module().eval(), signal.to_module().eval()
    m.load_state_dict(m2.state_dict())
    x = torch.rand(3, 1, 40)
    torch.testing.assert_close(m(x[:, :, None, :]), m2(x), rtol=0, atol=0)


def test_signal_as_image_refuses_other_graphs():
    from mad.graph.passes import signal_as_image

    image = sample(1, RandomSpaceConfig(modality="image", image_shape=(1, 1, 40), num_classes=10, **SMALL))
    with pytest.raises(GraphError, match=r"\(B, C, L\) input"):
        signal_as_image(image)
    signal = tasks.fit(image, "mnist1d")
    user = signal.successors(signal.input_node(signal.inputs[0].name))[0]
    signal.nodes[user].attrs["dim"] = 1  # an unsqueeze elsewhere is not image_as_signal's
    with pytest.raises(GraphError, match="unsqueeze at dim 2"):
        signal_as_image(signal)


def test_image_as_signal_needs_height_one():
    from mad.graph.passes import image_as_signal

    g = sample(1, RandomSpaceConfig(modality="image", **SMALL))
    with pytest.raises(GraphError, match=r"\(B, C, 1, L\)"):
        image_as_signal(g)


def test_fit_names_what_does_not_fit():
    g = sample(2, RandomSpaceConfig(modality="sequence", **SMALL))
    with pytest.raises(GraphError, match="rank 3"):
        tasks.fit(g, "mnist1d")
    with pytest.raises(tasks.TaskError, match="unknown task"):
        tasks.fit(g, "imagenet")
