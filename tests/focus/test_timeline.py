"""Focus over time on real footage: rack focus between two people, easing, and no inference."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from smartfocus.errors import SelectionError
from smartfocus.focus.plan import FocusPlan, Keyframe
from smartfocus.focus.timeline import FocusTimeline
from smartfocus.media import open_video
from smartfocus.vision.analysis import Analysis, analyse_video

SWITCH = 30  # lucia: the woman in front from frame 0, the passer-by behind her from frame 30


@pytest.fixture(scope="module")
def lucia(segmenter, davis_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    with open_video(davis_dir / "lucia" / "frames") as reader:
        return analyse_video(reader, segmenter, cache_dir=tmp_path_factory.mktemp("cache"))


def _click_inside(analysis: Analysis, frame: int, track_id: int) -> tuple[float, float]:
    """A source pixel inside `track_id`'s mask (its mask's deepest grid cell)."""
    import cv2

    instances = analysis.instances(frame)
    mask = instances.masks[instances.index_of(track_id)].astype(np.uint8)
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    gy, gx = np.unravel_index(np.argmax(distance), distance.shape)
    scale = analysis.frame_size[0] / analysis.grid[1]
    return (gx + 0.5) * scale, (gy + 0.5) * scale


def test_rack_focus_passes_through_intermediate_frames(lucia: Analysis) -> None:
    woman, passer_by = 1, 2
    assert lucia.instances(SWITCH).index_of(passer_by) is not None
    plan = (
        FocusPlan()
        .focus(0, _click_inside(lucia, 0, woman))
        .focus(SWITCH, _click_inside(lucia, SWITCH, passer_by))
    )
    timeline = FocusTimeline(lucia, plan, transition_frames=10)
    first, second = timeline.subjects

    def weight_on(subject, frame: int) -> float:
        mask = subject.mask(lucia, frame) > 0.5
        return float(timeline.state(frame).matte[mask].mean())

    # the rack arrives on the keyframe: the clicked subject is sharp on the frame it was clicked on
    woman_weights = [weight_on(first, f) for f in range(SWITCH - 12, SWITCH + 1)]
    passer_weights = [weight_on(second, f) for f in range(SWITCH - 12, SWITCH + 1)]
    assert woman_weights[0] == pytest.approx(1.0) and woman_weights[-1] < 0.05
    assert passer_weights[0] < 0.05 and passer_weights[-1] == pytest.approx(1.0)
    middle = [w for w in woman_weights if 0.1 < w < 0.9]
    assert len(middle) >= 4, f"a switch must ease, got {np.round(woman_weights, 2)}"
    assert all(np.diff(woman_weights) <= 1e-6) and all(np.diff(passer_weights) >= -1e-6)
    # the exported matte switches at the keyframe itself: it is who is in focus, not the look
    assert timeline.state(SWITCH).subject_matte[second.mask(lucia, SWITCH) > 0.5].min() == 1.0
    # both stay visible, so the blur itself does not dip during the switch
    assert min(timeline.strength(f) for f in range(SWITCH - 5, SWITCH + 12)) == pytest.approx(1.0)


def test_frames_before_the_first_keyframe_stay_unfocused(lucia: Analysis) -> None:
    timeline = FocusTimeline(lucia, FocusPlan().focus(20, _click_inside(lucia, 20, 1)), transition_frames=10)
    assert all(timeline.strength(f) == 0.0 for f in range(10))
    assert not timeline.state(15).subject_matte.any()  # the exported matte starts at the keyframe
    ramp = [timeline.strength(f) for f in range(10, 21)]  # the look eases in, full on the keyframe
    assert ramp[0] < 0.2 and ramp[-1] == pytest.approx(1.0) and all(np.diff(ramp) >= 0)


def test_two_clicks_on_one_frame_keep_both_sharp(lucia: Analysis) -> None:
    plan = (
        FocusPlan()
        .focus(SWITCH, _click_inside(lucia, SWITCH, 1))
        .focus(SWITCH, _click_inside(lucia, SWITCH, 2))
    )
    state = FocusTimeline(lucia, plan).state(SWITCH + 5)
    instances = lucia.instances(SWITCH + 5)
    for track_id in (1, 2):
        assert state.subject_matte[instances.masks[instances.index_of(track_id)]].mean() > 0.99


def test_a_keyframe_with_its_own_transition_eases_in_over_it(lucia: Analysis) -> None:
    """The rack into the second keyframe takes its own 1 s (25 frames at 25 fps) instead of the
    default 10 frames, and still arrives on the keyframe; the first is untouched."""
    woman, passer_by = 1, 2
    plan = FocusPlan(
        (
            Keyframe(0, "focus", (_click_inside(lucia, 0, woman),)),
            Keyframe(SWITCH, "focus", (_click_inside(lucia, SWITCH, passer_by),), transition=1.0),
        )
    )
    assert FocusPlan.from_json(plan.to_json()) == plan
    slow = FocusTimeline(lucia, plan, transition_frames=10, fps=25.0)
    quick = FocusTimeline(
        lucia,
        FocusPlan(tuple(replace(k, transition=None) for k in plan.keyframes)),
        transition_frames=10,
        fps=25.0,
    )
    second = slow.subjects[1]

    def weight(timeline: FocusTimeline, frame: int) -> float:
        return float(timeline.state(frame).matte[second.mask(lucia, frame) > 0.5].mean())

    assert weight(slow, SWITCH - 20) > 0.05 and weight(quick, SWITCH - 20) < 0.01  # began earlier
    assert weight(slow, SWITCH) == pytest.approx(1.0) and weight(quick, SWITCH) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fps"):
        FocusTimeline(lucia, plan, transition_frames=10)
    with pytest.raises(SelectionError, match="transition must be between"):
        Keyframe(3, "focus", ((1.0, 1.0),), transition=-5)
