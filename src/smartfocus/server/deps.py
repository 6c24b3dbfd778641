"""What routes get injected: the app's services and the caller's session, and ownership checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from smartfocus.server.edits import PlanEdits
from smartfocus.server.errors import ApiError, not_found
from smartfocus.server.jobs import JobRunner
from smartfocus.server.previews import Previews
from smartfocus.server.settings import Settings
from smartfocus.server.store import JobRecord, Store, VideoRecord, is_id
from smartfocus.vision.model import SharedModel

SESSION_COOKIE = "smartfocus_session"


@dataclass(frozen=True)
class Services:
    """What the routes share: one of each per app (and one detector per process, `model`)."""

    settings: Settings
    store: Store
    model: SharedModel
    jobs: JobRunner
    previews: Previews
    edits: PlanEdits = field(default_factory=PlanEdits)


def services(request: Request) -> Services:
    return request.app.state.services


def session(request: Request) -> str:
    """The caller's session token, issued by the session middleware (app.py)."""
    return request.state.session


ServicesDep = Annotated[Services, Depends(services)]
SessionDep = Annotated[str, Depends(session)]


def owned_video(store: Store, video_id: str, session_token: str) -> VideoRecord:
    """The session's video; anyone else's (or a malformed id) is simply not found."""
    video = store.video(video_id, session_token) if is_id(video_id) else None
    if video is None:
        raise not_found(f"video {video_id[:40]!r}")
    return video


def owned_job(store: Store, job_id: str, session_token: str) -> JobRecord:
    job = store.job(job_id, session_token) if is_id(job_id) else None
    if job is None:
        raise not_found(f"job {job_id[:40]!r}")
    return job


def within_plan_limit(settings: Settings, keyframes: int) -> None:
    """Refuse (413) a plan with more keyframes than the server applies in one edit."""
    if keyframes > settings.max_plan_keyframes:
        raise ApiError(
            413,
            "plan_too_large",
            f"a plan holds at most {settings.max_plan_keyframes} keyframes on this server "
            f"(max_plan_keyframes); this one would hold {keyframes}",
        )


def analysed(store: Store, video: VideoRecord) -> None:
    """Refuse (409) what needs the analysis while it is still running, or when it failed."""
    job = store.latest_job(video.id, "analyse")
    if job is None or job.state == "done":
        return
    if job.state in ("queued", "running"):
        raise ApiError(
            409, "analysis_pending", "the video is still being analysed; try again when it is done"
        )
    raise ApiError(
        409, "analysis_failed", f"the analysis did not complete ({job.error or job.state}); upload again"
    )
