"""The page's open videos: one `FocusSession` per recently used video, and JPEG/PNG encodings.

Everything about focus (what a click picks, a frame's look, thumbnails) is the session's; this only
keeps a few sessions warm (an open reader, the loaded analysis, the timelines of recent plans) so a
click or a scrub answers in milliseconds, and encodes what they give for HTTP.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from smartfocus.cluster import RayRunner
from smartfocus.errors import MediaError
from smartfocus.focus.plan import FocusPlan
from smartfocus.server.settings import Settings
from smartfocus.server.store import VideoRecord
from smartfocus.session import FocusSession, FrameObject, Selection, SelectMode, open_video
from smartfocus.vision.model import SharedModel

log = logging.getLogger(__name__)
OPEN_VIDEOS = 4  # sessions kept open (each holds a decoder); older ones are closed
JPEG_QUALITY = 85


class Previews:
    """Sessions of the videos the page is working on, by video id."""

    def __init__(self, settings: Settings, model: SharedModel) -> None:
        self.settings, self.model = settings, model
        self._open: OrderedDict[str, FocusSession] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for session in self._open.values():
                session.close()
            self._open.clear()

    def forget(self, video_id: str) -> None:
        """Close the video's session, if open (the video is being deleted)."""
        with self._lock:
            session = self._open.pop(video_id, None)
        if session is not None:
            session.close()

    def session(self, record: VideoRecord) -> FocusSession:
        with self._lock:
            session = self._open.get(record.id)
            if session is None:
                session = self._open[record.id] = open_session(self.settings, self.model, record.source)
                while len(self._open) > OPEN_VIDEOS:
                    _, old = self._open.popitem(last=False)
                    old.close()
            self._open.move_to_end(record.id)
        copy = self.settings.preview_copy(record.id)
        if not session.has_preview_copy and copy.is_file():  # its preview job finished
            try:
                session.use_preview_copy(copy)
            except MediaError:  # not a copy of this video after all: previews come from the source
                log.warning("removing %s: not a preview copy of video %s", copy, record.id)
                copy.unlink(missing_ok=True)
        return session

    def frame_jpeg(
        self, record: VideoRecord, index: int, *, focused: bool, blur: float, width: int | None = None
    ) -> bytes:
        """Frame `index` as JPEG: as shot, or with the video's plan applied (needs its analysis);
        `width`: scaled down to it (a playback preview)."""
        plan = record.plan if focused else FocusPlan()
        return jpeg(self.session(record).frame(plan, index, blur=blur, width=width))

    def select(self, record: VideoRecord, frame: int, x: float, y: float, mode: SelectMode) -> Selection:
        return self.session(record).select(record.plan, frame, x, y, mode)

    def objects(self, record: VideoRecord, frame: int) -> list[FrameObject]:
        return self.session(record).objects(frame)

    def matte_png(self, record: VideoRecord, index: int) -> bytes:
        """What the video's plan keeps sharp on frame `index`, as `mask_png` (the page's mask view)."""
        session = self.session(record)
        if not record.plan.keyframes:
            return mask_png(np.zeros(session.analyse().grid, np.float32))
        return mask_png(session.state(record.plan, index).subject_matte)

    def keyframe_thumbnail(self, record: VideoRecord, index: int) -> bytes:
        return jpeg(self.session(record).keyframe_thumbnail(record.plan.keyframes[index]))


def open_session(settings: Settings, model: SharedModel, source: Path) -> FocusSession:
    """A session on an uploaded video, caching under the server's data folder; its analysis and
    renders run on the cluster when there is one (the app connects to it for its lifetime)."""
    return open_video(
        source,
        model=model,
        cache_dir=settings.analyses_dir,
        region_cache_dir=settings.regions_dir,
        runner=RayRunner.connected() if settings.cluster else None,
    )


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def mask_png(mask: np.ndarray) -> bytes:
    """A grid mask (bool or float) as a small white RGBA PNG whose alpha is the subject (255 = in
    focus): the page scales it onto the frame and tints it (canvas `source-in`)."""
    alpha = np.clip(mask.astype(np.float32) * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", np.dstack([np.full_like(alpha, 255)] * 3 + [alpha]))
    if not ok:  # pragma: no cover - cv2 always encodes a uint8 image
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def mask_url(mask: np.ndarray) -> str:
    """`mask_png` as a data URL, for JSON answers."""
    return data_url(mask_png(mask))


def jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - cv2 always encodes a uint8 BGR image
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()
