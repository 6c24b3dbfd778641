"""One focused frame on its own, for interactive previews (the server's `/frame?focused=1`).

The same matte and composite as the render job, without the temporal stabiliser: a preview is asked
for frames in any order, so there is no previous frame to stabilise against.
"""

from __future__ import annotations

import cv2
import numpy as np

from smartfocus.focus.timeline import FocusState
from smartfocus.render.compositor import LensSettings
from smartfocus.render.frame import focus_frame


def render_frame(
    frame_bgr: np.ndarray, state: FocusState, lens: LensSettings, *, refine: bool = True
) -> np.ndarray:
    """`frame_bgr` with everything but the subjects of `state` blurred, as the render would show it."""
    return focus_frame(frame_bgr, state, lens, refine=refine).image


def mask_png(grid_matte: np.ndarray) -> bytes:
    """A grid matte as a small white RGBA PNG whose alpha is the subject (255 = in focus): a page can
    scale it onto the frame and tint it (canvas `source-in`) to highlight what was picked."""
    alpha = np.clip(grid_matte * 255 + 0.5, 0, 255).astype(np.uint8)
    png = np.dstack([np.full_like(alpha, 255)] * 3 + [alpha])
    ok, data = cv2.imencode(".png", png)
    if not ok:  # pragma: no cover - cv2 always encodes a uint8 image
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


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
