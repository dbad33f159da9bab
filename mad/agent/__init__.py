"""mad.agent: search for the best architecture for a task within a budget of trained evaluations or minutes.

Strategies share one code path and one budget accounting (:func:`search`): the MAD loop (generate with the
generator, score with the GHN and a surrogate refit on the search's own results, train the best, fine-tune the
generator on what worked), random search and regularized evolution. Spaces are pluggable
(:class:`SearchSpace`); the default is the random architecture space at the task's shapes plus whatever the
generator proposes. Every candidate is recorded in a run folder that resumes after a kill and that
``mad dataset`` and the generator can read.

Example:
    >>> from mad.agent import search, TrainSettings
    >>> r = search("digits", "loop", "runs/digits", evals=20, max_params=50_000, train=TrainSettings(steps=100))
    >>> r.best["value"], r.curve[-1]
"""

from .evaluate import EXECUTORS, Evaluator, TrainSettings, train_graph
from .loop import MADLoop
from .records import History, RecordsError, RunRecords, Trial
from .search import SearchError, SearchResult, pareto_front, search
from .space import Candidate, GraphSpace, SearchSpace, SpaceError, task_metric
from .strategies import STRATEGIES, RandomSearch, RegularizedEvolution, SearchContext, Strategy, register_strategy
from .toy_space import ToySpace

__all__ = [
    "EXECUTORS",
    "STRATEGIES",
    "Candidate",
    "Evaluator",
    "GraphSpace",
    "History",
    "MADLoop",
    "RandomSearch",
    "RecordsError",
    "RegularizedEvolution",
    "RunRecords",
    "SearchContext",
    "SearchError",
    "SearchResult",
    "SearchSpace",
    "SpaceError",
    "Strategy",
    "ToySpace",
    "TrainSettings",
    "Trial",
    "pareto_front",
    "register_strategy",
    "search",
    "task_metric",
    "train_graph",
]
