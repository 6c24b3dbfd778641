"""8-bit YUV 4:2:0 <-> BGR for BT.601 and BT.709, limited and full range, on OpenCV's SIMD kernels.

Written by hand because neither library does this well: swscale's accurate path (the one that keeps
colours from drifting over a decode + encode round trip; its fast path darkens by ~1.7 levels) costs
~7 ms per 720p frame each way, a third of a whole transcode, and OpenCV's cvtColor is fast but knows
only BT.601 limited range. Here a colour matrix applied with `cv2.transform` (rounded and saturated)
does any of the four in ~2 ms. Chroma is averaged 2x2 on the way in and bilinearly interpolated on
the way out, both centred, like swscale's AREA / BILINEAR flags. Anything else (10-bit, 4:2:2,
BT.2020, odd sizes) stays with swscale, in the callers.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# Luma weights (Kr, Kb) of the two standards, by FFmpeg's AVColorSpace numbers. Unspecified (2) is
# read as BT.601, which is what swscale assumes, so frames look as they did through swscale.
_KR_KB = {1: (0.2126, 0.0722), 2: (0.299, 0.114), 5: (0.299, 0.114), 6: (0.299, 0.114)}
AVCOL_RANGE_JPEG = 2  # full range (0-255); anything else is limited (16-235 luma, 16-240 chroma)


def luma_weights(colorspace: int) -> tuple[float, float]:
    """(Kr, Kb) of a colour space this module converts (see `supported`)."""
    return _KR_KB[colorspace]


def has_matrix(colorspace: int) -> bool:
    """Whether this module knows the colour space's YUV matrix (BT.601, BT.709, unspecified)."""
    return colorspace in _KR_KB


def supported(colorspace: int, width: int, height: int) -> bool:
    """Whether a yuv420p frame of this colour space and size can take the fast path."""
    return has_matrix(colorspace) and width % 2 == 0 and height % 2 == 0


@lru_cache(maxsize=8)
def _to_yuv_matrix(colorspace: int, full_range: bool) -> np.ndarray:
    """3x4 matrix mapping (B, G, R, 1) to (Y, Cb, Cr) in 8-bit code values."""
    kr, kb = _KR_KB[colorspace]
    kg = 1.0 - kr - kb
    luma_scale, chroma_scale, luma_offset = (1.0, 1.0, 0.0) if full_range else (219 / 255, 224 / 255, 16.0)
    # columns are B, G, R (OpenCV's channel order), then the constant
    y = np.array([kb, kg, kr]) * luma_scale
    cb = np.array([1 - kb, -kg, -kr]) / (2 * (1 - kb)) * chroma_scale
    cr = np.array([-kb, -kg, 1 - kr]) / (2 * (1 - kr)) * chroma_scale
    linear = np.stack([y, cb, cr])
    offset = np.array([luma_offset, 128.0, 128.0])
    return np.column_stack([linear, offset]).astype(np.float64)


@lru_cache(maxsize=8)
def _to_bgr_matrix(colorspace: int, full_range: bool) -> np.ndarray:
    """3x4 matrix mapping (Y, Cb, Cr, 1) to (B, G, R): the exact inverse of `_to_yuv_matrix`."""
    forward = _to_yuv_matrix(colorspace, full_range)
    inverse = np.linalg.inv(forward[:, :3])
    return np.column_stack([inverse, -inverse @ forward[:, 3]])


def yuv_to_bgr(yuv: np.ndarray, colorspace: int, color_range: int) -> np.ndarray:
    """(H, W, 3) uint8 Y, Cb, Cr (full-resolution chroma) -> (H, W, 3) uint8 BGR."""
    return cv2.transform(yuv, _to_bgr_matrix(colorspace, color_range == AVCOL_RANGE_JPEG))


def bgr_to_yuv(bgr: np.ndarray, colorspace: int, color_range: int) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (H, W, 3) uint8 Y, Cb, Cr (no chroma subsampling)."""
    return cv2.transform(bgr, _to_yuv_matrix(colorspace, color_range == AVCOL_RANGE_JPEG))


@lru_cache(maxsize=4)
def range_tables(from_full: bool, to_full: bool) -> tuple[np.ndarray, np.ndarray]:
    """256-entry uint8 tables (luma, chroma) taking code values from one range to the other."""
    code = np.arange(256, dtype=np.float64)
    luma_full = code if from_full else (code - 16) * 255 / 219
    chroma_full = code - 128 if from_full else (code - 128) * 255 / 224
    luma = luma_full if to_full else luma_full * 219 / 255 + 16
    chroma = (chroma_full if to_full else chroma_full * 224 / 255) + 128
    luma_table, chroma_table = (np.clip(np.round(t), 0, 255).astype(np.uint8) for t in (luma, chroma))
    return luma_table, chroma_table


def i420_to_bgr(i420: np.ndarray, colorspace: int, color_range: int) -> np.ndarray:
    """An (H * 3 / 2, W) uint8 I420 image (PyAV's yuv420p `to_ndarray`) -> (H, W, 3) uint8 BGR."""
    height, width = i420.shape[0] * 2 // 3, i420.shape[1]
    luma = i420[:height]
    chroma = i420[height:].reshape(2, height // 2, width // 2)
    size = (width, height)
    yuv = cv2.merge(
        [
            luma,
            cv2.resize(chroma[0], size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(chroma[1], size, interpolation=cv2.INTER_LINEAR),
        ]
    )
    return yuv_to_bgr(yuv, colorspace, color_range)


def bgr_to_i420(bgr: np.ndarray, colorspace: int = 1, color_range: int = 1) -> np.ndarray:
    """(H, W, 3) uint8 BGR with even H and W -> (H * 3 / 2, W) uint8 I420 (PyAV's yuv420p layout)."""
    height, width = bgr.shape[:2]
    matrix = _to_yuv_matrix(colorspace, color_range == AVCOL_RANGE_JPEG)
    i420 = np.empty((height * 3 // 2, width), np.uint8)
    i420[:height] = cv2.transform(bgr, matrix[:1])
    small = cv2.resize(bgr, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    chroma = cv2.transform(small, matrix[1:])
    planes = i420[height:].reshape(2, height // 2, width // 2)
    planes[0], planes[1] = chroma[..., 0], chroma[..., 1]
    return i420
