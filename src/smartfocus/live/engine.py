"""The live engine: frames arrive one by one (a camera, a WebRTC track) and leave focused, at once.

The video engine analyses a whole clip and then renders it; live, each frame is detected, tracked and
composited as it comes, with its own ByteTrack (`FrameTracker`), an online subject lock
(`live.identity.SubjectLock`) and the very function renders use for a frame's look
(`render.frame.focus_frame`: the same matte refinement, stabiliser and lens). Measured on a 2-core
CPU at 640x360 (bench/live.py), inference at imgsz 320 takes ~25 ms and refine + stabilise + composite
~10 ms, so the model runs on every frame: reusing a matte between inference frames was not needed.

`LiveEngine.process` is synchronous and takes a frame plus its capture time; `live.stream.LiveStream`
runs it behind a latest-frame-wins mailbox so latency stays bounded when processing falls behind.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.focus.selection import select_instance
from smartfocus.focus.timeline import DEFAULT_TRANSITION_S, FocusState
from smartfocus.live.identity import SubjectLock
from smartfocus.render.compositor import DEFAULT_BLUR, LensSettings
from smartfocus.render.frame import focus_frame
from smartfocus.render.matte import MatteStabilizer
from smartfocus.vision.instances import Instances
from smartfocus.vision.model import Segmenter
from smartfocus.vision.segment import AnalysisSettings, FrameTracker

RECENT_FRAMES = 8  # processed frames a click may land on (~0.3 s at 25 frames/s)


@dataclass(frozen=True)
class LiveSettings:
    """How a live stream is processed."""

    imgsz: int = 320  # model input size; 256 trades some mask quality for ~20% less inference
    blur: float = DEFAULT_BLUR  # lens strength, 0..1
    refine: bool = True  # guided-filter edge refinement and temporal stabilisation of the matte
    # how long the blur takes to ease in on a lock and out while the subject is gone
    fade_seconds: float = DEFAULT_TRANSITION_S

    def __post_init__(self) -> None:
        AnalysisSettings(imgsz=self.imgsz)  # validates imgsz with the same message as analyses
        LensSettings(self.blur)
        if self.fade_seconds <= 0:
            raise ValueError(f"fade_seconds must be > 0, got {self.fade_seconds}")


@dataclass(frozen=True)
class LiveFrame:
    """One processed frame and what the engine knew about it."""

    sequence: int  # the source's frame number (gaps are frames dropped before processing)
    image: np.ndarray  # (H, W, 3) uint8 BGR, focused
    capture_time: float  # clock time when the source delivered the frame
    output_time: float  # clock time when the focused frame was ready
    instances: Instances  # everything tracked in this frame (masks on the grid)
    subject_row: int | None  # the locked subject's row in `instances`, None while not in view
    subject_id: int | None  # the locked subject's current track id, None when nothing is locked
    strength: float  # the blur strength actually applied

    @property
    def latency(self) -> float:
        """Seconds from capture to output."""
        return self.output_time - self.capture_time


@dataclass(frozen=True)
class Selection:
    """What a click locked."""

    track_id: int
    class_name: str


class LiveEngine:
    """Focus for one live stream. Make one per stream: it holds that stream's tracker and lock.

    `process` must be called from one thread at a time, in capture order; `select`, `reset` and
    `blur` may be called from any other thread (a UI, an HTTP handler).
    """

    def __init__(
        self,
        segmenter: Segmenter,
        settings: LiveSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.segmenter = segmenter
        self.settings = settings or LiveSettings()
        self.clock = clock
        self._guard = threading.Lock()  # lock, blur and the newest instances are shared with callers
        self._blur = self.settings.blur
        self._tracker: FrameTracker | None = None
        self._stabilizer = MatteStabilizer()
        self._lock: SubjectLock | None = None
        # the newest processed frames' objects and their trackers, newest last: a click is judged on
        # the newest one that has an object under it (a detection that flickers out for a frame still
        # takes a click). Kept across a resolution change: WebRTC rescales a stream in its first
        # seconds, just when people click, and a click must not find no frame while the new size starts.
        self._recent: deque[tuple[Instances, FrameTracker]] = deque(maxlen=RECENT_FRAMES)
        self._matte: np.ndarray | None = None  # the last subject grid mask, held while it is gone
        self._new_subject = False  # set by `select`, consumed by `process` (which owns the matte state)
        self._level = 0.0  # blur envelope, eased by time
        self._last_capture: float | None = None
        self._sequence = 0

    @property
    def blur(self) -> float:
        return self._blur

    @blur.setter
    def blur(self, value: float) -> None:
        self._blur = LensSettings(float(value)).strength

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(width, height) of the frames processed so far, None before the first."""
        return self._tracker.frame_size if self._tracker else None

    def select(self, x: float, y: float, click_size: tuple[int, int] | None = None) -> Selection:
        """Lock the subject under (x, y) in the newest processed frame.

        Args:
            click_size: (width, height) of the image the click was made on, when it differs from the
                processed frames (a browser's view of a stream the network rescaled); defaults to it.

        Raises:
            SelectionError: nothing selectable there (names the nearest objects), or no frame yet.
        """
        with self._guard:
            size = self.frame_size
            if not self._recent or size is None:
                raise SelectionError("no frame has been processed yet; wait for the picture and click again")
            names = self.segmenter.class_names
            instances, row, age, tracker = self._under_click(x, y, click_size or size, names)
            lock = SubjectLock.from_row(instances, row)
            if tracker is not self._tracker:  # a frame from before the stream changed resolution
                seen = tracker.frame_size  # (its track ids are that tracker's: the lock drops them)
                lock = lock.rescaled(size[0] / seen[0], size[1] / seen[1])
            lock.missing = age  # its box is from `age` frames ago
            self._lock = lock
            self._new_subject = True  # the processing thread drops the old subject's matte
            return Selection(
                int(instances.track_ids[row]), names.get(int(instances.class_ids[row]), "object")
            )

    def _under_click(
        self, x: float, y: float, click_size: tuple[int, int], names: dict[int, str]
    ) -> tuple[Instances, int, int, FrameTracker]:
        """The newest recent frame with an object under (x, y) of a `click_size` picture: its
        objects, the row, its age in frames and the tracker that made it. Raises the newest frame's
        SelectionError when none has one."""
        newest_error: SelectionError | None = None
        for age, (instances, tracker) in enumerate(reversed(self._recent)):
            size = tracker.frame_size
            fx, fy = x * size[0] / click_size[0], y * size[1] / click_size[1]
            try:
                return instances, select_instance(instances, fx, fy, size, names), age, tracker
            except SelectionError as error:
                newest_error = newest_error or error
        assert newest_error is not None
        raise newest_error

    def reset(self) -> None:
        """Unlock the subject: the blur eases out."""
        with self._guard:
            self._lock = None

    def process(self, frame_bgr: np.ndarray, capture_time: float, sequence: int | None = None) -> LiveFrame:
        """Focus one frame (detect, track, follow the locked subject, composite)."""
        size = (frame_bgr.shape[1], frame_bgr.shape[0])
        if self._tracker is None or self._tracker.frame_size != size:
            self._start(size)  # a new stream, or a camera / the network changed the resolution
        tracker = self._tracker
        assert tracker is not None
        instances = tracker.update(frame_bgr)
        with self._guard:
            self._recent.append((instances, tracker))
            lock = self._lock
            row = lock.update(instances) if lock else None
            subject_id = lock.track_id if lock else None
            blur = self._blur
            new_subject, self._new_subject = self._new_subject, False
        if new_subject:
            self._stabilizer.reset()
            self._matte = None
        dt = 0.0 if self._last_capture is None else min(max(capture_time - self._last_capture, 0.0), 0.25)
        self._last_capture = capture_time
        target = 1.0 if row is not None else 0.0
        step = dt / self.settings.fade_seconds
        self._level = (
            min(target, self._level + step) if target > self._level else max(target, self._level - step)
        )
        if row is not None:
            self._matte = instances.masks[row].astype(np.float32)
        elif lock is None and self._level == 0.0:
            self._matte = None
        envelope = _smoothstep(self._level)
        strength = blur * envelope
        image = frame_bgr
        if self._matte is not None and strength > 0:
            state = FocusState(matte=self._matte, subject_matte=self._matte, strength=envelope)
            stabilizer = self._stabilizer if self.settings.refine else None
            image = focus_frame(
                frame_bgr, state, LensSettings(blur), refine=self.settings.refine, stabilizer=stabilizer
            ).image
        self._sequence = self._sequence + 1 if sequence is None else sequence
        return LiveFrame(
            sequence=self._sequence,
            image=image,
            capture_time=capture_time,
            output_time=self.clock(),
            instances=instances,
            subject_row=row,
            subject_id=subject_id,
            strength=strength,
        )

    def _start(self, size: tuple[int, int]) -> None:
        """A tracker for frames of `size`. Where the resolution changed mid-stream, the locked
        subject stays locked (rescaled) and the blur stays eased in; the matte starts afresh."""
        settings = AnalysisSettings(imgsz=self.settings.imgsz)
        previous = None if self._tracker is None else self._tracker.frame_size
        with self._guard:
            self._tracker = FrameTracker(self.segmenter, settings, size)
            if self._lock is not None and previous is not None:
                self._lock = self._lock.rescaled(size[0] / previous[0], size[1] / previous[1])
        self._stabilizer.reset()
        self._matte = None
        if previous is None:
            self._level = 0.0
            self._last_capture = None


def _smoothstep(x: float) -> float:
    return x * x * (3 - 2 * x)
