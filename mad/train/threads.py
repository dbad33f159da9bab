"""One torch thread for small work on new shapes.

Checking a freshly generated network (forward and backward at batch 1 and 4) runs every layer at shapes the
process has not seen, and on a CPU the kernels' set-up for a new shape then costs more than the small products
themselves; with two threads it cost several times what it does on one. Measured on the same generated image
classifiers, halves swapped between fresh processes: 31 checks took 0.64 s and 0.79 s on one thread against
6.4 s and 3.9 s on two. Work with larger batches gains from the threads instead (the GHN's scoring of the same
graphs, 500 examples each, took 8.5 s on two threads against 12.3 s on one), so only the check uses this.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__ = ["one_thread"]


@contextlib.contextmanager
def one_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block on one torch thread (intra-op) and give the caller's count back after, also on error."""
    before = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if enabled:
            torch.set_num_threads(before)
