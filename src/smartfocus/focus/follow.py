"""Follow a clicked subject frame by frame: optical flow says where its mask went, detections say
what it is there.

ByteTrack and the tracklet linker (`identity`) decide identity from boxes, colours and motion; they
break on what the detector sees badly (a dancer changing shape, a swinging child, a bird in motion
blur) and can jump to a look-alike. Here the subject's mask is carried from each frame to the next
with dense optical flow (OpenCV's DIS at <= 320 px, ~2.5 ms a frame) and the detections of the
next frame are judged against that carried mask:

1. the detections the tracklet chains name for the frame are kept when they lie where the subject
   went, with any detection lying inside the carried mask (a part under a new ByteTrack id);
2. else another detection that overlaps the carried mask well (or clearly best, where nothing else
   is near) takes over (a new ByteTrack id for the same object), again with the pieces inside;
3. else detections lying inside the carried mask that together cover it stand in (the object seen
   in pieces);
4. else the chains' detections, where they have any (the flow drifted, not the subject);
5. else the carried mask itself is the subject's for up to `max_carry_frames` (the detector missed
   it: pose, blur, small); after that, or when the mask has left the picture, it is lost until a
   tracklet chain sees it again.

Per frame the result says detected (1.0), carried (0.5) or not visible (0), which the timeline, the
CLI's warning and the page's track strip report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.focus.identity import SubjectTrack
from smartfocus.vision.analysis import Analysis
from smartfocus.vision.instances import appearance_histograms
from smartfocus.vision.region import RegionTrack

FOLLOW_VERSION = 2  # part of the follow cache key: bump when the algorithm changes its results
DETECTED = 1.0
CARRIED = 0.5
# Optical flow runs on frames this long at most: DIS (its FAST preset) costs ~2.5 ms a frame at
# 320x180, four times that at 640x360 (a 640-px analysis' grid), and a mask that coarse moves the
# same either way. The MEDIUM preset (~7.5 ms) scored the same on DAVIS dev (J&F 0.658 vs 0.657).
FLOW_LONG_SIDE = 320
# (start, stop) -> (index, BGR frame of `flow_size(grid)`) for start <= index < stop, in order
SmallFrames = Callable[[int, int], Iterator[tuple[int, np.ndarray]]]
BACKWARD_CHUNK = 128  # frames decoded at once when following backwards (memory stays flat)


@dataclass(frozen=True)
class FollowSettings:
    """Gates of the follower; shares of mask cells on the grid. Part of the follow cache key."""

    keep: float = 0.3  # share of a chained detection inside the (dilated) carried mask to keep it
    take_over: float = 0.5  # IoU with the carried mask for another detection to take over
    loose_take_over: float = 0.2  # ... or this much, with no other detection a third as close
    hold: float = 0.6  # ... or it holds this share of the carried mask, ...
    max_growth: float = 5.0  # ... is at most this many times its size, ...
    min_appearance: float = 0.5  # ... and its colours match the subject's (histogram intersection)
    part: float = 0.7  # share of a detection inside the carried mask to count as a piece of it
    cover: float = 0.5  # share of the carried mask the pieces must cover together
    max_carry_frames: int = 30  # frames on flow alone before the subject counts as lost
    min_cells: int = 4  # a carried mask smaller than this has left the picture
    min_carried_appearance: float = 0.3  # colours a carried mask must keep (motion blur shifts them)


def flow_size(grid: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the frames the flow is computed on, for a mask grid (height, width)."""
    height, width = grid
    scale = min(1.0, FLOW_LONG_SIDE / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def follow_subject_masks(
    analysis: Analysis,
    frames: SmallFrames,
    start: int,
    parts: Sequence[SubjectTrack],
    settings: FollowSettings | None = None,
) -> RegionTrack:
    """The subject made of `parts` (tracklet chains, all seen on frame `start`) on every frame,
    followed forwards and backwards from `start`; see the module docstring."""
    settings = settings or FollowSettings()
    count = analysis.frame_count
    masks = np.zeros((count, *analysis.grid), bool)
    status = np.zeros(count, np.float32)
    seed = _chained(analysis, parts, start)
    if seed is None:
        raise ValueError(f"none of the subject's parts is detected on frame {start}")
    masks[start], status[start] = seed, DETECTED
    follower = _Follower(analysis, parts, settings)
    follower.run(_forward(frames, start, count), seed, masks, status)
    follower.run(_backward(frames, start), seed, masks, status)
    return RegionTrack.from_masks(masks, status > 0, status)


def _forward(frames: SmallFrames, start: int, count: int) -> Iterator[tuple[int, np.ndarray]]:
    yield from frames(start, count)


def _backward(frames: SmallFrames, start: int) -> Iterator[tuple[int, np.ndarray]]:
    """Frames `start`, `start - 1`, ... 0, decoded forwards in chunks (decoders only go forwards)."""
    stop = start + 1
    while stop > 0:
        first = max(0, stop - BACKWARD_CHUNK)
        yield from reversed(list(frames(first, stop)))
        stop = first


class _Follower:
    def __init__(self, analysis: Analysis, parts: Sequence[SubjectTrack], settings: FollowSettings) -> None:
        self.analysis, self.parts, self.settings = analysis, parts, settings
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        height, width = analysis.grid
        self.xs, self.ys = np.meshgrid(
            np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
        )

    def run(
        self,
        frames: Iterator[tuple[int, np.ndarray]],
        seed: np.ndarray,
        masks: np.ndarray,
        status: np.ndarray,
    ) -> None:
        """Follow `seed` (the first frame's mask) through `frames`, filling `masks` and `status`."""
        first = next(frames, None)
        if first is None:
            return
        start, previous = first
        previous_grey = cv2.cvtColor(previous, cv2.COLOR_BGR2GRAY)
        current: np.ndarray | None = seed
        appearance = self._appearance(start)  # the subject's colours where it was last detected
        carried = 0
        for frame, bgr in frames:
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            chained = _chained(self.analysis, self.parts, frame)
            if current is None:  # lost: wait for a tracklet chain to see it again
                if chained is not None:
                    current, carried, appearance = chained, 0, self._appearance(frame)
                    masks[frame], status[frame] = chained, DETECTED
                previous_grey = image
                continue
            warped = self._warp(current, previous_grey, image)
            previous_grey = image
            if warped.sum() < self.settings.min_cells:
                current = None  # out of the picture
                continue
            found = self._detected(frame, warped, appearance)
            if found is not None:
                instances = self.analysis.instances(frame)
                current, carried = instances.masks[found].any(axis=0), 0
                appearance = instances.appearance[found].mean(axis=0)
                masks[frame], status[frame] = current, DETECTED
                continue
            carried += 1
            if carried > self.settings.max_carry_frames or not self._looks_like(bgr, warped, appearance):
                current = None  # not seen for too long, or what the mask went onto is something else
                continue
            current = warped
            masks[frame], status[frame] = warped, CARRIED

    def _looks_like(self, bgr: np.ndarray, mask: np.ndarray, appearance: np.ndarray) -> bool:
        """Whether the carried `mask` still covers the subject's colours (not a cut, not the
        occluder it went behind)."""
        on_grid = cv2.resize(bgr, mask.shape[::-1], interpolation=cv2.INTER_AREA)
        colours = appearance_histograms(on_grid, mask[None])[0]
        return float(np.minimum(colours, appearance).sum()) >= self.settings.min_carried_appearance

    def _appearance(self, frame: int) -> np.ndarray:
        rows = [int(part.rows[frame]) for part in self.parts if part.rows[frame] >= 0]
        return self.analysis.appearance[rows].mean(axis=0)

    def _warp(self, mask: np.ndarray, before: np.ndarray, now: np.ndarray) -> np.ndarray:
        """`mask` (on `before`) moved to `now`: each cell of now looks up where it came from."""
        back = self.flow.calc(now, before, None)
        if back.shape[:2] != mask.shape:  # flow on smaller frames: up to the grid, in grid cells
            scale = mask.shape[1] / back.shape[1]
            back = cv2.resize(back, mask.shape[::-1], interpolation=cv2.INTER_LINEAR) * scale
        moved = cv2.remap(
            mask.astype(np.float32), self.xs + back[..., 0], self.ys + back[..., 1], cv2.INTER_LINEAR
        )
        return moved > 0.5

    def _detected(self, frame: int, warped: np.ndarray, appearance: np.ndarray) -> list[int] | None:
        """Which of `frame`'s detections are the subject, given where its mask was carried and its
        colours (`appearance`) where last detected; None when none is."""
        s = self.settings
        instances = self.analysis.instances(frame)
        if len(instances) == 0:
            return None
        cells = instances.masks.reshape(len(instances), -1)
        area = cells.sum(axis=1)
        near = cv2.dilate(warped.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool).ravel()
        inside = (cells & near).sum(axis=1)
        overlap = (cells & warped.ravel()).sum(axis=1)
        pieces = set(np.flatnonzero((area > 0) & (inside >= s.part * area)).tolist())
        offset = self.analysis.row_of(frame, 0)
        named = [int(part.rows[frame]) - offset for part in self.parts if part.rows[frame] >= 0]
        kept = [k for k in named if inside[k] >= s.keep * area[k]]
        if kept:  # the chains agree with the flow; pieces inside it (a part under a new id) join
            return sorted(set(kept) | pieces)
        iou = overlap / np.maximum(area + warped.sum() - overlap, 1)
        order = np.argsort(iou)[::-1]
        best = int(order[0])
        runner_up = float(iou[order[1]]) if len(order) > 1 else 0.0
        # a clear overlap takes over; a weaker one only where no other detection competes for the
        # place; a detection holding most of the carried mask (the subject seen whole again) only if
        # it looks like the subject (else it is what the subject went behind)
        alike = (
            len(appearance) > 0
            and float(np.minimum(instances.appearance[best], appearance).sum()) >= s.min_appearance
        )
        holds = overlap[best] >= s.hold * warped.sum() and area[best] <= s.max_growth * warped.sum()
        if (
            iou[best] >= s.take_over
            or (iou[best] >= s.loose_take_over and runner_up < iou[best] / 3)
            or (holds and alike)
        ):
            return sorted({best} | pieces)
        if pieces:
            union = instances.masks[sorted(pieces)].any(axis=0)
            if (union & warped).sum() >= s.cover * warped.sum():
                return sorted(pieces)
        if named:  # nothing matches where the flow went, but the chains see it: the flow drifted
            return named
        return None


def _chained(analysis: Analysis, parts: Sequence[SubjectTrack], frame: int) -> np.ndarray | None:
    """The union of the parts' detected masks on `frame`, or None where no part is detected."""
    rows = [int(part.rows[frame]) for part in parts if part.rows[frame] >= 0]
    if not rows:
        return None
    return np.logical_or.reduce([analysis.mask(row) for row in rows])
