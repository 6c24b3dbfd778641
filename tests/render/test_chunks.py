"""Where a chunked render cuts, and the focus states its chunks carry."""

from types import SimpleNamespace

import numpy as np

from smartfocus.focus.timeline import FocusState
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
