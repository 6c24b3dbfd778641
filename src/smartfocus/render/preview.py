"""Small pictures of a subject for timelines: a square crop around its box."""

from __future__ import annotations

import cv2
import numpy as np


def thumbnail(frame_bgr: np.ndarray, box: tuple[float, float, float, float], size: int = 96) -> np.ndarray:
    """A square crop around `box` (x0, y0, x1, y1 in source pixels) scaled to `size`, for timelines."""
    height, width = frame_bgr.shape[:2]
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * 1.15 + 8
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = min(side, width, height)
    left = int(np.clip(cx - side / 2, 0, width - side))
    top = int(np.clip(cy - side / 2, 0, height - side))
    crop = frame_bgr[top : top + int(side), left : left + int(side)]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
