"""Corrections: further clicks on any frame that fix the subject in focus there.

A "refine" keyframe (`focus.plan.Keyframe`) carries include and exclude points on a frame where a
subject is already in focus. Each click becomes a *layer* followed through the clip on its own and
laid over the subject from the subject's previous prompt (its keyframe, or the correction before)
to the end, so a correction reaches back until the previous correction and on until the next
one builds on it:

- an include point on a detected object other than the subject adds that object (with what it
  rides or carries), followed like a clicked subject; include points on nothing detected, or on the
  subject's own detection (it covers `SUBJECT_ITSELF` of the subject's mask there), add what the
  subject's mask misses of the object segmented under them *together with the subject* (the
  promptable model prompted with the points and the subject's deepest point, where one is
  configured; without one, a click on the subject's own detection follows that detection again),
  else the region segmented under the points alone;
- an exclude point on a detected object that is not the subject itself (it covers less than
  `SUBJECT_ITSELF` of the subject's mask there) cuts that object alone away, followed likewise
  (without what it carries: the rider stays when the bike is cut); otherwise (a part of the
  subject, or something no detector knows) it cuts the region segmented under the point *against*
  the subject's core: the click segmenter gets the exclude point as its include click and the
  subject's deepest point as its exclude click, so it returns what is under the click and is not
  the subject.

Following each addition as a subject of its own and taking the union measured better on DAVIS dev
(20 sequences, one simulated correction each) than following the enlarged mask as one subject,
which loses the smaller pieces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.focus.selection import mask_core, select_instance
from smartfocus.vision.analysis import Analysis
from smartfocus.vision.region import Point, RegionTrack, keep_seeded

if TYPE_CHECKING:
    from smartfocus.focus.timeline import Subject

# an excluded detection covering this share of the subject's mask is the subject itself (a rider's
# bike covers well under it, a person's own detection nearly all of it)
SUBJECT_ITSELF = 0.8
MAX_ADDED_REGION = 1.0  # a region an include click adds may be at most this share of the subject

# (track id of a detected object on the correction frame, with what it rides or carries?) -> it
# followed through the clip
FollowDetected = Callable[[int, bool], RegionTrack]
# (include points, exclude points) on the correction frame -> that region followed through the clip
FollowRegion = Callable[[tuple[Point, ...], tuple[Point, ...]], RegionTrack]
# (include points, exclude points, the subject's grid mask) on the correction frame -> what the mask
# misses of the object under the points and the subject together (`missing_piece`), followed through
# the clip; None where no promptable model is configured or it finds nothing missing there
FollowPiece = Callable[[tuple[Point, ...], tuple[Point, ...], np.ndarray], RegionTrack | None]
PIECE_REACH = 2  # grid cells: a missing piece this near a click is the one the click is on
# a followed piece whose share of the subject grows past this many times its share on the correction
# frame has leaked into what is around it (a part keeps its share of the subject)
MAX_SHARE_GROWTH = 2.0


@dataclass(frozen=True)
class Layer:
    """One correction click's effect: `track` added to or cut from the subject on the frames from
    `start` up to `end` (None: the clip's end)."""

    start: int
    track: RegionTrack
    add: bool
    end: int | None = None

    def covers(self, frame: int) -> bool:
        return self.start <= frame and (self.end is None or frame < self.end)


@dataclass(frozen=True)
class CorrectedSubject:
    """A subject with its corrections laid over it (see the module docstring)."""

    base: Subject
    prompts: tuple[int, ...]  # the frame the subject was clicked on, then each correction's frame
    layers: tuple[Layer, ...]

    def visible(self) -> np.ndarray:
        return self.status() > 0

    def mask(self, analysis: Analysis, frame: int) -> np.ndarray | None:
        mask = self.base.mask(analysis, frame)
        for layer in self.layers:
            piece = layer.track.mask(frame) if layer.covers(frame) else None
            if piece is None:
                continue
            if layer.add:
                mask = piece.astype(np.float32) if mask is None else np.maximum(mask, piece)
            elif mask is not None:
                kept = mask * ~piece
                # a cut that would take (nearly) all of the subject is not on a part of it there:
                # the excluded object, followed away from its click, went onto the subject (a far
                # rider and the bike under him are one blob); the subject stays whole there
                if kept.sum() >= (1 - SUBJECT_ITSELF) * mask.sum():
                    mask = kept
        return None if mask is None or not mask.any() else mask

    def status(self) -> np.ndarray:
        """The base's, raised where an added piece is seen (cuts do not change it)."""
        status = self.base.status().copy()
        for layer in self.layers:
            if layer.add:
                span = slice(layer.start, layer.end)
                status[span] = np.maximum(status[span], layer.track.confidence[span])
        return status


def correct(
    analysis: Analysis,
    subject: Subject,
    clicked_on: int,
    frame: int,
    points: tuple[Point, ...],
    exclude: tuple[Point, ...],
    follow_detected: FollowDetected,
    follow_region: FollowRegion,
    follow_piece: FollowPiece | None = None,
) -> CorrectedSubject:
    """`subject` (clicked on frame `clicked_on`) with the correction clicks on `frame` laid over it.

    Raises:
        SelectionError: the correction would leave nothing of the subject on `frame`.
    """
    if isinstance(subject, CorrectedSubject):
        base, prompts, layers = subject.base, subject.prompts, list(subject.layers)
    else:
        base, prompts, layers = subject, (clicked_on,), []
    earlier = [p for p in prompts if p <= frame]
    start = max(earlier) if earlier else frame
    current = subject.mask(analysis, frame)
    current = np.zeros(analysis.grid, bool) if current is None else current > 0.5
    instances = analysis.instances(frame)
    loose: list[Point] = []
    for x, y in points:
        row = _detection_under(analysis, frame, x, y)
        # a click on the subject's own detection asks for a part that detection leaves out (lucia's
        # backpack): following that detection again would change nothing
        if row is None or (follow_piece is not None and _is_subject(instances.masks[row], current)):
            loose.append((x, y))
        else:
            layers.append(Layer(start, follow_detected(int(instances.track_ids[row]), True), add=True))
    if loose:
        # GrabCut on a click near the subject's edge alone segments the ground or wall beside it
        # (DAVIS dev: bear's correction on frame 24 took the ground and spoiled every frame); the
        # subject's own point tells the promptable model which object the click belongs to
        region = (
            follow_piece(tuple(loose), exclude, current)
            if follow_piece is not None and current.any()
            else None
        )
        if region is None:
            region = follow_region(tuple(loose), exclude)
        piece = region.mask(frame)
        if current.any() and piece is not None and piece.sum() > MAX_ADDED_REGION * current.sum():
            # GrabCut found a background-sized region, not a missing piece: refuse rather than
            # throw the subject's focus over the scene (measured: the cause of every correction
            # on DAVIS dev that lost more than 0.1 J)
            x, y = loose[0]
            raise SelectionError(
                f"the region under ({x:g}, {y:g}) on frame {frame} is larger than the subject itself; "
                "click on the missing part nearer its edge, or add it as a subject of its own"
            )
        first, end = attached_span(region, frame, start, lambda f: subject.mask(analysis, f))
        layers.append(Layer(first, region, add=True, end=end))
    for x, y in exclude:
        row = _detection_under(analysis, frame, x, y)
        if row is not None and not _is_subject(instances.masks[row], current):
            layers.append(Layer(start, follow_detected(int(instances.track_ids[row]), False), add=False))
        elif current.any():
            core = mask_core(current, analysis.frame_size)
            layers.append(Layer(start, follow_region(((x, y),), (core,)), add=False))
    corrected = CorrectedSubject(base, (*prompts, frame), tuple(layers))
    if corrected.mask(analysis, frame) is None:
        raise SelectionError(
            f"the correction on frame {frame} leaves nothing of the subject; click on the subject itself"
        )
    return corrected


def _is_subject(detection: np.ndarray, current: np.ndarray) -> bool:
    """Whether `detection` covers `SUBJECT_ITSELF` of the subject's mask `current` (a rider's bike
    covers well under it, a person's own detection nearly all of it)."""
    return int((detection & current).sum()) >= SUBJECT_ITSELF * max(int(current.sum()), 1)


def _detection_under(analysis: Analysis, frame: int, x: float, y: float) -> int | None:
    """The row of the detected object right under (x, y) on `frame` (no tolerance), else None."""
    try:
        return select_instance(analysis.instances(frame), x, y, analysis.frame_size, {}, tolerance_px=0)
    except SelectionError:
        return None


def missing_piece(whole: np.ndarray, current: np.ndarray, clicks: tuple[tuple[int, int], ...]) -> np.ndarray:
    """What `current` (the subject's grid mask) lacks of `whole` (the object segmented under the
    correction clicks and the subject's deepest point), only the connected parts that reach within
    `PIECE_REACH` cells of a click (grid (x, y)): the rest of the difference is the segmenter's
    edge disagreeing with the subject's, which the click did not ask about."""
    return keep_seeded(whole & ~current, clicks, reach=PIECE_REACH)


def attached_span(
    region: RegionTrack, frame: int, start: int, subject_mask: Callable[[int], np.ndarray | None]
) -> tuple[int, int]:
    """The frames [first, end) around the correction `frame` (not before `start`) over which a
    clicked region stays part of the subject: walking away from `frame` each way, up to the first
    frame where the region, followed on flow, no longer touches the subject's mask (grown by
    `PIECE_REACH` cells), has grown larger than the subject or its share of the subject has grown
    `MAX_SHARE_GROWTH` times. A piece of ground or wall the click took with it stays where it is
    while the subject moves on (DAVIS bear: the ground under its paw, carried to every frame, took
    0.15 J&F); a missing part moves with the subject. Frames where the subject itself is not found
    do not stop it: the region is all there is there."""
    kernel = np.ones((2 * PIECE_REACH + 1, 2 * PIECE_REACH + 1), np.uint8)

    def body(f: int) -> np.ndarray | None:
        mask = subject_mask(f)
        return None if mask is None or not (mask > 0.5).any() else mask > 0.5

    clicked_piece, clicked_body = region.mask(frame), body(frame)
    clicked = (
        None
        if clicked_piece is None or clicked_body is None
        else float(clicked_piece.sum()) / float(clicked_body.sum())
    )

    def attached(f: int) -> bool:
        piece = region.mask(f)
        if piece is None:
            return False
        subject = body(f)
        if subject is None:
            return True
        if piece.sum() > MAX_ADDED_REGION * subject.sum():
            return False
        if clicked is not None and piece.sum() > MAX_SHARE_GROWTH * clicked * subject.sum():
            return False
        return bool((cv2.dilate(subject.astype(np.uint8), kernel).astype(bool) & piece).any())

    first = frame
    while first - 1 >= start and attached(first - 1):
        first -= 1
    end = frame + 1
    while end < len(region.visible) and attached(end):
        end += 1
    return first, end
