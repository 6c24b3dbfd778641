"""A click picks the instance under it, the smallest when nested, and never a random one."""

import numpy as np
import pytest

from smartfocus.errors import SelectionError
from smartfocus.focus.selection import select_instance
from smartfocus.vision.instances import APPEARANCE_BINS, Instances

FRAME = (400, 200)  # source size (w, h); the grid is a quarter of it
GRID = (50, 100)


def _instances(*boxes: tuple[int, int, int, int]) -> Instances:
    """Rectangular masks given as grid boxes (x0, y0, x1, y1)."""
    masks = np.zeros((len(boxes), *GRID), bool)
    for mask, (x0, y0, x1, y1) in zip(masks, boxes, strict=True):
        mask[y0:y1, x0:x1] = True
    n = len(boxes)
    return Instances(
        track_ids=np.arange(1, n + 1, dtype=np.int32),
        class_ids=np.zeros(n, np.int16),
        scores=np.ones(n, np.float32),
        boxes=np.array([[x0 * 4, y0 * 4, x1 * 4, y1 * 4] for x0, y0, x1, y1 in boxes], np.float32),
        masks=masks,
        appearance=np.zeros((n, APPEARANCE_BINS), np.float32),
    )


def test_click_inside_a_mask_selects_it() -> None:
    instances = _instances((0, 0, 20, 20), (60, 10, 90, 40))
    assert select_instance(instances, 300, 100, FRAME, {0: "person"}) == 1


def test_nested_masks_select_the_smallest() -> None:
    instances = _instances((10, 10, 90, 45), (40, 20, 50, 30))  # a ball in front of a player
    assert select_instance(instances, 180, 100, FRAME, {}) == 1
    assert select_instance(instances, 100, 60, FRAME, {}) == 0


def test_click_a_few_pixels_outside_a_coarse_edge_still_selects() -> None:
    instances = _instances((40, 20, 50, 30))  # source x from 160 to 200
    assert select_instance(instances, 208, 100, FRAME, {}) == 0


def test_click_on_nothing_says_so_and_names_the_nearest() -> None:
    instances = _instances((0, 0, 10, 10))
    with pytest.raises(SelectionError, match=r"nothing selectable at \(300, 150\); nearest: person #1"):
        select_instance(instances, 300, 150, FRAME, {0: "person"})


def test_click_outside_the_frame_is_refused() -> None:
    with pytest.raises(SelectionError, match="outside"):
        select_instance(_instances((0, 0, 10, 10)), 500, 10, FRAME, {})
