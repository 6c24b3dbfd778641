"""Corrections on a later frame, on real footage: a refine click fixes the subject both ways, an
exclude click cuts a part (a rider's motorbike) away from there on and never takes the rider."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus import FocusPlan, open_video
from smartfocus.errors import SelectionError
from smartfocus.vision.instances import upsample_mask

SEQ = "motocross-bumps"  # a rider on a motorbike, 60 frames of 854x480
RIDER = (321.0, 259.0)  # frame 0: the rider (the detector misses the bike here)
BIKE_39 = (367.0, 285.0)  # frame 39: the bike


def _j(prediction: np.ndarray, truth: np.ndarray) -> float:
    union = (prediction | truth).sum()
    return float((prediction & truth).sum() / union) if union else 1.0


@pytest.fixture(scope="module")
def motocross(davis_dir: Path, model_path: Path):
    folder = davis_dir / SEQ
    truth = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 0 for p in sorted((folder / "masks").glob("*.png"))]
    with open_video(folder / "frames", model=model_path) as session:
        session.analyse()
        yield session, truth


def _scores(session, truth: list[np.ndarray], plan: FocusPlan) -> np.ndarray:
    height, width = truth[0].shape
    timeline = session.timeline(plan)
    return np.array(
        [
            _j(upsample_mask(timeline.state(i).subject_matte, (width, height)) > 0.5, gt)
            for i, gt in enumerate(truth)
        ]
    )


def _bike_point(analysis, frame: int, size: tuple[int, int]) -> tuple[float, float]:
    """A point on `frame`'s motorbike away from the rider, in source pixels."""
    found = analysis.instances(frame)
    names = [analysis.class_names[int(c)] for c in found.class_ids]
    bike, rider = found.masks[names.index("motorcycle")], found.masks[names.index("person")]
    only_bike = bike & ~cv2.dilate(rider.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    depth = cv2.distanceTransform(only_bike.astype(np.uint8), cv2.DIST_L2, 3)
    gy, gx = np.unravel_index(int(np.argmax(depth)), depth.shape)
    width, height = size
    return (gx + 0.5) * width / analysis.grid[1], (gy + 0.5) * height / analysis.grid[0]


def test_a_correction_on_a_later_frame_fixes_the_subject_both_ways(motocross) -> None:
    """The bike (a part of its rider) cut away on frame 23, then clicked back on frame 39: from
    there on it is sharp again, and back to the cut on frame 23 too; before the cut nothing moves."""
    session, truth = motocross
    height, width = truth[0].shape
    whole = FocusPlan().focus(0, RIDER)
    plan = whole.exclude(23, _bike_point(session.analyse(), 23, (width, height)))
    before = _scores(session, truth, plan)
    assert np.allclose(before[:5], _scores(session, truth, whole)[:5])  # the far rider is kept
    corrected = plan.refine(39, BIKE_39)
    after = _scores(session, truth, corrected)
    assert after[39:].mean() > before[39:].mean() + 0.2  # from the correction on...
    assert after[23:39].mean() > before[23:39].mean() + 0.2  # ...and back to the cut before it
    assert np.allclose(after[:23], before[:23], atol=0.05)  # before the cut, the first click rules
    # the same subject, corrected: one subject in focus, named after the first click
    timeline = session.timeline(corrected)
    assert len(timeline.subjects) == 1 and timeline.active.all()
    picked = session.select(plan, 39, *BIKE_39, mode="refine")
    assert picked.plan == corrected and picked.label == "person"


def test_an_exclude_click_cuts_a_part_away_from_there_on(motocross) -> None:
    session, truth = motocross
    analysis = session.analyse()
    plan = FocusPlan().focus(0, RIDER)
    height, width = truth[0].shape
    point = _bike_point(analysis, 50, (width, height))
    kept, cut = session.timeline(plan), session.timeline(plan.exclude(50, point))

    def covered(timeline, frame: int, name: str) -> float:
        here = analysis.instances(frame)
        labels = [analysis.class_names[int(c)] for c in here.class_ids]
        mask = here.masks[labels.index(name)]
        return float(((timeline.state(frame).subject_matte > 0.5) & mask).sum() / mask.sum())

    for frame in (50, 55):
        assert covered(kept, frame, "motorcycle") > 0.8 and covered(cut, frame, "motorcycle") < 0.2
        assert covered(cut, frame, "person") > 0.8  # the rider stays sharp
    assert cut.missing() == []  # cutting a part never makes the subject "not found"

    with pytest.raises(SelectionError, match="nothing is in focus on frame 10 to correct"):
        session.timeline(FocusPlan().refine(10, RIDER))
