"""Corrections on a later frame, on real footage: a refine click fixes the subject both ways, an
exclude click cuts a part (a rider's motorbike) away from there on."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus import FocusPlan, open_video
from smartfocus.errors import SelectionError
from smartfocus.vision.instances import upsample_mask

SEQ = "motocross-bumps"  # a rider on a motorbike, 60 frames of 854x480
RIDER = (321.0, 259.0)  # frame 0: the rider (the detector misses the bike here)
BIKE_39 = (367.0, 285.0)  # frame 39: the bike, where one click's focus has lost it (GT's biggest miss)


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


def test_a_correction_on_a_later_frame_fixes_the_subject_both_ways(motocross) -> None:
    session, truth = motocross
    plan = FocusPlan().focus(0, RIDER)
    before = _scores(session, truth, plan)
    corrected = plan.refine(39, BIKE_39)
    after = _scores(session, truth, corrected)
    assert after[39:].mean() > before[39:].mean() + 0.2  # from the correction on...
    assert after[20:39].mean() > before[20:39].mean() + 0.1  # ...and back towards the first click
    assert np.allclose(after[:5], before[:5], atol=0.05)  # near the first click, that click rules
    # the same subject, corrected: one subject in focus, named after the first click
    timeline = session.timeline(corrected)
    assert len(timeline.subjects) == 1 and timeline.active.all()
    picked = session.select(plan, 39, *BIKE_39, mode="refine")
    assert picked.plan == corrected and picked.label == "person"


def test_an_exclude_click_cuts_a_part_away_from_there_on(motocross) -> None:
    session, truth = motocross
    analysis = session.analyse()
    plan = FocusPlan().focus(0, RIDER).refine(39, BIKE_39)
    # a point on frame 50's motorbike, away from the rider
    found = analysis.instances(50)
    names = [analysis.class_names[int(c)] for c in found.class_ids]
    bike, rider = found.masks[names.index("motorcycle")], found.masks[names.index("person")]
    only_bike = bike & ~cv2.dilate(rider.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    depth = cv2.distanceTransform(only_bike.astype(np.uint8), cv2.DIST_L2, 3)
    gy, gx = np.unravel_index(int(np.argmax(depth)), depth.shape)
    height, width = truth[0].shape
    point = ((gx + 0.5) * width / analysis.grid[1], (gy + 0.5) * height / analysis.grid[0])
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
