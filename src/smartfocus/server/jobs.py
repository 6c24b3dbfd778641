"""Background jobs (analysis at upload, renders) on a few in-process worker threads, shared fairly.

A job is the session's steps (`FocusSession.analysis_steps` / `render_steps`) iterated here: between
two frames a worker writes progress and checks for a cancel, a shutdown or the job's time limit, and
stops by closing the steps, whose outputs only appear when complete (temp file + rename), so nothing
partial is ever left. Jobs a previous process did not finish are re-queued at start.

Fairness: a free worker takes the oldest queued job of the session with the fewest jobs running, and
among those the session served least recently, so one session's long queue (or one very long job)
never keeps another session's work waiting behind it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Unpack

from smartfocus.errors import SmartfocusError
from smartfocus.focus.plan import FocusPlan
from smartfocus.progress import Steps
from smartfocus.server.edits import PlanEdits
from smartfocus.server.errors import public_message, storage_fault
from smartfocus.server.previews import Previews, open_session
from smartfocus.server.schemas import Subject
from smartfocus.server.settings import Settings
from smartfocus.server.store import JobRecord, Store
from smartfocus.session import FocusSession, RenderOptions
from smartfocus.vision.model import SharedModel

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.2  # how often progress is written to the database (and seen by clients)
POLL_S = 0.2  # how often an idle worker looks for a shutdown


class JobCancelled(Exception):
    """A job stopped at a user's request."""


class _Shutdown(Exception):
    """A job stopped because the server stops: it resumes at the next start."""


def _with_zipped_mattes(
    session: FocusSession, output: Path, plan: FocusPlan, archive: Path, **options: Unpack[RenderOptions]
) -> Steps[Path]:
    """A render that also exports its mattes, as one zip (`00000.png`, ...: 255 = subject) to
    download beside the video; the PNGs' folder is removed, the zip appears only when complete."""
    folder = output.with_suffix(".mattes")
    try:
        rendered = yield from session.render_steps(output, plan, matte_dir=folder, **options)
        partial = archive.with_name(f".{archive.name}.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as bundle:  # PNGs are compressed already
            for png in sorted(folder.glob("*.png")):
                bundle.write(png, png.name)
        os.replace(partial, archive)
        return rendered
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        archive.with_name(f".{archive.name}.partial").unlink(missing_ok=True)


class _TimeLimit(Exception):
    """A job ran past `Settings.max_job_s`."""


class JobRunner:
    """Runs queued jobs on `Settings.job_workers` threads; `submit` and `cancel` are safe from any thread."""

    def __init__(
        self, store: Store, settings: Settings, model: SharedModel, edits: PlanEdits, previews: Previews
    ) -> None:
        self.store, self.settings, self.model, self.edits = store, settings, model, edits
        self.previews = previews  # a click's job works in the page's session, where its answer is read
        self._queued: list[JobRecord] = []  # in submission order
        self._running: Counter[str] = Counter()  # jobs running, by session
        self._served: dict[str, int] = {}  # by session: when (in jobs started) it last had one started
        self._started = 0
        self._cancelled: set[str] = set()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the workers, first re-queueing what a previous process left unfinished."""
        for job in self.store.interrupted_jobs():
            if job.kind == "select":  # a click is the page's moment: it is not replayed later
                self.store.update_job(job.id, state="cancelled", note="interrupted by a server restart")
                continue
            note = "resumed after a server restart" if job.state == "running" else job.note
            if job.output is not None:  # a killed process leaves temp files (and matte PNGs) behind
                for partial in job.output.parent.glob(f".{job.id}.*"):
                    if partial.is_dir():
                        shutil.rmtree(partial)
                    else:
                        partial.unlink(missing_ok=True)
                shutil.rmtree(job.output.with_suffix(".mattes"), ignore_errors=True)
            self.store.update_job(job.id, state="queued", done=0, note=note)
            self.submit(job)
        self._threads = [
            threading.Thread(target=self._work, name=f"smartfocus-jobs-{n}", daemon=True)
            for n in range(self.settings.job_workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after interrupting the running jobs (they stay queued and resume on the next start)."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def submit(self, job: JobRecord) -> None:
        with self._changed:
            self._queued.append(job)
            self._changed.notify()

    def run_now(self, job: JobRecord) -> threading.Thread:
        """Run a select job at once on a thread of its own, not in the queue: a click is interactive
        and must not wait behind other sessions' renders. Its video's edits are one at a time (the
        edit lock, the page's queue), which bounds these threads. Join the thread to wait for it."""
        thread = threading.Thread(
            target=self._run_now, args=(job,), name=f"smartfocus-click-{job.id}", daemon=True
        )
        thread.start()
        return thread

    def _run_now(self, job: JobRecord) -> None:
        try:
            self._run(job)
        except Exception:  # the store itself failed (say, a full disk)
            log.exception("job %s could not be run", job.id)
        finally:
            with self._changed:
                self._cancelled.discard(job.id)

    def cancel(self, job: JobRecord) -> None:
        """Stop a job: a queued one never starts, a running one stops at its next frame."""
        with self._changed:
            self._cancelled.add(job.id)
            waiting = any(queued.id == job.id for queued in self._queued)
            self._queued = [queued for queued in self._queued if queued.id != job.id]
        if waiting or job.state == "queued":
            self.store.update_job(job.id, state="cancelled", note="cancelled before it started")

    def _next(self) -> JobRecord | None:
        """The next job to run, waiting for one; None at shutdown."""
        with self._changed:
            while not self._stopping.is_set():
                if (job := self._take()) is not None:
                    return job
                self._changed.wait(POLL_S)
        return None

    def _take(self) -> JobRecord | None:
        """Under `_changed`: the queued job the fairness rule (see the module) picks, now running."""
        if not self._queued:
            return None
        job = min(
            self._queued,
            key=lambda queued: (self._running[queued.session], self._served.get(queued.session, -1)),
        )  # min keeps the first of equals: the oldest
        self._queued.remove(job)
        self._running[job.session] += 1
        self._served[job.session] = self._started
        self._started += 1
        return job

    def _release(self, job: JobRecord) -> None:
        """Under `_changed`: `job` stopped running, whatever its end."""
        self._running[job.session] -= 1
        self._cancelled.discard(job.id)

    def _work(self) -> None:
        while (queued := self._next()) is not None:
            try:
                job = self.store.job(queued.id)
                if job is not None and not job.finished:  # e.g. cancelled while it waited
                    self._run(job)
            except Exception:  # the store itself failed (say, a full disk): keep the worker alive
                log.exception("job %s could not be run", queued.id)
            finally:
                with self._changed:
                    self._release(queued)
                    self._changed.notify()

    def _run(self, job: JobRecord) -> None:
        self.store.update_job(job.id, state="running", done=0, started=time.time())
        try:
            with self._session(job) as session:
                self._iterate(job, self._steps(job, session))
                if job.kind == "analyse":  # also when it came from the cache
                    frames = session.frame_count
                    self.store.update_job(job.id, done=frames, total=frames)
                if job.kind == "select":
                    self._pick(job, session)
                if job.kind in ("plan", "select"):
                    self._apply_plan(job)
        except JobCancelled:
            self.store.update_job(job.id, state="cancelled", note="cancelled; no output was kept")
        except _Shutdown:
            self.store.update_job(
                job.id, state="queued", done=0, note="interrupted by a server shutdown; resumes at start"
            )
        except _TimeLimit:
            limit = self.settings.max_job_s
            self.store.update_job(
                job.id,
                state="failed",
                error=f"stopped after {limit:g} s, the longest a job may run on this server "
                "(max_job_s); no output was kept",
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

    def _session(self, job: JobRecord) -> contextlib.AbstractContextManager[FocusSession]:
        """A select job's: the page's open session (kept open after); any other job's: its own."""
        if job.kind != "select":
            return open_session(self.settings, self.model, self.store.video_source(job.video_id))
        video = self.store.video(job.video_id, job.session)
        if video is None:
            raise SmartfocusError("the video was deleted")
        return contextlib.nullcontext(self.previews.session(video))

    def _pick(self, job: JobRecord, session: FocusSession) -> None:
        """A select job's answer, now that its plan is resolved: what the click picked, as POST
        /select says it (the plan is applied after, as a plan job's)."""
        assert job.click is not None and job.base_plan is not None
        picked = session.select(job.base_plan, **job.click)
        self.store.update_job(job.id, result=Subject.of(picked).model_dump())

    def _steps(self, job: JobRecord, session: FocusSession) -> Steps[object]:
        if job.kind == "analyse":
            return session.analysis_steps()
        if job.kind == "preview":
            return session.preview_copy_steps(self.settings.preview_copy(job.video_id))
        if job.kind in ("plan", "select"):
            assert job.plan is not None
            return session.timeline_steps(job.plan)
        assert job.output is not None and job.plan is not None
        job.output.parent.mkdir(parents=True, exist_ok=True)
        options: RenderOptions = {
            "blur": self.settings.default_blur if job.blur is None else job.blur,
            "output_quality": job.output_quality,
            "output_height": job.output_height,
        }
        if job.mattes_zip is None:
            return session.render_steps(job.output, job.plan, **options)
        return _with_zipped_mattes(session, job.output, job.plan, job.mattes_zip, **options)

    def _apply_plan(self, job: JobRecord) -> None:
        """A plan job's plan becomes the video's, if no other edit changed the keyframes first (that
        edit, made on the plan this one would replace, would be lost); a blur change is no conflict."""
        assert job.plan is not None
        with self.edits.lock(job.video_id):
            video = self.store.video(job.video_id, job.session)
            if video is None:
                raise SmartfocusError("the video was deleted")
            if video.plan.keyframes != (job.base_plan or FocusPlan()).keyframes:
                raise SmartfocusError(
                    "another edit changed the keyframes while this plan was being prepared, so it was not "
                    "applied (that edit would have been lost): reload the plan and send it again"
                )
            self.store.set_plan(video.id, job.plan, video.blur if job.blur is None else job.blur)

    def _iterate(self, job: JobRecord, steps: Steps[object]) -> None:
        """Run `steps`, writing progress now and then; closing them on a cancel, a shutdown or when
        the job runs out of time."""
        last_write = 0.0
        deadline = time.monotonic() + self.settings.max_job_s
        with contextlib.closing(steps):
            for done, total in steps:
                if job.id in self._cancelled:
                    raise JobCancelled
                if self._stopping.is_set():
                    raise _Shutdown
                now = time.monotonic()
                if now > deadline:
                    raise _TimeLimit
                if now - last_write >= PROGRESS_INTERVAL_S or done == total:
                    last_write = now
                    self.store.update_job(job.id, done=done, total=total)
