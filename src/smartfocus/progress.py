"""Progress of long work, one way for every layer.

Long steps (analysing, following a region, rendering) are generators that yield `(done, total)`
after each frame and *return* their result, so a front end gets progress and cancellation from
iterating: it shows a bar, or stops by closing the generator (outputs are only renamed into place
when complete, so nothing partial is left). `drive` runs such a generator for callers that prefer
a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TypeVar

Progress = Callable[[int, int], None]  # (frames done, frames total); raise in it to stop the work
T = TypeVar("T")
Steps = Generator[tuple[int, int], None, T]  # yields (done, total), returns the result


def drive(steps: Generator[tuple[int, int], None, T], progress: Progress | None = None) -> T:
    """Run `steps` to the end, reporting each step to `progress`; its result. Closed on any error
    (also one raised by `progress`), so its clean-up runs at once."""
    try:
        while True:
            try:
                done, total = next(steps)
            except StopIteration as finished:
                return finished.value
            if progress is not None:
                progress(done, total)
    finally:
        steps.close()
