"""Zero-cost proxies on an image graph and a token LM graph: finite, reproducible, and their invariances."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from train_nets import CHARS, LinearLM, TinyCNN, TinyLM

from mad.train import TrainError, proxies

IMAGE = dict(task="digits", task_options=None)
TOKENS = dict(task="chars", task_options=CHARS)


@pytest.fixture(scope="module")
def image_scores(cnn_graph):
    return proxies.compute(cnn_graph, "digits", batch_size=32, seed=0)


@pytest.fixture(scope="module")
def lm_scores(lm_graph):
    return proxies.compute(lm_graph, "chars", batch_size=32, seed=0, task_options=CHARS)


@pytest.mark.parametrize("which", ["image", "lm"])
def test_every_proxy_is_a_finite_number(which, image_scores, lm_scores):
    scores = image_scores if which == "image" else lm_scores
    assert list(scores) == list(proxies.PROXIES) == ["num_params", "flops", "synflow", "naswot", "grad_norm"]
    for name, value in scores.items():
        assert isinstance(value, (int, float)) and math.isfinite(value), (name, value)
    assert scores["synflow"] > 0 and scores["grad_norm"] > 0 and scores["flops"] > 0


def test_num_params_and_flops_come_from_the_graph(cnn_graph, lm_graph, image_scores, lm_scores):
    assert image_scores["num_params"] == cnn_graph.num_params == proxies.num_params(cnn_graph)
    assert lm_scores["num_params"] == lm_graph.num_params
    g = cnn_graph.copy()
    g.dims["B"] = 1
    assert image_scores["flops"] == g.infer().flops  # one example
    g = lm_graph.copy()
    g.dims.update(B=1, T=CHARS["seq_len"])
    assert lm_scores["flops"] == g.infer().flops  # one sequence of the task's length


def test_same_seed_same_scores_and_seed_matters(cnn_graph, image_scores):
    assert proxies.compute(cnn_graph, "digits", batch_size=32, seed=0) == image_scores
    other = proxies.compute(cnn_graph, "digits", ["synflow", "naswot"], batch_size=32, seed=1)
    assert other["synflow"] != image_scores["synflow"] and other["naswot"] != image_scores["naswot"]


def test_order_of_proxies_does_not_matter(cnn_graph, image_scores):
    names = ["grad_norm", "naswot", "synflow"]
    assert proxies.compute(cnn_graph, "digits", names, batch_size=32) == {n: image_scores[n] for n in names}


def test_synflow_is_data_free_for_images(cnn_graph, image_scores):
    # synflow reads one all-ones input: the batch (size, choice) does not enter it
    assert proxies.synflow(cnn_graph, "digits", batch_size=8, seed=0) == image_scores["synflow"]


def test_naswot_is_invariant_to_the_order_of_examples():
    torch.manual_seed(0)
    m = TinyCNN()
    x = torch.rand(24, 1, 8, 8)
    perm = torch.randperm(24)
    assert proxies.naswot_score(m, x[perm]) == pytest.approx(proxies.naswot_score(m, x), rel=1e-9)


def test_naswot_without_activations_reads_the_head_input(vocab):
    torch.manual_seed(0)
    value = proxies.naswot(LinearLM(vocab), "chars", batch_size=16, task_options=CHARS)
    assert math.isfinite(value)


def test_module_gives_the_same_scores_as_its_graph(cnn_graph):
    # a graph built with seed s has the init of the module class built after manual_seed(s)
    torch.manual_seed(0)
    module = TinyCNN()
    g_scores = proxies.compute(cnn_graph, "digits", ["num_params", "synflow", "naswot"], batch_size=16)
    m_scores = proxies.compute(module, "digits", ["num_params", "synflow", "naswot"], batch_size=16)
    assert m_scores == pytest.approx(g_scores, rel=1e-9)


def test_module_is_not_changed_and_lm_module_works(vocab):
    torch.manual_seed(0)
    m = TinyLM(vocab)
    before = copy.deepcopy(m.state_dict())
    scores = proxies.compute(m, "chars", batch_size=16, task_options=CHARS)
    assert all(math.isfinite(v) for v in scores.values())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items()) and m.training


def test_unknown_proxy_and_mismatched_model(cnn_graph):
    with pytest.raises(TrainError, match="unknown proxies snip; known: num_params, flops"):
        proxies.compute(cnn_graph, "digits", ["snip"])
    with pytest.raises(TrainError, match="expected input"):
        proxies.compute(cnn_graph, "chars", task_options=CHARS)
