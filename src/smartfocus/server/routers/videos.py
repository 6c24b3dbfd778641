"""Uploading a video, its frames (plain or focused), and clicks that pick subjects."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from smartfocus.focus.plan import FocusPlan
from smartfocus.server import upload
from smartfocus.server.deps import ServicesDep, SessionDep, analysed, owned_video, within_plan_limit
from smartfocus.server.errors import ApiError
from smartfocus.server.previews import mask_url
from smartfocus.server.schemas import (
    ErrorBody,
    FrameSubject,
    Job,
    Plan,
    RecentVideo,
    SelectRequest,
    SelectResponse,
    Subject,
    UploadResponse,
    Video,
    VideoInfo,
    VideoRef,
)
from smartfocus.server.store import new_id
from smartfocus.session import apply_click

router = APIRouter(tags=["videos"], responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})

# the body is parsed as a stream (upload.py), so its shape is declared here for /docs and clients
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the video"}
                    },
                }
            }
        },
    }
}
JPEG = {200: {"content": {"image/jpeg": {}}, "description": "a JPEG frame"}}


@router.post(
    "/upload", response_model=UploadResponse, responses={413: {"model": ErrorBody}}, openapi_extra=UPLOAD_BODY
)
async def upload_video(request: Request, services: ServicesDep, session: SessionDep) -> UploadResponse:
    """Upload a video (multipart field `file`); its analysis starts at once as a background job."""
    video_id = new_id()
    folder = services.settings.videos_dir / video_id
    folder.mkdir(parents=True)
    try:
        received = await upload.receive_file(
            request.headers.get("content-type", ""),
            request.stream(),
            folder,
            services.settings.max_upload_bytes,
            services.settings.upload_idle_timeout_s,
        )
        info = await run_in_threadpool(upload.probe, received.path)
        upload.check_limits(info, services.settings)
    except BaseException:
        upload.remove(folder)
        raise
    info["filename"] = received.filename
    record = services.store.add_video(
        video_id, session, received.filename, received.path, info, services.settings.default_blur
    )
    job = services.store.add_job(record, "analyse")
    services.jobs.submit(job)
    services.jobs.submit(services.store.add_job(record, "preview"))  # scrubbing gets fast when it is done
    return UploadResponse(video_id=video_id, info=VideoInfo(**info), analysis=Job.of(job))


RECENT_VIDEOS = 20


@router.get("/videos", response_model=list[RecentVideo])
def recent_videos(services: ServicesDep, session: SessionDep) -> list[RecentVideo]:
    """This browser session's videos, the most recent first (at most 20): the page's "recent" list."""
    if not session:
        return []
    found = []
    for video in services.store.videos_of(session, RECENT_VIDEOS):
        analysis = services.store.latest_job(video.id, "analyse")
        found.append(
            RecentVideo(
                video_id=video.id,
                info=VideoInfo(**{**video.info, "filename": video.filename}),
                keyframes=len(video.plan.keyframes),
                analysis=analysis.state if analysis else None,
            )
        )
    return found


@router.get("/videos/{video_id}", response_model=Video)
def get_video(video_id: str, services: ServicesDep, session: SessionDep) -> Video:
    """Everything a page needs to pick a video up again: facts, plan, analysis and latest render."""
    video = owned_video(services.store, video_id, session)
    analysis = services.store.latest_job(video.id, "analyse")
    render = services.store.latest_job(video.id, "render")
    preview = services.store.latest_job(video.id, "preview")
    return Video(
        video_id=video.id,
        info=VideoInfo(**{**video.info, "filename": video.filename}),
        plan=Plan.of(video),
        analysis=Job.of(analysis) if analysis else None,
        preview=Job.of(preview) if preview else None,
        render=Job.of(render) if render else None,
    )


@router.get("/frame", response_class=Response, responses=JPEG)
def get_frame(
    services: ServicesDep,
    session: SessionDep,
    video_id: str,
    index: Annotated[int, Query(ge=0)],
    focused: bool = False,
    blur: Annotated[float | None, Query(ge=0, le=1)] = None,
    width: Annotated[
        int | None,
        Query(ge=64, le=8192, description="scale down to this width (aspect kept): a cheaper preview"),
    ] = None,
) -> Response:
    """Frame `index` as JPEG; with `focused=1`, as the render would show it with the current plan;
    with `width`, smaller (the page plays a focused preview at 640 px where full size is too slow)."""
    video = owned_video(services.store, video_id, session)
    frames = video.info["frame_count"]
    if index >= frames:
        raise ApiError(422, "invalid_request", f"frame {index} is past the last frame {frames - 1}")
    if focused:
        analysed(services.store, video)
    jpeg = services.previews.frame_jpeg(
        video, index, focused=focused, blur=video.blur if blur is None else blur, width=width
    )
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get(
    "/frame/matte",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "white PNG, alpha = what is kept sharp"}},
)
def get_frame_matte(
    services: ServicesDep, session: SessionDep, video_id: str, index: Annotated[int, Query(ge=0)]
) -> Response:
    """What the current plan keeps sharp on frame `index`, as a small PNG whose alpha is the
    subject (the analysis grid's size): the page's mask view tints it over the frame."""
    video = owned_video(services.store, video_id, session)
    frames = video.info["frame_count"]
    if index >= frames:
        raise ApiError(422, "invalid_request", f"frame {index} is past the last frame {frames - 1}")
    analysed(services.store, video)
    png = services.previews.matte_png(video, index)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/subjects", response_model=list[FrameSubject])
def get_subjects(
    services: ServicesDep, session: SessionDep, video_id: str, frame: Annotated[int, Query(ge=0)]
) -> list[FrameSubject]:
    """The objects found on `frame` with their masks, so a page can highlight what is under the pointer."""
    video = owned_video(services.store, video_id, session)
    if frame >= video.info["frame_count"]:
        raise ApiError(
            422, "invalid_request", f"frame {frame} is past the last frame {video.info['frame_count'] - 1}"
        )
    analysed(services.store, video)
    return [
        FrameSubject(label=found.label, track_id=found.track_id, box=found.box, mask=mask_url(found.mask))
        for found in services.previews.objects(video, frame)
    ]


@router.post(
    "/select",
    response_model=SelectResponse,
    responses={202: {"model": Job, "description": "the click's subject is being followed by this job"}},
)
def select(body: SelectRequest, services: ServicesDep, session: SessionDep) -> SelectResponse | JSONResponse:
    """Click a subject at (x, y) of `frame`: focus on it from there on (or add it, or exclude the
    point from this frame's click) and get the mask of what is in focus there.

    A click on no detected object focuses on the region under it, segmented and followed through the
    clip (a few seconds the first time, then cached); a click where no region stands out either leaves
    the plan as it was and answers 422 `invalid_selection`. With `background`, a click whose work
    outlasts `select_wait_s` answers 202 with the select job doing it (its progress, a cancel that
    leaves the plan as it was; when done, the job has the `selection` and the plan is applied).
    """
    video = owned_video(services.store, body.video_id, session)
    analysed(services.store, video)
    with services.edits.lock(video.id):  # applies to the plan as the previous edit left it
        video = owned_video(services.store, video.id, session)
        clicked = apply_click(video.plan, body.frame, body.x, body.y, body.mode)  # cheap: no resolving
        within_plan_limit(services.settings, len(clicked.keyframes))
        if not body.background or services.previews.session(video).has_timeline(clicked):
            picked = services.previews.select(video, body.frame, body.x, body.y, body.mode)
            services.store.set_plan(video.id, picked.plan, video.blur)
            return SelectResponse(
                subject=Subject.of(picked),
                plan=Plan.of(owned_video(services.store, video.id, session)),
            )
        # what can be refused at once (a frame past the end, a point outside) is, before any job
        clicked.check_fits(video.info["frame_count"], (video.info["width"], video.info["height"]))
        click = {"frame": body.frame, "x": body.x, "y": body.y, "mode": body.mode}
        job = services.store.add_job(video, "select", plan=clicked, base_plan=video.plan, click=click)
    services.jobs.run_now(job).join(services.settings.select_wait_s)  # outside the lock it applies under
    job = services.store.job(job.id) or job
    if job.state == "done" and job.result is not None:
        return SelectResponse(
            subject=Subject(**job.result), plan=Plan.of(owned_video(services.store, video.id, session))
        )
    return JSONResponse(Job.of(job).model_dump(), status_code=202)


@router.post("/reset", response_model=Plan)
def reset(body: VideoRef, services: ServicesDep, session: SessionDep) -> Plan:
    """Clear the focus plan (the blur setting stays)."""
    video = owned_video(services.store, body.video_id, session)
    with services.edits.lock(video.id):
        services.store.set_plan(video.id, FocusPlan(), owned_video(services.store, video.id, session).blur)
        return Plan.of(owned_video(services.store, video.id, session))
