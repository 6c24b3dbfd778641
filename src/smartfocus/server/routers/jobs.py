"""Renders and jobs: start a render, follow any job (HTTP or WebSocket), cancel it, download."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from smartfocus.media.output import OutputFormat
from smartfocus.server.deps import SESSION_COOKIE, ServicesDep, SessionDep, owned_job, owned_video
from smartfocus.server.errors import ApiError, not_found
from smartfocus.server.schemas import ErrorBody, Job, RenderRequest
from smartfocus.server.store import is_id

router = APIRouter(tags=["jobs"], responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}})
WS_POLL_S = 0.1


@router.post("/render", response_model=Job, status_code=202)
def render(body: RenderRequest, services: ServicesDep, session: SessionDep) -> Job:
    """Render the video with its current plan (frozen now: later edits don't change this render)."""
    video = owned_video(services.store, body.video_id, session)
    output = OutputFormat(body.output_quality, body.output_height)
    output.size_for(video.info["width"], video.info["height"])  # above the video: a 422 now, not a failed job
    job = services.store.add_job(
        video,
        "render",
        plan=video.plan,
        blur=video.blur if body.blur is None else body.blur,
        output_dir=services.settings.videos_dir / video.id / "renders",
        mattes=body.mattes,
        output_quality=body.output_quality,
        output_height=body.output_height,
    )
    services.jobs.submit(job)
    return Job.of(job)


@router.get("/jobs/{job_id}", response_model=Job)
def get_job(job_id: str, services: ServicesDep, session: SessionDep) -> Job:
    return Job.of(owned_job(services.store, job_id, session))


@router.post("/jobs/{job_id}/cancel", response_model=Job)
def cancel_job(job_id: str, services: ServicesDep, session: SessionDep) -> Job:
    """Stop a queued or running job; nothing it was writing is kept. A finished job is left as it is."""
    job = owned_job(services.store, job_id, session)
    if not job.finished:
        services.jobs.cancel(job)
    return Job.of(owned_job(services.store, job_id, session))


@router.get(
    "/download",
    response_class=FileResponse,
    responses={200: {"content": {"video/mp4": {}}, "description": "the rendered H.264 mp4"}},
)
def download(
    services: ServicesDep,
    session: SessionDep,
    video_id: str | None = None,
    job_id: str | None = None,
    what: Literal["video", "mattes"] = "video",
) -> FileResponse:
    """The rendered mp4 of a render job, or the latest finished render of a video; with
    `what=mattes`, the render's mattes (a zip of PNGs, when it was asked for with `mattes`)."""
    if job_id:
        job = owned_job(services.store, job_id, session)
        if job.kind != "render":
            raise ApiError(422, "invalid_request", "that job is an analysis; download a render job")
        if job.state != "done":
            raise ApiError(409, "render_not_ready", f"the render is {job.state}; download it when it is done")
    elif video_id:
        video = owned_video(services.store, video_id, session)
        found = services.store.latest_job(video.id, "render", "done")
        if found is None:
            raise not_found("a finished render of this video")
        job = found
    else:
        raise ApiError(422, "invalid_request", "pass video_id or job_id")
    video = owned_video(services.store, job.video_id, session)
    if what == "mattes":
        if job.mattes_zip is None or not job.mattes_zip.is_file():
            raise not_found("mattes of this render (ask for them with mattes: true)")
        return FileResponse(
            job.mattes_zip, media_type="application/zip", filename=f"{Path(video.filename).stem}_mattes.zip"
        )
    if job.output is None or not job.output.is_file():
        raise not_found("the render's file")
    return FileResponse(job.output, media_type="video/mp4", filename=f"{Path(video.filename).stem}_focus.mp4")


@router.websocket("/ws/jobs/{job_id}")
async def follow_job(websocket: WebSocket, job_id: str) -> None:
    """Sends the job (same shape as GET /jobs/{id}) whenever it changes, and closes when it finishes.

    Only the session that owns the job can follow it (close code 4404 otherwise).
    """
    store = websocket.app.state.services.store
    token = websocket.cookies.get(SESSION_COOKIE, "")
    await websocket.accept()
    if not (is_id(job_id) and store.job(job_id, token)):
        await websocket.close(code=4404, reason="job not found")
        return
    last = None
    try:
        while True:
            job = store.job(job_id)
            if job is None:
                break
            payload = Job.of(job).model_dump()
            if payload != last:
                await websocket.send_json(payload)
                last = payload
            if job.finished:
                break
            await asyncio.sleep(WS_POLL_S)
        await websocket.close()
    except WebSocketDisconnect:
        return
