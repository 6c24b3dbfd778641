"""Matte refinement and temporal stabilisation, on constructed scenes with known edges."""

import cv2
import numpy as np
import pytest

from smartfocus.render.matte import MatteStabilizer, refine_matte

H, W = 720, 1280


def _edge(position: float) -> np.ndarray:
    """A vertical subject edge at x = `position` (subject on the left), 2 px soft."""
    x = np.arange(W, dtype=np.float32)
    row = np.clip((position - x) / 2 + 0.5, 0, 1)
    return np.ascontiguousarray(np.broadcast_to(row, (H, W)), dtype=np.float32)


def _edge_position(matte: np.ndarray) -> float:
    return float(matte[H // 2].sum())


def test_refinement_snaps_a_blobby_mask_to_the_frame_edges() -> None:
    yy, xx = np.mgrid[:H, :W]
    truth = ((yy - 360) ** 2 / 200**2 + (xx - 640) ** 2 / 140**2 < 1).astype(np.float32)
    frame = np.full((H, W, 3), (90, 140, 200), np.uint8)  # beige background
    frame[truth > 0] = (120, 60, 30)  # dark blue subject
    frame = cv2.add(frame, np.random.default_rng(0).integers(0, 12, (H, W, 3), dtype=np.uint8))
    # The segmenter's view: the subject 5 px fatter with a wobble, from a 1/8-resolution grid.
    angle = np.arctan2(yy - 360, xx - 640)
    fat = cv2.dilate(truth, np.ones((11, 11), np.uint8))
    wobbly = np.where(np.sin(6 * angle) > 0, fat, truth)
    coarse = cv2.resize(cv2.resize(wobbly, (W // 8, H // 8), interpolation=cv2.INTER_AREA), (W, H))

    refined = refine_matte(frame, coarse)

    assert refined.shape == (H, W) and refined.dtype == np.float32
    assert refined.min() >= 0.0 and refined.max() <= 1.0
    coarse_error, refined_error = np.abs(coarse - truth).mean(), np.abs(refined - truth).mean()
    assert refined_error < 0.4 * coarse_error, (coarse_error, refined_error)
    assert refined[360, 640] == pytest.approx(1.0) and refined[50, 50] == pytest.approx(0.0)


def test_stabilizer_removes_the_shimmer_of_a_jittering_edge() -> None:
    rng = np.random.default_rng(2)
    stabilizer = MatteStabilizer()
    raw, steady = [], []
    for _ in range(40):
        matte = _edge(640 + rng.uniform(-2, 2))  # the segmenter's edge wobbles by up to 2 px
        raw.append(matte[H // 2, 620:660].copy())
        steady.append(stabilizer.update(matte)[H // 2, 620:660].copy())
    flicker_in = np.std(raw[10:], axis=0).mean()
    flicker_out = np.std(steady[10:], axis=0).mean()
    assert flicker_out < 0.45 * flicker_in, (flicker_in, flicker_out)


@pytest.mark.parametrize("jump", [12, 60])
def test_stabilizer_follows_a_real_motion_at_once(jump: int) -> None:
    stabilizer = MatteStabilizer()
    for _ in range(10):
        stabilizer.update(_edge(500))
    moved = _edge(500 + jump)
    first = stabilizer.update(moved)
    second = stabilizer.update(moved)
    assert np.abs(first - moved).max() < 0.1
    assert np.abs(second - moved).max() < 0.05


def test_stabilizer_keeps_up_with_a_slow_steady_motion() -> None:
    stabilizer = MatteStabilizer()
    lags = []
    for frame in range(30):
        matte = _edge(400 + 2.0 * frame)  # 2 px per frame: too slow to count as motion at once
        lags.append(_edge_position(matte) - _edge_position(stabilizer.update(matte)))
    assert max(lags) <= 3.0, np.round(lags, 2)


def test_stabilizer_reset_forgets_the_previous_video() -> None:
    stabilizer = MatteStabilizer()
    stabilizer.update(_edge(300))
    stabilizer.reset()
    fresh = _edge(900)
    np.testing.assert_array_equal(stabilizer.update(fresh), fresh)
    with pytest.raises(ValueError, match="reset"):
        stabilizer.update(np.zeros((10, 10), np.float32))


def test_stabilized_matte_is_read_only() -> None:
    stabilizer = MatteStabilizer()
    out = stabilizer.update(_edge(300))
    with pytest.raises(ValueError):
        out[0, 0] = 0.5


def test_refinement_keeps_a_fractional_matte_at_its_level() -> None:
    """A subject half-way through a rack focus (matte 0.5) stays at 0.5, with refined edges."""
    yy, xx = np.mgrid[:H, :W]
    truth = (np.hypot(yy - 360, xx - 640) < 150).astype(np.float32)
    frame = np.where(truth[..., None] > 0, np.uint8(200), np.uint8(40)).astype(np.uint8).repeat(3, axis=2)
    coarse = 0.5 * cv2.resize(cv2.resize(truth, (W // 8, H // 8), interpolation=cv2.INTER_AREA), (W, H))
    refined = refine_matte(frame, coarse)
    assert refined[360, 640] == pytest.approx(0.5, abs=0.01)
    assert refined[360, 640 + 160] == pytest.approx(0.0, abs=0.01)
