"""A clicked region is a subject like a detected one: focus, ease-out, exclude points, fallbacks.

The analysis here holds no detections (as if the detector knew nothing in the clip), except in the
exclude test, which builds two nested objects to check which one a click picks.
"""

from pathlib import Path

import numpy as np
import pytest

from smartfocus.errors import SelectionError
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.timeline import FocusTimeline, RegionSubject
from smartfocus.media import open_video
from smartfocus.session import FocusSession
from smartfocus.vision.analysis import Analysis
from smartfocus.vision.instances import APPEARANCE_BINS, Instances
from smartfocus.vision.segment import AnalysisSettings, grid_shape

SAIL = (297.0, 219.0)
SIZE = (854, 480)
FRAMES = 16


@pytest.fixture(scope="module")
def surf(davis_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("surf") / "frames"
    folder.mkdir()
    for index in range(FRAMES):
        (folder / f"{index:05d}.jpg").symlink_to(davis_dir / "surf" / "frames" / f"{index:05d}.jpg")
    return folder


def _analysis(frames: list[Instances]) -> Analysis:
    return Analysis.from_frames(
        frames, frame_size=SIZE, settings=AnalysisSettings(), class_names={0: "person"}
    )


@pytest.fixture(scope="module")
def nothing_detected() -> Analysis:
    return _analysis([Instances.empty(grid_shape(SIZE, 320))] * FRAMES)


def test_a_click_on_no_detection_focuses_the_region(surf: Path, nothing_detected: Analysis) -> None:
    with FocusSession(open_video(surf)) as video:

        def regions(frame, points, exclude):
            return video.region(frame, points, exclude, grid=nothing_detected.grid)

        timeline = FocusTimeline(
            nothing_detected, FocusPlan().focus(0, SAIL).clear(10), regions=regions, transition_frames=4
        )
    (subject,) = timeline.subjects
    assert isinstance(subject, RegionSubject)
    for frame in (0, 5, 9):
        region = subject.track.mask(frame)
        state = timeline.state(frame)
        assert region is not None and region.sum() > 1000
        assert np.array_equal(state.subject_matte > 0.5, region)
    assert timeline.strength(5) == pytest.approx(1.0)
    assert not timeline.state(12).subject_matte.any() and timeline.strength(FRAMES - 1) < 0.5  # eased out


def test_without_a_region_provider_a_click_on_nothing_is_refused(nothing_detected: Analysis) -> None:
    with pytest.raises(SelectionError, match=r"nothing selectable at \(297, 219\)"):
        FocusTimeline(nothing_detected, FocusPlan().focus(0, SAIL))


def test_an_exclude_point_on_a_detection_lets_the_click_fall_through() -> None:
    grid = grid_shape(SIZE, 320)
    big, small = np.zeros(grid, bool), np.zeros(grid, bool)
    big[40:140, 100:220] = True
    small[80:100, 150:170] = True  # inside the big one: a click there picks the small one
    frame = Instances(
        track_ids=np.array([1, 2], np.int32),
        class_ids=np.zeros(2, np.int16),
        scores=np.ones(2, np.float32),
        boxes=np.array([[267, 107, 587, 373], [400, 213, 454, 267]], np.float32),
        masks=np.stack([big, small]),
        appearance=np.full((2, APPEARANCE_BINS), 1 / APPEARANCE_BINS, np.float32),
    )
    analysis = _analysis([frame] * 3)
    click = (427.0, 240.0)
    picked = FocusTimeline(analysis, FocusPlan().focus(0, click)).subjects[0]
    assert picked.track_ids == (2,)
    excluded = FocusTimeline(analysis, FocusPlan().focus(0, click).exclude(0, click)).subjects[0]
    assert excluded.track_ids == (1,)


@pytest.mark.parametrize(("score", "picks_region"), [(0.3, True), (0.9, False)])
def test_an_unsure_detection_of_part_of_the_region_yields_to_it(
    surf: Path, score: float, picks_region: bool
) -> None:
    """A weak detection covering only the sail's lower part (a stroller's frame called "bicycle")."""
    grid = grid_shape(SIZE, 320)
    with FocusSession(open_video(surf)) as video:

        def regions(frame, points, exclude):
            return video.region(frame, points, exclude, grid=grid)

        sail = regions(0, (SAIL,), ())
        part = sail.mask(0).copy()
        row = int(SAIL[1] * grid[0] / SIZE[1])
        part[: row - 2] = False  # only a strip of the sail around the click is detected
        part[row + 12 :] = False
        ys, xs = np.nonzero(part)
        box = np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], np.float32) * SIZE[0] / grid[1]
        detected = Instances(
            track_ids=np.array([1], np.int32),
            class_ids=np.zeros(1, np.int16),
            scores=np.array([score], np.float32),
            boxes=box,
            masks=part[None],
            appearance=np.full((1, APPEARANCE_BINS), 1 / APPEARANCE_BINS, np.float32),
        )
        analysis = _analysis([detected] * FRAMES)
        (subject,) = FocusTimeline(analysis, FocusPlan().focus(0, SAIL), regions=regions).subjects
    assert isinstance(subject, RegionSubject) == picks_region
