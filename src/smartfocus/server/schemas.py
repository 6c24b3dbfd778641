"""Request and response models: the API's contract, and what /docs shows."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from smartfocus.focus.plan import MAX_KEYFRAMES, FocusPlan, Keyframe
from smartfocus.media.output import MAX_OUTPUT_HEIGHT, MIN_OUTPUT_HEIGHT, OutputQuality
from smartfocus.server.previews import mask_url
from smartfocus.server.store import JobRecord, VideoRecord
from smartfocus.session import Selection, SelectMode


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


# The plan's keyframes are the focus layer's own `Keyframe` dataclass, validated by pydantic (its
# __post_init__ checks run too): one plan format for the page, the server, the CLI and the API, so a
# field added there (like `exclude`) is carried end to end without a second definition here.
Keyframes = Annotated[
    list[Keyframe],
    Field(max_length=MAX_KEYFRAMES, description="in frame order; points in source pixels"),
]


class Plan(BaseModel):
    keyframes: Keyframes
    blur: float = Field(ge=0, le=1, description="blur strength, 0 (off) to 1")
    version: int = Field(0, description="changes with every edit; key preview caches on it")

    @classmethod
    def of(cls, video: VideoRecord) -> Plan:
        return cls(keyframes=list(video.plan.keyframes), blur=video.blur, version=video.plan_version)


class StripRun(BaseModel):
    first: int
    last: int
    state: Literal["detected", "carried", "lost"]


class Strip(BaseModel):
    """One subject of the plan over the clip: where it is found, estimated, or not found."""

    subject: int = Field(description="0 for the plan's first subject")
    label: str = Field(
        description='the class and track id ("dog #2") when the detector is confident, '
        'else "object" or "region"'
    )
    runs: list[StripRun] = Field(description="over the frames it is in focus, in order")
    keyframes: list[int] = Field(description="the plan's keyframes (by index) that pick or correct it")


class PlanUpdate(BaseModel):
    video_id: str
    keyframes: Keyframes | None = Field(None, description="the new keyframes; absent: keep them")
    blur: float | None = Field(None, ge=0, le=1, description="absent: keep it")
    version: int | None = Field(
        None, description="the plan version this edit was made on; another answers 409 plan_conflict"
    )

    def focus_plan(self) -> FocusPlan:
        return FocusPlan(tuple(self.keyframes or ()))


class VideoRef(BaseModel):
    video_id: str


class SelectRequest(BaseModel):
    video_id: str
    frame: int = Field(ge=0)
    x: float = Field(description="source pixels, 0 = left edge")
    y: float = Field(description="source pixels, 0 = top edge")
    mode: SelectMode = Field(
        "focus",
        description="focus on this subject only from this frame, add it to those in focus, or "
        "exclude: this point is not the subject of this frame's click (the region is cut back, a "
        "detected object here is skipped)",
    )
    background: bool = Field(
        False,
        description="a click whose subject takes longer than the server's select_wait_s to follow "
        "through the clip answers 202 with the job doing it (progress, cancel); its `selection` and "
        "the new plan come with it when done. Without it the request waits for the answer.",
    )


class Subject(BaseModel):
    label: str
    track_id: int | None = Field(description="the tracker's id at that frame; None for a non-detected object")
    frame: int
    mask: str = Field(
        description="RGBA PNG data URL on the analysis grid, alpha 255 = in focus; scale it to the frame"
    )

    @classmethod
    def of(cls, picked: Selection) -> Subject:
        """What a click picked, as a click's answer and a select job's `selection` both say it."""
        return cls(
            label=picked.label, track_id=picked.track_id, frame=picked.frame, mask=mask_url(picked.matte)
        )


class FrameSubject(BaseModel):
    """A selectable object on one frame, for hover highlights."""

    label: str = Field(description='the class, or "region" where a click focuses the region around it')
    track_id: int | None
    box: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in source pixels")
    mask: str = Field(
        description="RGBA PNG data URL on the analysis grid, alpha 255 = what a click on it selects "
        "(the object and what it rides or carries)"
    )


class SelectResponse(BaseModel):
    subject: Subject
    plan: Plan


class RenderRequest(BaseModel):
    video_id: str
    blur: float | None = Field(None, ge=0, le=1, description="default: the plan's blur")
    mattes: bool = Field(
        False, description="also export the subject matte of every frame (a zip of PNGs, at the video's size)"
    )
    output_quality: OutputQuality = Field(
        "standard",
        description="the mp4's quality: high (a bigger file), standard, or small (about 0.4x the size)",
    )
    output_height: int | None = Field(
        None,
        ge=MIN_OUTPUT_HEIGHT,
        le=MAX_OUTPUT_HEIGHT,
        multiple_of=2,
        description="scale the mp4 down to this height, aspect kept (at most the video's); default its own",
    )


JobStateName = Literal["queued", "running", "done", "failed", "cancelled"]


class Job(BaseModel):
    id: str
    video_id: str
    kind: Literal["analyse", "preview", "render", "plan", "select"]
    state: JobStateName
    done: int
    total: int
    progress: float = Field(description="0..1")
    error: str | None = None
    note: str | None = None
    download_url: str | None = None
    mattes_url: str | None = Field(
        None, description="a finished render's mattes (zip), when it exported them"
    )
    eta_s: float | None = Field(
        None, description="seconds left while it runs, from its pace so far (null until it is known)"
    )
    selection: Subject | None = Field(
        None, description="a finished select job's pick (what POST /select answers at once)"
    )
    output_quality: OutputQuality | None = Field(None, description="a render's, as asked for")
    output_height: int | None = Field(None, description="a render's, as asked for (null: the video's)")

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
            mattes_url=f"/download?job_id={job.id}&what=mattes"
            if job.kind == "render" and job.state == "done" and job.mattes
            else None,
            eta_s=_eta(job),
            selection=Subject(**job.result) if job.kind == "select" and job.result else None,
            output_quality=job.output_quality if job.kind == "render" else None,
            output_height=job.output_height if job.kind == "render" else None,
        )


def _eta(job: JobRecord) -> float | None:
    """Seconds left at the pace so far; None until a few frames say what the pace is."""
    if job.state != "running" or job.started is None or not job.total or job.done < 5:
        return None
    elapsed = max(job.updated - job.started, 0.0)
    return round(elapsed / job.done * (job.total - job.done), 1)


class Video(BaseModel):
    video_id: str
    info: VideoInfo
    plan: Plan
    analysis: Job | None
    preview: Job | None = Field(
        None, description="the seek-friendly copy previews come from once it is done (scrubbing gets fast)"
    )
    render: Job | None = Field(description="the latest render, if any")


class RecentVideo(BaseModel):
    video_id: str
    info: VideoInfo
    keyframes: int = Field(description="keyframes in its plan")
    analysis: JobStateName | None = Field(description="its analysis job's state")


class UploadResponse(BaseModel):
    video_id: str
    info: VideoInfo
    analysis: Job
