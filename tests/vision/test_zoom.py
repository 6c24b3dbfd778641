"""The closer look's crops: where they are cut, how large the model sees them, and that the masks it
finds there land where the object is on the frame's mask grid."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus.media.yuv import Yuv420Frame
from smartfocus.vision.segment import AnalysisSettings, FrameTracker
from smartfocus.vision.zoom import (
    ZoomSettings,
    zoom_boxes,
    zoom_grid,
    zoom_input,
    zoom_settings,
    zoomed_masks,
)

FRAME = (1280, 720)
GRID = (180, 320)


def _mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros(GRID, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_crops_share_one_size_stay_in_the_frame_and_have_even_corners() -> None:
    settings = ZoomSettings()
    masks = [_mask(10, 20, 40, 90), _mask(12, 22, 45, 95), _mask(300, 150, 318, 179)]
    boxes = zoom_boxes(masks, FRAME, settings)
    sizes = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes}
    assert len(sizes) == 1
    width, height = sizes.pop()
    # the widest and tallest box (33 x 73 cells = 132 x 292 px) grown by the margin on each side
    grow = 1 + 2 * settings.margin
    assert (width, height) == (2 * round(132 * grow / 2), 2 * round(292 * grow / 2))
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= FRAME[0] and 0 <= y0 < y1 <= FRAME[1]
        assert not (x0 % 2 or y0 % 2 or x1 % 2 or y1 % 2)
    assert boxes[2][2] == FRAME[0] and boxes[2][3] == FRAME[1], "pushed inside at the corner"


def test_a_crop_is_shown_larger_or_not_at_all() -> None:
    settings = ZoomSettings()
    small = zoom_boxes([_mask(100, 50, 130, 100)], FRAME, settings)[0]
    imgsz = zoom_input(small, FRAME, 320, settings)
    assert imgsz is not None and imgsz % 32 == 0
    assert imgsz / max(small[2] - small[0], small[3] - small[1]) >= 1.4 * 320 / 1280
    whole = zoom_boxes([_mask(0, 0, 320, 180)], FRAME, settings)[0]
    assert zoom_input(whole, FRAME, 320, settings) is None, "a subject filling the frame is not looked at"
    assert zoom_settings("fast") is None and zoom_settings() == settings
    with pytest.raises(ValueError, match="unknown quality"):
        zoom_settings("ultra")


def test_a_yuv_crop_is_the_bgr_crop() -> None:
    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)
    frame = Yuv420Frame.from_bgr(bgr)
    box = (200, 100, 520, 500)
    crop = frame.crop_bgr(box, (160, 200))
    expected = cv2.resize(frame.to_bgr()[100:500, 200:520], (160, 200), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - expected).mean() < 1.5
    with pytest.raises(ValueError, match="even corners"):
        frame.crop_bgr((201, 100, 520, 500), (160, 200))


def test_masks_found_on_a_crop_land_on_the_object(segmenter, davis_dir: Path) -> None:
    """DAVIS `rollerblade` frame 0: the skater's mask from a crop around him covers the same cells
    as his whole-frame detection (mapped back exactly, not shifted by the crop or its letterbox)."""
    image = cv2.imread(str(davis_dir / "rollerblade" / "frames" / "00000.jpg"))
    size = (image.shape[1], image.shape[0])
    tracker = FrameTracker(segmenter, AnalysisSettings(), size)
    instances = tracker.update(image)
    person = max(range(len(instances)), key=lambda i: instances.masks[i].sum())
    whole = instances.masks[person]
    settings = ZoomSettings()
    (box,) = zoom_boxes([whole], size, settings)
    imgsz = zoom_input(box, size, 320, settings)
    assert imgsz is not None
    x0, y0, x1, y1 = box
    crop = cv2.resize(image[y0:y1, x0:x1], zoom_grid(box, imgsz)[::-1], interpolation=cv2.INTER_AREA)
    (found,) = zoomed_masks(segmenter, [crop], [box], tracker.grid, size, imgsz, settings.conf)
    overlaps = [(m & whole).sum() / (m | whole).sum() for m in found]
    assert max(overlaps) > 0.7, overlaps
