"""The focus plan: plain data saying who is in focus from which frame on.

Like SAM 2's prompts, a plan is (frame, points) data, serialisable to JSON and back, so the CLI, the
server, the page and the Python API all share one format. It holds clicks, not track ids: a plan
stays meaningful for a re-analysis of the same video.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Literal

from smartfocus.errors import SelectionError

Action = Literal["focus", "add", "clear", "refine"]
ACTIONS: tuple[Action, ...] = ("focus", "add", "clear", "refine")
MAX_POINTS = 32  # include plus exclude clicks on one keyframe
MAX_KEYFRAMES = 1000  # a plan longer than this is not made by hand
MAX_TRANSITION_S = 10.0  # the longest rack focus, as the CLI's --transition


@dataclass(frozen=True)
class Keyframe:
    """From `frame` on: focus on exactly the subjects under `points` ("focus"), add them to the
    subjects already in focus ("add"), or focus on nothing ("clear").

    `exclude` points say what is *not* the subject: a detected object under one is never picked by
    this keyframe's points, and a region segmented from the clicks (an object the detector does not
    know) is cut back so it leaves them out.

    "refine" corrects the subject in focus on `frame` nearest the clicks, like a further click in
    SAM 2's demo: what is under `points` becomes part of it, what is under `exclude` is cut away, and
    the corrected mask is followed from `frame` both ways, up to the subject's other prompts (its
    keyframe and other corrections), which keep the frames nearer to them.

    `transition`: seconds the rack focus into this keyframe takes (None: the render's default,
    `--transition`); the look it asks for is reached on `frame` itself.
    """

    frame: int
    action: Action = "focus"
    points: tuple[tuple[float, float], ...] = ()
    exclude: tuple[tuple[float, float], ...] = ()
    transition: float | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise SelectionError(f"unknown keyframe action {self.action!r}; use one of {', '.join(ACTIONS)}")
        if self.frame < 0:
            raise SelectionError(f"keyframe frame must be >= 0, got {self.frame}")
        if self.action == "refine" and not (self.points or self.exclude):
            raise SelectionError("a 'refine' keyframe needs at least one point or exclude point")
        if self.action in ("focus", "add") and not self.points:
            raise SelectionError(f"a {self.action!r} keyframe needs at least one point")
        if self.transition is not None and not 0.0 < self.transition <= MAX_TRANSITION_S:
            raise SelectionError(
                f"keyframe at frame {self.frame}: transition must be between 0 and {MAX_TRANSITION_S:g} "
                f"seconds, got {self.transition:g}"
            )
        if len(self.points) + len(self.exclude) > MAX_POINTS:
            raise SelectionError(
                f"keyframe at frame {self.frame} has {len(self.points) + len(self.exclude)} points; "
                f"at most {MAX_POINTS} fit on one frame"
            )


def check_frame(keyframe: Keyframe, frame_count: int) -> None:
    if keyframe.frame >= frame_count:
        raise SelectionError(
            f"keyframe at frame {keyframe.frame} is past the video's last frame {frame_count - 1}"
        )


def check_inside(x: float, y: float, frame_size: tuple[int, int]) -> None:
    width, height = frame_size
    if not (0 <= x < width and 0 <= y < height):
        raise SelectionError(f"click ({x:g}, {y:g}) is outside the {width}x{height} frame")


@dataclass(frozen=True)
class FocusPlan:
    """An ordered list of keyframes. Editing returns a new plan (plans are values)."""

    keyframes: tuple[Keyframe, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if len(self.keyframes) > MAX_KEYFRAMES:
            raise SelectionError(f"a plan holds at most {MAX_KEYFRAMES} keyframes, got {len(self.keyframes)}")
        # stable sort: several keyframes on one frame apply in the order they were given
        object.__setattr__(self, "keyframes", tuple(sorted(self.keyframes, key=lambda k: k.frame)))

    def focus(
        self, frame: int, *points: tuple[float, float], exclude: tuple[tuple[float, float], ...] = ()
    ) -> FocusPlan:
        """Focus on the subjects under `points` (not under `exclude`) from `frame` on; points on one
        frame stack up."""
        return self._with(Keyframe(frame, "focus", tuple(points), tuple(exclude)))

    def add(
        self, frame: int, *points: tuple[float, float], exclude: tuple[tuple[float, float], ...] = ()
    ) -> FocusPlan:
        return self._with(Keyframe(frame, "add", tuple(points), tuple(exclude)))

    def refine(
        self, frame: int, *points: tuple[float, float], exclude: tuple[tuple[float, float], ...] = ()
    ) -> FocusPlan:
        """Correct the subject in focus at `frame`: `points` are part of it, `exclude` are not (see
        `Keyframe`); corrections on one frame stack up."""
        return self._with(Keyframe(frame, "refine", tuple(points), tuple(exclude)))

    def exclude(self, frame: int, *points: tuple[float, float]) -> FocusPlan:
        """Mark `points` as not the subject: of the click at `frame` (the last focus, add or refine
        keyframe there, like a shift-click after a click), or, on a frame without one, as a
        correction of the subject in focus there."""
        for index in reversed(range(len(self.keyframes))):
            existing = self.keyframes[index]
            if existing.frame == frame and existing.action != "clear":
                changed = replace(existing, exclude=existing.exclude + tuple(points))
                return FocusPlan((*self.keyframes[:index], changed, *self.keyframes[index + 1 :]))
        return self.refine(frame, exclude=tuple(points))

    def clear(self, frame: int) -> FocusPlan:
        return self._with(Keyframe(frame, "clear"))

    def without(self, index: int) -> FocusPlan:
        """The plan with keyframe number `index` removed."""
        if not 0 <= index < len(self.keyframes):
            raise SelectionError(f"no keyframe {index}; the plan has {len(self.keyframes)}")
        return FocusPlan(self.keyframes[:index] + self.keyframes[index + 1 :])

    def _with(self, keyframe: Keyframe) -> FocusPlan:
        if keyframe.action in ("focus", "refine"):
            for index, existing in enumerate(self.keyframes):
                if existing.frame == keyframe.frame and existing.action == keyframe.action:
                    # several focus clicks on one frame keep all those subjects sharp together, and
                    # several corrections on one frame are one correction
                    merged = replace(
                        existing,
                        points=existing.points + keyframe.points,
                        exclude=existing.exclude + keyframe.exclude,
                    )
                    return FocusPlan((*self.keyframes[:index], merged, *self.keyframes[index + 1 :]))
        return FocusPlan((*self.keyframes, keyframe))

    def check_fits(self, frame_count: int, frame_size: tuple[int, int]) -> None:
        """Refuse, before any work, a keyframe past the last frame or a click outside the picture
        (the timeline checks the same as it resolves; this needs no analysis)."""
        for keyframe in self.keyframes:
            check_frame(keyframe, frame_count)
            for x, y in (*keyframe.points, *keyframe.exclude):
                check_inside(x, y, frame_size)

    def to_json(self) -> str:
        return json.dumps(
            {
                "keyframes": [
                    {"frame": k.frame, "action": k.action, "points": k.points}
                    | ({"exclude": k.exclude} if k.exclude else {})
                    | ({"transition": k.transition} if k.transition is not None else {})
                    for k in self.keyframes
                ]
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FocusPlan:
        try:
            data = json.loads(text)
            keyframes = tuple(
                Keyframe(
                    int(k["frame"]),
                    k.get("action", "focus"),
                    tuple(tuple(map(float, p)) for p in k["points"]),
                    tuple(tuple(map(float, p)) for p in k.get("exclude", ())),  # absent in older plans
                    None if k.get("transition") is None else float(k["transition"]),
                )
                for k in data["keyframes"]
            )
        except (ValueError, KeyError, TypeError) as error:
            raise SelectionError(f"not a focus plan: {error}") from error
        return cls(keyframes)
