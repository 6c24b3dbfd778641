"""Identity through occlusion: re-link the tracklets that are one object across the whole video.

ByteTrack forgets an object after a short gap and gives it a new id when it comes back. Because an
analysis covers the whole video, we can do better offline: every tracklet end is matched to at most
one later tracklet start, by appearance (colour histogram) and motion (extrapolated position, size),
in one global greedy assignment. Matching all tracklets at once, not just the subject's, is what keeps
the focus from jumping to another object: a fragment that continues a bystander is claimed by the
bystander's own, better-fitting history.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.vision.analysis import Analysis, Tracklet
from smartfocus.vision.instances import interpolate_mask


@dataclass(frozen=True)
class LinkSettings:
    """Gates for re-linking tracklets, in frames and in multiples of the object's size."""

    max_gap_frames: int = 450  # ~15 s at 30 fps: an object may leave the frame and come back
    min_appearance: float = 0.5  # histogram intersection in [0, 1]
    max_overlap_frames: int = 3  # ByteTrack sometimes starts a new id a frame or two before the old dies
    min_overlap_containment: float = 0.6  # ... and then the two masks are one object seen twice
    fill_gap_frames: int = 30  # shorter gaps are bridged by interpolation unless another object covers it
    max_cover: float = 0.3  # share of the bridged mask another object may cover before it counts as occluded
    # ... unless that object already claimed this share of the subject's own pixels where the gap
    # starts or ends: then the subject was a fragment of it (two detections of one object), not
    # something it hid behind, and the object stands in for the subject through the gap
    min_shared: float = 0.35
    # A subject whose track ends at the frame's edge while moving out of it (the detector gives up on
    # the last sliver) is carried on along its motion for up to this many frames, until it is out;
    # likewise before a track that starts at an edge moving in.
    exit_frames: int = 15
    edge_margin: float = 0.02  # "at the edge": box within this share of the frame's width/height
    min_exit_speed: float = 0.5  # px per frame towards the edge
    edge_samples: int = 5  # sightings averaged at a tracklet's head and tail


@dataclass(frozen=True)
class _Ends:
    """What a tracklet looks like where it starts and where it stops."""

    head_center: np.ndarray
    tail_center: np.ndarray
    head_velocity: np.ndarray  # px per frame
    tail_velocity: np.ndarray
    head_size: float  # sqrt(box area), px
    tail_size: float
    head_appearance: np.ndarray
    tail_appearance: np.ndarray


def _ends(analysis: Analysis, tracklet: Tracklet, samples: int) -> _Ends:
    boxes = analysis.boxes[tracklet.rows]
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = np.sqrt(np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0), axis=1))
    frames = tracklet.frames.astype(np.float32)

    def velocity(sel: slice) -> np.ndarray:
        span = frames[sel][-1] - frames[sel][0]
        return (centers[sel][-1] - centers[sel][0]) / span if span > 0 else np.zeros(2, np.float32)

    head, tail = slice(0, samples), slice(-samples, None)
    return _Ends(
        head_center=centers[0],
        tail_center=centers[-1],
        head_velocity=velocity(head),
        tail_velocity=velocity(tail),
        head_size=float(np.median(sizes[head])),
        tail_size=float(np.median(sizes[tail])),
        head_appearance=analysis.appearance[tracklet.rows[head]].mean(axis=0),
        tail_appearance=analysis.appearance[tracklet.rows[tail]].mean(axis=0),
    )


def motion_gate(gap: int) -> float:
    """How far an object unseen for `gap` frames may have got, in multiples of its size: the
    longer the gap, the further (up to 8 sizes)."""
    return min(1.0 + 0.15 * gap, 8.0)


def scale_gate(gap: int) -> float:
    """How much the log of an object's side may change over `gap` frames: it doubles or halves,
    plus 2% a frame."""
    return float(np.log(2.0)) + 0.02 * gap


def _link_cost(before: Tracklet, a: _Ends, after: Tracklet, b: _Ends, settings: LinkSettings) -> float | None:
    """Cost of `after` continuing `before` (lower is likelier), or None when it cannot."""
    gap = max(after.start - before.end, 1)  # overlapping pairs were vetted by the caller
    if gap > settings.max_gap_frames:
        return None
    appearance = float(np.minimum(a.tail_appearance, b.head_appearance).sum())
    if appearance < settings.min_appearance:
        return None
    size = (a.tail_size + b.head_size) / 2
    horizon = min(gap, 15)  # extrapolating velocity further than this only adds noise
    forward = a.tail_center + a.tail_velocity * horizon - b.head_center
    backward = b.head_center - b.head_velocity * horizon - a.tail_center
    motion = min(np.linalg.norm(forward), np.linalg.norm(backward)) / size
    reach, max_scale_change = motion_gate(gap), scale_gate(gap)  # the longer the gap, the wider
    scale_change = abs(np.log(b.head_size / a.tail_size))
    if motion > reach or scale_change > max_scale_change:
        return None
    return (1 - appearance) + 0.5 * motion / reach + 0.5 * scale_change / max_scale_change + 0.002 * gap


def link_tracklets(analysis: Analysis, settings: LinkSettings | None = None) -> dict[int, int]:
    """Successor of each tracklet that continues after a gap: {track id: next track id}."""
    settings = settings or LinkSettings()
    tracklets = analysis.tracklets()
    ends = {tid: _ends(analysis, t, settings.edge_samples) for tid, t in tracklets.items()}
    by_start = sorted(tracklets.values(), key=lambda t: t.start)
    starts = [t.start for t in by_start]
    pairs: list[tuple[float, int, int]] = []
    for before in tracklets.values():
        # only tracklets starting near this one's end can continue it: keeps long videos linear-ish
        first = bisect.bisect_left(starts, before.end - settings.max_overlap_frames + 1)
        last = bisect.bisect_right(starts, before.end + settings.max_gap_frames)
        for after in by_start[first:last]:
            if after.end <= before.end or after.start <= before.start:
                continue
            if after.start <= before.end and not _same_object_where_overlapping(
                analysis, before, after, settings
            ):
                continue
            cost = _link_cost(before, ends[before.track_id], after, ends[after.track_id], settings)
            if cost is not None:
                pairs.append((cost, before.track_id, after.track_id))
    successor: dict[int, int] = {}
    claimed: set[int] = set()
    for _cost, before_id, after_id in sorted(pairs):
        if before_id not in successor and after_id not in claimed:
            successor[before_id] = after_id
            claimed.add(after_id)
    return successor


def _same_object_where_overlapping(
    analysis: Analysis, before: Tracklet, after: Tracklet, settings: LinkSettings
) -> bool:
    """True when two tracklets that briefly coexist are one object detected twice (one mask inside the
    other) rather than two objects side by side."""
    frames = np.intersect1d(before.frames, after.frames)
    if after.start <= before.end - settings.max_overlap_frames or len(frames) == 0:
        return False
    for frame in frames:
        a = analysis.mask(int(before.rows[np.searchsorted(before.frames, frame)]))
        b = analysis.mask(int(after.rows[np.searchsorted(after.frames, frame)]))
        if (a & b).sum() < settings.min_overlap_containment * max(min(a.sum(), b.sum()), 1):
            return False
    return True


@dataclass(frozen=True)
class SubjectTrack:
    """One subject across the whole video: which analysis row is it in each frame.

    `rows[t]` is the subject's row at frame t, or -1 when it was not detected there. `bridged[t]`
    marks undetected frames inside a short gap where no other object covers the subject's likely
    place: a missed detection, not an occlusion, so `mask()` interpolates the neighbouring masks there
    and the matte does not flicker.
    """

    track_ids: tuple[int, ...]
    rows: np.ndarray  # (frame_count,) int
    bridged: np.ndarray  # (frame_count,) bool
    # (frame_count,) int: in a gap where the subject was a fragment of a larger detection (see
    # `LinkSettings.min_shared`), that detection's row, which stands in for it; else -1
    absorbed: np.ndarray
    # (frame_count,) int and (frame_count, 2) float: on frames where the subject is leaving (or
    # entering) the picture undetected, the row of its last (first) sighting and how far, in grid
    # cells, its mask has moved on from there; else -1
    edge_rows: np.ndarray
    edge_shifts: np.ndarray

    def visible(self) -> np.ndarray:
        """(frame_count,) bool: detected, bridged, absorbed or leaving/entering at an edge."""
        return (self.rows >= 0) | self.bridged | (self.absorbed >= 0) | (self.edge_rows >= 0)

    def status(self) -> np.ndarray:
        """(frame_count,) float32: 1 detected, 0.5 carried (bridged, absorbed, at an edge), 0 not seen."""
        return np.where(self.rows >= 0, 1.0, np.where(self.visible(), 0.5, 0.0)).astype(np.float32)

    def mask(self, analysis: Analysis, frame: int) -> np.ndarray | None:
        """The subject's grid mask at `frame` as float32 [0, 1], or None when it is not there."""
        row = self.rows[frame]
        if row >= 0:
            return analysis.mask(int(row)).astype(np.float32)
        if self.absorbed[frame] >= 0:
            return analysis.mask(int(self.absorbed[frame])).astype(np.float32)
        if self.edge_rows[frame] >= 0:
            mask = analysis.mask(int(self.edge_rows[frame])).astype(np.float32)
            (dx, dy), (height, width) = self.edge_shifts[frame], mask.shape
            move = np.float32([[1, 0, dx], [0, 1, dy]])
            return cv2.warpAffine(mask, move, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0)
        return _interpolated_mask(analysis, self.rows, frame) if self.bridged[frame] else None


def _interpolated_mask(analysis: Analysis, rows: np.ndarray, frame: int) -> np.ndarray:
    """The mask at an undetected `frame`, moved along the boxes of the sightings either side of it."""
    seen = np.flatnonzero(rows >= 0)
    position = np.searchsorted(seen, frame)
    before, after = int(seen[position - 1]), int(seen[position])
    mask, _box = interpolate_mask(
        analysis.mask(int(rows[before])),
        analysis.boxes[rows[before]],
        analysis.mask(int(rows[after])),
        analysis.boxes[rows[after]],
        (frame - before) / (after - before),
        analysis.grid[1] / analysis.frame_size[0],
    )
    return mask


def _bridge_gaps(
    analysis: Analysis, rows: np.ndarray, settings: LinkSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Which undetected frames to fill by interpolation, and which by a detection the subject was a
    fragment of (see `SubjectTrack`): (bridged bool, absorbed row or -1) per frame."""
    bridged = np.zeros(len(rows), bool)
    absorbed = np.full(len(rows), -1, np.int64)
    seen = np.flatnonzero(rows >= 0)
    for before, after in itertools.pairwise(seen):
        if not 1 < after - before <= settings.fill_gap_frames + 1:
            continue
        hosts: set[int] | None = None  # looked up only if something covers the gap
        for frame in range(before + 1, after):
            mask = _interpolated_mask(analysis, rows, frame) > 0.5
            instances = analysis.instances(frame)
            covered = (instances.masks & mask).sum(axis=(1, 2))
            if covered.max(initial=0) <= settings.max_cover * max(mask.sum(), 1):
                bridged[frame] = True
                continue
            cover = int(np.argmax(covered))
            if hosts is None:
                hosts = _hosts(analysis, int(rows[before]), before, settings) | _hosts(
                    analysis, int(rows[after]), after, settings
                )
            if int(instances.track_ids[cover]) in hosts:
                absorbed[frame] = analysis.row_of(frame, cover)
    return bridged, absorbed


def _hosts(analysis: Analysis, row: int, frame: int, settings: LinkSettings) -> set[int]:
    """Track ids of the other detections on `frame` that claim `min_shared` of this row's pixels."""
    mask = analysis.mask(row)
    instances = analysis.instances(frame)
    shared = (instances.masks & mask).sum(axis=(1, 2))
    own = int(analysis.track_ids[row])
    return {
        int(track_id)
        for track_id, count in zip(instances.track_ids, shared, strict=True)
        if track_id != own and count >= settings.min_shared * max(int(mask.sum()), 1)
    }


def follow_subject(
    analysis: Analysis, track_id: int, successors: dict[int, int], settings: LinkSettings | None = None
) -> SubjectTrack:
    """The subject clicked as `track_id`, followed forwards and backwards through its linked tracklets."""
    settings = settings or LinkSettings()
    predecessors = {after: before for before, after in successors.items()}
    chain = [track_id]
    while chain[0] in predecessors:
        chain.insert(0, predecessors[chain[0]])
    while chain[-1] in successors:
        chain.append(successors[chain[-1]])
    rows = np.full(analysis.frame_count, -1, np.int64)
    tracklets = analysis.tracklets()
    for tid in chain:  # a later tracklet wins the frames where it overlaps the one before
        rows[tracklets[tid].frames] = tracklets[tid].rows
    bridged, absorbed = _bridge_gaps(analysis, rows, settings)
    edge_rows, edge_shifts = _edge_crossings(analysis, rows, settings)
    return SubjectTrack(
        track_ids=tuple(chain),
        rows=rows,
        bridged=bridged,
        absorbed=absorbed,
        edge_rows=edge_rows,
        edge_shifts=edge_shifts,
    )


def _edge_crossings(
    analysis: Analysis, rows: np.ndarray, settings: LinkSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The frames after the subject's last sighting (and before its first) where it is still partly
    in the picture: its track ended at an edge it was moving out through (or started at one it was
    coming in through). See `SubjectTrack.edge_rows`."""
    edge_rows = np.full(len(rows), -1, np.int64)
    edge_shifts = np.zeros((len(rows), 2), np.float32)
    seen = np.flatnonzero(rows >= 0)
    if len(seen) < 2:
        return edge_rows, edge_shifts
    width, height = analysis.frame_size
    cells_per_px = analysis.grid[1] / width
    margin_x, margin_y = settings.edge_margin * width, settings.edge_margin * height
    samples = settings.edge_samples
    for sightings, direction in ((seen[-samples:], 1), (seen[:samples][::-1], -1)):
        end = int(sightings[-1])  # the last sighting going forwards, the first going backwards
        boxes = analysis.boxes[rows[sightings]]
        span = abs(int(sightings[-1]) - int(sightings[0]))
        if span == 0:
            continue
        # px per frame in the direction of travel, of each box side: the side still inside the picture
        # (the trailing one) shows the motion; the other is clipped by the frame's edge
        x0v, y0v, x1v, y1v = (boxes[-1] - boxes[0]) / span
        x0, y0, x1, y1 = analysis.boxes[rows[end]]
        speed = settings.min_exit_speed
        if x1 >= width - margin_x and x0v > speed:
            step = np.array([x0v, 0.0])
        elif x0 <= margin_x and x1v < -speed:
            step = np.array([x1v, 0.0])
        elif y1 >= height - margin_y and y0v > speed:
            step = np.array([0.0, y0v])
        elif y0 <= margin_y and y1v < -speed:
            step = np.array([0.0, y1v])
        else:
            continue
        for k in range(1, settings.exit_frames + 1):
            frame = end + direction * k
            if not 0 <= frame < len(rows):
                break
            dx, dy = step * k
            if x1 + dx <= 0 or x0 + dx >= width or y1 + dy <= 0 or y0 + dy >= height:
                break  # all of it is out of the picture
            edge_rows[frame] = rows[end]
            edge_shifts[frame] = (dx * cells_per_px, dy * cells_per_px)
    return edge_rows, edge_shifts
