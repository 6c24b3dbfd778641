"""The compositor: a sharp subject over a lens-blurred, halo-free background.

Per frame the render job calls, in order:
    matte = stabilizer.update(refine_matte(frame, coarse))
    out = composite(frame, matte, LensSettings(strength))
with one `MatteStabilizer` per video. The image math lives in `matte` (refinement, stabilisation)
and `lens` (disc blur in linear light); this module only blends.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.render.lens import blurred_background, max_radius, min_radius
from smartfocus.render.matte import MatteStabilizer, refine_matte

__all__ = ["LensSettings", "MatteStabilizer", "composite", "refine_matte"]


@dataclass(frozen=True)
class LensSettings:
    """How strongly the background is thrown out of focus.

    `strength` reads like opening the aperture: 0 is off (everything sharp), 1 is the widest, a blur
    disc of `lens.MAX_RADIUS_FRACTION` of the frame's short side (25 px at 720p). The radius grows
    linearly and continuously with it, so callers may fade the effect by easing `strength`.
    """

    strength: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"lens strength must be between 0 and 1, got {self.strength}")


def composite(frame_bgr: np.ndarray, matte: np.ndarray, lens: LensSettings) -> np.ndarray:
    """Keep the subject sharp and put the rest out of focus.

    Args:
        frame_bgr: (H, W, 3) uint8 frame.
        matte: (H, W) float32 in [0, 1]: 1 = subject (sharp), 0 = background (blurred), fractions
            partly sharp (rack-focus transitions fade through them).
        lens: blur strength.

    Returns:
        (H, W, 3) uint8 frame: a copy of `frame_bgr` when the strength is 0.
    """
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR frame, got {frame_bgr.shape} {frame_bgr.dtype}")
    if matte.shape != frame_bgr.shape[:2]:
        raise ValueError(f"matte of shape {matte.shape} does not match a frame of {frame_bgr.shape[:2]}")
    if lens.strength == 0.0:
        return frame_bgr.copy()
    matte = matte.astype(np.float32, copy=False)
    radius = lens.strength * max_radius(frame_bgr.shape)
    background = blurred_background(frame_bgr, matte, radius)
    # Below `min_radius` the disc cannot shrink further, so the last bit of a fade cross-fades that
    # smallest blur with the sharp frame: blur still grows continuously from strength 0.
    fade = min(1.0, radius / min_radius(frame_bgr.shape))
    # Subject pixels come from the sharp frame, so nothing of the blur smears into the subject. The
    # blend is in display values: the matte's edge is 1-2 px wide, where linear light would not show,
    # and it would cost two more full-resolution conversions.
    if fade < 1.0:
        weight_bg = np.subtract(1.0, matte, dtype=np.float32)
        weight_bg *= fade  # in place: stays float32 (blendLinear's weights) for a numpy `fade` too
        return cv2.blendLinear(frame_bgr, background, 1.0 - weight_bg, weight_bg)
    # At full strength the background is final wherever the matte is 0: blend only the subject's box.
    x, y, width, height = cv2.boundingRect((matte > 0).view(np.uint8))
    if width:
        box = np.s_[y : y + height, x : x + width]
        sharp = matte[box]
        background[box] = cv2.blendLinear(frame_bgr[box], background[box], sharp, 1.0 - sharp)
    return background
