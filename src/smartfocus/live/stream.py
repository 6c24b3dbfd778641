"""Running a live engine behind a camera with bounded latency: the newest frame always wins.

A capture thread reads the source as fast as it delivers and puts each frame into a one-slot mailbox;
the processing thread always takes the newest frame. A frame overwritten before it was taken is
dropped and counted. Nothing ever queues up, so when processing is slower than the camera the output
rate drops to what the machine can do but each output frame is at most about two processing times
old, instead of falling further behind with every frame as a queue would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import numpy as np

from smartfocus.live.engine import LiveEngine, LiveFrame

T = TypeVar("T")


class FrameSource(Protocol):
    """A camera-like source: `read` blocks until the next frame, None when the stream has ended."""

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class LatestSlot(Generic[T]):
    """A one-slot mailbox: `put` replaces an unread item (counted in `dropped`), `take` waits for one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def take(self, timeout: float | None = None) -> T | None:
        """The newest item; None once closed and empty, or after `timeout` seconds without one."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._item is not None or self._closed, timeout):
                return None
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """No more items: `take` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class LiveStats:
    """Counters of one live stream."""

    captured: int = 0
    processed: int = 0
    dropped: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, per processed frame
    started: float = 0.0
    finished: float = 0.0

    @property
    def fps(self) -> float:
        """Processed frames per second over the stream so far."""
        span = self.finished - self.started
        return self.processed / span if span > 0 else 0.0


@dataclass(frozen=True)
class _Captured:
    sequence: int
    image: np.ndarray
    time: float


class LiveStream:
    """A source, a live engine and the two threads between them.

    Args:
        on_frame: called on the processing thread with each focused frame (keep it short).
    """

    def __init__(
        self,
        engine: LiveEngine,
        source: FrameSource,
        on_frame: Callable[[LiveFrame], None] | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.on_frame = on_frame
        self.stats = LiveStats()
        self._mailbox: LatestSlot[_Captured] = LatestSlot()
        self._latest: LiveFrame | None = None
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._capture, name="live-capture", daemon=True),
            threading.Thread(target=self._process, name="live-process", daemon=True),
        ]

    def start(self) -> LiveStream:
        self.stats.started = self.engine.clock()
        for thread in self._threads:
            thread.start()
        return self

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def latest(self) -> LiveFrame | None:
        """The newest focused frame (for a UI that redraws at its own pace)."""
        return self._latest

    def stop(self) -> None:
        """Stop capturing; the frame being processed finishes."""
        self._stop.set()
        self._mailbox.close()

    def join(self, timeout: float | None = None) -> LiveStats:
        """Wait for the source to end (or `stop`), then close it; re-raises a processing error."""
        for thread in self._threads:
            thread.join(timeout)
        self.source.close()
        if self._error is not None:
            raise self._error
        return self.stats

    def _capture(self) -> None:
        sequence = 0
        try:
            while not self._stop.is_set():
                image = self.source.read()
                if image is None:
                    break
                self._mailbox.put(_Captured(sequence, image, self.engine.clock()))
                sequence += 1
                self.stats.captured = sequence
        except BaseException as error:  # surfaced by join()
            self._error = error
        finally:
            self._mailbox.close()

    def _process(self) -> None:
        try:
            while (item := self._mailbox.take()) is not None:
                frame = self.engine.process(item.image, item.time, item.sequence)
                self._latest = frame
                self.stats.processed += 1
                self.stats.latencies.append(frame.latency)
                self.stats.finished = frame.output_time
                self.stats.dropped = self._mailbox.dropped
                if self.on_frame is not None:
                    self.on_frame(frame)
        except BaseException as error:
            self._error = error
            self._stop.set()
        self.stats.dropped = self._mailbox.dropped


class FileCamera:
    """A video file played like a camera: frames delivered at the file's rate (times `speed`).

    Used by `smartfocus live --camera FILE`, tests and bench/live.py to stand in for a webcam with
    real footage. `size` = (width, height) rescales the frames, as a camera set to that mode would.
    """

    def __init__(
        self, path: str, *, speed: float = 1.0, size: tuple[int, int] | None = None, loop: bool = False
    ) -> None:
        from smartfocus.media.reader import open_video

        self._reader = open_video(path)
        self.fps = float(self._reader.info.fps) * speed
        self.size = size
        self.loop = loop
        self._frames = self._reader.frames()
        self._next: float | None = None

    def read(self) -> np.ndarray | None:
        item = next(self._frames, None)
        if item is None and self.loop:
            self._frames = self._reader.frames()
            item = next(self._frames, None)
        if item is None:
            return None
        image = item[1]
        if self.size is not None and (image.shape[1], image.shape[0]) != self.size:
            import cv2

            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        now = time.monotonic()
        self._next = now if self._next is None else self._next + 1.0 / self.fps
        if self._next < now - 1.0 / self.fps:  # fell behind (slow decode): a camera does not catch up
            self._next = now
        if self._next > now:
            time.sleep(self._next - now)
        return image

    def close(self) -> None:
        self._reader.close()


class OpenCVCamera:
    """A local camera through cv2.VideoCapture."""

    def __init__(self, index: int, size: tuple[int, int] | None = None) -> None:
        import cv2

        from smartfocus.errors import MediaError

        self._capture = cv2.VideoCapture(index)
        if not self._capture.isOpened():
            raise MediaError(f"camera {index} could not be opened; check it is connected and not in use")
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver must not queue stale frames either
        if size is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def read(self) -> np.ndarray | None:
        ok, image = self._capture.read()
        return image if ok else None

    def close(self) -> None:
        self._capture.release()
