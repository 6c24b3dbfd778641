"""A click becomes a subject: which instance is under the point."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.vision.instances import Instances

# How far outside a coarse mask a click may land and still pick it, in source pixels: YOLO's masks
# come from a 1/4-resolution prototype grid, so their edges can sit a few pixels inside the object.
CLICK_TOLERANCE_PX = 12.0


@dataclass(frozen=True)
class Candidate:
    """An instance near a click, for 'nothing selectable here' answers."""

    track_id: int
    class_name: str
    distance_px: float  # from the click to the instance's mask


def select_instance(
    instances: Instances,
    x: float,
    y: float,
    frame_size: tuple[int, int],
    class_names: dict[int, str],
    tolerance_px: float = CLICK_TOLERANCE_PX,
) -> int:
    """The row of the instance under (x, y) in source pixels.

    A point inside several masks picks the smallest (the ball in front of the player); a point just
    outside masks picks the nearest within `tolerance_px`. Otherwise raises SelectionError naming the
    nearest candidates, never guessing.
    """
    width, height = frame_size
    if not (0 <= x < width and 0 <= y < height):
        raise SelectionError(f"click ({x:g}, {y:g}) is outside the {width}x{height} frame")
    if len(instances) == 0:
        raise SelectionError(f"nothing selectable at ({x:g}, {y:g}): no objects were found in this frame")
    grid_h, grid_w = instances.masks.shape[1:]
    scale = grid_w / width  # grid cells per source pixel (the grid keeps the frame's aspect ratio)
    gx = min(int(x * grid_w / width), grid_w - 1)
    gy = min(int(y * grid_h / height), grid_h - 1)
    areas = instances.masks.reshape(len(instances), -1).sum(axis=1)
    inside = np.flatnonzero(instances.masks[:, gy, gx])
    if len(inside):
        return int(inside[np.argmin(areas[inside])])
    distances = np.array([_distance_to_mask(mask, gx, gy) / scale for mask in instances.masks])
    near = np.flatnonzero(distances <= tolerance_px)
    if len(near):
        return int(near[np.argmin(distances[near])])
    order = np.argsort(distances)[:3]
    nearest = ", ".join(
        f"{class_names.get(int(instances.class_ids[row]), 'object')} #{instances.track_ids[row]} "
        f"{distances[row]:.0f}px away"
        for row in order
    )
    raise SelectionError(f"nothing selectable at ({x:g}, {y:g}); nearest: {nearest}")


def _distance_to_mask(mask: np.ndarray, gx: int, gy: int) -> float:
    """Distance in grid cells from a grid cell to the nearest cell of `mask`."""
    if not mask.any():
        return float("inf")
    outside = (~mask).astype(np.uint8)
    return float(cv2.distanceTransform(outside, cv2.DIST_L2, 3)[gy, gx])


def mask_core(mask: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, float]:
    """The grid mask's point farthest from its edge, in source pixels: where a user clicks it."""
    distance = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    gy, gx = np.unravel_index(int(np.argmax(distance)), distance.shape)
    width, height = frame_size
    return float((gx + 0.5) * width / mask.shape[1]), float((gy + 0.5) * height / mask.shape[0])
