"""The focus plan is plain data: editing, merging and JSON round trips."""

import pytest

from smartfocus.errors import SelectionError
from smartfocus.focus.plan import FocusPlan, Keyframe


def test_clicks_on_one_frame_merge_into_one_keyframe() -> None:
    plan = FocusPlan().focus(10, (1, 2)).focus(10, (3, 4)).focus(0, (5, 6))
    assert [k.frame for k in plan.keyframes] == [0, 10]
    assert plan.keyframes[1].points == ((1, 2), (3, 4))


def test_json_round_trip_keeps_every_keyframe() -> None:
    plan = FocusPlan().focus(0, (10.5, 20)).add(30, (40, 50)).clear(60)
    again = FocusPlan.from_json(plan.to_json())
    assert again == plan
    assert [k.action for k in again.keyframes] == ["focus", "add", "clear"]


def test_removing_a_keyframe() -> None:
    plan = FocusPlan().focus(0, (1, 1)).focus(20, (2, 2))
    assert plan.without(0).keyframes == (Keyframe(20, "focus", ((2, 2),)),)
    with pytest.raises(SelectionError, match="no keyframe 5"):
        plan.without(5)


@pytest.mark.parametrize(
    "text", ["{}", "not json", '{"keyframes": [{"frame": 0, "action": "zoom", "points": [[1, 2]]}]}']
)
def test_bad_plans_are_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(SelectionError):
        FocusPlan.from_json(text)


def test_exclude_points_round_trip_and_old_plans_still_load() -> None:
    plan = FocusPlan().focus(0, (10, 20)).exclude(0, (30, 40)).add(5, (1, 1), exclude=((2, 2),))
    assert plan.keyframes[0].exclude == ((30, 40),)
    assert FocusPlan.from_json(plan.to_json()) == plan
    old = FocusPlan.from_json('{"keyframes": [{"frame": 0, "action": "focus", "points": [[1, 2]]}]}')
    assert old.keyframes[0].exclude == ()
    # on a frame without a click, an exclude point is a correction of what is in focus there
    corrected = FocusPlan().focus(0, (10, 20)).clear(3).exclude(3, (1, 1)).refine(3, (5, 5))
    assert [(k.frame, k.action, k.points, k.exclude) for k in corrected.keyframes] == [
        (0, "focus", ((10, 20),), ()),
        (3, "clear", (), ()),
        (3, "refine", ((5, 5),), ((1, 1),)),
    ]
    assert FocusPlan.from_json(corrected.to_json()) == corrected
    with pytest.raises(SelectionError, match="needs at least one point or exclude point"):
        FocusPlan().refine(3)
