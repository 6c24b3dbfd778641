"""Request and response models: the API's contract, and what /docs shows."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from smartfocus.focus.plan import FocusPlan, Keyframe
from smartfocus.server.store import JobRecord, VideoRecord


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs: e.g. not_found, invalid_video, invalid_selection")
    message: str = Field(description="one line for people, saying what to do")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class VideoInfo(BaseModel):
    filename: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    has_audio: bool


class KeyframeModel(BaseModel):
    frame: int = Field(ge=0)
    action: Literal["focus", "add", "clear"] = "focus"
    points: list[tuple[float, float]] = Field(default_factory=list, description="clicks in source pixels")


class Plan(BaseModel):
    keyframes: list[KeyframeModel]
    blur: float = Field(ge=0, le=1, description="blur strength, 0 (off) to 1")
    version: int = Field(0, description="changes with every edit; key preview caches on it")

    @classmethod
    def of(cls, video: VideoRecord) -> Plan:
        return cls(
            keyframes=[
                KeyframeModel(frame=k.frame, action=k.action, points=list(k.points))
                for k in video.plan.keyframes
            ],
            blur=video.blur,
            version=video.plan_version,
        )


class PlanUpdate(BaseModel):
    video_id: str
    keyframes: list[KeyframeModel]
    blur: float = Field(ge=0, le=1)

    def focus_plan(self) -> FocusPlan:
        return FocusPlan(tuple(Keyframe(k.frame, k.action, tuple(k.points)) for k in self.keyframes))


class VideoRef(BaseModel):
    video_id: str


class SelectRequest(BaseModel):
    video_id: str
    frame: int = Field(ge=0)
    x: float = Field(description="source pixels, 0 = left edge")
    y: float = Field(description="source pixels, 0 = top edge")
    mode: Literal["focus", "add"] = Field("focus", description="focus on this subject only, or add it")


class Subject(BaseModel):
    label: str
    track_id: int | None = Field(description="the tracker's id at that frame; None for a non-detected object")
    frame: int
    mask: str = Field(
        description="RGBA PNG data URL on the analysis grid, alpha 255 = in focus; scale it to the frame"
    )


class FrameSubject(BaseModel):
    """A selectable object on one frame, for hover highlights."""

    label: str
    track_id: int
    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in source pixels")
    mask: str = Field(description="RGBA PNG data URL on the analysis grid, alpha 255 = the object")


class SelectResponse(BaseModel):
    subject: Subject
    plan: Plan


class RenderRequest(BaseModel):
    video_id: str
    blur: float | None = Field(None, ge=0, le=1, description="default: the plan's blur")


JobStateName = Literal["queued", "running", "done", "failed", "cancelled"]


class Job(BaseModel):
    id: str
    video_id: str
    kind: Literal["analyse", "render"]
    state: JobStateName
    done: int
    total: int
    progress: float = Field(description="0..1")
    error: str | None = None
    note: str | None = None
    download_url: str | None = None

    @classmethod
    def of(cls, job: JobRecord) -> Job:
        return cls(
            id=job.id,
            video_id=job.video_id,
            kind=job.kind,
            state=job.state,
            done=job.done,
            total=job.total,
            progress=1.0 if job.state == "done" else (job.done / job.total if job.total else 0.0),
            error=job.error,
            note=job.note,
            download_url=f"/download?job_id={job.id}"
            if job.kind == "render" and job.state == "done"
            else None,
        )


class Video(BaseModel):
    video_id: str
    info: VideoInfo
    plan: Plan
    analysis: Job | None
    render: Job | None = Field(description="the latest render, if any")


class UploadResponse(BaseModel):
    video_id: str
    info: VideoInfo
    analysis: Job
