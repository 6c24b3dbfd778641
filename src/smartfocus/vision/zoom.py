"""A closer look at one subject: the detector run again on a crop of the frame around it.

The analysis sees the whole frame at a small size (320 px by default), so a subject a fifth of the
frame wide is 64 px to the model and its mask comes from a 16-px cell grid of prototypes: blobby
edges, and small or far subjects missed. On a crop around the subject the same model sees it two to
four times larger: on DAVIS dev J&F 0.748 -> 0.801, level with a 640-px analysis' 0.807, for
the cost of one small crop per frame of one subject, not four times the work on every frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from smartfocus.vision.model import Segmenter
from smartfocus.vision.segment import grid_shape, unletterbox

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in source pixels, x1/y1 exclusive


@dataclass(frozen=True)
class ZoomSettings:
    """How close the second look goes; part of the follow cache key."""

    margin: float = 0.2  # the crop reaches this share of the subject's size past it on each side
    min_side: int = 96  # source pixels: a crop never smaller (the model needs some context)
    # The crop is shown to the model at this many input pixels per source pixel, relative to the
    # whole-frame analysis (2: as a 640-px analysis of a 720p frame sees it) ...
    magnify: float = 2.0
    max_input: int = 320  # ... at most this long a side (the cost stays that of one analysis frame)
    min_gain: float = 1.4  # a crop that would not show the subject at least this much larger is skipped
    conf: float = 0.25  # detections on the crop below this score are ignored


# Measured with bench/davis.py (DAVIS dev, 20 sequences, one click) and bench/engine.py (720p sample,
# 2-core CPU): at the 320-px analysis a closer look lifts J&F 0.748 -> 0.801 (margin 0.3: 0.793, 0.1:
# 0.802) and costs ~8 ms a frame of each subject followed (first render 0.16x -> 0.12-0.13x a plain
# transcode); at 640 px it adds 0.001 (the analysis already sees most subjects that well). "fast"
# keeps its speed without one.
ZOOM_PRESETS: dict[str, ZoomSettings | None] = {
    "fast": None,
    "balanced": ZoomSettings(),
    "best": ZoomSettings(),
}


def zoom_settings(quality: str | None = None) -> ZoomSettings | None:
    """The closer look of the preset called `quality` (default "balanced"); None: none."""
    name = quality or "balanced"
    if name not in ZOOM_PRESETS:
        raise ValueError(f"unknown quality {name!r}; use one of {', '.join(ZOOM_PRESETS)}")
    return ZOOM_PRESETS[name]


def zoom_boxes(masks: Sequence[np.ndarray], frame_size: tuple[int, int], settings: ZoomSettings) -> list[Box]:
    """The crops around grid `masks` (non-empty, one subject on consecutive frames) of frames of
    `frame_size` = (width, height): each mask's bounding box grown by `margin`, all of one size (the
    largest, at least `min_side`) so they make one batch the model letterboxes no wider than needed."""
    width, height = frame_size
    extents = []
    for mask in masks:
        grid_h, grid_w = mask.shape
        ys, xs = np.nonzero(mask)
        x0, x1 = xs.min() * width / grid_w, (xs.max() + 1) * width / grid_w
        y0, y1 = ys.min() * height / grid_h, (ys.max() + 1) * height / grid_h
        grow = 1 + 2 * settings.margin
        extents.append(((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * grow, (y1 - y0) * grow))
    # corners on even pixels, so a crop of YUV 4:2:0 planes is exact (`Yuv420Frame.crop_bgr`)
    crop_w = min(width - width % 2, 2 * round(max(settings.min_side, *(e[2] for e in extents)) / 2))
    crop_h = min(height - height % 2, 2 * round(max(settings.min_side, *(e[3] for e in extents)) / 2))
    boxes = []
    for cx, cy, _, _ in extents:
        left = 2 * int(np.clip(round((cx - crop_w / 2) / 2), 0, (width - crop_w) // 2))
        top = 2 * int(np.clip(round((cy - crop_h / 2) / 2), 0, (height - crop_h) // 2))
        boxes.append((left, top, left + crop_w, top + crop_h))
    return boxes


def zoom_grid(box: Box, imgsz: int) -> tuple[int, int]:
    """(height, width) the crop `box` is shown to the model at, for an input size of `imgsz`."""
    return grid_shape((box[2] - box[0], box[3] - box[1]), imgsz)


def zoom_input(box: Box, frame_size: tuple[int, int], imgsz: int, settings: ZoomSettings) -> int | None:
    """The model's input size (long side, a multiple of 32) for the crop `box` of a frame analysed
    at `imgsz`, or None when the crop would not show the subject `min_gain` times larger."""
    crop_long = max(box[2] - box[0], box[3] - box[1])
    analysis_scale = imgsz / max(frame_size)
    wanted = crop_long * analysis_scale * settings.magnify
    size = int(min(settings.max_input, max(64, 32 * round(wanted / 32))))
    return size if size / crop_long >= settings.min_gain * analysis_scale else None


def zoomed_masks(
    segmenter: Segmenter,
    images: Sequence[np.ndarray],
    boxes: Sequence[Box],
    grid: tuple[int, int],
    frame_size: tuple[int, int],
    imgsz: int,
    conf: float,
) -> list[np.ndarray]:
    """The detector's masks on `images` (the frame's `boxes` at `zoom_grid(box, imgsz)`), in one
    batched call, mapped onto the frame's mask `grid`: per crop (N, grid_h, grid_w) bool, one per
    detection scoring at least `conf`."""
    results = segmenter.predict(images, imgsz, conf)
    return [
        _on_grid(result, box, image.shape[:2], grid, frame_size)
        for result, box, image in zip(results, boxes, images, strict=True)
    ]


def _on_grid(
    result: Results, box: Box, crop_grid: tuple[int, int], grid: tuple[int, int], frame_size: tuple[int, int]
) -> np.ndarray:
    if result.masks is None or not len(result.masks):
        return np.zeros((0, *grid), bool)
    masks = unletterbox(result.masks.data.cpu().numpy(), crop_grid).astype(np.float32)
    # crop-grid cell centres -> frame-grid coordinates (an exact affine map, no rounding of the box)
    width, height = frame_size
    grid_h, grid_w = grid
    scale_x = (box[2] - box[0]) / crop_grid[1] * grid_w / width
    scale_y = (box[3] - box[1]) / crop_grid[0] * grid_h / height
    shift_x = box[0] * grid_w / width + 0.5 * scale_x - 0.5
    shift_y = box[1] * grid_h / height + 0.5 * scale_y - 0.5
    matrix = np.array([[scale_x, 0, shift_x], [0, scale_y, shift_y]], np.float32)
    out = np.zeros((len(masks), grid_h, grid_w), bool)
    for index, mask in enumerate(masks):
        out[index] = cv2.warpAffine(mask, matrix, (grid_w, grid_h), flags=cv2.INTER_LINEAR) > 0.5
    return out
