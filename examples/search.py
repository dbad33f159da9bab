"""Architecture search on digits: the MAD loop (generator + GHN + surrogate) against random search at the same
budget of trained evaluations, then an HTML report (~2 min on 2 cores).

    python examples/search.py            # runs in out/search/, anew each time
"""

import shutil
from pathlib import Path

from mad.agent import TrainSettings, search
from mad.agent.report import write_report

out = Path("out/search")
train = TrainSettings(steps=40)  # every candidate trains the same 40 steps
runs = []
for strategy in ("loop", "random"):
    shutil.rmtree(out / strategy, ignore_errors=True)  # a run folder resumes only with its own settings
    r = search("digits", strategy, out / strategy, evals=8, max_params=20_000, train=train, workers=2,
               round_size=4, progress=False)
    runs.append(r.folder)
    best = r.best
    print(f"{strategy:>7}: {r.evals} evaluations in {r.seconds:.0f} s, best val accuracy {best['value']:.3f} "
          f"(test {best['test_value']:.3f}) from the {best['proposer']}; curve "
          f"{[round(v, 3) for _, v in r.curve]}")
print("report:", write_report(runs, out / "report.html"))
