"""Subjects with parts, on real footage: what a clicked rider rides stays sharp with them, also when
the detector first finds it frames after the click, and whatever label the click frame gave."""

from pathlib import Path

import numpy as np
import pytest

from smartfocus import FocusPlan, open_video


@pytest.fixture(scope="module")
def open_sequence(davis_dir: Path, model_path: Path):
    sessions = []

    def opened(name: str):
        session = open_video(davis_dir / name / "frames", model=model_path)
        sessions.append(session)
        session.analyse()
        return session

    yield opened
    for session in sessions:
        session.close()


def _covered(timeline, frame: int, name: str) -> float:
    """The share of `frame`'s biggest `name` detection that is in focus (on the mask grid)."""
    analysis = timeline.analysis
    found = analysis.instances(frame)
    rows = [i for i, c in enumerate(found.class_ids) if analysis.class_names[int(c)] == name]
    if not rows:
        return float("nan")
    mask = found.masks[max(rows, key=lambda i: found.masks[i].sum())]
    return float(((timeline.state(frame).subject_matte > 0.5) & mask).sum() / mask.sum())


def test_a_part_the_detector_first_finds_later_joins_the_subject(open_sequence) -> None:
    """DAVIS `motocross-bumps`: the rider is clicked on frame 0, where the far motorbike under him is
    not detected; from frame 9 it is, touching him and moving with him, so it is sharp with him.
    (Before, parts were looked for on the click frame only: the bike stayed blurred all clip.)"""
    session = open_sequence("motocross-bumps")
    analysis = session.analyse()
    assert "motorcycle" not in [analysis.class_names[int(c)] for c in analysis.instances(0).class_ids]
    timeline = session.timeline(FocusPlan().focus(0, (321.0, 259.0)))
    bike = [_covered(timeline, frame, "motorcycle") for frame in range(20, 60)]
    seen = [share for share in bike if not np.isnan(share)]
    assert len(seen) >= 30, "the detector sees the bike on most of these frames"
    assert np.median(seen) > 0.8, np.round(seen, 2)
    assert [_covered(timeline, frame, "person") > 0.8 for frame in (0, 30, 59)] == [True] * 3


def test_a_rider_and_the_whole_horse_whatever_the_click_frame_calls_it(open_sequence) -> None:
    """DAVIS `horsejump-low`: the click on the horse lands on a fragment of it the nano model calls
    "person" on frame 0. Parts pair by each object's label or vote, so the whole horse (another
    track) and its rider (a person) are both parts, on every frame."""
    session = open_sequence("horsejump-low")
    timeline = session.timeline(FocusPlan().focus(0, (356.0, 265.0)))
    for frame in (3, 9, 15, 30, 45, 51):  # frames where the detector sees both as themselves
        assert _covered(timeline, frame, "horse") > 0.7, frame
        assert _covered(timeline, frame, "person") > 0.7, frame
