"""Preview frames and clicks for the page: open videos, their analyses and resolved timelines, cached.

The image math is the render package's (`render_frame`); this only keeps the expensive objects warm
(an open reader, the loaded analysis, the timeline of the current plan) so a click or a scrub answers
in milliseconds. Readers are not thread-safe, so each open video has its own lock.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import cv2
import numpy as np

from smartfocus.api import Video
from smartfocus.errors import SelectionError
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.selection import select_instance
from smartfocus.focus.timeline import FocusTimeline
from smartfocus.media.reader import open_video
from smartfocus.render.compositor import LensSettings
from smartfocus.render.preview import mask_png, render_frame, thumbnail
from smartfocus.server.settings import Settings
from smartfocus.server.store import VideoRecord

OPEN_VIDEOS = 4  # readers kept open (each holds a decoder); older ones are closed
JPEG_QUALITY = 85


@dataclass
class _Open:
    video: Video
    lock: threading.Lock = field(default_factory=threading.Lock)
    timelines: OrderedDict[str, FocusTimeline] = field(default_factory=OrderedDict)


@dataclass(frozen=True)
class Selected:
    """What a click picked, for the page to highlight."""

    label: str
    track_id: int | None
    frame: int
    mask_png: bytes  # on the analysis grid, 255 = in focus at `frame`


class Previews:
    """Focused and plain preview frames, selection answers and keyframe thumbnails."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._open: OrderedDict[str, _Open] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for entry in self._open.values():
                entry.video.reader.close()
            self._open.clear()

    def _entry(self, record: VideoRecord) -> _Open:
        with self._lock:
            entry = self._open.get(record.id)
            if entry is None:
                video = Video(
                    open_video(record.source), model=self.settings.model, cache_dir=self.settings.analyses_dir
                )
                entry = self._open[record.id] = _Open(video)
                while len(self._open) > OPEN_VIDEOS:
                    _, old = self._open.popitem(last=False)
                    with old.lock:
                        old.video.reader.close()
            self._open.move_to_end(record.id)
            return entry

    def _timeline(self, entry: _Open, plan: FocusPlan) -> FocusTimeline:
        """The plan's timeline (callers hold entry.lock); the last few plans are kept."""
        key = plan.to_json()
        if key not in entry.timelines:
            entry.timelines[key] = entry.video.timeline(plan)
            while len(entry.timelines) > 4:
                entry.timelines.popitem(last=False)
        entry.timelines.move_to_end(key)
        return entry.timelines[key]

    def frame_jpeg(self, record: VideoRecord, index: int, *, focused: bool, blur: float) -> bytes:
        """Frame `index` as JPEG: as shot, or with the video's plan applied (needs its analysis)."""
        entry = self._entry(record)
        with entry.lock:  # only the reader and the timeline cache need it; the image math runs in parallel
            frame = entry.video.reader.read(index)
            timeline = self._timeline(entry, record.plan) if focused and record.plan.keyframes else None
        if timeline is not None:
            frame = render_frame(frame, timeline.state(index), LensSettings(strength=blur))
        return _jpeg(frame)

    def check_plan(self, record: VideoRecord, plan: FocusPlan) -> None:
        """Raise SelectionError when `plan` does not resolve (a click on nothing, a frame past the end)."""
        entry = self._entry(record)
        with entry.lock:
            self._timeline(entry, plan)

    def select(self, record: VideoRecord, plan: FocusPlan, frame: int, x: float, y: float) -> Selected:
        """What `plan` (with the new click at (x, y) on `frame`) has in focus at `frame`."""
        entry = self._entry(record)
        with entry.lock:
            timeline = self._timeline(entry, plan)
            matte = timeline.state(frame).subject_matte
            analysis = timeline.analysis
            instances = analysis.instances(frame)
            try:
                row = select_instance(instances, x, y, analysis.frame_size, analysis.class_names)
            except SelectionError:  # the timeline found something no instance covers (any-object focus)
                label, track = "object", None
            else:
                track = int(instances.track_ids[row])
                label = analysis.class_names.get(int(instances.class_ids[row]), "object")
        return Selected(label=label, track_id=track, frame=frame, mask_png=mask_png(matte))

    def subjects(self, record: VideoRecord, frame: int) -> list[tuple[str, int, tuple[float, ...], bytes]]:
        """The objects the analysis found on `frame`: (label, track id, box, mask PNG), for hovering."""
        entry = self._entry(record)
        with entry.lock:
            analysis = entry.video.analyse()
            instances = analysis.instances(frame)
        return [
            (
                analysis.class_names.get(int(instances.class_ids[row]), "object"),
                int(instances.track_ids[row]),
                tuple(float(v) for v in instances.boxes[row]),
                mask_png(instances.masks[row].astype(np.float32)),
            )
            for row in range(len(instances))
        ]

    def keyframe_thumbnail(self, record: VideoRecord, index: int) -> bytes:
        """A square JPEG of the subject a keyframe's first click picked (or around the click)."""
        keyframe = record.plan.keyframes[index]
        entry = self._entry(record)
        with entry.lock:
            frame = entry.video.reader.read(keyframe.frame)
            if not keyframe.points:
                return _jpeg(cv2.resize(frame, (96, 96), interpolation=cv2.INTER_AREA))
            x, y = keyframe.points[0]
            box = (x - 60, y - 60, x + 60, y + 60)
            analysis = entry.video.analyse()
            try:
                instances = analysis.instances(keyframe.frame)
                row = select_instance(instances, x, y, analysis.frame_size, analysis.class_names)
                box = tuple(float(v) for v in instances.boxes[row])
            except SelectionError:
                pass
        return _jpeg(thumbnail(frame, box))


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - cv2 always encodes a uint8 BGR image
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()
