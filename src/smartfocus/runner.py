"""Where the chunks of long work run: one after another in this process, or on a cluster.

A long render or analysis can be cut into chunks that run on their own (`render.chunks`,
`vision.chunked`); a `ChunkRunner` runs them and hands the results back in order. `InProcess` is
the one without a cluster; `smartfocus.cluster.RayRunner` runs them on Ray workers.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Protocol, TypeVar

import numpy as np

DEFAULT_CHUNK_FRAMES = 150  # 5 s at 30 fps: seconds of work per chunk, little of it spent on overlaps
KEYFRAME_REACH = 0.25  # a cut moves to a keyframe up to this fraction of a chunk away

J = TypeVar("J")
R = TypeVar("R")
S = TypeVar("S")


class ChunkRunner(Protocol):
    """Runs chunks and yields their results in the jobs' order; closing the generator early cancels
    the chunks not yet done (they must return what they make rather than write it, so that a
    chunk still stopping, or one run twice, leaves nothing behind)."""

    def chunk_frames(self, frame_count: int) -> int:
        """Frames per chunk for work on `frame_count` frames."""
        ...

    def ordered(self, work: Callable[[J], R], jobs: Iterable[J]) -> Generator[R, None, None]:
        """`work(job)` for every job."""
        ...

    def ordered_with(
        self, load: Callable[[], S], work: Callable[[S, J], R], jobs: Iterable[J]
    ) -> Generator[R, None, None]:
        """`work(held, job)` for every job, on workers that each call `load()` once and keep what it
        gives (a model) for every chunk they run."""
        ...


class InProcess:
    """Chunks one after another in this process: chunked work without a cluster."""

    def __init__(self, chunk_frames: int = DEFAULT_CHUNK_FRAMES) -> None:
        self._chunk_frames = chunk_frames

    def chunk_frames(self, frame_count: int) -> int:
        return self._chunk_frames

    def ordered(self, work: Callable[[J], R], jobs: Iterable[J]) -> Generator[R, None, None]:
        for job in jobs:
            yield work(job)

    def ordered_with(
        self, load: Callable[[], S], work: Callable[[S, J], R], jobs: Iterable[J]
    ) -> Generator[R, None, None]:
        held: list[S] = []
        for job in jobs:
            if not held:
                held.append(load())
            yield work(held[0], job)


def plan_cuts(frame_count: int, keyframes: np.ndarray, chunk_frames: int) -> list[int]:
    """Chunk starts (first 0), about `chunk_frames` apart: on a keyframe where one is near, so
    decoding starts right there; elsewhere on the frame itself (the reader is exact anywhere, it
    only decodes from the keyframe before)."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
    reach = int(chunk_frames * KEYFRAME_REACH)
    cuts = [0]
    while cuts[-1] + chunk_frames + reach < frame_count:  # the last chunk takes any short tail
        want = cuts[-1] + chunk_frames
        near = keyframes[(keyframes > cuts[-1]) & (np.abs(keyframes - want) <= reach)]
        cuts.append(int(near[np.argmin(np.abs(near - want))]) if len(near) else want)
    return cuts
