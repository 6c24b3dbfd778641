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
5. else, with a closer look (`look`: the detector on a crop around the carried mask, which finds
   a blurred or small subject the whole frame hides), a crop detection that overlaps the carried
   mask as a take-over would (2.) and has the subject's colours re-anchors the carry there: flow
   on a thin, blurred subject over textured ground follows the ground, so the carried mask slides
   off a flying bird within a few frames unless something puts it back;
6. else the carried mask itself is the subject's for up to `max_carry_frames` (the detector missed
   it: pose, blur, small) while it keeps the subject's colours; after that, or when the mask has
   left the picture, it is lost until a tracklet chain sees it again, or a detection with its
   colours turns up near where it was (within `max_reacquire_frames`). What is carried of a
   subject going out through an edge (or coming back in) stays on that edge (`kept_on_edges`).

Per frame the result says detected (1.0), carried (0.5) or not visible (0), which the timeline, the
CLI's warning and the page's track strip report.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.focus.identity import SubjectTrack, motion_gate, scale_gate
from smartfocus.focus.parts import touch_zone
from smartfocus.vision.analysis import Analysis
from smartfocus.vision.instances import Instances, appearance_histograms
from smartfocus.vision.region import RegionTrack

FOLLOW_VERSION = 12  # part of the follow cache key: bump when the algorithm changes its results
DETECTED = 1.0
CARRIED = 0.5
# Optical flow runs on frames this long at most: DIS costs ~2.5 ms (FAST) or ~7.5 ms (MEDIUM) a
# frame at 320x180, four times that at 640x360 (a 640-px analysis' grid), and a mask that coarse
# moves the same either way.
FLOW_LONG_SIDE = 320
# (start, stop) -> (index, BGR frame of `flow_size(grid)`) for start <= index < stop, in order
SmallFrames = Callable[[int, int], Iterator[tuple[int, np.ndarray]]]
BACKWARD_CHUNK = 128  # frames decoded at once when following backwards (memory stays flat)
# (frame, the carried grid mask) -> the subject's grid mask there, segmented afresh by a promptable
# model prompted with the carried mask's box and deepest point; None where it finds nothing
Anchor = Callable[[int, np.ndarray], np.ndarray | None]
# (frames, the subject's grid mask on each) -> per frame, the detector's masks on a crop around it,
# on the grid ((N, h, w) bool), or None where no closer look is worth it (the subject fills the frame)
Look = Callable[[Sequence[int], Sequence[np.ndarray]], list[np.ndarray | None]]


@dataclass(frozen=True)
class FollowSettings:
    """Gates of the follower; shares of mask cells on the grid. Part of the follow cache key."""

    # DIS preset: "fast" (~2.5 ms a frame at 320 px) or "medium" (~7.5 ms). On DAVIS dev at the
    # 320-px analysis both score the same; at 640 px, medium keeps the swinging child of `swing`
    # that fast loses (see `for_analysis`).
    flow: str = "fast"
    keep: float = 0.3  # share of a chained detection inside the (dilated) carried mask to keep it
    take_over: float = 0.5  # IoU with the carried mask for another detection to take over
    loose_take_over: float = 0.2  # ... or this much, with no other detection a third as close
    hold: float = 0.6  # ... or it holds this share of the carried mask, ...
    max_growth: float = 5.0  # ... is at most this many times its size, ...
    min_appearance: float = 0.5  # ... and its colours match the subject's (histogram intersection)
    part: float = 0.7  # share of a detection inside the carried mask to count as a piece of it
    attach: float = 0.02  # a part touching the kept detections within this share of the grid joins
    cover: float = 0.5  # share of the carried mask the pieces must cover together
    max_carry_frames: int = 30  # frames on flow alone before the subject counts as lost
    min_cells: int = 4  # a carried mask smaller than this has left the picture
    # a carried mask at an edge and narrower across it than this share of the subject stays there
    edge_share: float = 0.5
    min_carried_appearance: float = 0.3  # colours a carried mask must keep (motion blur shifts them)
    max_reacquire_frames: int = 90  # after being lost, a look-alike near where it was is taken ...
    min_reacquire_appearance: float = 0.6  # ... if its colours match this well (stricter than above)
    # With a promptable model (`anchor`), a mask carried on flow is segmented afresh every this many
    # frames and where its colours stop matching, and the fresh mask carries on (its drift undone),
    # at most `max_anchors` times per subject: ~3 s each on a 2-core CPU, milliseconds on a GPU.
    anchor_every: int = 8
    max_anchors: int = 6
    min_anchor_overlap: float = 0.3  # IoU of the fresh mask with the carried one, else it is refused
    max_anchor_growth: float = 2.0  # ... and its area within this factor of the carried one's


def settings_for(imgsz: int) -> FollowSettings:
    """The follower for an analysis at `imgsz`: a finer analysis (the "best" preset) was asked to
    spend time on quality, so its flow is the finer one too."""
    return FollowSettings(flow="medium" if imgsz > 320 else "fast")


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
    *,
    seed: np.ndarray | None = None,
    anchor: Anchor | None = None,
    look: Look | None = None,
) -> RegionTrack:
    """The subject made of `parts` (tracklet chains, all seen on frame `start`) on every frame,
    followed forwards and backwards from `start`; see the module docstring. With `seed` (a grid
    mask on `start`: a clicked region the detector did not find there) and no parts, detections
    that later match where the region went take it over. `anchor` and `look` re-anchor a carried
    mask (steps 5 and 6)."""
    settings = settings or FollowSettings()
    count = analysis.frame_count
    masks = np.zeros((count, *analysis.grid), bool)
    status = np.zeros(count, np.float32)
    seed = _chained(analysis, parts, start) if seed is None else seed
    if seed is None or not seed.any():
        raise ValueError(f"the subject has no mask on frame {start} to follow")
    masks[start], status[start] = seed, DETECTED
    follower = _Follower(analysis, parts, settings, anchor, look)
    follower.run(iter(frames(start, count)), seed, masks, status)
    follower.run(_backward(frames, start), seed, masks, status)
    _fill_from_chains(analysis, parts, masks, status)
    return RegionTrack.from_masks(masks, status > 0, status)


def _fill_from_chains(
    analysis: Analysis, parts: Sequence[SubjectTrack], masks: np.ndarray, status: np.ndarray
) -> None:
    """Where the follower found nothing, what the chains still estimate (a sliver at an edge the
    detector gave up on, carried out along its motion), but only where it continues the mask of
    the frame next to it, in place and size: an estimate elsewhere is a linker's guess the
    follower already judged wrong (a bird that turned back instead of leaving)."""
    count = len(status)
    for frames, step in ((range(1, count), -1), (range(count - 2, -1, -1), 1)):
        for frame in frames:
            neighbour = masks[frame + step]
            if status[frame] > 0 or status[frame + step] == 0:
                continue
            estimates = [m for part in parts if (m := part.mask(analysis, frame)) is not None]
            if not estimates:
                continue
            estimate = np.maximum.reduce(estimates) > 0.5
            side = np.sqrt(neighbour.sum())
            near = np.linalg.norm(mask_centre(estimate) - mask_centre(neighbour)) <= side
            if near and _size_fits(estimate.sum(), neighbour.sum(), 1):
                masks[frame], status[frame] = estimate, CARRIED


def _backward(frames: SmallFrames, start: int) -> Iterator[tuple[int, np.ndarray]]:
    """Frames `start`, `start - 1`, ... 0, decoded forwards in chunks (decoders only go forwards)."""
    stop = start + 1
    while stop > 0:
        first = max(0, stop - BACKWARD_CHUNK)
        yield from reversed(list(frames(first, stop)))
        stop = first


class _Follower:
    def __init__(
        self,
        analysis: Analysis,
        parts: Sequence[SubjectTrack],
        settings: FollowSettings,
        anchor: Anchor | None = None,
        look: Look | None = None,
    ) -> None:
        self.analysis, self.parts, self.settings = analysis, parts, settings
        self.anchor, self.anchors_left = anchor, settings.max_anchors if anchor else 0
        self.look = look
        presets = {"fast": cv2.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        self.flow = cv2.DISOpticalFlow_create(presets[settings.flow])
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
        # the subject's colours where it was last detected (or, for a region, where it was clicked)
        appearance = self._appearance(start) if self.parts else self._colours(previous, seed)
        carried = 0
        seen = deque([(start, mask_centre(seed))], maxlen=5)  # (frame, centre) when detected or carried
        last_mask = seed
        peak = _extent(seed)  # the subject's largest (width, height) as seen, not carried: it whole
        for frame, bgr in frames:
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            chained = _chained(self.analysis, self.parts, frame)
            if current is None:  # lost: wait for a tracklet chain, or a look-alike where it was
                previous_grey = image
                gap = abs(frame - seen[-1][0])
                if chained is not None and _size_fits(chained.sum(), last_mask.sum(), gap):
                    current, carried, appearance = chained, 0, self._appearance(frame)
                    masks[frame], status[frame] = chained, DETECTED
                    peak = np.maximum(peak, _extent(chained))
                else:
                    instances = self.analysis.instances(frame)
                    found = self._reacquired(instances, frame, seen, last_mask, appearance)
                    if found is not None:
                        current, carried = instances.masks[found], 0
                        appearance = instances.appearance[found]
                        masks[frame], status[frame] = current, DETECTED
                        peak = np.maximum(peak, _extent(current))
                continue
            warped = self._warp(current, previous_grey, image)
            previous_grey = image
            warped = kept_on_edges(current, warped, self.settings.edge_share * peak)
            if warped.sum() < self.settings.min_cells:
                current = None  # out of the picture
                continue
            instances = self.analysis.instances(frame)
            found = self._detected(instances, frame, warped, appearance)
            if found is not None:
                current, carried = instances.masks[found].any(axis=0), 0
                appearance = instances.appearance[found].mean(axis=0)
                masks[frame], status[frame] = current, DETECTED
                seen.append((frame, mask_centre(current)))
                last_mask, peak = current, np.maximum(peak, _extent(current))
                continue
            if (
                self.look is not None
                and (closer := self._looked_closer(frame, bgr, warped, last_mask, appearance)) is not None
            ):
                current, carried = closer, 0
                masks[frame], status[frame] = current, DETECTED
                seen.append((frame, mask_centre(current)))
                last_mask, peak = current, np.maximum(peak, _extent(current))
                continue
            carried += 1
            alike = self._looks_like(bgr, warped, appearance)
            due = not alike or carried % self.settings.anchor_every == 0
            if (
                self.anchors_left
                and due
                and (anchored := self._anchored(frame, bgr, warped, appearance)) is not None
            ):
                warped, carried, alike = anchored, 1, True
            if carried > self.settings.max_carry_frames or not alike:
                current = None  # not seen for too long, or what the mask went onto is something else
                continue
            current = warped
            masks[frame], status[frame] = warped, CARRIED
            seen.append((frame, mask_centre(warped)))
            last_mask = warped

    def _reacquired(
        self,
        instances: Instances,
        frame: int,
        seen: deque[tuple[int, np.ndarray]],
        mask: np.ndarray,
        appearance: np.ndarray,
    ) -> int | None:
        """After the subject was lost: the detection (of `instances`, `frame`'s) that looks like it (colours) and is
        where it could have got to, or None. "Where" is its size times a reach that grows with the
        frames gone (as the tracklet linker's gate does), around where it was last and where its
        last motion would have taken it; `mask` is its last mask."""
        s = self.settings
        last_frame, last_centre = seen[-1]
        gap = abs(frame - last_frame)
        if gap > s.max_reacquire_frames or len(instances) == 0:
            return None
        first_frame, first_centre = seen[0]
        velocity = (last_centre - first_centre) / max(abs(last_frame - first_frame), 1)
        predicted = last_centre + velocity * min(gap, 15)
        size = float(np.sqrt(mask.sum()))
        reach = size * motion_gate(gap)
        best, best_alike = None, s.min_reacquire_appearance
        for index, candidate in enumerate(instances.masks):
            area = int(candidate.sum())
            if not area or not 0.25 <= np.sqrt(area) / size <= 4.0:
                continue  # another size altogether
            centre = mask_centre(candidate)
            if min(np.linalg.norm(centre - last_centre), np.linalg.norm(centre - predicted)) > reach:
                continue
            alike = float(np.minimum(instances.appearance[index], appearance).sum())
            if alike >= best_alike:
                best, best_alike = index, alike
        return best

    def _anchored(
        self, frame: int, bgr: np.ndarray, carried: np.ndarray, appearance: np.ndarray
    ) -> np.ndarray | None:
        """The promptable model's mask of the subject where `carried` went, if it agrees with it
        (overlap, about its size) and has the subject's colours; else None (the subject is hidden,
        or the model took in its surroundings)."""
        assert self.anchor is not None
        self.anchors_left -= 1
        fresh = self.anchor(frame, carried)
        if fresh is None or not fresh.any():
            return None
        s = self.settings
        overlap = (fresh & carried).sum() / max((fresh | carried).sum(), 1)
        ratio = fresh.sum() / max(carried.sum(), 1)
        agrees = overlap >= s.min_anchor_overlap and 1 / s.max_anchor_growth <= ratio <= s.max_anchor_growth
        return fresh if agrees and self._looks_like(bgr, fresh, appearance) else None

    def _looked_closer(
        self, frame: int, bgr: np.ndarray, carried: np.ndarray, last: np.ndarray, appearance: np.ndarray
    ) -> np.ndarray | None:
        """The subject as a closer look around the `carried` mask sees it: the crop detection that
        would take over from the carried mask by the whole-frame rules (`take_over`, or
        `loose_take_over` with no rival a third as close), about the size the subject had when last
        seen (`last`: a carried mask shrinks and grows as it drifts, and a piece of its size can be
        what it drifted onto) and with its colours, with the crop's pieces lying inside the carried
        mask; None when the crop shows no such."""
        assert self.look is not None
        (pieces,) = self.look([frame], [carried])
        if pieces is None or not len(pieces):
            return None
        s = self.settings
        cells = pieces.reshape(len(pieces), -1)
        area = cells.sum(axis=1)
        overlap = (cells & carried.ravel()).sum(axis=1)
        iou = overlap / np.maximum(area + carried.sum() - overlap, 1)
        order = np.argsort(iou)[::-1]
        best = int(order[0])
        runner_up = float(iou[order[1]]) if len(order) > 1 else 0.0
        if not (iou[best] >= s.take_over or (iou[best] >= s.loose_take_over and runner_up < iou[best] / 3)):
            return None
        if not 1 / s.max_anchor_growth <= area[best] / max(last.sum(), 1) <= s.max_anchor_growth:
            return None
        if not self._looks_like(bgr, pieces[best], appearance):
            return None
        inside = (cells & carried.ravel()).sum(axis=1) >= s.part * np.maximum(area, 1)
        return pieces[best] | pieces[inside & (area > 0)].any(axis=0)

    def _looks_like(self, bgr: np.ndarray, mask: np.ndarray, appearance: np.ndarray) -> bool:
        """Whether the carried `mask` still covers the subject's colours (not a cut, not the
        occluder it went behind)."""
        colours = self._colours(bgr, mask)
        return float(np.minimum(colours, appearance).sum()) >= self.settings.min_carried_appearance

    @staticmethod
    def _colours(bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
        on_grid = cv2.resize(bgr, mask.shape[::-1], interpolation=cv2.INTER_AREA)
        return appearance_histograms(on_grid, mask[None])[0]

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

    def _detected(
        self, instances: Instances, frame: int, warped: np.ndarray, appearance: np.ndarray
    ) -> list[int] | None:
        """Which of `frame`'s detections are the subject, given where its mask was carried and its
        colours (`appearance`) where last detected; None when none is."""
        s = self.settings
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
        if kept:  # the chains agree with the flow; pieces inside it (a part under a new id) join,
            # and so do the chains' other parts that touch what was kept (a part met later in the
            # clip: it was not in the carried mask, but it rides with the subject)
            held = touch_zone(instances.masks[kept].any(axis=0), s.attach)
            attached = {k for k in named if (instances.masks[k] & held).any()}
            return sorted(set(kept) | pieces | attached)
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
        # nothing matches where the flow went, but the chains see it: the flow drifted, unless the
        # chains' detection is another size altogether (a linker's mistake: the passer-by who
        # walked in front of the subject)
        if named and _size_fits(instances.masks[named].any(axis=0).sum(), warped.sum(), 1):
            return named
        return None


def kept_on_edges(previous: np.ndarray, warped: np.ndarray, sliver: np.ndarray) -> np.ndarray:
    """`warped` moved back onto each picture edge that `previous` touched as a sliver and left.

    What is left of a subject going out of (or coming back into) the picture touches the edge it
    crosses until it is wholly out or wholly in; a carried sliver the flow moves off that edge has
    gone onto the background (the camera pans after the subject, and the ground it was carried
    onto flows inwards). A sliver is narrower across the edge than `sliver` = (width, height), in
    cells: a subject much wider than that, a wing or feet cut off by the edge, may well move away.
    """
    if not warped.any() or not previous.any():
        return warped
    ys, xs = np.nonzero(warped)
    height, width = warped.shape
    before_w, before_h = _extent(previous)
    shift_x = shift_y = 0
    if before_w < sliver[0]:
        if previous[:, 0].any() and xs.min() > 0:
            shift_x = -int(xs.min())
        elif previous[:, -1].any() and xs.max() < width - 1:
            shift_x = width - 1 - int(xs.max())
    if before_h < sliver[1]:
        if previous[0].any() and ys.min() > 0:
            shift_y = -int(ys.min())
        elif previous[-1].any() and ys.max() < height - 1:
            shift_y = height - 1 - int(ys.max())
    if not (shift_x or shift_y):
        return warped
    moved = np.zeros_like(warped)
    moved[ys + shift_y, xs + shift_x] = True
    # and no wider across that edge than it was: the flow there is the background's, which
    # stretches a sliver it carries; a subject coming back in is found by the detector again
    keep_w, keep_h = int(before_w), int(before_h)
    if shift_x < 0:
        moved[:, keep_w:] = False
    elif shift_x > 0:
        moved[:, : width - keep_w] = False
    if shift_y < 0:
        moved[keep_h:] = False
    elif shift_y > 0:
        moved[: height - keep_h] = False
    return moved


def with_takeovers(region: RegionTrack, followed: RegionTrack, agree: float = 0.5) -> RegionTrack:
    """A clicked region's track, with the follower's where a detection took it over: the region is
    the user's pick of something the detector did not see as one object, so while it is followed
    a detection only replaces it where the two agree (IoU >= `agree`); where the region was lost,
    the follower's detections, then what it carried, fill in."""
    frames = len(region.visible)
    masks = np.zeros((frames, *region.grid), bool)
    status = np.zeros(frames, np.float32)
    for frame in range(frames):
        own, other = region.mask(frame), followed.mask(frame)
        detected = other is not None and followed.confidence[frame] >= DETECTED
        if detected and (own is None or (own & other).sum() >= agree * (own | other).sum()):
            masks[frame], status[frame] = other, DETECTED
        elif own is not None or other is not None:
            masks[frame], status[frame] = own if own is not None else other, CARRIED
    return RegionTrack.from_masks(masks, status > 0, status)


def _size_fits(area: float, reference: float, gap: int) -> bool:
    """Whether a mask of `area` cells can be the subject that had `reference` cells `gap` frames
    before: the tracklet linker's scale gate, on the masks' sides."""
    change = abs(np.log(max(float(area), 1.0) / max(float(reference), 1.0))) / 2  # of the side
    return change <= scale_gate(gap)


def _extent(mask: np.ndarray) -> np.ndarray:
    """(width, height) of a grid mask's bounding box, in cells."""
    columns, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(columns):
        return np.zeros(2)
    return np.array([columns[-1] - columns[0] + 1, rows[-1] - rows[0] + 1], float)


def mask_centre(mask: np.ndarray) -> np.ndarray:
    """(x, y) of a grid mask's centre of mass; (0, 0) for an empty one."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)


def _chained(analysis: Analysis, parts: Sequence[SubjectTrack], frame: int) -> np.ndarray | None:
    """The union of the parts' detected masks on `frame`, or None where no part is detected."""
    rows = [int(part.rows[frame]) for part in parts if part.rows[frame] >= 0]
    if not rows:
        return None
    return np.logical_or.reduce([analysis.mask(row) for row in rows])
