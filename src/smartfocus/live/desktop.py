"""Desktop windows: focus a video (`smartfocus desktop`) or a camera (`smartfocus live`) by clicking.

Each window is a controller (events in; state and the frame to show out) driven by `run_window`, a thin
loop over an `OpenCVWindow`. The controllers never touch OpenCV's GUI, so a test can drive the very
same loop with scripted clicks and keys.

Keys: click = focus the subject under the pointer (click another to rack focus to it), space =
play/pause, `,` / `.` = one frame back / forward, r = reset focus, b / B = less / more blur,
s = save a still (PNG), q or Esc = quit.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.timeline import subject_label
from smartfocus.live.engine import LiveEngine
from smartfocus.live.stream import LiveStream
from smartfocus.render.compositor import DEFAULT_BLUR, LensSettings
from smartfocus.session import FocusSession

STATUS_HEIGHT = 28  # px: the status line is drawn in a strip below the picture, never over it
BLUR_STEP = 0.1


@dataclass(frozen=True)
class Click:
    """A left click at (x, y) in window pixels (the picture's pixels: the window is not scaled)."""

    x: int
    y: int


@dataclass(frozen=True)
class Key:
    key: str  # one character; "\x1b" is Esc


Event = Click | Key


class Controller(Protocol):
    """What `run_window` drives."""

    quit: bool

    def handle(self, event: Event) -> None: ...

    def tick(self) -> None: ...

    def view(self) -> np.ndarray: ...

    def wait_ms(self) -> int: ...


class _FpsMeter:
    """Frames shown per second over the last second or so."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._times: deque[float] = deque(maxlen=32)

    def tick(self) -> None:
        self._times.append(self.clock())

    @property
    def fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


def with_status(image: np.ndarray, text: str) -> np.ndarray:
    """`image` with a dark strip below it carrying `text`."""
    strip = np.full((STATUS_HEIGHT, image.shape[1], 3), 32, np.uint8)
    cv2.putText(
        strip, text, (8, STATUS_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1, cv2.LINE_AA
    )
    return np.vstack([image, strip])


def save_still(image: np.ndarray, path: Path) -> Path:
    """Write a PNG whole or not at all (temp file + rename)."""
    temp = path.with_name(f".{path.stem}.partial.png")
    if not cv2.imwrite(str(temp), image):
        raise OSError(f"could not write {temp}")
    os.replace(temp, path)
    return path


class DesktopController:
    """A video in a window: click subjects into a `FocusPlan`, scrub and play, save stills.

    Clicks, looks and stills all go through the `FocusSession`, as in the CLI and the server, and its
    analysis is shared with them through the on-disk cache: a clip analysed once is never analysed
    again.
    """

    def __init__(
        self,
        session: FocusSession,
        *,
        blur: float = DEFAULT_BLUR,
        stills_dir: Path = Path("."),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.analysis = session.analyse()
        self.blur = LensSettings(blur).strength
        self.stills_dir = stills_dir
        self.clock = clock
        self.frame = 0
        self.playing = False
        self.quit = False
        self.plan = FocusPlan()
        self.message = "click a subject to focus"
        self._fps = _FpsMeter(clock)
        self._play_origin = (0.0, 0)  # (clock, frame) when playback started: frames follow the clock
        self._cache: tuple[tuple[int, float, str], np.ndarray] | None = None  # (frame, blur, plan)

    @property
    def frame_count(self) -> int:
        return self.session.frame_count

    def handle(self, event: Event) -> None:
        if isinstance(event, Click):
            self._click(event)
            return
        key = event.key
        if key in ("q", "\x1b"):
            self.quit = True
        elif key == " ":
            if not self.playing and self.frame == self.frame_count - 1:
                self.frame = 0  # play again from the start
            self.playing = not self.playing
            self._play_origin = (self.clock(), self.frame)
        elif key in (",", "."):
            self.playing = False
            self.frame = min(max(self.frame + (1 if key == "." else -1), 0), self.frame_count - 1)
        elif key == "r":
            self.plan = FocusPlan()
            self.message = "focus reset"
        elif key in ("b", "B"):
            step = BLUR_STEP if key == "B" else -BLUR_STEP
            self.blur = round(min(max(self.blur + step, 0.0), 1.0), 2)
            self.message = f"blur {self.blur:.1f}"
        elif key == "s":
            path = self.stills_dir / f"{self.session.info.path.stem}_{self.frame:05d}.png"
            self.message = f"saved {save_still(self.focused(), path)}"

    def _click(self, click: Click) -> None:
        width, height = self.analysis.frame_size
        if not (0 <= click.x < width and 0 <= click.y < height):
            return  # the status strip
        # A click replaces the focus from this frame on: a later subject racks focus from the earlier.
        try:
            selection = self.session.select(self.plan, self.frame, float(click.x), float(click.y))
        except SelectionError as error:
            self.message = str(error)
            return
        self.plan = selection.plan
        self.message = f"focus on {self.subject_label()} from frame {self.frame}"

    def subject_label(self) -> str:
        """The subjects in focus at the current frame, e.g. "person #3"."""
        if not self.plan.keyframes:
            return "none"
        timeline = self.session.timeline(self.plan)
        labels = [
            subject_label(self.analysis, timeline.subjects[column])
            for column in np.flatnonzero(timeline.active[self.frame])
        ]
        return ", ".join(labels) or "none"

    def tick(self) -> None:
        """Advance playback to the frame the clock says (frames are skipped if drawing is slower)."""
        if not self.playing:
            return
        start_time, start_frame = self._play_origin
        fps = float(self.session.info.fps)
        self.frame = min(start_frame + int((self.clock() - start_time) * fps), self.frame_count - 1)
        if self.frame == self.frame_count - 1:
            self.playing = False

    def wait_ms(self) -> int:
        return max(1, round(1000 / float(self.session.info.fps))) if self.playing else 30

    def focused(self) -> np.ndarray:
        """The current frame, focused (cached until frame, blur or plan change)."""
        key = (self.frame, self.blur, self.plan.to_json())
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.session.frame(self.plan, self.frame, blur=self.blur))
        return self._cache[1]

    def view(self) -> np.ndarray:
        image = self.focused()
        self._fps.tick()
        state = "playing" if self.playing else "paused"
        status = (
            f"frame {self.frame}/{self.frame_count - 1}  subject: {self.subject_label()}  blur {self.blur:.1f}  "
            f"{self._fps.fps:.0f} fps  [{state}]  {self.message}"
        )
        return with_status(image, status)


class LiveController:
    """A camera in a window: the newest focused frame, click to lock a subject."""

    def __init__(self, stream: LiveStream, *, stills_dir: Path = Path("."), name: str = "live") -> None:
        self.stream = stream
        self.engine: LiveEngine = stream.engine
        self.stills_dir = stills_dir
        self.name = name
        self.quit = False
        self.message = "click a subject to focus"
        self._fps = _FpsMeter(self.engine.clock)
        self._shown = -1
        self._blank = np.zeros((360, 640, 3), np.uint8)

    def handle(self, event: Event) -> None:
        if isinstance(event, Click):
            try:
                chosen = self.engine.select(event.x, event.y)
                self.message = f"focus on {chosen.class_name} #{chosen.track_id}"
            except SelectionError as error:
                self.message = str(error)
        elif event.key in ("q", "\x1b"):
            self.quit = True
        elif event.key == "r":
            self.engine.reset()
            self.message = "focus reset"
        elif event.key in ("b", "B"):
            step = BLUR_STEP if event.key == "B" else -BLUR_STEP
            self.engine.blur = round(min(max(self.engine.blur + step, 0.0), 1.0), 2)
            self.message = f"blur {self.engine.blur:.1f}"
        elif event.key == "s" and (latest := self.stream.latest()) is not None:
            path = self.stills_dir / f"{self.name}_{latest.sequence:06d}.png"
            self.message = f"saved {save_still(latest.image, path)}"

    def tick(self) -> None:
        if not self.stream.running:
            self.quit = True

    def wait_ms(self) -> int:
        return 5

    def view(self) -> np.ndarray:
        latest = self.stream.latest()
        if latest is None:
            return with_status(self._blank, "waiting for the camera...")
        if latest.sequence != self._shown:
            self._shown = latest.sequence
            self._fps.tick()
        stats = self.stream.stats
        status = (
            f"frame {latest.sequence}  {self._fps.fps:.0f} fps  {latest.latency * 1000:.0f} ms  "
            f"dropped {stats.dropped}  blur {self.engine.blur:.1f}  {self.message}"
        )
        return with_status(latest.image, status)


class OpenCVWindow:
    """The thin OpenCV layer: shows images and turns mouse and keyboard input into events."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._pending: list[Event] = []
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # 1:1, so clicks are pixels
        cv2.setMouseCallback(title, self.on_mouse)

    def on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        """OpenCV's mouse callback."""
        if event == cv2.EVENT_LBUTTONDOWN:
            self._pending.append(Click(x, y))

    def show(self, image: np.ndarray) -> None:
        cv2.imshow(self.title, image)

    def wait_key(self, delay_ms: int) -> int:
        """Pump the GUI for up to `delay_ms`; the key pressed, or -1."""
        return cv2.waitKey(delay_ms)

    def poll(self, delay_ms: int) -> list[Event]:
        key = self.wait_key(max(1, delay_ms))
        events, self._pending = self._pending, []
        if key != -1:
            events.append(Key(chr(key & 0xFF)))
        return events

    @property
    def closed(self) -> bool:
        """True once the user closed the window with the window manager."""
        return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        cv2.destroyWindow(self.title)


def run_window(controller: Controller, window: OpenCVWindow) -> None:
    """Show, wait for input, react; until the controller quits or the window is closed."""
    try:
        while not controller.quit:
            window.show(controller.view())
            for event in window.poll(controller.wait_ms()):
                controller.handle(event)
            if window.closed:
                break
            controller.tick()
    finally:
        window.close()
