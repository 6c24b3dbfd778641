"""The compositor on constructed scenes whose right answer is known: halo, sharpness, bokeh shape."""

import itertools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus.media import open_video
from smartfocus.media.yuv import Yuv420Frame
from smartfocus.render import lens
from smartfocus.render.compositor import LensSettings, composite, composite_yuv, refine_matte

H, W = 720, 1280
CENTRE = (360, 640)
SUBJECT_RADIUS = 120
Compositor = Callable[[np.ndarray, np.ndarray, LensSettings], np.ndarray]
RED, GREEN = (20, 30, 230), (40, 170, 60)  # BGR


def _distance() -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return np.hypot(yy - CENTRE[0], xx - CENTRE[1])


def _red_on_green(textured: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A red disc (the subject) on a green background, and its exact matte."""
    inside = _distance() < SUBJECT_RADIUS
    frame = np.empty((H, W, 3), np.uint8)
    frame[:] = GREEN
    frame[inside] = RED
    if textured:  # fine detail inside the subject, so a blurred subject would show
        noise = np.random.default_rng(0).integers(-20, 21, (H, W, 1))
        frame = np.where(inside[..., None], np.clip(frame + noise, 0, 255), frame).astype(np.uint8)
    return frame, inside.astype(np.float32)


def _blobby(matte: np.ndarray) -> np.ndarray:
    """A segmenter-like coarse matte: off by up to 6 px with a wobble, upsampled from a 1/8 grid."""
    yy, xx = np.mgrid[:H, :W]
    angle = np.arctan2(yy - CENTRE[0], xx - CENTRE[1])
    wobbly = (_distance() < SUBJECT_RADIUS + 6 * np.sin(5 * angle)).astype(np.float32)
    small = cv2.resize(wobbly, (W // 8, H // 8), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)


def _through_planes(frame_bgr: np.ndarray, matte: np.ndarray, settings: LensSettings) -> np.ndarray:
    """`composite_yuv` as the render calls it (on 4:2:0 planes, half-resolution matte), back in BGR."""
    frame = Yuv420Frame.from_bgr(frame_bgr)
    half = (frame.width // 2, frame.height // 2)
    matte_half = cv2.resize(matte, half, interpolation=cv2.INTER_AREA)
    return composite_yuv(frame, frame.half_bgr(), matte_half, settings).to_bgr()


def _as_stored(frame_bgr: np.ndarray, compose: Compositor) -> np.ndarray:
    """What `compose` starts from: the frame itself, or what 4:2:0 planes of it hold."""
    return frame_bgr if compose is composite else Yuv420Frame.from_bgr(frame_bgr).to_bgr()


# The behaviour holds for both compositors: on BGR frames (live, previews of odd sizes) and on the
# YUV planes renders use.
BOTH = pytest.mark.parametrize("compose", [composite, _through_planes], ids=["bgr", "yuv420"])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _sharpness(image: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean |Laplacian| (over `where`): falls as blur grows."""
    laplacian = np.abs(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F))
    return float(laplacian[where].mean() if where is not None else laplacian.mean())


@BOTH
@pytest.mark.parametrize("refined", [False, True], ids=["exact-matte", "refined-blobby-matte"])
def test_no_subject_colour_bleeds_into_the_blur_around_it(compose: Compositor, refined: bool) -> None:
    frame, exact = _red_on_green()
    matte = refine_matte(frame, _blobby(exact)) if refined else exact
    out = compose(frame, matte, LensSettings(1.0))
    # The ring the blur reaches from the subject's edge. A Gaussian blur of the whole frame turns it
    # orange (red up by 76 levels); here it must stay the background's green to within rounding.
    # (4:2:0 chroma is one sample per 2x2 pixels: the sharp edge's own colour reaches 2 px further.)
    d = _distance()
    edge = 1 if compose is composite else 3
    ring = (d > SUBJECT_RADIUS + edge) & (d < SUBJECT_RADIUS + lens.max_radius(frame.shape) + 4)
    red_excess = out[..., 2][ring].astype(int) - GREEN[2]
    assert red_excess.max() <= 1, f"red leaks into the background ring: up to +{red_excess.max()}"
    assert np.abs(out[ring].astype(int) - GREEN).max() <= 1


@BOTH
@pytest.mark.parametrize("refined", [False, True], ids=["exact-matte", "refined-blobby-matte"])
def test_subject_interior_stays_sharp(compose: Compositor, refined: bool) -> None:
    frame, exact = _red_on_green(textured=True)
    matte = refine_matte(frame, _blobby(exact)) if refined else exact
    out = compose(frame, matte, LensSettings(1.0))
    interior = _distance() < SUBJECT_RADIUS - 6
    assert _psnr(out[interior], _as_stored(frame, compose)[interior]) >= 40.0


@BOTH
def test_a_point_of_light_becomes_a_flat_disc_not_a_gaussian_blob(compose: Compositor) -> None:
    frame = np.zeros((H, W, 3), np.uint8)
    cy, cx = CENTRE
    frame[cy - 2 : cy + 3, cx - 2 : cx + 3] = 255  # a small light
    out = compose(frame, np.zeros((H, W), np.float32), LensSettings(1.0))
    light = lens.srgb_to_linear(out[..., 1] / 255.0)
    d = _distance()
    radius = lens.max_radius(frame.shape)
    profile = np.array([light[(d >= r) & (d < r + 1)].mean() for r in range(int(2 * radius))])
    plateau = profile[: int(0.5 * radius)].mean()
    r80, r50, r20 = (int(np.argmax(profile < level * plateau)) for level in (0.8, 0.5, 0.2))
    # Disc of the expected radius, flat on top ...
    assert abs(r50 - radius) <= 2.5
    assert profile[int(0.65 * radius)] >= 0.9 * plateau
    # ... with a hard edge. A Gaussian of the same spread (sigma = R / 2, equal variance) is at 61% of
    # its peak at 0.5 R and falls from 80% to 20% over 1.13 sigma = 0.56 R (14 px here).
    gaussian_edge = 1.13 * radius / 2
    assert r20 - r80 <= 0.5 * gaussian_edge, f"edge {r20 - r80} px wide, a Gaussian's is {gaussian_edge:.1f}"


@BOTH
def test_highlights_bloom_in_linear_light(compose: Compositor) -> None:
    """A bright light next to a dark area spreads more light than a display-value blur would."""
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:, : W // 2] = 255
    out = compose(frame, np.zeros((H, W), np.float32), LensSettings(1.0))
    just_past_the_edge = out[H // 2, W // 2 + 8, 1]
    # An sRGB-value blur gives ~ 255 * (disc area left of the edge), ~ 40 here; light gives far more.
    assert just_past_the_edge > 100


def test_one_pixel_sparkles_bloom_alike_on_planes_and_bgr() -> None:
    """The planes compositor works from a half-resolution copy, where a one-pixel highlight averages
    away in display values; it must still spread as much light as the BGR compositor does."""
    frame = np.full((H, W, 3), 30, np.uint8)
    frame[100:620:10, 100:1180:10] = 255  # single clipped pixels on a dark background
    no_subject = np.zeros((H, W), np.float32)
    dark = lens.srgb_to_linear(30 / 255.0)
    sparkles = (frame[..., 0] == 255).mean() * (lens.HIGHLIGHT_GAIN - dark)  # their light, expanded
    excess = {
        compose: lens.srgb_to_linear(compose(frame, no_subject, LensSettings(1.0)) / 255.0).mean() - dark
        for compose in (composite, _through_planes)
    }
    assert excess[composite] > 0.5 * sparkles  # the sparkles bloom with most of their light
    # (without the planes compositor's full-resolution luma correction: ~1/15 of it)
    assert excess[_through_planes] == pytest.approx(excess[composite], rel=0.1)


def test_strength_zero_returns_the_frame_unchanged() -> None:
    frame, matte = _red_on_green(textured=True)
    out = composite(frame, np.zeros_like(matte), LensSettings(0.0))
    assert out is not frame
    np.testing.assert_array_equal(out, frame)
    planes = Yuv420Frame.from_bgr(frame)
    half = np.zeros((H // 2, W // 2), np.float32)
    assert composite_yuv(planes, planes.half_bgr(), half, LensSettings(0.0)) is planes


@pytest.mark.parametrize("strength", [1.0, 0.6, 0.03], ids=["full", "medium", "cross-fade"])
def test_planes_and_bgr_compositors_agree(dog_clip: Path, strength: float) -> None:
    """The render's compositor (on 4:2:0 planes) makes what the BGR one makes, stored as 4:2:0."""
    with open_video(dog_clip) as reader:
        frame = reader.read(40)
    matte = np.zeros((H, W), np.float32)
    cv2.ellipse(matte, (640, 420), (90, 200), 0, 0, 360, 1.0, -1)  # a walker-sized subject
    matte = cv2.GaussianBlur(matte, (5, 5), 0)  # a refined matte's soft edge
    expected = Yuv420Frame.from_bgr(composite(frame, matte, LensSettings(strength))).to_bgr().astype(int)
    difference = np.abs(_through_planes(frame, matte, LensSettings(strength)).astype(int) - expected)
    assert difference.mean() < 1.0
    assert np.percentile(difference, 99) <= 4


@BOTH
def test_empty_matte_blurs_the_whole_frame(compose: Compositor) -> None:
    frame, matte = _red_on_green(textured=True)
    out = compose(frame, np.zeros_like(matte), LensSettings(0.6))
    interior = _distance() < SUBJECT_RADIUS - 30
    assert _sharpness(out, interior) < 0.1 * _sharpness(frame, interior)


@BOTH
def test_blur_grows_monotonically_and_smoothly_with_strength(compose: Compositor) -> None:
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (H // 8, W // 8, 3)).astype(np.uint8)
    frame = cv2.resize(blocks, (W, H), interpolation=cv2.INTER_NEAREST)  # detail at every scale
    matte = np.zeros((H, W), np.float32)
    outs = [compose(frame, matte, LensSettings(float(s))).astype(np.float32) for s in np.linspace(0, 1, 51)]
    frame = _as_stored(frame, compose)
    # More strength, more blur: the frame departs further from the sharp one (by any measure of
    # blur; this one is robust to the resampling's faint grid, unlike a Laplacian).
    departure = [np.abs(out - frame).mean() for out in outs]
    assert all(later > earlier for earlier, later in itertools.pairwise(departure))
    # No pops while a caller fades the strength: no step of 0.02 changes the frame much more than
    # the steps either side of it (a radius snapping to the next precomputed one would).
    steps = [np.abs(b - a).mean() for a, b in itertools.pairwise(outs)]
    for before, step, after in zip(steps, steps[1:], steps[2:], strict=False):
        assert step <= 1.5 * max(before, after), np.round(steps, 2)


def test_lens_settings_reject_strengths_outside_0_1() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        LensSettings(1.5)


def test_mismatched_matte_is_rejected() -> None:
    frame, _ = _red_on_green()
    with pytest.raises(ValueError, match="does not match"):
        composite(frame, np.zeros((10, 10), np.float32), LensSettings())


def test_linear_light_round_trip_is_exact() -> None:
    """Every 8-bit level survives decode -> encode, so flat areas come back exactly as they were."""
    levels = np.arange(256, dtype=np.uint8)
    decoded = lens.decode_lut_u16()[levels].astype(np.float32) * (lens.HIGHLIGHT_GAIN / 65535.0)
    np.testing.assert_array_equal(lens.encode(decoded), levels)


def test_a_numpy_strength_keeps_the_blend_working() -> None:
    """Strengths computed with numpy (float64 scalars) reach the smallest-blur cross-fade too."""
    frame = np.full((72, 128, 3), 90, np.uint8)
    frame[:, 64:] = 200
    matte = np.zeros((72, 128), np.float32)
    out = composite(frame, matte, LensSettings(strength=np.float64(0.01)))
    assert out.dtype == np.uint8 and out.shape == frame.shape
