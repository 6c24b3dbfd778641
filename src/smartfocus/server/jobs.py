"""Background jobs (analysis at upload, renders) on one in-process worker thread.

Inference and encoding are CPU heavy, so one job at a time is the fastest order anyway. A job is the
session's steps (`FocusSession.analysis_steps` / `render_steps`) iterated here: between two frames the
worker writes progress and checks for a cancel or a shutdown, and stops by closing the steps, whose
outputs only appear when complete (temp file + rename), so nothing partial is ever left. Jobs a
previous process did not finish are re-queued at start.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

from smartfocus.errors import SmartfocusError
from smartfocus.progress import Steps
from smartfocus.server.errors import public_message, storage_fault
from smartfocus.server.previews import open_session
from smartfocus.server.settings import Settings
from smartfocus.server.store import JobRecord, Store
from smartfocus.session import FocusSession
from smartfocus.vision.model import SharedModel

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.2  # how often progress is written to the database (and seen by clients)


class JobCancelled(Exception):
    """A job stopped at a user's request."""


class _Shutdown(Exception):
    """A job stopped because the server stops: it resumes at the next start."""


class JobRunner:
    """Runs queued jobs one after the other; `submit` and `cancel` are safe from any thread."""

    def __init__(self, store: Store, settings: Settings, model: SharedModel) -> None:
        self.store, self.settings, self.model = store, settings, model
        self._queue: queue.Queue[str] = queue.Queue()
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker, first re-queueing what a previous process left unfinished."""
        for job in self.store.interrupted_jobs():
            note = "resumed after a server restart" if job.state == "running" else job.note
            if job.output is not None:  # a killed process leaves its encoder's temp file behind
                for partial in job.output.parent.glob(f".{job.id}.partial*"):
                    partial.unlink(missing_ok=True)
            self.store.update_job(job.id, state="queued", done=0, note=note)
            self._queue.put(job.id)
        self._thread = threading.Thread(target=self._work, name="smartfocus-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after interrupting the running job (it stays queued and resumes on the next start)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, job: JobRecord) -> None:
        self._queue.put(job.id)

    def cancel(self, job: JobRecord) -> None:
        """Stop a job: a queued one never starts, a running one stops at its next frame."""
        with self._lock:
            self._cancelled.add(job.id)
        if job.state == "queued":
            self.store.update_job(job.id, state="cancelled", note="cancelled before it started")

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            job = self.store.job(job_id)
            if job is None or job.finished:  # e.g. cancelled while it waited
                with self._lock:
                    self._cancelled.discard(job_id)
                continue
            self._run(job)

    def _run(self, job: JobRecord) -> None:
        self.store.update_job(job.id, state="running", done=0)
        try:
            with open_session(self.settings, self.model, self.store.video_source(job.video_id)) as session:
                self._iterate(job, self._steps(job, session))
                if job.kind == "analyse":  # also when it came from the cache
                    frames = session.frame_count
                    self.store.update_job(job.id, done=frames, total=frames)
        except JobCancelled:
            self.store.update_job(job.id, state="cancelled", note="cancelled; no output was kept")
        except _Shutdown:
            self.store.update_job(
                job.id, state="queued", done=0, note="interrupted by a server shutdown; resumes at start"
            )
        except SmartfocusError as error:
            self.store.update_job(
                job.id, state="failed", error=public_message(str(error), self.settings.data_dir)
            )
        except Exception as error:
            if (fault := storage_fault(error)) is not None:  # the disk filled up, not a bug
                with contextlib.suppress(Exception):  # the database may be what is full
                    self.store.update_job(job.id, state="failed", error=fault.message)
                return
            # a bug: keep the worker alive, tell the client, log the traceback
            log.exception("job %s failed", job.id)
            self.store.update_job(
                job.id, state="failed", error=f"internal error: {type(error).__name__}: {error}"
            )
        else:
            self.store.update_job(job.id, state="done")
        finally:
            with self._lock:
                self._cancelled.discard(job.id)

    def _steps(self, job: JobRecord, session: FocusSession) -> Steps[object]:
        if job.kind == "analyse":
            return session.analysis_steps()
        assert job.output is not None and job.plan is not None
        job.output.parent.mkdir(parents=True, exist_ok=True)
        blur = self.settings.default_blur if job.blur is None else job.blur
        return session.render_steps(job.output, job.plan, blur=blur)

    def _iterate(self, job: JobRecord, steps: Steps[object]) -> None:
        """Run `steps`, writing progress now and then; closing them on a cancel or a shutdown."""
        last_write = 0.0
        with contextlib.closing(steps):
            for done, total in steps:
                if job.id in self._cancelled:
                    raise JobCancelled
                if self._stopping.is_set():
                    raise _Shutdown
                now = time.monotonic()
                if now - last_write >= PROGRESS_INTERVAL_S or done == total:
                    last_write = now
                    self.store.update_job(job.id, done=done, total=total)
