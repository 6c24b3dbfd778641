"""The focus session: how a click becomes a matte, and a matte a frame's look, for every front end.

    import smartfocus
    with smartfocus.open_video("clip.mp4", model="yolov8n-seg-int8dq.pt") as session:
        plan = session.select(smartfocus.FocusPlan(), 0, 640, 360).plan   # a click on frame 0
        plan = plan.focus(120, (300, 200))                                # rack focus at frame 120
        session.render("out.mp4", plan, blur=0.6, matte_dir="mattes/")
        session.render("small.mp4", plan, output_quality="small", output_height=480)  # to share

In the pattern of SAM 2's video predictor, one explicit object per open video owns what is expensive
to make: the reader, the analysis (segment and track once, cached on disk), the subjects a plan picks
(`FocusTimeline`s of the last few plans, with the flow-followed masks cached on disk) and the click
segmenter. The CLI, the server (previews, clicks and jobs), the desktop window and the Python API all
go through it, so a capability added here reaches them all:

    click  --select-->  FocusPlan  --timeline-->  subjects + per-frame FocusState  --frame/render-->  pixels

Long work comes as steps (`smartfocus.progress`): iterate `analysis_steps()` or `render_steps()` for
progress, close them to cancel. Methods are safe to call from several threads (a server's requests):
the reader and the timeline cache are used under one lock, the image math runs outside it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal, TypedDict, TypeVar, Unpack

import cv2
import numpy as np

from smartfocus.errors import MediaError, SelectionError
from smartfocus.focus.closer import CloserSettings, closer_masks, redraw
from smartfocus.focus.correct import missing_piece
from smartfocus.focus.follow import (
    FOLLOW_VERSION,
    FollowSettings,
    flow_size,
    follow_subject_masks,
    settings_for,
    with_takeovers,
)
from smartfocus.focus.identity import SubjectTrack, link_tracklets
from smartfocus.focus.plan import FocusPlan, Keyframe
from smartfocus.focus.selection import mask_core, select_instance
from smartfocus.focus.timeline import (
    DEFAULT_TRANSITION_S,
    UNSURE_SCORE,
    FocusState,
    FocusTimeline,
    hover_mask,
    part_of_a_region,
    subject_identity,
    subject_label,
    track_name,
)
from smartfocus.media.output import OutputFormat, OutputQuality
from smartfocus.media.proxy import preview_copy_steps
from smartfocus.media.reader import VideoInfo, VideoReader
from smartfocus.media.reader import open_video as open_reader
from smartfocus.media.yuv import Yuv420Frame
from smartfocus.paths import smartfocus_home
from smartfocus.progress import Progress, Steps, drive
from smartfocus.render.chunks import chunked_render_steps
from smartfocus.render.compositor import DEFAULT_BLUR, LensSettings
from smartfocus.render.frame import focus_frame
from smartfocus.render.job import FocusStream, default_workers, render_steps
from smartfocus.render.preview import thumbnail
from smartfocus.render.torch_backend import COMPOSITORS, TorchCompositor, pick_compositor
from smartfocus.runner import ChunkRunner
from smartfocus.vision.analysis import Analysis, analysis_steps, cache_path, load_cached, video_fingerprint
from smartfocus.vision.chunked import chunked_analysis_steps
from smartfocus.vision.model import SharedModel, load_segmenter
from smartfocus.vision.propagate import (
    PropagationSettings,
    RegionSettings,
    segment_on_grid,
    track_mask,
    track_region,
)
from smartfocus.vision.region import ClickSegmenter, Point, RegionTrack, click_segmenter, region_cache_path
from smartfocus.vision.sam import SamSegmenter, prompt_box, sam_dir, segment_like
from smartfocus.vision.segment import AnalysisSettings, analysis_settings
from smartfocus.vision.zoom import (
    ZOOM_PRESETS,
    ZoomSettings,
    zoom_boxes,
    zoom_grid,
    zoom_input,
    zoom_settings,
    zoomed_masks,
)

T = TypeVar("T")
SelectMode = Literal["focus", "add", "exclude", "refine"]
SELECT_MODES: tuple[SelectMode, ...] = ("focus", "add", "exclude", "refine")
TIMELINES_KEPT = 4  # plans resolved and kept warm: the page's current plan and a few undo steps
CLOSER = CloserSettings()  # what a closer look at a followed subject must agree with (`focus.closer`)
FRAME_READERS = 3  # decoders for single frames, so concurrent previews don't queue behind one


class _Turn:
    """A read waiting for a decoder of a busy pool: handed one (or the right to open one) in turn."""

    def __init__(self) -> None:
        self._handed = threading.Event()
        self.reader: VideoReader | None = None  # None: open a decoder (a slot freed up)
        self.closed = False

    def hand(self, reader: VideoReader | None, *, closed: bool = False) -> None:
        self.reader, self.closed = reader, closed
        self._handed.set()

    def wait(self) -> VideoReader | None:
        self._handed.wait()
        if self.closed:
            raise RuntimeError("the session is closed")
        return self.reader


class _FrameReaders:
    """Decoders for single-frame reads (previews, thumbnails, clicks), beside the session's own
    reader, which long passes (analysis, following, renders) hold under the session's lock. Opened
    on demand up to `size`; a read waits only while all of them are busy, and waiting reads are
    served first come, first served (so none waits behind later ones: the p95 of a busy server).
    A read takes the idle decoder that reaches its frame with the least decoding (playback reads
    on where the last frame left off instead of seeking)."""

    def __init__(self, path: Path, fps: float | None, size: int) -> None:
        self._path, self._fps, self._size = path, fps, size
        self._idle: list[VideoReader] = []
        self._waiting: deque[_Turn] = deque()
        self._opened = 0
        self._closed = False
        self._lock = threading.Lock()

    def read(self, index: int) -> np.ndarray:
        reader = self._take(index)
        try:
            return reader.read(index)
        finally:
            self._give(reader)

    def read_yuv(self, index: int) -> Yuv420Frame:
        reader = self._take(index)
        try:
            return reader.read_yuv(index)
        finally:
            self._give(reader)

    def _take(self, index: int) -> VideoReader:
        with self._lock:
            if self._closed:
                raise RuntimeError("the session is closed")
            if self._idle:
                return self._idle.pop(_nearest(self._idle, index))
            turn = None
            if self._opened < self._size:
                self._opened += 1
            else:
                turn = _Turn()
                self._waiting.append(turn)
        reader = turn.wait() if turn is not None else None
        if reader is not None:
            return reader
        try:
            return open_reader(self._path, fps=self._fps)
        except BaseException:
            self._give(None)  # the slot goes to the next waiting read, or back to the pool
            raise

    def _give(self, reader: VideoReader | None) -> None:
        """Hand `reader` (None: its slot, a decoder that failed to open) to the first waiting read."""
        with self._lock:
            if not self._closed:
                if self._waiting:
                    self._waiting.popleft().hand(reader)
                elif reader is not None:
                    self._idle.append(reader)
                else:
                    self._opened -= 1
                return
        if reader is not None:
            reader.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            waiting, self._waiting = self._waiting, deque()
        for turn in waiting:
            turn.hand(None, closed=True)
        for reader in idle:
            reader.close()


def _nearest(readers: list[VideoReader], index: int) -> int:
    """Which of `readers` gets to frame `index` with the least decoding: one that decodes on to it
    before any that seeks (the most recently used of those, last in the list)."""
    reaches = [reader.reach(index) for reader in readers]
    ahead = [(reach, -n) for n, reach in enumerate(reaches) if reach is not None]
    return -min(ahead)[1] if ahead else len(readers) - 1


@dataclass(frozen=True)
class Selection:
    """What a click did: the plan with it applied, and what that plan has in focus on the frame."""

    plan: FocusPlan
    frame: int
    label: str  # the clicked subject's class ("person"), or "region" for an object the detector missed
    track_id: int | None  # the tracker's id of the clicked subject; None for a region
    matte: np.ndarray  # (gh, gw) float32 on the analysis grid, 1 = in focus on `frame`


@dataclass(frozen=True)
class FrameObject:
    """A detected object on one frame, for hover highlights: what a click on it would pick."""

    label: str  # "region" where a click on this unsure detection focuses the region around it
    track_id: int | None  # None for such a region
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in source pixels (the detection's)
    mask: np.ndarray  # (gh, gw) bool on the analysis grid: what a click on it selects there


@dataclass(frozen=True)
class SubjectStrip:
    """One subject of a plan over the clip, for the page's track strip: where it is in focus and
    found (detected), estimated (carried on optical flow), or not found (the blur eases out)."""

    subject: int  # its column in the plan's timeline, 0 first
    label: str  # "person #3", "region"
    runs: tuple[tuple[int, int, str], ...]  # (first frame, last frame, "detected"|"carried"|"lost")
    keyframes: tuple[int, ...]  # the plan's keyframes (by index) that pick or correct it


def apply_click(plan: FocusPlan, frame: int, x: float, y: float, mode: SelectMode) -> FocusPlan:
    """`plan` after a click: "focus" replaces what the plan focused on from `frame` (like a camera's
    focus pull), "add" keeps it and adds the subject under the click, "refine" makes what is under
    the click part of the subject in focus there, and "exclude" marks the point as not the subject
    (of the click on that frame, like a shift-click, or else as a correction there)."""
    if mode == "focus":
        kept = tuple(k for k in plan.keyframes if not (k.frame == frame and k.action != "clear"))
        return FocusPlan(kept).focus(frame, (x, y))
    if mode == "add":
        return plan.add(frame, (x, y))
    if mode == "exclude":
        return plan.exclude(frame, (x, y))
    if mode == "refine":
        return plan.refine(frame, (x, y))
    raise SelectionError(f"unknown click mode {mode!r}; use one of {', '.join(SELECT_MODES)}")


class RenderOptions(TypedDict, total=False):
    """`FocusSession.render`'s options: those of `render_steps`."""

    blur: float
    transition_seconds: float
    refine: bool
    matte_dir: str | os.PathLike[str] | None
    any_object: bool
    timeline: FocusTimeline | None
    output_quality: OutputQuality
    output_height: int | None


class FocusSession:
    """One video opened for focusing: its analysis, the subjects plans pick, and their looks.

    Args:
        reader: the video's frames (`media.reader.open_video`); closed with the session.
        model: the detector, shared by every session of a process (`SharedModel`); loaded only
            when an analysis is not in the cache.
        settings: how the video is analysed (`vision.segment.analysis_settings`).
        zoom: how a followed subject is looked at closer (`vision.zoom`; None: not at all, the
            "fast" preset), costing one small crop per frame of each subject followed.
        cache_dir, region_cache_dir: where analyses and followed subjects are cached (a server
            keeps both under its data folder).
        click_segmenter: segments clicks on objects the detector does not know (default:
            `vision.region.click_segmenter()`, made on first use).
        compositor: what renders composite with: "auto" (torch on the model's device where that is
            a CUDA GPU, else OpenCV), "torch" or "opencv" (see `render.torch_backend`).
        runner: where analyses and focus renders run: None in this process (the embedded default),
            a `ChunkRunner` (say `smartfocus.cluster.Cluster.runner()`) in chunks there.
    """

    def __init__(
        self,
        reader: VideoReader,
        *,
        model: SharedModel | None = None,
        settings: AnalysisSettings | None = None,
        zoom: ZoomSettings | None = ZOOM_PRESETS["balanced"],
        cache_dir: Path | None = None,
        region_cache_dir: Path | None = None,
        click_segmenter: ClickSegmenter | None = None,
        compositor: str = "auto",
        runner: ChunkRunner | None = None,
    ) -> None:
        if compositor not in COMPOSITORS:
            raise SelectionError(f"unknown compositor {compositor!r}; use one of {', '.join(COMPOSITORS)}")
        self.reader = reader
        self.runner = runner
        self.model = model or SharedModel()
        self.settings = settings or AnalysisSettings()
        self.zoom = zoom
        self.cache_dir = cache_dir or smartfocus_home() / "analyses"
        self.region_cache_dir = region_cache_dir or smartfocus_home() / "regions"
        self._click_segmenter = click_segmenter
        self._anchor_segmenter: SamSegmenter | None = None
        self._compositor_choice = compositor
        self._compositor: TorchCompositor | None = None  # made at the first render that uses it
        self._analysis: Analysis | None = None
        self._analysis_key: str | None = None  # the analysis cache's name: what follow caches build on
        self._fingerprint: str | None = None
        self._successors: dict[int, int] | None = None  # re-linked tracklets, for hover masks
        self._timelines: OrderedDict[tuple[str, int, bool], FocusTimeline] = OrderedDict()
        self._lock = threading.RLock()  # the reader and the timeline cache
        info = reader.info  # single frames come from the same source, decoded the same frame-exact way
        self._frames = _FrameReaders(
            info.path, float(info.fps) if info.is_image_sequence else None, FRAME_READERS
        )
        self._preview: _FrameReaders | None = None  # the seek-friendly copy, once there is one
        self._preview_lock = threading.Lock()

    def __enter__(self) -> FocusSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the reader; the session cannot be used afterwards (its caches on disk stay)."""
        self._frames.close()
        if self._preview is not None:
            self._preview.close()
        with self._lock:
            self._timelines.clear()
            self.reader.close()

    @property
    def info(self) -> VideoInfo:
        return self.reader.info

    @property
    def frame_count(self) -> int:
        return len(self.reader)

    # ---------- analyse once ----------

    def analysis_steps(self) -> Steps[Analysis]:
        """Segment and track the whole video once, as steps (`smartfocus.progress`); from the disk
        cache (no steps, no model load) when it was done before. With a runner, in chunks there,
        each worker loading the model itself."""
        if self._analysis is None:
            fingerprint = self.model.fingerprint()
            with self._lock:
                if self.runner is not None:
                    load = partial(load_segmenter, self.model.spec, self.model.device)
                    steps = chunked_analysis_steps(
                        self.reader, self.runner, load, fingerprint, self.settings, self.cache_dir
                    )
                else:
                    steps = analysis_steps(
                        self.reader, self.model.segmenter, fingerprint, self.settings, self.cache_dir
                    )
                self._analysis = yield from steps
            self._analysis_key = cache_path(self.cache_dir, self.info.path, fingerprint, self.settings).stem
        return self._analysis

    def analyse(self, progress: Progress | None = None) -> Analysis:
        """`analysis_steps` run to the end."""
        return drive(self.analysis_steps(), progress)

    # ---------- clicks become subjects ----------

    def timeline(
        self,
        plan: FocusPlan,
        *,
        transition_seconds: float = DEFAULT_TRANSITION_S,
        any_object: bool = False,
        progress: Progress | None = None,
        _each_subject: Callable[[bool], None] | None = None,
    ) -> FocusTimeline:
        """The plan resolved against the analysis (kept for the last few plans). A click on no
        detected object focuses on the region under it (segmented and followed through the clip,
        cached on disk; `progress` reports that pass); `any_object` treats every click so.
        `timeline_steps` does the same as steps, for plans with many subjects to follow.

        Raises:
            SelectionError: a click that picks nothing, a keyframe past the end.
        """
        frames = max(1, round(transition_seconds * float(self.info.fps)))
        key = (plan.to_json(), frames, any_object)
        if (kept := self._timelines.get(key)) is not None:
            return kept  # resolved before: no wait behind another plan being resolved
        with self._lock:
            if key not in self._timelines:
                analysis = self.analyse()
                each = _each_subject
                check = None if each is None else lambda: each(False)  # also between frames
                self._timelines[key] = FocusTimeline(
                    analysis,
                    plan,
                    transition_frames=frames,
                    fps=float(self.info.fps),
                    regions=_counted(
                        lambda f, p, e: self.region(
                            f, p, e, grid=analysis.grid, progress=progress, check=check
                        ),
                        each,
                    ),
                    click_region=self._click_region,
                    any_object=any_object,
                    follow=_counted(lambda f, parts: self.followed(f, parts, check=check), each),
                    pieces=_counted(self.correction_piece, each),
                )
                while len(self._timelines) > TIMELINES_KEPT:
                    self._timelines.popitem(last=False)
            self._timelines.move_to_end(key)
            return self._timelines[key]

    def has_timeline(
        self, plan: FocusPlan, *, transition_seconds: float = DEFAULT_TRANSITION_S, any_object: bool = False
    ) -> bool:
        """Whether `timeline(plan)` answers at once (the plan was resolved lately, e.g. an undo)."""
        frames = max(1, round(transition_seconds * float(self.info.fps)))
        return (plan.to_json(), frames, any_object) in self._timelines

    def timeline_steps(
        self, plan: FocusPlan, *, transition_seconds: float = DEFAULT_TRANSITION_S, any_object: bool = False
    ) -> Steps[FocusTimeline]:
        """`timeline` as steps (analysing first if needed): (done, total) in frames of following,
        `frame_count` per keyframe, as each keyframe's subject is followed through the clip (seconds
        each, cached on disk after); closing the steps stops it between two frames.

        The timeline is built on a thread of its own because its subjects are followed from inside
        its constructor, where no step can be yielded; this generator relays the thread's reports.
        A region takes three passes over the clip (read, followed, then followed with the detections
        that may take it over; `region`'s progress says which subject is one), a detected subject one.
        """
        yield from self.analysis_steps()
        per_keyframe = max(1, self.frame_count)
        total = max(1, len(plan.keyframes)) * per_keyframe
        reports: queue.Queue[str] = queue.Queue()  # "frame", "region", "subject" (one more), "end"
        stop = threading.Event()
        outcome: dict[str, object] = {}

        def each_subject(finished: bool) -> None:
            if stop.is_set():
                raise _Stopped
            reports.put("subject" if finished else "frame")

        def resolve() -> None:
            try:
                outcome["timeline"] = self.timeline(
                    plan,
                    transition_seconds=transition_seconds,
                    any_object=any_object,
                    progress=lambda done, count: reports.put("region"),
                    _each_subject=each_subject,
                )
            except BaseException as error:  # re-raised below, in the caller's thread
                outcome["error"] = error
            finally:
                reports.put("end")

        thread = threading.Thread(target=resolve, name="smartfocus-timeline", daemon=True)
        thread.start()
        followed, frames, passes, done = 0, 0, 1, 0
        try:
            yield 0, total
            while (report := reports.get()) != "end":
                if report == "subject":
                    followed, frames, passes = followed + 1, 0, 1
                elif report == "region":
                    passes = 3
                    continue
                else:
                    frames += 1
                within = min(per_keyframe - 1, frames // passes)
                done = max(done, min(followed * per_keyframe + within, total - 1))  # never backwards
                yield done, total
        finally:
            stop.set()
            thread.join()
        if isinstance(error := outcome.get("error"), BaseException):
            raise error
        yield total, total
        return outcome["timeline"]  # type: ignore[return-value]

    def select(
        self, plan: FocusPlan, frame: int, x: float, y: float, mode: SelectMode = "focus"
    ) -> Selection:
        """Apply a click at source pixel (x, y) of `frame` to `plan` (see `apply_click`) and say what
        it picked. The plan is resolved (and kept) here, so a render of it starts at once.

        Raises:
            SelectionError: the click picks nothing (the plan is left as it was), or is out of range.
        """
        if not 0 <= frame < self.frame_count:
            raise SelectionError(f"frame {frame} is past the last frame {self.frame_count - 1}")
        updated = apply_click(plan, frame, x, y, mode)
        timeline = self.timeline(updated)
        subject = timeline.subject_at(frame, x, y)
        label, track_id = subject_identity(timeline.analysis, subject) if subject else ("object", None)
        return Selection(updated, frame, label, track_id, timeline.state(frame).subject_matte)

    def strips(self, plan: FocusPlan) -> list[SubjectStrip]:
        """Each subject's detected / carried / lost stretches over the frames it is in focus."""
        if not plan.keyframes:
            return []
        timeline = self.timeline(plan)
        strips = []
        for column, subject in enumerate(timeline.subjects):
            status = subject.status()
            states = np.where(status >= 1, 2, np.where(status > 0, 1, 0))
            states[~timeline.active[:, column]] = -1  # not in focus there: no run
            edges = np.flatnonzero(np.diff(states)) + 1
            starts, stops = np.concatenate([[0], edges]), np.concatenate([edges, [len(states)]])
            names = {2: "detected", 1: "carried", 0: "lost"}
            runs = tuple(
                (int(a), int(b) - 1, names[int(states[a])])
                for a, b in zip(starts, stops, strict=True)
                if states[a] >= 0
            )
            keyframes = tuple(
                index for index, columns in enumerate(timeline.keyframe_subjects) if column in columns
            )
            strips.append(SubjectStrip(column, subject_label(timeline.analysis, subject), runs, keyframes))
        return strips

    def objects(self, frame: int) -> list[FrameObject]:
        """The objects the analysis found on `frame`, for the page's hover: each with the mask a
        click on it selects there (it and what it rides or carries, `timeline.hover_mask`)."""
        analysis = self.analyse()
        if self._successors is None:
            self._successors = link_tracklets(analysis)
        instances = analysis.instances(frame)
        found = []
        for row in range(len(instances)):
            track_id: int | None = int(instances.track_ids[row])
            label = track_name(analysis, track_id)  # as a click on it names it
            mask = hover_mask(analysis, frame, row, self._successors)
            if instances.scores[row] < UNSURE_SCORE:  # a click there may mean the region around it
                core = mask_core(instances.masks[row], analysis.frame_size)
                region = self._click_region(frame, (core,), ())
                if part_of_a_region(instances, row, region):
                    label, track_id, mask = "region", None, region
            box = tuple(float(v) for v in instances.boxes[row])
            found.append(FrameObject(label, track_id, box, self._closer_at(frame, mask)))  # type: ignore[arg-type]
        return found

    # ---------- a frame's look ----------

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as shot (BGR); safe beside long passes and other reads."""
        return self._frames.read(index)

    def preview_copy_steps(self, output: str | os.PathLike[str]) -> Steps[Path]:
        """Write the video's seek-friendly preview copy (`media.proxy`) to `output`, as steps."""
        with self._lock:
            return (yield from preview_copy_steps(self.reader, Path(output)))

    def use_preview_copy(self, path: str | os.PathLike[str]) -> None:
        """Show previews (`frame`, `preview`, thumbnails) from the copy at `path` (made by
        `preview_copy_steps`), which seeks many times faster; what is rendered or segmented still
        comes from the source. A copy that does not match the source frame for frame is refused."""
        with self._preview_lock:  # not the session's lock, which long passes hold
            if self._preview is not None:
                return
            with open_reader(Path(path)) as copy:
                if len(copy) != self.frame_count or (copy.info.width, copy.info.height) != (
                    self.info.width,
                    self.info.height,
                ):
                    raise MediaError(f"{path} is not a preview copy of {self.info.path}")
            self._preview = _FrameReaders(Path(path), None, FRAME_READERS)

    @property
    def has_preview_copy(self) -> bool:
        return self._preview is not None

    def preview(self, index: int) -> np.ndarray:
        """Frame `index` to look at (BGR): from the preview copy when there is one, else as `read`."""
        return (self._preview or self._frames).read(index)

    def state(self, plan: FocusPlan, index: int) -> FocusState:
        """What `plan` has in focus at frame `index`, and how strong the blur is there."""
        return self.timeline(plan).state(index)

    def frame(
        self,
        plan: FocusPlan,
        index: int,
        *,
        blur: float = DEFAULT_BLUR,
        refine: bool = True,
        width: int | None = None,
    ) -> np.ndarray:
        """Frame `index` (BGR) with `plan`'s look: what the render writes there, without the
        temporal smoothing a frame on its own has nothing to smooth against (a preview, a window);
        from the preview copy when the session has one (`use_preview_copy`). With `width` (below
        the video's), scaled down to it first and composited there: the same look (the lens is a
        share of the frame), at a fraction of the cost, for playback on a slow machine."""
        image = self.preview(index)
        if width is not None and width < image.shape[1]:
            height = max(2, round(image.shape[0] * width / image.shape[1] / 2) * 2)
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        timeline = self.timeline(plan) if plan.keyframes else None
        if timeline is None:
            return image
        return focus_frame(image, timeline.state(index), LensSettings(blur), refine=refine).image

    def keyframe_thumbnail(self, keyframe: Keyframe) -> np.ndarray:
        """A square crop (BGR) around what a keyframe's first click picked, or around the click."""
        image = self.preview(keyframe.frame)
        if not keyframe.points:
            return cv2.resize(image, (96, 96), interpolation=cv2.INTER_AREA)
        x, y = keyframe.points[0]
        box = (x - 60, y - 60, x + 60, y + 60)
        analysis = self.analyse()
        instances = analysis.instances(keyframe.frame)
        try:
            row = select_instance(instances, x, y, analysis.frame_size, analysis.class_names)
            box = tuple(float(v) for v in instances.boxes[row])
        except SelectionError:
            pass
        return thumbnail(image, box)

    def focused_frames(
        self,
        plan: FocusPlan,
        *,
        blur: float = DEFAULT_BLUR,
        refine: bool = True,
        transition_seconds: float = DEFAULT_TRANSITION_S,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Every frame in order as (index, BGR image) with `plan`'s look, smoothed over time as in
        a render: for pipelines with their own encoder. Stop iterating to stop."""
        timeline = self.timeline(plan, transition_seconds=transition_seconds)
        stream = FocusStream(timeline, LensSettings(blur), refine, None, default_workers())
        with self._lock:
            yield from stream(self.reader.frames())

    def render_steps(
        self,
        output: str | os.PathLike[str],
        plan: FocusPlan | None = None,
        *,
        blur: float = DEFAULT_BLUR,
        transition_seconds: float = DEFAULT_TRANSITION_S,
        refine: bool = True,
        matte_dir: str | os.PathLike[str] | None = None,
        any_object: bool = False,
        timeline: FocusTimeline | None = None,
        output_quality: OutputQuality = "standard",
        output_height: int | None = None,
    ) -> Steps[Path]:
        """Render with `plan` (no plan: a plain transcode) as steps: iterate for progress, close to
        cancel (nothing is left at `output`). Analyses first if needed. A `timeline` already resolved
        from the plan (say, to report its `missing()` stretches first) is used as it is.

        `output_quality`: "high", "standard" or "small" (a much smaller file); `output_height`: an
        even height to scale the video down to, aspect kept (None: the source's). Mattes keep the
        source's size. A bad value, or a height above the source's, fails before any work."""
        output_format = OutputFormat(output_quality, output_height)
        output_format.size_for(self.info.width, self.info.height)
        if timeline is None and plan is not None and plan.keyframes:
            yield from self.analysis_steps()
            timeline = self.timeline(plan, transition_seconds=transition_seconds, any_object=any_object)
        mattes = Path(matte_dir) if matte_dir else None
        if self.runner is not None and timeline is not None:  # the chunks read the video themselves
            return (
                yield from chunked_render_steps(
                    self.reader,
                    Path(output),
                    timeline,
                    LensSettings(blur),
                    self.runner,
                    refine=refine,
                    matte_dir=mattes,
                    output_format=output_format,
                )
            )
        with self._lock:
            return (
                yield from render_steps(
                    self.reader,
                    Path(output),
                    timeline,
                    LensSettings(blur),
                    refine=refine,
                    matte_dir=mattes,
                    compositor=self.compositor,
                    output_format=output_format,
                )
            )

    def render(
        self,
        output: str | os.PathLike[str],
        plan: FocusPlan | None = None,
        *,
        progress: Progress | None = None,
        **options: Unpack[RenderOptions],
    ) -> Path:
        """`render_steps` (with the same options) run to the end, reporting to `progress`."""
        return drive(self.render_steps(output, plan, **options), progress)

    @property
    def compositor(self) -> TorchCompositor | None:
        """The torch backend renders composite with (None: OpenCV), picked once for the model's device."""
        if self._compositor is None and self._compositor_choice != "opencv":
            self._compositor = pick_compositor(self.model.device, self._compositor_choice)
            if self._compositor is None:
                self._compositor_choice = "opencv"  # "auto" on the CPU: decided, not asked again
        return self._compositor

    # ---------- what the timeline asks for: regions and followed subjects ----------

    @property
    def click_segmenter(self) -> ClickSegmenter:
        """The segmenter for clicks on no detected object, made once: a promptable model keeps its
        sessions and the frames it encoded."""
        if self._click_segmenter is None:
            self._click_segmenter = click_segmenter()
        return self._click_segmenter

    @property
    def anchor_segmenter(self) -> SamSegmenter | None:
        """The promptable model that re-anchors a subject carried on flow where the detector misses
        it (`focus.follow`), when its weights are configured (`$SMARTFOCUS_SAM_DIR`); None: flow
        alone. Its own instance, never the click segmenter: a segmenter serves one thread, and
        hovers and clicks are segmented while a follow holds the session."""
        if self._anchor_segmenter is None and (folder := sam_dir()) is not None:
            self._anchor_segmenter = SamSegmenter(folder)
        return self._anchor_segmenter

    def _anchor(self, frame: int, carried: np.ndarray) -> np.ndarray | None:
        assert self._anchor_segmenter is not None
        return segment_like(self._anchor_segmenter, self.read(frame), carried)

    def _click_region(self, frame: int, points: tuple[Point, ...], exclude: tuple[Point, ...]) -> np.ndarray:
        """The region on the click frame only: enough to judge a click, without following it."""
        grid = self.analyse().grid
        image = self.read(frame)
        small = cv2.resize(image, grid[::-1], interpolation=cv2.INTER_AREA)
        size = (self.info.width, self.info.height)
        return segment_on_grid(small, size, points, exclude, self.click_segmenter, image)

    def followed(
        self, frame: int, parts: tuple[SubjectTrack, ...], *, check: Callable[[], None] | None = None
    ) -> RegionTrack:
        """A detected subject (its parts' tracklet chains, seen on `frame`) followed through the clip
        with optical flow (`focus.follow`); cached on disk next to the regions. `check` is called
        before each frame and may raise to stop (a cancelled `timeline_steps`)."""
        key = (
            "follow",
            FOLLOW_VERSION,
            self._analysis_key,
            [list(p.track_ids) for p in parts],
            self._anchor_name,
            self._closer_key,
        )
        path = region_cache_path(
            self.region_cache_dir, self._video_fingerprint(), frame, (), (), (key, self._follow_settings)
        )
        if (cached := load_cached(path, RegionTrack.load)) is not None:
            return cached
        track = self._follow(frame, parts, check=check)
        track = self._closer(track, check)
        track.save(path)
        return track

    def _closer_at(self, frame: int, mask: np.ndarray) -> np.ndarray:
        """`mask` on `frame` redrawn from a closer look, as a followed subject's is there (a hover
        shows what a click selects)."""
        if self.zoom is None:
            return mask
        (pieces,) = self._look([frame], [mask])
        redrawn = redraw(mask, pieces, CLOSER)
        return mask if redrawn is None else redrawn

    def _closer(self, track: RegionTrack, check: Callable[[], None] | None) -> RegionTrack:
        """`track` redrawn from a closer look at each frame (`focus.closer`), when this session's
        quality takes one (`zoom`)."""
        return track if self.zoom is None else closer_masks(track, self._look, CLOSER, check=check)

    @property
    def _closer_key(self) -> tuple[ZoomSettings, CloserSettings] | None:
        """How subjects are looked at closer (part of the follow caches' keys)."""
        return None if self.zoom is None else (self.zoom, CLOSER)

    def _look(self, frames: Sequence[int], masks: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """The detector's masks on crops of `frames` around the subject's grid `masks` (see
        `focus.closer`), in one batch; None where a crop would not show the subject larger."""
        assert self.zoom is not None
        analysis = self.analyse()
        size = (self.info.width, self.info.height)
        boxes = zoom_boxes(masks, size, self.zoom)
        imgsz = zoom_input(boxes[0], size, analysis.settings.imgsz, self.zoom)  # all of one size
        if imgsz is None:
            return [None] * len(frames)
        shape = zoom_grid(boxes[0], imgsz)[::-1]
        if self.info.yuv420 is not None and not self.info.is_image_sequence:
            images = [
                self._frames.read_yuv(f).crop_bgr(box, shape) for f, box in zip(frames, boxes, strict=True)
            ]
        else:
            images = [
                cv2.resize(self._frames.read(f)[y0:y1, x0:x1], shape, interpolation=cv2.INTER_AREA)
                for f, (x0, y0, x1, y1) in zip(frames, boxes, strict=True)
            ]
        segmenter = self.model.segmenter()
        return list(zoomed_masks(segmenter, images, boxes, analysis.grid, size, imgsz, self.zoom.conf))

    def region(
        self,
        frame: int,
        points: tuple[Point, ...],
        exclude: tuple[Point, ...] = (),
        *,
        grid: tuple[int, int] | None = None,
        progress: Progress | None = None,
        check: Callable[[], None] | None = None,
    ) -> RegionTrack:
        """The region under `points` (source pixels) on `frame`, minus `exclude`, followed through the
        clip on the analysis' mask grid; cached on disk, so asking again costs nothing. `check` is
        called as the propagation goes and may raise to stop it."""
        analysis = self.analyse()
        grid = grid or analysis.grid
        segmenter = self.click_segmenter
        settings = RegionSettings(segmenter=segmenter.name)
        key = (
            grid,
            settings,
            FOLLOW_VERSION,
            self._follow_settings,
            self._analysis_key,
            self._anchor_name,
            self._closer_key,
        )
        path = region_cache_path(
            self.region_cache_dir, self._video_fingerprint(), frame, points, exclude, key
        )
        if (cached := load_cached(path, RegionTrack.load)) is not None:
            return cached

        def reported(done: int, total: int) -> None:
            if check is not None:
                check()
            if progress is not None:
                progress(done, total)

        with self._lock:
            track = track_region(
                self.reader, frame, points, exclude, grid, segmenter, settings.propagation, reported
            )
            if grid == analysis.grid:  # a detection that later finds the region takes it over there
                track = with_takeovers(track, self._follow(frame, (), seed=track.mask(frame), check=check))
                track = self._closer(track, check)
        track.save(path)
        return track

    def correction_piece(
        self, frame: int, points: tuple[Point, ...], exclude: tuple[Point, ...], current: np.ndarray
    ) -> RegionTrack | None:
        """What the subject's grid mask `current` on `frame` misses of the object under the
        correction `points` (source pixels): the promptable model prompted with the points and the
        subject's deepest point, minus `exclude`, the difference kept where it reaches a click
        (`focus.correct.missing_piece`), followed through the clip and cached on disk. None without
        the promptable model, or where it finds nothing missing at the clicks."""
        segmenter = self.anchor_segmenter
        if segmenter is None:
            return None
        settings = PropagationSettings()
        state = hashlib.sha256(np.packbits(current).tobytes() + repr(current.shape).encode()).hexdigest()
        key = ("piece", FOLLOW_VERSION, self._analysis_key, segmenter.name, state, settings)
        path = region_cache_path(
            self.region_cache_dir, self._video_fingerprint(), frame, points, exclude, key
        )
        if (cached := load_cached(path, RegionTrack.load)) is not None:
            return cached if cached.visible.any() else None
        size = (self.info.width, self.info.height)
        grid_h, grid_w = current.shape
        with self._lock:
            image = self.read(frame)
            # the box (the subject's and the clicks', a tenth larger each side) keeps the model to
            # one object: without it a click at a bear's paw took the ground under it (DAVIS bear)
            whole = segmenter.segment(
                image,
                [*points, mask_core(current, size)],
                list(exclude),
                box=prompt_box(current, size, points=points),
            )
            whole = cv2.resize(whole.astype(np.float32), (grid_w, grid_h), interpolation=cv2.INTER_AREA) > 0.5
            clicks = tuple((int(x * grid_w / size[0]), int(y * grid_h / size[1])) for x, y in points)
            piece = missing_piece(whole, current, clicks)
            if piece.any():
                track = track_mask(self.reader, frame, piece, settings)
            else:  # nothing missing there: remembered as an empty track
                track = RegionTrack.from_masks(
                    np.zeros((self.frame_count, grid_h, grid_w), bool),
                    np.zeros(self.frame_count, bool),
                    np.zeros(self.frame_count, np.float32),
                )
        track.save(path)
        return track if track.visible.any() else None

    def _follow(
        self,
        frame: int,
        parts: tuple[SubjectTrack, ...],
        seed: np.ndarray | None = None,
        check: Callable[[], None] | None = None,
    ) -> RegionTrack:
        analysis = self.analyse()
        size = flow_size(analysis.grid)

        def frames(start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
            for item in self.reader.small_frames(size, cv2.INTER_AREA, start, stop):
                if check is not None:
                    check()
                yield item

        anchor = self._anchor if self.anchor_segmenter is not None else None
        look = self._look if self.zoom is not None else None
        with self._lock:
            return follow_subject_masks(
                analysis, frames, frame, parts, self._follow_settings, seed=seed, anchor=anchor, look=look
            )

    @property
    def _anchor_name(self) -> str | None:
        """What re-anchors carried subjects (part of the follow caches' keys)."""
        return None if self.anchor_segmenter is None else self.anchor_segmenter.name

    @property
    def _follow_settings(self) -> FollowSettings:
        return settings_for(self.settings.imgsz)

    def _video_fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = video_fingerprint(self.info.path)
        return self._fingerprint


class _Stopped(Exception):
    """`timeline_steps` was closed while its thread was following subjects."""


def _counted(provider: T, each: Callable[[bool], None] | None) -> T:
    """`provider` (a follower or region provider), calling `each(False)` before and `each(True)`
    after every call it answers (the hook may raise to stop before the next subject's work)."""
    if each is None:
        return provider

    def counted(*args: object, **kwargs: object) -> object:
        each(False)
        answer = provider(*args, **kwargs)  # type: ignore[operator]
        each(True)
        return answer

    return counted  # type: ignore[return-value]


def open_video(
    path: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | SharedModel | None = None,
    device: str | None = None,
    quality: str | None = None,
    imgsz: int | None = None,
    stride: int | None = None,
    fps: float | None = None,
    cache_dir: Path | None = None,
    region_cache_dir: Path | None = None,
    compositor: str = "auto",
    runner: ChunkRunner | None = None,
) -> FocusSession:
    """Open a video file or frame folder for focusing (nothing is analysed until needed).

    `model`: weights (path or official name; default `$SMARTFOCUS_MODEL`) or a `SharedModel` that
    several sessions share. `quality` is an analysis preset ("fast", "balanced" (default), "best";
    see `vision.segment.QUALITY_PRESETS` and `vision.zoom.ZOOM_PRESETS`); `imgsz` and `stride`
    override its resolution and stride.
    `compositor`: "auto" (torch on a CUDA `device`, OpenCV on the CPU), "torch" or "opencv".

    `runner`: where renders run (see `FocusSession`).
    """
    try:
        settings = analysis_settings(quality, imgsz=imgsz, stride=stride)
        zoom = zoom_settings(quality)
    except ValueError as error:
        raise SelectionError(str(error)) from None
    shared = model if isinstance(model, SharedModel) else SharedModel(model, device)
    return FocusSession(
        open_reader(path, fps=fps),
        model=shared,
        settings=settings,
        zoom=zoom,
        cache_dir=cache_dir,
        region_cache_dir=region_cache_dir,
        compositor=compositor,
        runner=runner,
    )
