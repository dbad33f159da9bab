"""GHN training graphs: the dataset's (:func:`mad.ghn.pool.task_pool`) and fresh random-space ones
(``TrainConfig.space_graphs``, :func:`mad.ghn.pool.space_pool`), both cached so a build resumes."""

from __future__ import annotations

import json

import pytest
import torch

from mad.ghn import GHNConfig
from mad.ghn.pool import MODALITIES, SPACE_SEED, ordered_rows, screen, space_pool, task_pool
from mad.graph import ArchGraph

TINY = dict(d=32, layers=1, heads=4, ff=64, pe=8, rank=4)


def test_task_pool_reads_its_cache_back_and_extends_it(tmp_path):
    cache = tmp_path / "digits.jsonl"
    first = task_pool("digits", 3, ("train",), cache)
    assert len(first) == 3 and all(not i.startswith("space/") for i, _ in first)
    lines = len(cache.read_text().splitlines())
    again = task_pool("digits", 3, ("train",), cache)
    assert [(i, g.to_json()) for i, g in again] == [(i, g.to_json()) for i, g in first]
    assert len(cache.read_text().splitlines()) == lines  # nothing screened twice
    more = task_pool("digits", 5, ("train",), cache)
    assert [i for i, _ in more[:3]] == [i for i, _ in first] and len(more) == 5
    assert [i for i, _ in task_pool("digits", 5, ("train",))] == [i for i, _ in more]  # no cache: the same pool


def test_space_pool_draws_qualifying_unseen_graphs_and_reads_them_back(tmp_path):
    torch.set_num_threads(1)
    cache = tmp_path / "digits.space.jsonl"
    pool = space_pool("digits", 3, cache, max_mflops=2.0)
    assert len(pool) == 3
    assert all(i.startswith("space/") and int(i.split("/")[1]) >= SPACE_SEED for i, _ in pool)
    for _, g in pool:
        again, why = screen(g, "digits", max_mflops=2.0)  # it qualifies as it stands
        assert again is not None, why
        assert tuple(g.to_module()(torch.randn(2, 1, 8, 8)).shape) == (2, 10)
    held = {ArchGraph.from_json(t).wl_hash() for _, t in ordered_rows(("validation", "test"), MODALITIES["digits"])}
    assert not any(g.wl_hash() in held for _, g in pool)
    lines = [json.loads(x) for x in cache.read_text().splitlines()]
    assert len({r["id"] for r in lines}) == len(lines) >= 3
    # read back from the cache: the same graphs, in the same order, and a larger pool extends it
    assert [(i, g.to_json()) for i, g in space_pool("digits", 3, cache, max_mflops=2.0)] == \
        [(i, g.to_json()) for i, g in pool]
    more = space_pool("digits", 4, cache, max_mflops=2.0)
    assert [i for i, _ in more[:3]] == [i for i, _ in pool] and len(more) == 4


def test_training_adds_space_graphs_and_a_run_saved_before_the_setting_resumes(tmp_path):
    from mad.ghn.train import TrainConfig, train

    kw = dict(tasks=["digits"], steps=2, graphs={"digits": 4}, val_graphs=1, eval_every=2, save_every=1,
              log_every=1, warmup=1, meta_batch=2, batch_size=32, quality_tasks=[], quality_graphs={})
    rec = train(TrainConfig(**kw, space_graphs={"digits": 2}), tmp_path / "s", model_config=GHNConfig(**TINY),
                progress=False)
    assert rec["status"] == "completed"
    assert rec["data"]["digits"]["graphs"] == 6 and rec["data"]["digits"]["space"] == 2

    part = train(TrainConfig(**kw), tmp_path / "r", model_config=GHNConfig(**TINY), progress=False, run_steps=1)
    assert part["status"] == "time_limit"
    trainer = tmp_path / "r" / "checkpoint" / "trainer.json"
    meta = json.loads(trainer.read_text())
    meta["train_config"].pop("space_graphs")  # as a checkpoint saved before the setting existed
    trainer.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="space_graphs"):
        train(TrainConfig(**kw, space_graphs={"digits": 2}), tmp_path / "r", progress=False)
    done = train(TrainConfig(**kw), tmp_path / "r", progress=False)
    assert done["status"] == "completed" and done["steps"] == 2
