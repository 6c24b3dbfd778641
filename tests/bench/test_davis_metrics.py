"""Known-answer tests for the DAVIS bench measures, on hand-made masks."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

# bench/ is a folder of scripts, not a package: load the module from its file.
_PATH = Path(__file__).resolve().parents[2] / "bench" / "davis_metrics.py"
_SPEC = importlib.util.spec_from_file_location("davis_metrics", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
dm = importlib.util.module_from_spec(_SPEC)
sys.modules["davis_metrics"] = dm
_SPEC.loader.exec_module(dm)

H, W = 480, 854  # DAVIS 480p: tolerance ceil(0.008 * 979.6) = 8 px


def square(y0: int, x0: int, size: int, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0 : y0 + size, x0 : x0 + size] = True
    return m


def test_identical_masks_score_one() -> None:
    m = square(100, 200, 120)
    assert dm.region_j(m, m) == 1.0
    assert dm.boundary_f(m, m) == 1.0


def test_disjoint_masks_score_zero() -> None:
    a, b = square(50, 50, 80), square(300, 600, 80)
    assert dm.region_j(a, b) == 0.0
    assert dm.boundary_f(a, b) == 0.0


def test_empty_cases_follow_reference() -> None:
    empty, m = np.zeros((H, W), bool), square(100, 100, 50)
    assert dm.region_j(empty, empty) == 1.0
    assert dm.boundary_f(empty, empty) == 1.0
    assert dm.region_j(empty, m) == 0.0
    assert dm.boundary_f(empty, m) == 0.0
    assert dm.boundary_f(m, empty) == 0.0
    # seg2bmap puts no boundary on the image edge, so a full-frame mask has no contour at all and
    # scores F = 1 against an empty ground truth (J is still 0).
    full = np.ones((H, W), bool)
    assert dm.boundary_f(full, empty) == 1.0
    assert dm.region_j(full, empty) == 0.0


def test_one_pixel_shift_is_within_boundary_tolerance() -> None:
    a, b = square(100, 200, 200), square(101, 201, 200)
    assert dm.boundary_f(a, b) == 1.0
    assert dm.region_j(a, b) == pytest.approx(199 * 199 / (2 * 200 * 200 - 199 * 199))


def test_shift_beyond_tolerance_drops_f() -> None:
    a, b = square(100, 200, 200), square(130, 230, 200)
    assert dm.boundary_f(a, b) < 0.2
    assert dm.region_j(a, b) == pytest.approx(170 * 170 / (2 * 200 * 200 - 170 * 170))


def test_tolerance_edge_matches_disk_radius() -> None:
    # Contours 8 px apart still match (radius 8); 9 px apart only the crossing points do.
    a = square(100, 100, 200)
    near, far = square(108, 100, 200), square(109, 100, 200)
    assert dm.boundary_pixels((H, W)) == 8
    assert dm.boundary_f(a, near) == 1.0
    assert dm.boundary_f(a, far) < 0.7


def test_seg2bmap_marks_bottom_right_offset_contour() -> None:
    m = np.zeros((6, 6), bool)
    m[2:4, 2:4] = True
    expected = np.zeros((6, 6), bool)
    # A ring offset half a pixel up-left: pixels above/left of the square see it to the S/E/SE, the
    # square's own pixels see background; only (2, 2), whose S/E/SE are all inside, is not boundary.
    expected[1:4, 1:4] = True
    expected[2, 2] = False
    assert np.array_equal(dm.seg2bmap(m), expected)


def test_disk_is_scikit_image_disk() -> None:
    k = dm.disk(2)
    assert k.sum() == 13
    assert k[0, 2] == 1 and k[0, 1] == 0 and k[2, 2] == 1


def test_deepest_point_of_square_is_its_centre() -> None:
    assert dm.deepest_point(square(100, 200, 41)) == (220, 120)


def test_deepest_point_of_rectangle_is_on_its_centre_line() -> None:
    m = np.zeros((H, W), bool)
    m[100:141, 200:400] = True  # 41 x 200: a ridge along row 120, first in raster order wins
    x, y = dm.deepest_point(m)
    assert y == 120
    assert x == 220


def test_deepest_point_treats_image_edge_as_border() -> None:
    m = np.zeros((H, W), bool)
    m[0:41, 0:41] = True
    assert dm.deepest_point(m) == (20, 20)


def test_deepest_point_rejects_empty_mask() -> None:
    with pytest.raises(ValueError):
        dm.deepest_point(np.zeros((10, 10), bool))


def test_next_click_finds_missing_blob_in_worst_frame() -> None:
    gt0 = square(100, 100, 100)
    gt1 = square(100, 100, 100) | square(300, 500, 61)
    gt2 = square(100, 100, 100)
    preds = [gt0, square(100, 100, 100), np.zeros((H, W), bool)]
    gts = [gt0, gt1, gt2]
    # Frame 2 is worst (J = 0) and the whole square is missing: its centre.
    assert dm.next_click(preds, gts) == (2, 149, 149)
    # Fix frame 2: now frame 1 misses the 61 px square at (500, 300).
    preds[2] = gt2
    assert dm.next_click(preds, gts) == (1, 530, 330)


def test_next_click_picks_largest_missing_component_and_earliest_tie() -> None:
    gt = square(50, 50, 31) | square(200, 400, 81)
    pred = np.zeros((H, W), bool)
    assert dm.next_click([pred, pred], [gt, gt]) == (0, 440, 240)


def test_next_click_skips_frames_with_only_extra_foreground() -> None:
    gt_a, pred_a = np.zeros((H, W), bool), square(10, 10, 50)  # J = 0 but nothing to add
    gt_b = square(100, 100, 60) | square(300, 300, 21)
    pred_b = square(100, 100, 60)
    assert dm.next_click([pred_a, pred_b], [gt_a, gt_b]) == (1, 310, 310)


def test_next_click_none_when_nothing_missing() -> None:
    gt = square(100, 100, 50)
    assert dm.next_click([gt, gt | square(300, 300, 10)], [gt, gt]) is None


def test_lost_in_view_counts_only_frames_showing_the_subject() -> None:
    seen, empty = square(100, 200, 50), np.zeros((H, W), bool)
    # frame 1 is missed while in view; frame 2 scores 0 on an empty ground truth (a false
    # positive), which is lost overall but not "lost while in view"
    assert dm.lost_in_view([0.9, 0.05, 0.0, 0.5], [seen, seen, empty, seen], 0.1) == (1, 3)
    assert dm.lost_in_view([1.0], [empty], 0.1) == (0, 0)
    with pytest.raises(ValueError):
        dm.lost_in_view([0.5], [seen, seen], 0.1)


def test_masks_accept_0_255() -> None:
    m = square(100, 100, 50).astype(np.uint8) * 255
    assert dm.region_j(m, m > 0) == 1.0
    assert dm.boundary_f(m, m > 0) == 1.0


def test_correction_changes_compare_with_the_kept_result() -> None:
    # 0.80 first; +0.05 kept; a -0.20 click undone; the next click starts from 0.85 again
    changes = dm.correction_changes([0.80, 0.85, 0.65, 0.86])
    assert changes == pytest.approx([0.05, -0.20, 0.01])
    assert dm.correction_changes([0.7]) == []
    assert dm.correction_changes([]) == []
