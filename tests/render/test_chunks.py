"""Where a chunked render cuts, and the focus states its chunks carry."""

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from smartfocus import FocusPlan, open_video
from smartfocus.errors import SmartfocusError
from smartfocus.focus.timeline import FocusState
from smartfocus.media.reader import open_video as open_reader
from smartfocus.render.chunks import PackedStates
from smartfocus.runner import InProcess, plan_cuts


def test_cuts_snap_to_nearby_keyframes_and_the_tail_joins_the_last_chunk() -> None:
    assert plan_cuts(289, np.array([0, 250]), 96) == [0, 96, 192]
    assert plan_cuts(289, np.array([0, 250]), 150) == [0, 150]  # 250 is too far from 150 to snap
    assert plan_cuts(600, np.array([0, 110, 290, 420]), 100) == [0, 110, 210, 290, 390, 490]
    assert plan_cuts(100, np.arange(100), 96) == [0]  # a tail shorter than a quarter chunk is kept on
    assert plan_cuts(1, np.array([0]), 150) == [0]


def test_packed_states_give_back_the_timeline_states_exactly() -> None:
    rng = np.random.default_rng(0)
    grid = (18, 32)
    states = {}
    for frame in range(5):
        matte = (rng.random(grid) > 0.7).astype(np.float32) * rng.random()
        subject = matte if frame % 2 else np.clip(matte * 1.5, 0, 1).astype(np.float32)
        states[frame] = FocusState(matte=matte, subject_matte=subject, strength=frame / 4)
    timeline = SimpleNamespace(state=states.__getitem__, analysis=SimpleNamespace(grid=grid))
    packed = PackedStates.of(timeline, [1, 2, 4])
    for frame in (1, 2, 4):
        got, want = packed.state(frame), states[frame]
        assert np.array_equal(got.matte, want.matte) and np.array_equal(got.subject_matte, want.subject_matte)
        assert got.strength == want.strength and got.matte.dtype == np.float32


def test_in_process_runs_chunks_in_order_and_loads_once() -> None:
    loads = []
    runner = InProcess(10)
    assert list(runner.ordered(lambda job: job * 2, [1, 2, 3])) == [2, 4, 6]
    held = runner.ordered_with(lambda: loads.append(1) or "model", lambda model, job: (model, job), "ab")
    assert list(held) == [("model", "a"), ("model", "b")] and loads == [1]
    assert runner.chunk_frames(10_000) == 10


def test_an_in_process_chunked_render_has_the_one_process_frames_and_mattes(
    dog_clip: Path, cut_clip: Callable[..., Path], model_path: Path, tmp_path: Path
) -> None:
    clip = cut_clip(dog_clip, tmp_path / "dog40.mp4", 40, (640, 360))
    plan = FocusPlan().focus(0, (180.0, 190.0))  # the walker
    with open_video(clip, model=model_path) as session:
        session.render(tmp_path / "one.mp4", plan, matte_dir=tmp_path / "one")
        session.runner = InProcess(16)  # chunks [0, 16), [16, 32), [32, 40)
        session.render(tmp_path / "chunked.mp4", plan, matte_dir=tmp_path / "chunked")
    with open_reader(tmp_path / "one.mp4") as one, open_reader(tmp_path / "chunked.mp4") as chunked:
        assert len(one) == len(chunked) == 40 and np.array_equal(one.timestamps, chunked.timestamps)
        assert {16, 32} <= set(chunked.keyframes().tolist())
    for index in range(40):
        name = f"{index:05d}.png"
        matte = cv2.imread(str(tmp_path / "one" / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(matte, cv2.imread(str(tmp_path / "chunked" / name), cv2.IMREAD_UNCHANGED))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "chunked",
        "chunked.mp4",
        "dog40.mp4",
        "one",
        "one.mp4",
    ]


def test_a_chunked_render_honours_the_output_quality_and_height(
    dog_clip: Path, cut_clip: Callable[..., Path], model_path: Path, tmp_path: Path
) -> None:
    """Every chunk is encoded at the height asked for, so the segments join; the mattes stay at the
    source's size, and the file matches a one-process render's size, frame count and timestamps."""
    clip = cut_clip(dog_clip, tmp_path / "dog40.mp4", 40, (640, 360))  # as above: analysis cached
    plan = FocusPlan().focus(0, (180.0, 190.0))
    options = {"output_quality": "small", "output_height": 240}
    with open_video(clip, model=model_path) as session:
        session.render(tmp_path / "one.mp4", plan, **options)
        session.runner = InProcess(16)
        session.render(tmp_path / "chunked.mp4", plan, matte_dir=tmp_path / "mattes", **options)
        with pytest.raises(SmartfocusError, match="above the video's 360 pixels"):
            session.render(tmp_path / "big.mp4", plan, output_height=480)
    with open_reader(tmp_path / "one.mp4") as one, open_reader(tmp_path / "chunked.mp4") as chunked:
        assert (one.info.width, one.info.height) == (chunked.info.width, chunked.info.height) == (426, 240)
        assert len(one) == len(chunked) == 40 and np.array_equal(one.timestamps, chunked.timestamps)
        assert np.abs(one.read(20).astype(int) - chunked.read(20)).mean() < 3
    assert cv2.imread(str(tmp_path / "mattes" / "00039.png"), cv2.IMREAD_UNCHANGED).shape == (360, 640)
    assert not (tmp_path / "big.mp4").exists()
