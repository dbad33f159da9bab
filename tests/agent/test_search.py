"""The search code path on a tiny tabular space: budget accounting, dedup, resume, hard limits, each strategy."""

from __future__ import annotations

import json
import random

import pytest

from mad.agent import RunRecords, SearchError, ToySpace, pareto_front, search
from mad.agent.search import curve_of
from mad.agent.space import Candidate


def _run(tmp_path, strategy="evolution", evals=30, name="run", **kw):
    kw.setdefault("strategy_options", {"population": 6, "sample_size": 3} if strategy == "evolution" else None)
    return search("toy", strategy, tmp_path / name, evals=evals, space=kw.pop("space", ToySpace()), progress=False,
                  **kw)


def _table(folder):
    rows = RunRecords(folder).rows()
    return [(r["round"], r["key"], r["proposer"], r["status"], r["eval_index"],
             (r["result"] or {}).get("value")) for r in rows]


@pytest.mark.parametrize("strategy", ["random", "evolution", "loop"])
def test_each_strategy_spends_exactly_the_budget(tmp_path, strategy):
    r = _run(tmp_path, strategy, evals=25, round_size=4)
    assert r.status == "completed" and r.evals == 25
    rows = RunRecords(r.folder).rows()
    trained = [x for x in rows if x["result"] is not None]
    assert sorted(x["eval_index"] for x in trained) == list(range(1, 26))  # every eval counted once, in order
    assert r.rounds == 7  # 6 rounds of 4 and one of 1
    assert len({x["key"] for x in rows}) == len(rows)  # nothing proposed twice
    assert r.best["value"] == max(x["result"]["value"] for x in trained)
    values = [v for _, v in r.curve]
    assert values == sorted(values)  # best so far never drops


def test_search_is_deterministic_and_seeds_differ(tmp_path):
    a = _run(tmp_path, "evolution", name="a", seed=3)
    b = _run(tmp_path, "evolution", name="b", seed=3)
    c = _run(tmp_path, "evolution", name="c", seed=4)
    assert _table(a.folder) == _table(b.folder)
    assert _table(a.folder) != _table(c.folder)


def test_evolution_mutates_once_the_population_is_full(tmp_path):
    r = _run(tmp_path, "evolution", evals=30, round_size=3)
    rows = [x for x in RunRecords(r.folder).rows() if x["eval_index"]]
    first = [x["proposer"] for x in rows if x["eval_index"] <= 6]
    later = [x for x in rows if x["eval_index"] > 6]
    assert set(first) == {"random"} and {x["proposer"] for x in later} == {"mutation"}
    keys = {x["key"] for x in rows}
    assert all(x["parent"] in keys for x in later)  # parents are trained members


def test_loop_scores_more_than_it_trains(tmp_path):
    r = _run(tmp_path, "loop", evals=12, round_size=2, strategy_options={"pool": 4})
    rows = RunRecords(r.folder).rows()
    scored = [x for x in rows if x["status"] == "scored"]
    assert len(scored) > 0 and all(x["result"] is None for x in scored)
    assert all("acquisition" in x["scores"] for x in rows)


def test_loop_max_siblings_spreads_a_round_over_parents(tmp_path):
    from mad.agent.loop import MADLoop

    def cand(key, parent, acq):
        c = Candidate("mutation" if parent else "random", key, parent=parent)
        c.info["scores"] = {"acquisition": acq}
        return c

    pool = [cand("a1", "A", 0.9), cand("a2", "A", 0.8), cand("a3", "A", 0.7), cand("b1", "B", 0.6),
            cand("r1", None, 0.5), cand("r2", None, 0.4)]
    order = list(range(len(pool)))
    assert MADLoop()._pick(pool, order, 3) == [0, 1, 2]  # no limit: the best three, all children of A
    assert MADLoop(max_siblings=1)._pick(pool, order, 3) == [0, 3, 4]
    assert MADLoop(max_siblings=2)._pick(pool, order, 4) == [0, 1, 3, 4]
    assert MADLoop(max_siblings=1)._pick(pool[:4], order[:4], 4) == [0, 3, 1, 2]  # too few others: A fills in
    with pytest.raises(ValueError, match="max_siblings"):
        MADLoop(max_siblings=-1)
    # in a search: no round trains two children of one parent while the pool had other candidates
    r = _run(tmp_path, "loop", evals=24, round_size=4, strategy_options={"pool": 4, "max_siblings": 1})
    assert r.evals == 24
    rows = RunRecords(r.folder).rows()
    spread = 0
    for rnd in {x["round"] for x in rows}:
        mine = [x for x in rows if x["round"] == rnd]
        trained = [x for x in mine if x["eval_index"]]
        parents = [x["parent"] for x in trained if x["parent"]]
        slots = sum(1 for x in mine if not x["parent"]) + len({x["parent"] for x in mine if x["parent"]})
        if slots >= len(trained):  # the pool had enough candidates of other parents
            assert len(parents) == len(set(parents)), rnd
            spread += 1
    assert spread >= 3


def test_loop_second_stage_gives_slots_to_the_proposers_that_ranked_well():
    from mad.agent.loop import MADLoop
    from mad.agent.records import History

    loop = MADLoop(shares=(0.5, 0.0, 0.5), two_stage=True)
    asked = {}

    def asks(kind):
        def propose(n, rng):
            asked[kind] = n
            return []  # nothing made: what each proposer was asked for is the figure
        return propose

    loop._generated, loop.fresh = asks("generator"), asks("random")

    def cand(proposer, key, acq):
        c = Candidate(proposer, key)
        c.key = key
        c.info["scores"] = {"acquisition": acq}
        return c

    scored = [cand("generator", f"g{i}", 0.01 * i) for i in range(8)] + [cand("random", f"r{i}", 0.5 + 0.1 * i)
                                                                         for i in range(8)]
    shares = {"generator": 0.5, "mutation": 0.0, "random": 0.5}
    loop._second(16, 4, scored, shares, History(), random.Random(0))
    # the top quarter of the first half is all random draws: the generator gets 3 of 16 slots, not 8
    assert asked == {"generator": 3, "random": 16}  # fresh() fills whatever the others did not make
    asked.clear()
    even = [cand("generator", f"g{i}", 0.1 * i) for i in range(0, 16, 2)] + [
        cand("random", f"r{i}", 0.1 * i) for i in range(1, 16, 2)]
    loop._second(16, 4, even, shares, History(), random.Random(0))
    assert asked["generator"] == 8  # proposers that rank alike keep their shares


def test_loop_two_stage_search_spends_the_budget_and_is_deterministic(tmp_path):
    opts = {"pool": 6, "two_stage": True}
    r = _run(tmp_path, "loop", evals=16, round_size=4, strategy_options=opts)
    assert r.evals == 16
    rows = RunRecords(r.folder).rows()
    assert len({x["key"] for x in rows}) == len(rows)  # the second half copies nothing of the first
    assert all(sum(x["round"] == n for x in rows) > 12 for n in range(1, 5))  # more than the first half (6 x 4 / 2)
    again = _run(tmp_path, "loop", evals=16, round_size=4, name="again", strategy_options=opts)
    assert _table(r.folder) == _table(again.folder)  # still a function of the seed


@pytest.mark.parametrize("strategy", ["evolution", "loop"])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, strategy):
    full = _run(tmp_path, strategy, evals=24, round_size=3, name="full")

    calls = {"n": 0}

    def kill(trial):
        calls["n"] += 1
        if calls["n"] == 10:  # mid-round: two of round 4's three trainings are not done
            raise KeyboardInterrupt

    part = _run(tmp_path, strategy, evals=24, round_size=3, name="part", on_eval=kill)
    assert part.status == "interrupted" and part.evals == 10
    again = _run(tmp_path, strategy, evals=24, round_size=3, name="part", resume=True)
    assert again.status == "completed" and again.evals == 24
    assert _table(again.folder) == _table(full.folder)
    results = [e for e in RunRecords(again.folder).events() if e["event"] == "result"]
    assert len(results) == 24  # nothing trained twice


def test_torn_journal_line_is_dropped_on_resume(tmp_path):
    full = _run(tmp_path, "random", evals=12, round_size=3, name="full")
    part = _run(tmp_path, "random", evals=6, round_size=3, name="part")
    with open(part.folder / "journal.jsonl", "a") as f:
        f.write('{"event": "candidate", "round": 3, "se')  # a kill in the middle of a write
    again = _run(tmp_path, "random", evals=12, round_size=3, name="part", resume=True)
    assert _table(again.folder) == _table(full.folder)
    for line in (again.folder / "journal.jsonl").read_text().splitlines():
        json.loads(line)


def test_kill_while_proposing_is_redone_cleanly(tmp_path):
    full = _run(tmp_path, "random", evals=9, round_size=3, name="full")
    part = _run(tmp_path, "random", evals=6, round_size=3, name="part")
    round3 = [e for e in RunRecords(full.folder).events() if e.get("round") == 3]
    torn = [e for e in round3 if e["event"] in ("proposing", "candidate")][:2]  # the marker and one proposal
    with open(part.folder / "journal.jsonl", "a") as f:
        f.writelines(json.dumps(e) + "\n" for e in torn)
    again = _run(tmp_path, "random", evals=9, round_size=3, name="part", resume=True)
    assert _table(again.folder) == _table(full.folder)
    assert sorted(x["eval_index"] for x in RunRecords(again.folder).rows() if x["eval_index"]) == list(range(1, 10))


def test_budget_can_grow_on_resume(tmp_path):
    _run(tmp_path, "random", evals=6, round_size=3, name="r")
    r = _run(tmp_path, "random", evals=9, round_size=3, name="r", resume=True)
    assert r.evals == 9


def test_existing_run_needs_resume_and_same_settings(tmp_path):
    _run(tmp_path, "random", evals=3, name="r")
    with pytest.raises(SearchError, match="--resume"):
        _run(tmp_path, "random", evals=3, name="r")
    with pytest.raises(SearchError, match="seed"):
        _run(tmp_path, "random", evals=3, name="r", resume=True, seed=9)


def test_hard_limits_are_never_trained(tmp_path):
    limit = 14_000  # the toy space's cost is 1000 * (1 + sum of the genotype): about half the space is over
    r = _run(tmp_path, "evolution", evals=20, max_params=limit)
    rows = RunRecords(r.folder).rows()
    assert all(x["costs"]["num_params"] <= limit for x in rows if x["result"] is not None)
    assert r.evals == 20


def test_bad_budget_and_strategy_are_clear_errors(tmp_path):
    with pytest.raises(SearchError, match="budget"):
        search("toy", "random", tmp_path / "x", evals=None, minutes=None, space=ToySpace(), progress=False)
    with pytest.raises(SearchError, match="unknown strategy"):
        search("toy", "annealing", tmp_path / "x", evals=3, space=ToySpace(), progress=False)
    with pytest.raises(SearchError, match="task"):
        search("imagenet", "random", tmp_path / "y", evals=3, progress=False)


def test_minutes_budget_stops_between_rounds(tmp_path):
    # 60 ns: spent before the first round starts, whatever the machine
    r = search("toy", "random", tmp_path / "m", evals=None, minutes=1e-9, space=ToySpace(), progress=False)
    assert r.status == "completed" and r.evals == 2  # one round is always started


def test_run_table_reads_as_a_dataset(tmp_path):
    from mad.data.builder import load

    r = _run(tmp_path, "random", evals=6, round_size=3)
    dd = load(r.folder)
    assert dd["train"].num_rows == len(RunRecords(r.folder).rows())
    assert set(dd["train"]["source"]) == {"agent:random"}


def test_pareto_front_and_curve():
    assert sorted(pareto_front([(1, 1), (2, 0), (0, 2), (0.5, 0.5), (2, 0)])) == [0, 1, 2, 4]
    s = ToySpace()
    assert s.mutate(s.sample(random.Random(0)), random.Random(1)).proposer == "mutation"
    assert curve_of(RunRecords("/nonexistent").history(True)) == []
    assert isinstance(s.sample(random.Random(0)), Candidate)


def test_activation_limit_is_hard_and_recorded_only_when_set(tmp_path):
    """No candidate whose outputs hold more elements per example than ``max_activations`` is trained (the costs
    record the count); the limit enters the run's settings only when set, so runs from before it resume."""
    from mad.agent import GraphSpace, TrainSettings
    from mad.graph import ArchGraph
    from mad.graph.descriptors import activation_elements

    limit = 40_000
    space = GraphSpace("digits", max_params=50_000)
    drawn = [activation_elements(space.to_graph(space.sample(random.Random(s)))) for s in range(12)]
    assert min(drawn) <= limit < max(drawn)  # the limit bites on this space
    r = search("digits", "random", tmp_path / "a", evals=4, max_activations=limit, progress=False, space=space,
               train=TrainSettings(steps=2, batch_size=16))
    trained = [x for x in RunRecords(r.folder).rows() if x["result"] is not None]
    assert len(trained) == 4
    for x in trained:
        assert x["costs"]["activations"] == activation_elements(ArchGraph.from_json(x["graph"])) <= limit
    assert json.loads((r.folder / "run.json").read_text())["constraints"]["max_activations"] == limit
    r2 = search("toy", "random", tmp_path / "b", evals=2, space=ToySpace(), progress=False)
    assert "max_activations" not in json.loads((r2.folder / "run.json").read_text())["constraints"]


def test_loop_first_round_follows_the_quality_estimate_else_takes_turns(tmp_path):
    """Before any result, the GHN's quality estimate ranks the pool; without one for the task, the raw metric of
    the predicted parameters does not: the proposers take turns (each in its own draw order)."""
    from mad.agent.loop import MADLoop
    from mad.agent.records import History
    from mad.agent.strategies import SearchContext
    from mad.agent.surrogate import Surrogate

    space = ToySpace()
    loop = MADLoop()
    loop.ctx = SearchContext(space=space, task="toy", higher_is_better=True, seed=0, folder=tmp_path,
                             admit=lambda c: None)
    loop.surrogate = Surrogate()
    loop.ghn = object()  # scores come from the stub below

    def pool(quality):
        out = []
        for i, (proposer, value) in enumerate([("random", 0.1), ("generator", 0.9), ("random", 0.8),
                                               ("generator", 0.2), ("random", 0.5)]):
            c = Candidate(proposer, [i] * space.length, key=str(i))
            c.info["scores"] = {"ghn_value": value, "ghn_loss": 1.0, "ghn_quality": quality[i] if quality else None}
            out.append(c)
        return out

    loop._ghn_scores = lambda cands: cands
    acq = [c.info["scores"]["acquisition"] for c in loop._score(pool(None), History())]
    assert acq == [-1.0, -1.0, -2.0, -2.0, -3.0]  # turns, not the predicted parameters' 0.9, 0.8, ...
    quality = [0.3, 0.1, 0.7, 0.6, None]
    acq = [c.info["scores"]["acquisition"] for c in loop._score(pool(quality), History())]
    assert acq[:4] == pytest.approx([0.3, 0.1, 0.7, 0.6])
    assert acq[4] == pytest.approx(sum(quality[:4]) / 4)  # a candidate without an estimate gets their mean
