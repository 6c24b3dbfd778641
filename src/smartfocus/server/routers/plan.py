"""The focus plan of a video: read it, replace it, remove one keyframe, and keyframe thumbnails."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from smartfocus.server.deps import Services, ServicesDep, SessionDep, analysed, owned_video, within_plan_limit
from smartfocus.server.errors import ApiError, not_found
from smartfocus.server.schemas import ErrorBody, Job, Plan, PlanUpdate, Strip, StripRun
from smartfocus.server.store import VideoRecord

router = APIRouter(tags=["plan"], responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}})


@router.get("/plan", response_model=Plan)
def get_plan(video_id: str, services: ServicesDep, session: SessionDep) -> Plan:
    return Plan.of(owned_video(services.store, video_id, session))


@router.get("/plan/strips", response_model=list[Strip])
def get_strips(video_id: str, services: ServicesDep, session: SessionDep) -> list[Strip]:
    """The track strip: per subject of the current plan, where it is detected, carried or lost."""
    video = owned_video(services.store, video_id, session)
    if not video.plan.keyframes:
        return []
    analysed(services.store, video)
    return [
        Strip(
            subject=strip.subject,
            label=strip.label,
            runs=[StripRun(first=a, last=b, state=state) for a, b, state in strip.runs],
            keyframes=list(strip.keyframes),
        )
        for strip in services.previews.session(video).strips(video.plan)
    ]


@router.put(
    "/plan",
    response_model=Plan,
    responses={
        202: {"model": Job, "description": "the plan is being prepared by this job"},
        409: {"model": ErrorBody},
    },
)
def put_plan(body: PlanUpdate, services: ServicesDep, session: SessionDep) -> Plan | JSONResponse:
    """Replace the keyframes and/or the blur. Without `keyframes` only the blur changes (what a
    slider sends, so it never overwrites a click in flight); with `version`, the edit applies only
    to that version of the plan and answers 409 `plan_conflict` when another edit came first.

    A plan whose subjects were resolved lately (an undo, a redo) applies at once (200, the plan).
    Any other plan with keyframes is a job (202, the job): each new subject is followed through the
    clip first (seconds each), and the plan becomes the video's when that is done, unless another
    edit came first (the job then fails and says so) or a click picks nothing (the job fails with
    the reason); either way the plan stays as it was until then."""
    video = owned_video(services.store, body.video_id, session)
    with services.edits.lock(video.id):
        video = owned_video(services.store, video.id, session)
        if body.version is not None and body.version != video.plan_version:
            raise ApiError(
                409,
                "plan_conflict",
                f"the plan changed (version {video.plan_version}, this edit was made on {body.version}); "
                "reload it and edit again",
            )
        plan = video.plan if body.keyframes is None else body.focus_plan()
        within_plan_limit(services.settings, len(plan.keyframes))
        if plan.keyframes and plan != video.plan:
            analysed(services.store, video)
            # what can be refused at once is (422), before any job starts
            plan.check_fits(video.info["frame_count"], (video.info["width"], video.info["height"]))
            if not services.previews.session(video).has_timeline(plan):
                job = services.store.add_job(video, "plan", plan=plan, blur=body.blur, base_plan=video.plan)
                services.jobs.submit(job)
                return JSONResponse(Job.of(job).model_dump(), status_code=202)
        services.store.set_plan(video.id, plan, video.blur if body.blur is None else body.blur)
        return Plan.of(owned_video(services.store, video.id, session))


@router.delete("/plan/keyframes/{index}", response_model=Plan)
def delete_keyframe(
    index: Annotated[int, Path(ge=0)], video_id: str, services: ServicesDep, session: SessionDep
) -> Plan:
    """Remove keyframe number `index` (in the plan's frame order)."""
    with services.edits.lock(video_id):
        video = _with_keyframe(services, video_id, index, session)
        services.store.set_plan(video.id, video.plan.without(index), video.blur)
        return Plan.of(owned_video(services.store, video.id, session))


@router.get(
    "/plan/keyframes/{index}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "a square JPEG of the subject"}},
)
def keyframe_thumbnail(
    index: Annotated[int, Path(ge=0)], video_id: str, services: ServicesDep, session: SessionDep
) -> Response:
    """The subject a keyframe picks, cropped square, for the page's timeline."""
    video = _with_keyframe(services, video_id, index, session)
    analysed(services.store, video)
    jpeg = services.previews.keyframe_thumbnail(video, index)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _with_keyframe(services: Services, video_id: str, index: int, session: str) -> VideoRecord:
    """The session's video, which must have a keyframe number `index` (else 404)."""
    video = owned_video(services.store, video_id, session)
    if index >= len(video.plan.keyframes):
        raise not_found(f"keyframe {index}")
    return video
