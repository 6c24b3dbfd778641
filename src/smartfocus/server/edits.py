"""Plan edits, one after another per video: what makes concurrent clicks and plan jobs lose nothing."""

from __future__ import annotations

import threading


class PlanEdits:
    """One lock per video for read-modify-write edits of its plan: concurrent clicks each apply to
    the plan the one before left, so none is lost (the slow part, resolving a click, runs inside)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, video_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(video_id, threading.Lock())
