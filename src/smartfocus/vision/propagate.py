"""Follow a clicked region through the clip: optical flow moves it, GrabCut re-fits its edge.

From the click frame the region is carried frame by frame in both directions. Each step warps the
previous mask with dense DIS optical flow (OpenCV), then re-segments only a band around the warped
edge with GrabCut (the warped interior is sure foreground, everything beyond the band sure
background), so the edge follows the object without the mask drifting off across the frame.

Each step is also scored: the share of the mask whose forward and backward flow agree, the area
change from the previous frame, and the colour histogram against the click frame's. When the object leaves
or the tracking collapses (a cut, a full occlusion) the score drops and the region stops there: the
remaining frames in that direction are invisible, never a guess.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.media.reader import VideoReader
from smartfocus.media.transcode import read_ahead
from smartfocus.progress import Progress
from smartfocus.vision.instances import appearance_histograms
from smartfocus.vision.region import ClickSegmenter, Point, RegionTrack, grabcut, keep_seeded

FLOWS_AHEAD = 4  # steps of optical flow computed ahead of the edge re-fits


@dataclass(frozen=True)
class PropagationSettings:
    """Band re-segmentation and the gates that stop a region."""

    band: float = 0.15  # half-width of the re-segmented band, share of sqrt(mask area) (min 2 px)
    iterations: int = 2
    fb_tolerance: float = 1.5  # px (at the work resolution) of forward-backward flow disagreement
    min_consistency: float = 0.35  # share of the mask whose flow agrees, below which tracking stops
    max_step_change: float = 1.6  # area change in one step (either way) beyond which it leaked or broke
    min_colour: float = 0.2  # histogram intersection with the click frame's region
    min_pixels: int = 12  # a region smaller than this (work pixels) has left the frame
    # where a re-fit breaks, the flow alone carries the region when it agrees over this share of
    # it, for this many frames in a row at most (DAVIS dev --any-object: longer carries drift)
    min_flow_only_consistency: float = 0.9
    max_flow_only_steps: int = 30


def _flows(
    grey: Sequence[np.ndarray], steps: range, direction: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Dense DIS flow (backward, forward) between each frame of `steps` and the one before it."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # one per thread
    for frame in steps:
        before, now = grey[frame - direction], grey[frame]
        yield flow.calc(now, before, None), flow.calc(before, now, None)


class RegionPropagator:
    """Carries one mask through a list of frames (all at one resolution, BGR)."""

    def __init__(self, settings: PropagationSettings | None = None) -> None:
        self.settings = settings or PropagationSettings()

    def propagate(
        self,
        frames: Sequence[np.ndarray],
        start: int,
        mask: np.ndarray,
        progress: Progress | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks (frames, h, w) bool, visible (frames,) bool and confidence (frames,) float32 for the
        region `mask` on frame `start`, followed forwards to the end and backwards to frame 0."""
        count = len(frames)
        masks = np.zeros((count, *mask.shape), bool)
        visible = np.zeros(count, bool)
        confidence = np.zeros(count, np.float32)
        masks[start], visible[start], confidence[start] = mask, mask.any(), 1.0
        if not mask.any():
            return masks, visible, confidence
        grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
        reference = appearance_histograms(frames[start], mask[None])[0]
        s = self.settings
        done = 0
        for direction in (1, -1):
            current = mask
            steps = range(start + direction, count if direction > 0 else -1, direction)
            # The flow does not depend on the region, so a thread computes it ahead while this one
            # re-fits the edges (both release the GIL): 12.5 -> 10.3 s on the 720p sample, 2 cores.
            flow_only = 0  # steps in a row carried on the flow alone
            with contextlib.closing(read_ahead(_flows(grey, steps, direction), FLOWS_AHEAD)) as flows:
                for frame, (backward, forward) in zip(steps, flows, strict=False):
                    previous_mask = current
                    refined, warped, score = self._step(frames[frame], backward, forward, current)
                    current = refined
                    plausible = self._plausibility(frames[frame], refined, previous_mask, reference)
                    if (
                        not plausible
                        and score >= s.min_flow_only_consistency
                        and flow_only < s.max_flow_only_steps
                    ):
                        # The edge re-fit broke on this frame (a shadow, a hand nearby) while the
                        # flow agrees almost everywhere: carry the region on the flow alone for a
                        # few frames, rather than lose a subject that barely moved (the blocks
                        # clip, frame 40). Longer, the flow drifts: the region ends as before.
                        current = warped
                        plausible = self._plausibility(frames[frame], warped, previous_mask, reference)
                        flow_only += 1
                    else:
                        flow_only = 0
                    score = min(score, plausible)
                    done += 1
                    if progress:
                        progress(done, count - 1)
                    if score <= 0:
                        break
                    masks[frame], visible[frame], confidence[frame] = current, True, score
            done = count - 1 - start if direction > 0 else count - 1  # a stop skips the rest
            if progress:
                progress(done, count - 1)
        return masks, visible, confidence

    def _step(
        self, image: np.ndarray, backward: np.ndarray, forward: np.ndarray, before: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The region on `image` given its mask `before` on the previous frame and the flows between
        them (`backward`: now -> before, per pixel of now): re-fitted to the edges, moved by the
        flow alone, and the share of it whose flow is consistent."""
        s = self.settings
        height, width = before.shape
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        map_x, map_y = xs + backward[..., 0], ys + backward[..., 1]
        warped = cv2.remap(before.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR) > 0.5
        if warped.sum() < s.min_pixels:
            return warped, warped, 0.0
        there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR)
        disagreement = np.linalg.norm(backward + there, axis=2)
        consistent = float((disagreement[warped] < s.fb_tolerance).mean())
        refined = self._refit(image, warped)
        return refined, warped, consistent if consistent >= s.min_consistency else 0.0

    def _refit(self, image: np.ndarray, warped: np.ndarray) -> np.ndarray:
        """GrabCut in a band around the warped edge, cropped to the region's surroundings."""
        s = self.settings
        band = max(2, round(s.band * float(np.sqrt(warped.sum()))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
        inner = cv2.erode(warped.astype(np.uint8), kernel).astype(bool)
        outer = cv2.dilate(warped.astype(np.uint8), kernel).astype(bool)
        ys, xs = np.nonzero(outer)
        pad = 2 * band
        y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, warped.shape[0])
        x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, warped.shape[1])
        trimap = np.full(warped.shape, cv2.GC_BGD, np.uint8)
        trimap[outer & ~warped] = cv2.GC_PR_BGD
        trimap[warped] = cv2.GC_PR_FGD
        trimap[inner] = cv2.GC_FGD
        crop = trimap[y0:y1, x0:x1].copy()
        grabcut(np.ascontiguousarray(image[y0:y1, x0:x1]), crop, s.iterations)
        result = np.zeros_like(warped)
        result[y0:y1, x0:x1] = (crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD)
        if inner.any():  # drop islands GrabCut found in the band away from the body
            ys, xs = np.nonzero(inner)
            step = max(1, len(xs) // 64)
            result = keep_seeded(result, list(zip(xs[::step].tolist(), ys[::step].tolist(), strict=True)))
        return result

    def _plausibility(
        self, image: np.ndarray, mask: np.ndarray, before: np.ndarray, reference: np.ndarray
    ) -> float:
        """1 while the region's size changes smoothly and its colours stay near the click frame's."""
        s = self.settings
        size, previous = float(mask.sum()), float(before.sum())
        if size < s.min_pixels or not 1 / s.max_step_change <= size / previous <= s.max_step_change:
            return 0.0
        colour = float(np.minimum(appearance_histograms(image, mask[None])[0], reference).sum())
        return 1.0 if colour >= s.min_colour else 0.0


@dataclass(frozen=True)
class RegionSettings:
    """What changes a region's result (part of its cache key) besides the clicks."""

    segmenter: str = "grabcut"
    propagation: PropagationSettings = PropagationSettings()
    version: int = 2  # of the propagation itself: bump when its results change (2: flow-only steps)


def track_region(
    reader: VideoReader,
    frame: int,
    positives: Sequence[Point],
    negatives: Sequence[Point],
    grid: tuple[int, int],
    segmenter: ClickSegmenter,
    propagation: PropagationSettings | None = None,
    progress: Progress | None = None,
) -> RegionTrack:
    """The region under `positives` (and not under `negatives`) on `frame`, source pixels, followed
    through the whole clip on the mask grid (`grid` = (height, width)).

    `progress` hears (done, total) over both passes, reading the clip's frames and following the
    region, so a long clip's reading shows and can be stopped (the callback may raise) too."""
    count = max(1, reader.info.frame_count)

    def read() -> Iterator[np.ndarray]:
        for index, image in reader.small_frames((grid[1], grid[0]), cv2.INTER_AREA):
            if progress is not None:
                progress(min(index, count - 1), 2 * count)
            yield image

    def followed(done: int, steps: int) -> None:
        assert progress is not None
        progress(count + done * count // max(1, steps), 2 * count)

    frames = list(read())
    full = reader.read(frame) if getattr(segmenter, "wants_full_frame", False) else None
    mask = segment_on_grid(
        frames[frame], (reader.info.width, reader.info.height), positives, negatives, segmenter, full
    )
    if not mask.any():
        where = ", ".join(f"({x:g}, {y:g})" for x, y in positives)
        raise SelectionError(f"nothing to focus on at {where} on frame {frame}: no region stands out there")
    masks, visible, confidence = RegionPropagator(propagation).propagate(
        frames, frame, mask, None if progress is None else followed
    )
    return RegionTrack.from_masks(masks, visible, confidence)


def track_mask(
    reader: VideoReader,
    frame: int,
    mask: np.ndarray,
    propagation: PropagationSettings | None = None,
) -> RegionTrack:
    """A grid `mask` of `frame`, segmented elsewhere (a correction's missing piece), followed through
    the whole clip on its grid as `track_region` follows a clicked region."""
    grid = mask.shape
    frames = [image for _, image in reader.small_frames((grid[1], grid[0]), cv2.INTER_AREA)]
    masks, visible, confidence = RegionPropagator(propagation).propagate(frames, frame, mask)
    return RegionTrack.from_masks(masks, visible, confidence)


def segment_on_grid(
    image_on_grid: np.ndarray,
    frame_size: tuple[int, int],
    positives: Sequence[Point],
    negatives: Sequence[Point],
    segmenter: ClickSegmenter,
    full_frame: np.ndarray | None = None,
) -> np.ndarray:
    """The click frame's region on the mask grid, from clicks in source pixels (`frame_size` = (w, h)).

    A segmenter that wants the frame as shot (`wants_full_frame`) is given `full_frame` when there is
    one, and its mask is area-averaged down to the grid.
    """
    if full_frame is not None and getattr(segmenter, "wants_full_frame", False):
        mask = segmenter.segment(full_frame, positives, negatives)
        grid = (image_on_grid.shape[1], image_on_grid.shape[0])
        return cv2.resize(mask.astype(np.float32), grid, interpolation=cv2.INTER_AREA) > 0.5
    sx, sy = image_on_grid.shape[1] / frame_size[0], image_on_grid.shape[0] / frame_size[1]
    return segmenter.segment(
        image_on_grid, [(x * sx, y * sy) for x, y in positives], [(x * sx, y * sy) for x, y in negatives]
    )
