"""``bench/ghn_finetune.py``: the starting points it trains from are what its docstring says they are."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from mad.data import tasks
from mad.data.random_space.sampling import sample
from mad.ghn import GHN, GHNConfig, GHNModel
from mad.ghn.encode import encode
from mad.ghn.readout import readout_weight_name
from mad.train.data import TaskData
from mad.train.objective import TaskSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from ghn_finetune import STARTS, paired, starts  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    ghn = GHN(GHNModel(GHNConfig(d=32, layers=1, heads=4, ff=64, pe=8, rank=4, head_norm=True)), device="cpu")
    g = tasks.fit(sample(1), "mnist5k")
    xs = [TaskData(TaskSpec.of("mnist5k"), batch_size=64).train_batch(k)[0] for k in range(8)]  # as predict
    return ghn, g, xs, starts(ghn, g, xs)


def _state(m):
    return {k: v.detach() for k, v in m.named_parameters()}


def test_every_start_is_built_from_what_it_names(setup):
    ghn, g, _, mods = setup
    assert set(mods) == set(STARTS)
    pred = ghn.predict_encoded([encode(g)], "mnist5k")[0][0]
    torch.manual_seed(0)
    d0 = _state(g.to_module("cpu"))
    head = readout_weight_name(g, mods["ghn"], 10)
    assert head is not None
    weights = [k for k, v in pred.items() if v.dim() >= 2 and k != head]
    assert weights
    assert all(torch.equal(v, d0[k]) for k, v in _state(mods["default"]).items())
    for k in weights:  # hidden weights: the fold touches only the output layer
        assert torch.allclose(_state(mods["ghn"])[k], pred[k])
        assert torch.allclose(_state(mods["ghn_default_head"])[k], pred[k])
        assert torch.allclose(_state(mods["ghn_plus_default"])[k], pred[k] + d0[k])
        added = _state(mods["noise_plus_default"])[k] - d0[k]
        assert torch.allclose(added.norm(), pred[k].norm(), rtol=1e-4)
        assert not torch.allclose(added, pred[k])  # noise of its size, not the prediction
    assert torch.equal(_state(mods["ghn_default_head"])[head], d0[head])
    assert not torch.allclose(_state(mods["ghn"])[head], pred[head])  # the head-norm statistics are folded in


def test_the_prediction_start_is_what_ghn_predict_gives(setup):
    ghn, g, _, mods = setup
    ref = ghn.predict(g, "mnist5k")
    got = mods["ghn"].state_dict()
    assert set(got) == set(ref.state_dict())
    for k, v in ref.state_dict().items():  # parameters, the folded output layer and batch-norm statistics
        assert torch.allclose(got[k].float(), v.float(), atol=1e-6), k


def test_paired_counts_and_sign_test():
    c = paired([0.5, 0.6, 0.7, 0.2], [0.4, 0.6, 0.5, 0.3])
    assert (c["wins"], c["losses"], c["ties"], c["graphs"]) == (2, 1, 1, 4)
    assert c["mean_difference"] == pytest.approx(0.05)
    assert c["sign_test_p"] == pytest.approx(1.0)
    assert paired([1.0] * 8, [0.0] * 8)["sign_test_p"] == pytest.approx(2 / 2 ** 8, abs=1e-4)


def test_summary_of_a_subset_of_starts_compares_only_those_that_ran():
    from ghn_finetune import summarise

    recs = [{"id": "a", "status": "completed", "default": {"0": 0.1, "4": 0.5}, "ghn": {"0": 0.2, "4": 0.4}},
            {"id": "b", "status": "completed", "default": {"0": 0.1, "4": 0.5}, "ghn": {"0": 0.3, "4": 0.9}},
            {"id": "c", "status": "error", "error": "x"}]
    s = summarise(recs, 4, {"a": 0.45, "b": 0.95}, ("default", "ghn"))
    assert (s["graphs"], s["failed"]) == (2, 1)
    assert s["mean"] == {"default": {"0": 0.1, "4": 0.5}, "ghn": {"0": 0.25, "4": 0.65}}
    assert s["below_default"] == {"default": 0, "ghn": 1}  # a: 0.4 < 0.5 - 0.05
    assert s["reached_1000_step_figure"] == {"default": 1, "ghn": 0}  # a by default only; b by neither
    assert list(s["paired_at_end"]) == ["ghn_vs_default"]
    assert (s["paired_at_end"]["ghn_vs_default"]["wins"], s["paired_at_end"]["ghn_vs_default"]["losses"]) == (1, 1)


def test_only_the_starts_asked_for_are_built_and_they_match_the_full_set(setup):
    ghn, g, xs, mods = setup
    few = starts(ghn, g, xs, ("default", "noise_plus_default"))
    assert list(few) == ["default", "noise_plus_default"]
    for name, m in few.items():
        full = mods[name].state_dict()
        assert all(torch.equal(v, full[k]) for k, v in m.state_dict().items()), name
