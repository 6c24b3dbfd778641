"""The focus session, the one object every front end turns clicks into looks through."""

import threading
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import pytest

from smartfocus import FocusPlan, SharedModel, open_video
from smartfocus.errors import SelectionError
from smartfocus.focus.selection import mask_core
from smartfocus.session import _FrameReaders
from smartfocus.vision.analysis import Analysis

SWING_CLICK = (481.0, 283.0)  # the girl on the swing, frame 0 of DAVIS `swing` (854x480, 60 frames)


@pytest.fixture(scope="module")
def swing(davis_dir: Path) -> Path:
    return davis_dir / "swing" / "frames"


def _grid_cell(analysis: Analysis, x: float, y: float) -> tuple[int, int]:
    width, height = analysis.frame_size
    return int(y * analysis.grid[0] / height), int(x * analysis.grid[1] / width)


def test_select_returns_the_plan_and_what_the_click_picked(swing: Path, model_path: Path) -> None:
    with open_video(swing, model=model_path) as session:
        picked = session.select(FocusPlan(), 0, *SWING_CLICK)
        analysis = session.analyse()
        assert picked.plan == FocusPlan().focus(0, SWING_CLICK)
        assert picked.label == "person" and isinstance(picked.track_id, int) and picked.frame == 0
        assert picked.matte.shape == analysis.grid and picked.matte[_grid_cell(analysis, *SWING_CLICK)] > 0.5
        assert 0.01 < (picked.matte > 0.5).mean() < 0.5

        # a second focus click on the same frame replaces the first; "add" keeps it
        moved = session.select(picked.plan, 0, *SWING_CLICK)
        assert moved.plan.keyframes == picked.plan.keyframes
        # an exclude click lands on that frame's keyframe and round-trips through the plan's JSON
        excluded = session.select(picked.plan, 0, 830.0, 20.0, mode="exclude")
        assert excluded.plan.keyframes[0].exclude == ((830.0, 20.0),)
        assert FocusPlan.from_json(excluded.plan.to_json()) == excluded.plan
        # on a frame without a click of its own, an exclude click corrects what is in focus there
        with pytest.raises(SelectionError, match="nothing is in focus on frame 0 to correct"):
            session.select(FocusPlan(), 0, 830.0, 20.0, mode="exclude")
        with pytest.raises(SelectionError, match="past the last frame"):
            session.select(picked.plan, 60, *SWING_CLICK)
        with pytest.raises(SelectionError, match="outside"):
            session.select(picked.plan, 0, 900.0, 20.0)


def test_frames_and_renders_come_from_one_look(swing: Path, model_path: Path, tmp_path: Path) -> None:
    plan = FocusPlan().focus(0, SWING_CLICK)
    with open_video(swing, model=model_path) as session:
        frames = session.focused_frames(plan)
        index, first = next(frames)
        # the first frame has no history to smooth against, so it is exactly the preview's look
        assert index == 0 and np.array_equal(first, session.frame(plan, 0))
        assert not np.array_equal(first, session.read(0))
        assert [i for i, _ in frames] == list(range(1, 60))

        # a render stopped part-way (the steps closed, as a cancel does) leaves nothing behind
        output = tmp_path / "stopped.mp4"
        steps = session.render_steps(output, plan, matte_dir=tmp_path / "mattes")
        done = [next(steps) for _ in range(5)]
        assert done[-1] == (5, 60)
        steps.close()
        assert list(tmp_path.iterdir()) == []


def test_one_model_serves_every_session_and_loads_only_when_needed(
    swing: Path, model_path: Path, tmp_path: Path
) -> None:
    loads: list[int] = []
    model = SharedModel(model_path, "cpu", on_load=lambda: loads.append(1))
    for stride in (2, 3):  # two analyses no earlier test cached
        with open_video(swing, model=model, stride=stride, cache_dir=tmp_path) as session:
            session.analyse()
    assert loads == [1] and model.loaded
    cold = SharedModel(model_path, "cpu", on_load=lambda: loads.append(2))
    with open_video(swing, model=cold, stride=3, cache_dir=tmp_path) as session:
        session.analyse()  # from the cache: the model is not loaded
    assert loads == [1] and not cold.loaded


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sequence", "frame", "case"),
    [("motocross-bumps", 39, "parts"), ("swing", 20, "plain"), ("stroller", 10, "region")],
)
def test_the_hover_shows_what_a_click_selects(
    davis_dir: Path, model_path: Path, sequence: str, frame: int, case: str
) -> None:
    """Each object's hover mask (the page's highlight) is the click frame's matte of a click on it:
    a rider's hover includes the bike the click brings along, and an unsure detection that is only
    a part of something (the stroller's frame, called a bicycle) hovers as the region a click picks."""
    with open_video(davis_dir / sequence / "frames", model=model_path) as session:
        analysis = session.analyse()
        objects = session.objects(frame)
        assert objects
        instances = analysis.instances(frame)
        grown = [o.mask.sum() > m.sum() for o, m in zip(objects, instances.masks, strict=True)]
        kinds = {"parts": any(grown), "region": any(o.label == "region" for o in objects)}
        assert kinds.get(case, not any(kinds.values())), kinds  # the case this clip is here for
        for row, found in enumerate(objects):
            x, y = mask_core(instances.masks[row], analysis.frame_size)  # where a user clicks it
            picked = session.select(FocusPlan(), frame, x, y)
            clicked = picked.matte > 0.5
            assert (picked.label, picked.track_id) == (found.label, found.track_id)
            # Both are redrawn from a closer look (`focus.closer`), whose crop on the click frame is
            # cut for a batch of frames there and for the one frame here: edges may differ by a cell.
            assert (clicked & found.mask).sum() / (clicked | found.mask).sum() > 0.9, (found.label, x, y)


def test_strips_say_where_each_subject_is_found(swing: Path, model_path: Path) -> None:
    plan = FocusPlan().focus(0, SWING_CLICK).add(30, (100.0, 100.0)).clear(50)
    with open_video(swing, model=model_path) as session:
        timeline = session.timeline(plan)
        strips = session.strips(plan)
    assert [s.subject for s in strips] == list(range(len(timeline.subjects))) and strips[0].label.startswith(
        "person"
    )
    for strip in strips:
        covered = [frame for first, last, _ in strip.runs for frame in range(first, last + 1)]
        assert covered == list(np.flatnonzero(timeline.active[:, strip.subject]))  # exactly where in focus
        assert all(state in ("detected", "carried", "lost") for _, _, state in strip.runs)
        status = timeline.subjects[strip.subject].status()
        for first, _last, state in strip.runs:
            expected = {
                "detected": status[first] >= 1,
                "carried": 0 < status[first] < 1,
                "lost": status[first] == 0,
            }
            assert expected[state]
    assert max(last for _, last, _ in strips[0].runs) == 49  # the clear at 50 ends it
    assert [s.keyframes for s in strips] == [(0,), (1,)]  # the girl's click, the ground's (not the clear)


def test_frames_are_read_while_a_long_pass_holds_the_session(swing: Path, model_path: Path) -> None:
    """Previews read frames beside an analysis, a follow or a render (which hold the session's own
    reader): the frame comes back, exactly as that reader decodes it."""
    with open_video(swing, model=model_path) as session:
        expected = [session.reader.read(index) for index in (3, 40, 7)]
        held, release = threading.Event(), threading.Event()

        def long_pass() -> None:
            with session._lock:  # what analysis_steps / timeline / render_steps hold
                held.set()
                release.wait(30)

        worker = threading.Thread(target=long_pass)
        worker.start()
        held.wait(10)
        with ThreadPoolExecutor(4) as pool:  # more reads than the pool's readers: they take turns
            futures = [pool.submit(session.read, index) for index in (3, 40, 7, 3)]
            _, waiting = wait(futures, timeout=20)
            release.set()  # (only now: a read that needed the held lock would still be waiting)
        worker.join(10)
        assert not waiting
        reads = [future.result() for future in futures]
        assert all(np.array_equal(a, b) for a, b in zip(reads, [*expected, expected[0]], strict=True))


def test_frame_readers_read_on_from_the_nearest_decoder(dog_clip: Path) -> None:
    """A read takes the idle decoder that decodes on to its frame, not the last one given back."""
    readers = _FrameReaders(dog_clip, None, 2)
    try:
        near, far = readers._take(100), readers._take(5)
        near.read(100), far.read(5)
        readers._give(near)
        readers._give(far)
        assert readers._take(101) is near
        assert readers._take(6) is far
    finally:
        readers.close()


def test_frame_readers_serve_waiting_reads_in_turn_and_wake_them_on_close(dog_clip: Path) -> None:
    readers = _FrameReaders(dog_clip, None, 1)
    only = readers._take(0)
    got: list[tuple[str, object]] = []

    def take(name: str, index: int) -> None:
        try:
            got.append((name, readers._take(index)))
        except RuntimeError as error:  # closed while waiting
            got.append((name, str(error)))

    threads = []
    for name, index in (("first", 10), ("second", 20), ("third", 30)):
        threads.append(threading.Thread(target=take, args=(name, index)))
        threads[-1].start()
        while len(readers._waiting) < len(threads):  # queued in this order
            threading.Event().wait(0.01)
    readers._give(only)
    threads[0].join(10)
    assert got == [("first", only)]
    readers._give(only)
    threads[1].join(10)
    assert got[1] == ("second", only)
    readers.close()
    threads[2].join(10)
    assert got[2] == ("third", "the session is closed")
    with pytest.raises(RuntimeError, match="closed"):
        readers.read(0)


def test_timeline_steps_report_each_keyframe_and_stop_when_closed(
    swing: Path, model_path: Path, tmp_path: Path
) -> None:
    """The steps give the timeline `timeline` gives; closed after the first report they stop, and a
    click that picks nothing raises from the steps as from `timeline`."""
    plan = FocusPlan().focus(0, SWING_CLICK).add(30, (120.0, 400.0))  # the girl, then the ground's region
    with open_video(swing, model=model_path, region_cache_dir=tmp_path / "closed") as session:
        session.analyse()
        steps = session.timeline_steps(plan)
        frames = session.frame_count
        assert next(steps) == (0, 2 * frames)  # in frames followed: the clip's, per keyframe
        steps.close()  # the thread stops before its next subject; nothing is kept
        assert not session.has_timeline(plan)
    with open_video(swing, model=model_path, region_cache_dir=tmp_path / "full") as session:
        reports = []
        steps = session.timeline_steps(plan)
        try:
            while True:
                reports.append(next(steps))
        except StopIteration as end:
            timeline = end.value
        assert reports[-1] == (2 * frames, 2 * frames)
        assert [done for done, _ in reports] == sorted(done for done, _ in reports)
        assert len({done for done, _ in reports}) > frames // 2  # frame by frame, not per keyframe
        assert session.has_timeline(plan) and session.timeline(plan) is timeline
        np.testing.assert_array_equal(timeline.state(40).matte, session.state(plan, 40).matte)
        with pytest.raises(SelectionError, match="past the video's last frame"):
            list(session.timeline_steps(FocusPlan().focus(99, SWING_CLICK)))


class _Stop(Exception):
    pass


def test_a_check_stops_following_a_region_between_frames_and_caches_nothing(
    swing: Path, model_path: Path, tmp_path: Path
) -> None:
    """What lets a cancelled plan job stop within a frame or two rather than after a whole subject."""
    with open_video(swing, model=model_path, region_cache_dir=tmp_path / "regions") as session:
        session.analyse()
        calls = []

        def check() -> None:
            calls.append(1)
            if len(calls) > 5:
                raise _Stop

        with pytest.raises(_Stop):
            session.region(0, ((120.0, 400.0),), check=check)
        assert len(calls) == 6 and not any((tmp_path / "regions").glob("**/*.npz"))
        track = session.region(0, ((120.0, 400.0),))  # unchecked, it runs through
        assert track.mask(59) is not None and any((tmp_path / "regions").glob("**/*.npz"))
