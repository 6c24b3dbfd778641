"""Lens blur: a disc-shaped (aperture) kernel applied in linear light, at reduced resolution.

A real lens spreads every out-of-focus point into a disc the shape of its aperture, and it does so
with light, not with display values: a bright highlight keeps its energy and blooms into a round
bokeh ball instead of being averaged away into grey. So we decode sRGB to linear light, blur with a
disc, and encode back. The blur runs on a frame downscaled by an integer factor chosen so that the
largest radius is ~`MAX_WORK_RADIUS` working pixels, so the blur itself costs about the same at any
frame size; only a few cheap full-resolution passes (decode, downscale, upscale, blend) grow with it.

The background is blurred with normalised convolution (blur(img * w) / blur(w), w = background
weight), so the hole a subject leaves is filled from the background around it and the subject's
colours never bleed into the blur around it.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from smartfocus.media import colour

MAX_RADIUS_FRACTION = 0.035  # blur radius at strength 1, as a fraction of the frame's short side
# Largest disc radius in working (downscaled) pixels; sets the downscale factor. 5.49 keeps the
# kernel at 11x11: filter2D switches to its DFT path at 130 taps, measured ~5x slower at these sizes
# (13x13 on 320x180x4: 5.8 ms vs 1.0 ms for 11x11); a hand-written FFT with a cached kernel spectrum
# was not reliably faster either. The blurred background is smooth, so a coarse grid costs little.
MAX_WORK_RADIUS = 5.49
# Smallest disc in working pixels: below it the down/upsampling alone blurs about as much, so smaller
# blurs are made by cross-fading this one with the sharp frame (see `compositor.composite`).
MIN_WORK_RADIUS = 1.0

# Clipped highlights stood for much more light than 255 can say; expanding the top of the range
# before the blur gives them back some of that energy so they bloom into bright discs.
HIGHLIGHT_KNEE = 0.75  # linear level where the expansion starts (~sRGB 225)
HIGHLIGHT_GAIN = 3.0  # linear value a fully clipped (255) channel is expanded to

_ENCODE_STEPS = 65536  # linear -> sRGB table size; fine enough that every 8-bit level survives


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """The sRGB transfer function's inverse, for values in [0, 1]."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: np.ndarray) -> np.ndarray:
    """The sRGB transfer function, for linear values in [0, 1]."""
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


def expand_highlights(lin: np.ndarray) -> np.ndarray:
    """Monotonic map of [0, 1] onto [0, HIGHLIGHT_GAIN] that leaves everything below the knee alone."""
    t = np.clip((lin - HIGHLIGHT_KNEE) / (1.0 - HIGHLIGHT_KNEE), 0.0, 1.0)
    return lin * (1.0 + (HIGHLIGHT_GAIN - 1.0) * t * t * (3.0 - 2.0 * t))


@lru_cache(maxsize=1)
def decode_lut() -> np.ndarray:
    """256-entry float32 table: sRGB byte -> linear light with highlights expanded."""
    return expand_highlights(srgb_to_linear(np.arange(256) / 255.0)).astype(np.float32)


@lru_cache(maxsize=1)
def decode_lut_u16() -> np.ndarray:
    """`decode_lut` as uint16, full scale = HIGHLIGHT_GAIN."""
    return np.round(decode_lut() * (65535.0 / HIGHLIGHT_GAIN)).astype(np.uint16)


@lru_cache(maxsize=1)
def encode_lut() -> np.ndarray:
    """`_ENCODE_STEPS`-entry uint8 table over linear [0, HIGHLIGHT_GAIN]: the exact inverse of decode.

    cv2.LUT only takes 8-bit indices, so float -> byte goes through a quantised index and numpy.
    """
    grid = np.linspace(0.0, 1.0, 4097)
    expanded = np.linspace(0.0, HIGHLIGHT_GAIN, _ENCODE_STEPS)
    lin = np.interp(expanded, expand_highlights(grid), grid)  # undo the expansion
    return np.round(linear_to_srgb(lin) * 255.0).astype(np.uint8)


def encode(lin: np.ndarray) -> np.ndarray:
    """Linear (expanded) float image -> sRGB uint8, through `encode_lut`."""
    scaled = np.multiply(lin, (_ENCODE_STEPS - 1) / HIGHLIGHT_GAIN, dtype=np.float32)
    np.clip(scaled + 0.5, 0, _ENCODE_STEPS - 1, out=scaled)
    return encode_lut()[scaled.astype(np.uint16)]


def max_radius(shape: tuple[int, ...]) -> float:
    """Blur radius in full-resolution pixels at strength 1 for a frame of `shape` (H, W, ...)."""
    return MAX_RADIUS_FRACTION * min(shape[0], shape[1])


def working_scale(shape: tuple[int, ...]) -> int:
    """Integer downscale factor for a frame of `shape`: the largest disc is <= MAX_WORK_RADIUS px.

    Fixed per frame size (not per strength), so a fade in strength never jumps between resolutions.
    A factor that divides both sides is preferred (up to 1.5x the minimum): cv2.resize's area
    averaging is ~3x faster on an exact integer grid.
    """
    h, w = shape[0], shape[1]
    least = max(1, int(np.ceil(max_radius(shape) / MAX_WORK_RADIUS)))
    common = np.gcd(h, w)
    for factor in range(least, int(least * 1.5) + 1):
        if common % factor == 0:
            return factor
    return least


def disc_kernel(radius: float) -> np.ndarray:
    """Normalised, anti-aliased disc of `radius` pixels: each tap is its coverage by the disc.

    Coverage varies continuously with the radius, so the blur grows smoothly with strength instead of
    popping from one integer radius to the next.
    """
    half = int(np.floor(radius + 0.5))
    ys, xs = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = np.clip(radius + 0.5 - np.hypot(xs, ys), 0.0, 1.0).astype(np.float32)
    return kernel / kernel.sum()


def disc_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Convolve a float32 (H, W, C) image with `disc_kernel(radius)`; outside the image counts as 0.

    Zero borders are what normalised convolution wants: blur(weight) then knows where the frame ends.
    """
    return cv2.filter2D(image, -1, disc_kernel(radius), borderType=cv2.BORDER_CONSTANT)


def _fill_holes(blurred: np.ndarray) -> np.ndarray:
    """Push-pull: add a faint, ever coarser average of the premultiplied image and its weight.

    Where the blur window saw background the faint term changes nothing; deep inside a big subject
    (weight ~0) it supplies the surrounding background's colour instead of 0/0.
    """
    levels = [blurred]
    while min(levels[-1].shape[:2]) > 4:
        levels.append(cv2.resize(levels[-1], None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA))
    filled = levels[-1]
    for level in reversed(levels[:-1]):
        up = cv2.resize(filled, level.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        filled = level + 1e-3 * up
    return filled


def background_weight(matte: np.ndarray) -> np.ndarray:
    """How much each (working-resolution) pixel counts as background for the fill.

    1 - matte, after a 3x3 max filter on the matte: a pixel next to solid subject is left out even
    if it is partly background, since its colour is partly the subject's (that is what would make a
    halo). Inside a uniformly fractional matte (a subject halfway through a rack focus) the max
    filter changes nothing, so that subject still blurs into the background as it should.
    """
    return 1.0 - cv2.dilate(matte, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)


def min_radius(shape: tuple[int, ...]) -> float:
    """Smallest blur radius (full-resolution px) `blurred_background` makes for a frame of `shape`."""
    return MIN_WORK_RADIUS * working_scale(shape)


def working_size(shape: tuple[int, ...]) -> tuple[int, int]:
    """(width, height) the blur works at for a frame of `shape` (H, W, ...)."""
    scale = working_scale(shape)
    return max(1, round(shape[1] / scale)), max(1, round(shape[0] / scale))


def blurred_background(frame_bgr: np.ndarray, matte: np.ndarray, radius: float) -> np.ndarray:
    """The frame's background, lens-blurred with a disc of `radius` px, the subject's hole filled in.

    Radii below `min_radius` are raised to it.

    Returns an (H, W, 3) uint8 image, valid everywhere (also behind the subject).
    """
    h, w = frame_bgr.shape[:2]
    small = blurred_background_small(to_linear(frame_bgr), matte, radius, frame_bgr.shape)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def to_linear(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame in linear light, highlights expanded: uint16 on `decode_lut_u16`'s scale.

    16 bits are half the memory traffic of float32, and exact enough for area averages.
    """
    return cv2.LUT(frame_bgr, decode_lut_u16())


def to_linear_small(
    half_bgr: np.ndarray, luma: np.ndarray, luma_full_range: bool, shape: tuple[int, ...]
) -> np.ndarray:
    """`to_linear` of a frame known as 4:2:0 planes, at `working_size(shape)`, as float32.

    `half_bgr` is the frame at chroma resolution with its luma averaged 2x2 in display values; taken to
    linear light as it is, that average darkens fine texture and all but erases a one-pixel highlight
    (a clipped pixel among three black ones: 0.05 instead of 0.75). The full-resolution `luma` puts
    it back: each working pixel is scaled by its area's mean linear luma over the mean of the linear
    2x2-averaged luma, exact for neutral colours and close for the rest. Done at the working size,
    the correction costs ~0.5 ms at 720p.
    """
    lut = decode_lut_u16()
    luma_lut = lut if luma_full_range else lut[colour.range_tables(False, True)[0]]
    small = working_size(shape)
    half = (half_bgr.shape[1], half_bgr.shape[0])
    linear = _shrink(cv2.LUT(half_bgr, lut), small).astype(np.float32)
    fine = _shrink(cv2.LUT(luma, luma_lut), small)
    coarse = _shrink(cv2.LUT(cv2.resize(luma, half, interpolation=cv2.INTER_AREA), luma_lut), small)
    gain = np.add(fine, 1.0, dtype=np.float32)
    gain /= np.add(coarse, 1.0, dtype=np.float32)
    linear *= gain[..., None]
    return linear


def blurred_background_small(
    linear: np.ndarray, matte: np.ndarray, radius: float, shape: tuple[int, ...]
) -> np.ndarray:
    """`blurred_background` at `working_size(shape)`, from the frame in linear light at any size.

    Args:
        linear: `to_linear(frame)`, or `to_linear_small` for a frame known as 4:2:0 planes: any size
            from the frame's own (`shape`) down to the working size.
        matte: the subject matte at the size of `linear`.
        radius: blur radius in full-resolution (`shape`) pixels.

    Returns:
        uint8 BGR at the working size; upsampling it is the caller's.
    """
    small = working_size(shape)
    scale = working_scale(shape)
    if linear.shape[:2] != small[::-1]:
        linear = _shrink(linear, small)  # down to the working size in linear light
    weight = background_weight(_shrink(matte, small))
    premult = np.empty((small[1], small[0], 4), np.float32)
    np.multiply(linear, (weight * (HIGHLIGHT_GAIN / 65535.0))[..., None], out=premult[..., :3])
    premult[..., 3] = weight
    blurred = _fill_holes(disc_blur(premult, max(radius / scale, MIN_WORK_RADIUS)))
    return encode(blurred[..., :3] / np.maximum(blurred[..., 3:], 1e-12))


def _shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average `image` down to `size` = (width, height).

    OpenCV's area resize is ~2x slower at a fractional factor than at an integer one, so a fractional
    shrink of at least 2x first halves the image exactly (2x2 means), then does the rest.
    """
    h, w = image.shape[:2]
    fx, fy = w / size[0], h / size[1]
    if not (fx.is_integer() and fy.is_integer()) and fx >= 2 and fy >= 2 and w % 2 == 0 and h % 2 == 0:
        image = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
