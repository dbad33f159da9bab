"""Shared test setup: hypothesis profiles, determinism, small hand-built graphs.

Hypothesis profiles (pick one with ``HYPOTHESIS_PROFILE=<name>``):
``default`` (25 examples per property, used in CI), ``thorough`` (300).
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

from mad.graph import ArchGraph, TensorSpec

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="module")
def one_thread():
    """Small models run fastest on one thread; several threads thrash on a busy 2-core machine.
    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same torch RNG state."""
    torch.manual_seed(0)
    yield


def build_mlp(batch: int = 2, d_in: int = 4, hidden: int = 8, d_out: int = 3) -> ArchGraph:
    """input x (batch, d_in) -> fc1 (linear) -> relu -> fc2 (linear)."""
    g = ArchGraph("mlp", source="test", inputs=[TensorSpec("x", [batch, d_in])])
    x = g.add_node("input", attrs={"name": "x"})
    h = g.add_node("linear", [x], params={"weight": [hidden, d_in], "bias": [hidden]}, scope="fc1")
    r = g.add_node("relu", [h])
    y = g.add_node("linear", [r], params={"weight": [d_out, hidden], "bias": [d_out]}, scope="fc2")
    g.set_outputs([y])
    return g


@pytest.fixture
def mlp() -> ArchGraph:
    """A 2-layer MLP graph (see :func:`build_mlp`), shapes not yet inferred."""
    return build_mlp()
