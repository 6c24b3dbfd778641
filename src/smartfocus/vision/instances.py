"""`Instances`: the one data currency of the vision layer.

Like supervision's `Detections`: parallel numpy arrays, one row per object in one frame. Masks live
on a coarse *mask grid* that covers the whole upright source frame (the model's own mask resolution,
already un-letterboxed), so they are cheap to keep for every frame of a video; `upsample_mask` maps
one to source pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

_HUE_BINS, _SAT_BINS, _VALUE_BINS = 12, 4, 3
APPEARANCE_BINS = _HUE_BINS * _SAT_BINS + _VALUE_BINS  # chromatic histogram + grey levels


@dataclass(frozen=True)
class Instances:
    """The objects found in one frame."""

    track_ids: np.ndarray  # (N,) int32, unique within one analysis; never shared between analyses
    class_ids: np.ndarray  # (N,) int16, COCO class; unreliable on animals, so identity never uses it
    scores: np.ndarray  # (N,) float32 detection confidence
    boxes: np.ndarray  # (N, 4) float32 xyxy in source pixels
    masks: np.ndarray  # (N, gh, gw) bool on the mask grid
    appearance: np.ndarray  # (N, APPEARANCE_BINS) float32, L1-normalised colour histogram of the mask

    def __post_init__(self) -> None:
        """Rows must line up: a mismatch is a bug at the call site, caught here rather than as a
        wrong mask picked many frames later."""
        rows = len(self.track_ids)
        shapes = {
            "class_ids": (self.class_ids.shape, (rows,)),
            "scores": (self.scores.shape, (rows,)),
            "boxes": (self.boxes.shape, (rows, 4)),
            "masks": (self.masks.shape[:1], (rows,)),
            "appearance": (self.appearance.shape, (rows, APPEARANCE_BINS)),
        }
        for name, (shape, expected) in shapes.items():
            if shape != expected:
                raise ValueError(f"Instances.{name} has shape {shape}, expected {expected}")
        if self.track_ids.ndim != 1 or self.masks.ndim != 3:
            raise ValueError(
                f"Instances need (N,) track ids and (N, h, w) masks, got {self.track_ids.shape} "
                f"and {self.masks.shape}"
            )

    def __len__(self) -> int:
        return len(self.track_ids)

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Instances:
        """The rows `index` picks (an int, a slice, a bool mask or row numbers), as `Instances`:
        like supervision's `Detections[...]`, so call sites never rebuild the six arrays by hand."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Instances(
            track_ids=self.track_ids[index],
            class_ids=self.class_ids[index],
            scores=self.scores[index],
            boxes=self.boxes[index],
            masks=self.masks[index],
            appearance=self.appearance[index],
        )

    @classmethod
    def empty(cls, grid_shape: tuple[int, int]) -> Instances:
        return cls(
            track_ids=np.zeros(0, np.int32),
            class_ids=np.zeros(0, np.int16),
            scores=np.zeros(0, np.float32),
            boxes=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, *grid_shape), bool),
            appearance=np.zeros((0, APPEARANCE_BINS), np.float32),
        )

    def index_of(self, track_id: int) -> int | None:
        """Row of `track_id` in this frame, or None when that track is not here."""
        rows = np.flatnonzero(self.track_ids == track_id)
        return int(rows[0]) if len(rows) else None


def upsample_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grid mask (bool or float) as float32 [0, 1] at `size` = (width, height), with smooth edges.

    The grid covers the whole frame edge to edge, so a plain resize maps it exactly (pixel centres
    aligned by OpenCV); bilinear keeps the coarse grid's staircase from showing.
    """
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)


def appearance_histograms(frame_small_bgr: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Colour histograms of each mask's pixels in a frame already resized to the mask grid.

    Identity across gaps leans on colour rather than class labels (the nano model calls dogs cats);
    hue/saturation bins for coloured pixels plus a few brightness bins for grey ones, so black and
    white objects are told apart too. Cheap enough to compute for every instance of every frame.
    """
    hsv = cv2.cvtColor(frame_small_bgr, cv2.COLOR_BGR2HSV)
    hue = (hsv[..., 0].astype(np.int32) * _HUE_BINS) // 180
    sat = np.minimum(hsv[..., 1].astype(np.int32) * _SAT_BINS // 256, _SAT_BINS - 1)
    val = np.minimum(hsv[..., 2].astype(np.int32) * _VALUE_BINS // 256, _VALUE_BINS - 1)
    grey = hsv[..., 1] < 40
    bins = np.where(grey, _HUE_BINS * _SAT_BINS + val, hue * _SAT_BINS + sat)
    out = np.zeros((len(masks), APPEARANCE_BINS), np.float32)
    for row, mask in enumerate(masks):
        counts = np.bincount(bins[mask], minlength=APPEARANCE_BINS).astype(np.float32)
        out[row] = counts / max(counts.sum(), 1.0)
    return out


def warp_to_box(mask: np.ndarray, source: np.ndarray, target: np.ndarray, scale: float) -> np.ndarray:
    """Move and scale a grid mask so that its box `source` lands on `target`.

    Boxes are xyxy in source pixels; `scale` is grid cells per source pixel. Returns float32 [0, 1].
    """
    sx = (target[2] - target[0]) / max(source[2] - source[0], 1e-3)
    sy = (target[3] - target[1]) / max(source[3] - source[1], 1e-3)
    tx = (target[0] - source[0] * sx) * scale
    ty = (target[1] - source[1] * sy) * scale
    matrix = np.array([[sx, 0, tx], [0, sy, ty]], np.float32)
    size = (mask.shape[1], mask.shape[0])
    return cv2.warpAffine(mask.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR)


def interpolate_mask(
    mask_before: np.ndarray,
    box_before: np.ndarray,
    mask_after: np.ndarray,
    box_after: np.ndarray,
    weight: float,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One object's (float32 mask, box) between two sightings (`weight` 0 = before, 1 = after): the
    box is interpolated, and both masks are moved onto it and blended."""
    box = ((1 - weight) * box_before + weight * box_after).astype(np.float32)
    mask = (1 - weight) * warp_to_box(mask_before, box_before, box, scale) + weight * warp_to_box(
        mask_after, box_after, box, scale
    )
    return mask, box


def interpolate_instances(before: Instances, after: Instances, weight: float, scale: float) -> Instances:
    """The instances between two analysed frames (`weight` 0 = `before`, 1 = `after`): every track
    seen in both, moved along its box (see `interpolate_mask`)."""
    pairs = [(row, after.index_of(int(tid))) for row, tid in enumerate(before.track_ids)]
    pairs = [(a, b) for a, b in pairs if b is not None]
    if not pairs:
        return Instances.empty(before.masks.shape[1:])
    start = before[[a for a, _ in pairs]]
    end = after[[b for _, b in pairs]]
    moved = [
        interpolate_mask(start.masks[row], start.boxes[row], end.masks[row], end.boxes[row], weight, scale)
        for row in range(len(pairs))
    ]
    return replace(
        start,
        scores=np.minimum(start.scores, end.scores),
        boxes=np.stack([box for _, box in moved]),
        masks=np.stack([mask > 0.5 for mask, _ in moved]),
        appearance=((1 - weight) * start.appearance + weight * end.appearance).astype(np.float32),
    )
