"""The compositor: a sharp subject over a lens-blurred, halo-free background.

Per frame (see `render.frame.focus_frame`, which renders and previews share):
    matte = stabilizer.update(refine_matte(frame, coarse))
    out = composite(frame, matte, LensSettings(strength))      # BGR frames
    out = composite_yuv(frame, half_bgr, matte_half, settings)  # YUV 4:2:0 planes (renders)
with one `MatteStabilizer` per video. The image math lives in `matte` (refinement, stabilisation)
and `lens` (disc blur in linear light); this module only blends.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.media import colour
from smartfocus.media.yuv import Yuv420Frame
from smartfocus.render.lens import (
    blurred_background,
    blurred_background_small,
    max_radius,
    min_radius,
    to_linear_small,
)
from smartfocus.render.matte import MatteStabilizer, refine_matte

__all__ = ["LensSettings", "MatteStabilizer", "composite", "composite_yuv", "refine_matte"]


DEFAULT_BLUR = 0.6  # the strength every front end starts at (CLI, page, windows, live, API)


@dataclass(frozen=True)
class LensSettings:
    """How strongly the background is thrown out of focus.

    `strength` reads like opening the aperture: 0 is off (everything sharp), 1 is the widest, a blur
    disc of `lens.MAX_RADIUS_FRACTION` of the frame's short side (25 px at 720p). The radius grows
    linearly and continuously with it, so callers may fade the effect by easing `strength`.
    """

    strength: float = DEFAULT_BLUR

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
    _blend_into(background, frame_bgr, matte, _fade(radius, frame_bgr.shape))
    return background


def composite_yuv(
    frame: Yuv420Frame, frame_half_bgr: np.ndarray, matte_half: np.ndarray, lens: LensSettings
) -> Yuv420Frame:
    """`composite` on a frame's YUV 4:2:0 planes, with the matte at half (chroma) resolution.

    What the render job uses: decoding and encoding need no colour conversion then. The lens blur
    is `composite`'s, computed from `frame_half_bgr` (the frame at half resolution, as the matte
    refinement has it). Luma is blended at full resolution with the matte upsampled bilinearly, the
    chroma planes at their own resolution with the matte as it is.

    Returns:
        A new frame; `frame` itself when the strength is 0.
    """
    half_shape = (frame.height // 2, frame.width // 2)
    if frame_half_bgr.shape[:2] != half_shape or matte_half.shape != half_shape:
        raise ValueError(
            f"expected a half-resolution frame and matte of {half_shape}, got {frame_half_bgr.shape} and "
            f"{matte_half.shape}"
        )
    if lens.strength == 0.0:
        return frame
    shape = (frame.height, frame.width)
    matte_half = matte_half.astype(np.float32, copy=False)
    radius = lens.strength * max_radius(shape)
    linear = to_linear_small(frame_half_bgr, frame.y, frame.colour.full_range, shape)
    small = colour.bgr_to_yuv(
        blurred_background_small(linear, matte_half, radius, shape),
        frame.colour.colorspace,
        frame.colour.color_range,
    )
    out = Yuv420Frame(np.empty_like(frame.data), frame.colour)
    small_luma, *small_chroma = cv2.split(small)
    cv2.resize(small_luma, shape[::-1], dst=out.y, interpolation=cv2.INTER_CUBIC)
    fade = _fade(radius, shape)
    for blurred, sharp, plane in zip(out.chroma, frame.chroma, small_chroma, strict=True):
        cv2.resize(plane, half_shape[::-1], dst=blurred, interpolation=cv2.INTER_CUBIC)
        _blend_into(blurred, sharp, matte_half, fade)
    if fade < 1.0:
        luma_matte = cv2.resize(matte_half, shape[::-1], interpolation=cv2.INTER_LINEAR)
        _blend_into(out.y, frame.y, luma_matte, fade)
        return out
    # At full strength only the subject's box needs the full-resolution matte. One half-resolution
    # pixel of (zero) margin makes the upsampled crop equal that part of a whole-frame upsample.
    x, y, width, height = cv2.boundingRect((matte_half > 0).view(np.uint8))
    if width:
        x0, y0 = max(0, x - 1), max(0, y - 1)
        x1, y1 = min(half_shape[1], x + width + 1), min(half_shape[0], y + height + 1)
        crop = cv2.resize(
            matte_half[y0:y1, x0:x1], (2 * (x1 - x0), 2 * (y1 - y0)), interpolation=cv2.INTER_LINEAR
        )
        box = np.s_[2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
        _blend_into(out.y[box], frame.y[box], crop, fade)
    return out


def _fade(radius: float, shape: tuple[int, ...]) -> float:
    """How much of the blur is shown: below `min_radius` the disc cannot shrink further, so the last
    bit of a fade cross-fades that smallest blur with the sharp frame (blur still grows
    continuously from strength 0)."""
    return min(1.0, radius / min_radius(shape))


def _blend_into(blurred: np.ndarray, sharp: np.ndarray, matte: np.ndarray, fade: float) -> None:
    """Write sharp * matte + blurred * (1 - matte) into `blurred`, the blur shown at `fade`.

    Subject pixels come from the sharp frame, so nothing of the blur smears into the subject. The
    blend is in display values: the matte's edge is 1-2 px wide, where linear light would not show,
    and it would cost two more full-resolution conversions.
    """
    if fade < 1.0:
        weight_bg = np.subtract(1.0, matte, dtype=np.float32)
        weight_bg *= fade  # in place: stays float32 (blendLinear's weights) for a numpy `fade` too
        blurred[...] = cv2.blendLinear(sharp, blurred, 1.0 - weight_bg, weight_bg)
        return
    # At full strength the background is final wherever the matte is 0: blend only the subject's box.
    x, y, width, height = cv2.boundingRect((matte > 0).view(np.uint8))
    if width:
        box = np.s_[y : y + height, x : x + width]
        sharp_weight = matte[box]
        blurred[box] = cv2.blendLinear(sharp[box], blurred[box], sharp_weight, 1.0 - sharp_weight)
