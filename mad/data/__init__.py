"""mad.data: the MAD dataset and the offline task datasets used to score and train architectures."""

from . import tasks
from .tasks import TaskError, TaskInfo

__all__ = ["TaskError", "TaskInfo", "tasks"]
