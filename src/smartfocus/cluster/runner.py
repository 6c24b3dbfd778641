"""Chunks on Ray: submitted a few ahead, collected in order, run again when a worker dies.

A render chunk needs no model, so it is a plain task that asks for one CPU and runs on any node;
Ray retries it (`max_retries`) when the process running it dies, so a lost worker costs its chunk's
time, not the render. Chunks that need a model (the analysis) run on actors, one per GPU (asking Ray
for it) or, without GPUs, one per CPU slot, each loading the model once and keeping it for every
chunk it gets; an actor that dies is restarted and its chunks run again. Application errors are
not retried: they would fail again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Generic, TypeVar

from smartfocus.render.chunks import WARMUP_FRAMES
from smartfocus.runner import DEFAULT_CHUNK_FRAMES

J = TypeVar("J")
R = TypeVar("R")
S = TypeVar("S")
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
        return self._collect(lambda job, _: task.remote(job), jobs)

    def ordered_with(
        self, load: Callable[[], S], work: Callable[[S, J], R], jobs: Iterable[J]
    ) -> Generator[R, None, None]:
        import ray

        gpus = int(ray.cluster_resources().get("GPU", 0))
        resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        holder = ray.remote(max_restarts=self.retries, max_task_retries=self.retries, **resources)(_Holder)
        actors = [holder.remote(load) for _ in range(gpus or self.slots)]

        def stop(pending: list) -> None:  # the model goes with them; a chunk still running stops too
            for actor in actors:
                ray.kill(actor)
            if pending:
                ray.wait(pending, num_returns=len(pending), timeout=CANCEL_WAIT_S, fetch_local=False)

        yield from self._collect(lambda job, n: actors[n % len(actors)].run.remote(work, job), jobs, stop)

    def _collect(
        self,
        submit: Callable[[J, int], object],
        jobs: Iterable[J],
        stop: Callable[[list], None] | None = None,
    ) -> Generator[R, None, None]:
        """Submit jobs `in_flight` ahead and yield their results in order; at the end, or when
        closed early, `stop` what is still pending (default: cancel those tasks)."""
        import ray

        pending: deque[ray.ObjectRef] = deque()
        try:
            for number, job in enumerate(jobs):
                pending.append(submit(job, number))
                if len(pending) >= self.in_flight:
                    yield ray.get(pending.popleft())
            while pending:
                yield ray.get(pending.popleft())
        finally:
            (stop or _cancel)(list(pending))


class _Holder(Generic[S]):
    """A Ray actor's state: what `load` gave, made on its first chunk and kept for the next."""

    def __init__(self, load: Callable[[], S]) -> None:
        self._load = load
        self._held: list[S] = []

    def run(self, work: Callable[[S, J], R], job: J) -> R:
        if not self._held:
            self._held.append(self._load())
        return work(self._held[0], job)


def _cancel(refs: list) -> None:
    """Cancel the tasks behind `refs`: queued ones never start, running ones are interrupted
    (their clean-up runs) and, should Ray not confirm that in time, their workers are killed. An
    interrupted task may take a moment more to unwind; chunks return everything they make, so what
    it does meanwhile leaves nothing behind."""
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
