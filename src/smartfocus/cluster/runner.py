"""Chunks as Ray tasks: submitted a few ahead, collected in order, retried when a worker dies.

A render chunk needs no model, so it is a plain task that asks for one CPU and runs on any node;
Ray retries it (`max_retries`) when the process running it dies, so a lost worker costs its chunk's
time, not the render. Application errors are not retried: they would fail again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import TypeVar

from smartfocus.render.chunks import DEFAULT_CHUNK_FRAMES, WARMUP_FRAMES

J = TypeVar("J")
R = TypeVar("R")
MIN_CHUNK_FRAMES = WARMUP_FRAMES // 2  # shorter chunks spend more on warming up than on frames
CHUNK_RETRIES = 3  # a chunk's worker may die this many times before the render fails
CANCEL_WAIT_S = 30.0  # how long cancelled chunks get to stop before their workers are killed


class RayRunner:
    """A `render.chunks.ChunkRunner` on the connected Ray cluster.

    Args:
        slots: the cluster's CPU slots, how many chunks run at once.
        in_flight: chunks submitted ahead of the one being joined (default twice `slots`): enough
            to keep every worker busy, few enough that memory stays flat.
        chunk_frames: frames per chunk; by default `DEFAULT_CHUNK_FRAMES`, or fewer (down to
            `MIN_CHUNK_FRAMES`) when that would leave workers idle on a short clip.
        retries: times a chunk is run again after its worker died.
    """

    def __init__(
        self,
        *,
        slots: int,
        in_flight: int | None = None,
        chunk_frames: int | None = None,
        retries: int = CHUNK_RETRIES,
    ) -> None:
        if slots < 1 or (in_flight is not None and in_flight < 1):
            raise ValueError(f"slots and in_flight must be at least 1, got {slots} and {in_flight}")
        self.slots = slots
        self.in_flight = in_flight or 2 * slots
        self._chunk_frames = chunk_frames
        self.retries = retries

    def chunk_frames(self, frame_count: int) -> int:
        if self._chunk_frames is not None:
            return self._chunk_frames
        return max(MIN_CHUNK_FRAMES, min(DEFAULT_CHUNK_FRAMES, math.ceil(frame_count / self.slots)))

    @classmethod
    def connected(cls, **options: int) -> RayRunner:
        """A runner on the cluster this process is connected to (`Cluster.connect`), sized to its
        CPU slots at this moment."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("not connected to a Ray cluster: use smartfocus.cluster.Cluster first")
        return cls(slots=max(1, int(ray.cluster_resources().get("CPU", 1))), **options)

    def ordered(self, work: Callable[[J], R], jobs: Iterable[J]) -> Generator[R, None, None]:
        import ray

        task = ray.remote(num_cpus=1, max_retries=self.retries)(work)
        pending: deque[ray.ObjectRef] = deque()
        try:
            for job in jobs:
                pending.append(task.remote(job))
                if len(pending) >= self.in_flight:
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
        finally:
            _cancel(list(pending))


def _cancel(refs: list) -> None:
    """Stop the tasks behind `refs` and wait until none of them runs any more: interrupted first
    (their clean-up runs), their workers killed if that does not stop them in time."""
    if not refs:
        return
    import ray

    for ref in refs:
        ray.cancel(ref)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S, fetch_local=False)
    for ref in running:
        ray.cancel(ref, force=True)
    if running:
        ray.wait(running, num_returns=len(running), timeout=CANCEL_WAIT_S, fetch_local=False)
