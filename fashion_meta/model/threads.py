"""Torch's CPU thread count, set for a block of work and restored after it.

A CPU matrix product's last bits depend on the thread count (measured: one category's article-tower vectors, 15 rows
of 423 inputs, differed by up to 1.2e-7 between 1 and 2 threads), so work that must give the same numbers on every
rerun pins it, and no stage may leave its count behind for the next stage of the same process (the nightly runs
train, then recommend, in one driver process).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (None: as is), then restore the previous count."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
