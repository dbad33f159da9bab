"""Fine-tuning the shipped generator on a few graphs: the loss on them drops, it still suggests, it saves."""

from __future__ import annotations

import json

import pytest
import torch

from mad.data.random_space import RandomSpaceConfig, sample
from mad.generator import load, runs
from mad.generator.corpus import graph_example
from mad.generator.train import Batcher, TrainConfig, loss_of
from mad.graph import ArchGraph

STEPS = 10


pytestmark = pytest.mark.usefixtures("one_thread")


def _graphs() -> list[ArchGraph]:
    return [sample(s, RandomSpaceConfig(modality="image", image_shape=(1, 8, 8), max_params=50_000)) for s in range(3)]


@pytest.fixture(scope="module")
def tuned():
    """(generator after fine-tuning, its parameters before, the result, the graphs)."""
    gen = load("default", device="cpu")
    before = {k: v.detach().clone() for k, v in gen.model.state_dict().items()}
    graphs = _graphs()
    result = gen.finetune(graphs, steps=STEPS, seed=0)
    return gen, before, result, graphs


def test_the_loss_on_the_graphs_drops(tuned):
    gen, _, result, _ = tuned
    assert set(result) == {"steps", "graphs", "skipped", "loss_before", "loss_after", "seconds"}
    assert result["steps"] == STEPS and result["graphs"] == 3 and result["skipped"] == 0
    assert result["loss_after"] < result["loss_before"]
    assert result["seconds"] > 0


def test_the_weights_change_and_the_model_is_back_in_eval_mode(tuned):
    gen, before, _, _ = tuned
    after = gen.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert not gen.model.training


def test_the_record_says_it_was_fine_tuned(tuned):
    gen, _, result, graphs = tuned
    shipped = load("default", device="cpu").record.get("finetune", [])
    assert len(gen.record["finetune"]) == len(shipped) + 1  # one entry more than the shipped history
    entry = gen.record["finetune"][-1]
    assert {g.wl_hash() for g in graphs} <= set(gen.train_hashes)  # learned: novelty is measured against them
    assert entry["graphs"] == 3 and entry["steps"] == STEPS
    assert entry["loss_after"] == result["loss_after"]


def test_it_still_suggests_valid_graphs(tuned):
    gen = tuned[0]
    graphs = gen.suggest("a small CNN for 8x8 digits", n=1, input_shape=(1, 8, 8), num_classes=10, oversample=2)
    assert len(graphs) >= 1
    assert runs(graphs[0]) is None
    assert graphs[0].inputs[0].shape == ["B", 1, 8, 8]


def test_save_and_load_keep_the_fine_tuned_weights(tuned, tmp_path):
    gen, _, _, graphs = tuned
    again = load(gen.save(tmp_path / "tuned"), device="cpu")
    assert again.record["finetune"] == gen.record["finetune"]
    assert again.train_hashes and again.train_hashes == gen.train_hashes  # novelty is measured against them
    cfg = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert cfg["tokenizer_version"] == gen.tokenizer.vocab.version
    ex = graph_example(graphs[0], "a small CNN", paraphrases=0, max_len=gen.cfg.max_len, tokenizer=gen.tokenizer)
    tcfg = TrainConfig()
    with torch.no_grad():
        losses = []
        for g in (gen, again):
            batch = Batcher([ex], g.tokenizer.vocab.ids, g.cond_vocab, g.text_encoder, g.cfg, tcfg).make(
                [0], masked=False, train=False)
            logits = g.model(batch["tokens"], batch["pos"], batch["role"], batch["depth"], batch["text"],
                             batch["cond"], batch.get("bucket"), batch["keep"])
            losses.append((logits, loss_of(g.model, batch)[1]["loss"]))
    assert torch.equal(losses[0][0], losses[1][0])
    assert losses[0][1] == losses[1][1]


def test_graphs_that_cannot_be_tokenized_are_skipped_and_counted():
    gen = load("default", device="cpu")
    good = _graphs()[1]
    bad = good.copy()
    bad.inputs = []  # its input node names an input the graph lacks: the tokenizer refuses it
    result = gen.finetune([bad, good, ArchGraph("empty")], steps=1)
    assert result["graphs"] == 1 and result["skipped"] == 2 and result["steps"] == 1
    with pytest.raises(ValueError, match="could be tokenized"):
        gen.finetune([bad], steps=1)


def test_bad_requests_raise_value_errors():
    gen = load("default", device="cpu")
    history = list(gen.record.get("finetune", []))  # the shipped checkpoint's own fine-tuning
    with pytest.raises(ValueError, match="at least one graph"):
        gen.finetune([])
    g = _graphs()[:1]
    with pytest.raises(ValueError, match="steps"):
        gen.finetune(g, steps=-1)
    with pytest.raises(ValueError, match="texts"):
        gen.finetune(g, texts=["a", "b"])
    with pytest.raises(ValueError, match="anchor"):
        gen.finetune(g, anchor=-1.0)
    assert gen.record.get("finetune", []) == history  # a refused request leaves no entry


def _drift_from(gen, start: dict, graphs) -> float:
    """Mean KL(start || gen) of next-token distributions on the graphs' examples."""
    import copy

    from mad.generator.finetune import _drift, _examples
    from mad.generator.train import _to, logits_of

    ref = copy.deepcopy(gen.model)
    ref.load_state_dict(start)
    ex, _ = _examples(gen, graphs, [None] * len(graphs), seed=0)
    bt = Batcher(ex, gen.tokenizer.vocab.ids, gen.cond_vocab, gen.text_encoder, gen.cfg, TrainConfig(), seed=0)
    batch = _to(bt.make(list(range(len(ex))), masked=False, train=False), "cpu")
    with torch.no_grad():
        return float(_drift(logits_of(gen.model, batch), ref.eval(), batch))


def test_the_anchor_holds_the_predictions_near_the_start():
    graphs = _graphs()
    drift = {}
    for anchor in (0.0, 20.0):
        gen = load("default", device="cpu")
        start = {k: v.detach().clone() for k, v in gen.model.state_dict().items()}
        out = gen.finetune(graphs, steps=6, lr=1e-3, seed=0, anchor=anchor)
        assert out["steps"] == 6
        assert gen.record["finetune"][-1].get("anchor", 0.0) == anchor
        drift[anchor] = _drift_from(gen, start, graphs)
    assert 0.0 <= drift[20.0] < drift[0.0]


def test_blend_interpolates_the_weights_toward_the_start(tuned):
    import copy

    from mad.generator.finetune import blend

    gen, before, _, graphs = tuned
    start = load("default", device="cpu")
    start.train_hashes = start.train_hashes + ["only-in-start"]
    after = {k: v.detach().clone() for k, v in gen.model.state_dict().items()}
    mixed = copy.deepcopy(gen)
    entry = blend(mixed, start, 0.25, note="the shipped checkpoint")
    assert entry["weight"] == 0.25 and entry["note"] == "the shipped checkpoint" and entry["relative_change"] > 0
    assert mixed.record["blend"][-1] == entry
    state = mixed.model.state_dict()
    for k, v in state.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.75 * after[k] + 0.25 * before[k])
    assert "only-in-start" in mixed.train_hashes and {g.wl_hash() for g in graphs} <= set(mixed.train_hashes)
    assert not mixed.model.training
    whole = copy.deepcopy(gen)
    blend(whole, start, 1.0)  # the whole fine-tune given back: the starting weights exactly
    assert all(torch.equal(whole.model.state_dict()[k], before[k]) for k in before)
    assert runs(whole.suggest("a small CNN for 8x8 grayscale images, 10 classes", n=1, seed=0)[0]) is None


def test_blend_refuses_a_bad_weight_or_another_model(tuned):
    import copy

    from mad.generator.finetune import blend

    gen, _, _, _ = tuned
    mixed = copy.deepcopy(gen)
    history = list(mixed.record.get("blend", []))
    for w in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="weight"):
            blend(mixed, gen, w)
    other = copy.deepcopy(gen)
    other.cond_list = other.cond_list + ["extra"]
    with pytest.raises(ValueError, match="same configuration"):
        blend(mixed, other, 0.5)
    assert mixed.record.get("blend", []) == history
