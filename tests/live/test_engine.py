"""The live engine on real footage fed at the camera's rate: the clicked subject stays the subject,
and a camera faster than processing makes frames drop instead of queueing."""

from pathlib import Path

import numpy as np
import pytest

from smartfocus.errors import SelectionError
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.timeline import FocusTimeline
from smartfocus.live.engine import LiveEngine, LiveFrame
from smartfocus.live.stream import FileCamera, LatestSlot, LiveStream
from smartfocus.media.reader import open_video
from smartfocus.vision.analysis import analyse_video
from smartfocus.vision.segment import AnalysisSettings


def test_clicked_subject_stays_the_subject(segmenter, dog_640: Path, woman_640) -> None:
    engine = LiveEngine(segmenter)
    frames: list[LiveFrame] = []
    selection = []

    def on_frame(frame: LiveFrame) -> None:
        if not selection:
            selection.append(engine.select(*woman_640))  # the first thing on screen gets clicked
        frames.append(frame)

    stats = LiveStream(engine, FileCamera(str(dog_640)), on_frame).start().join(timeout=120)
    assert stats.processed == len(frames) > 20

    # The same subject, resolved offline by the video engine on the same frames.
    with open_video(dog_640) as reader:
        analysis = analyse_video(reader, segmenter, AnalysisSettings())
    timeline = FocusTimeline(analysis, FocusPlan().focus(0, woman_640))
    locked = [f for f in frames[1:] if f.subject_row is not None]
    assert len(locked) >= 0.9 * (len(frames) - 1), "the subject was lost"
    overlaps = []
    for frame in locked:
        live = frame.instances.masks[frame.subject_row]
        offline = timeline.state(frame.sequence).subject_matte > 0.5
        overlaps.append((live & offline).sum() / max((live | offline).sum(), 1))
    assert np.median(overlaps) > 0.7 and min(overlaps) > 0.4, overlaps
    # and it is in focus: the blur eased in once the subject was locked
    assert frames[-1].strength == pytest.approx(engine.blur)


def test_a_slow_engine_drops_frames_instead_of_queueing(segmenter, dog_640: Path) -> None:
    engine = LiveEngine(segmenter)
    # 8x the clip's rate (~240 fps): far faster than a 2-core CPU segments frames
    stats = LiveStream(engine, FileCamera(str(dog_640), speed=8.0)).start().join(timeout=120)
    assert stats.captured == 60
    assert stats.dropped > 0 and stats.processed + stats.dropped == stats.captured
    # A queue would make the last frame wait for every frame before it; the mailbox keeps each frame's
    # wait to about one processing time.
    per_frame = (stats.finished - stats.started) / stats.processed
    queued_latency = stats.captured * per_frame - stats.captured / FileCamera(str(dog_640), speed=8.0).fps
    assert max(stats.latencies) < 3 * per_frame + 0.05
    assert max(stats.latencies) < queued_latency / 3


def test_select_before_any_frame_and_on_nothing_is_refused(segmenter, dog_640: Path) -> None:
    engine = LiveEngine(segmenter)
    with pytest.raises(SelectionError, match="no frame"):
        engine.select(10, 10)
    with open_video(dog_640) as reader:
        source = reader.read(0)
    frame = engine.process(source, 0.0)
    assert frame.subject_id is None and np.array_equal(frame.image, source)  # nothing locked: no blur
    with pytest.raises(SelectionError, match="nothing selectable"):
        engine.select(630, 5)


def test_latest_slot_keeps_only_the_newest() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for item in range(5):
        slot.put(item)
    assert slot.take() == 4 and slot.dropped == 4
    slot.close()
    assert slot.take() is None


def test_blur_eases_out_while_the_subject_is_gone_and_back_when_it_returns(
    segmenter, dog_640: Path, woman_640
) -> None:
    engine = LiveEngine(segmenter)
    with open_video(dog_640) as reader:
        frames = [reader.read(i) for i in range(30)]
    clock = iter(np.arange(100) / 30)  # capture times at 30 fps
    engine.process(frames[0], next(clock))
    locked_id = engine.select(*woman_640).track_id
    strengths = [engine.process(frame, next(clock)).strength for frame in frames[1:16]]
    assert strengths[-1] == pytest.approx(engine.blur) and strengths == sorted(strengths)
    # the subject leaves: an empty grey picture (nothing detected) for half a second
    empty = np.full_like(frames[0], 128)
    gone = [engine.process(empty, next(clock)) for _ in range(15)]
    assert all(f.subject_row is None and f.subject_id == locked_id for f in gone)
    fading = [f.strength for f in gone]
    assert fading == sorted(fading, reverse=True) and fading[0] > 0 and fading[-1] == 0
    # and comes back: the same subject, in focus again
    back = [engine.process(frame, next(clock)) for frame in frames[16:30]]
    assert back[-1].subject_row is not None
    assert back[-1].instances.track_ids[back[-1].subject_row] == back[-1].subject_id
    assert back[-1].strength == pytest.approx(engine.blur)


def test_the_lock_survives_the_stream_changing_resolution(segmenter, dog_640: Path, woman_640) -> None:
    """WebRTC scales a stream down when the machine or the network is loaded, and back up: the
    clicked subject stays locked and in focus across the change, found again at the new size."""
    import cv2

    engine = LiveEngine(segmenter)
    with open_video(dog_640) as reader:
        frames = [reader.read(i) for i in range(40)]
    clock = iter(np.arange(100) / 30)
    engine.process(frames[0], next(clock))
    engine.select(*woman_640)
    before = [engine.process(frame, next(clock)) for frame in frames[1:16]]
    assert before[-1].subject_row is not None and before[-1].strength == pytest.approx(engine.blur)
    woman_box = before[-1].instances.boxes[before[-1].subject_row]
    smaller = [cv2.resize(frame, (480, 270), interpolation=cv2.INTER_AREA) for frame in frames[16:40]]
    after = [engine.process(frame, next(clock)) for frame in smaller]
    locked = [f for f in after if f.subject_row is not None]
    assert len(locked) >= 0.9 * len(after), "the lock was dropped at the new resolution"
    assert min(f.strength for f in after) > 0.5 * engine.blur, "the blur eased out"
    # and it is the woman: her box where it was, in the new pixels
    box = locked[0].instances.boxes[locked[0].subject_row]
    centre, expected = (box[:2] + box[2:]) / 2, (woman_box[:2] + woman_box[2:]) / 2 * 0.75
    assert np.linalg.norm(centre - expected) < 0.25 * np.sqrt(np.prod(box[2:] - box[:2])), (centre, expected)


def test_a_click_takes_a_subject_the_newest_frame_just_missed(segmenter, dog_640: Path, woman_640) -> None:
    """A detection that flickers out for a frame still takes the click: it is judged on the newest of
    the last few frames with an object under it."""
    engine = LiveEngine(segmenter)
    with open_video(dog_640) as reader:
        frame = reader.read(0)
    engine.process(frame, 0.0)
    engine.process(np.full_like(frame, 128), 1 / 30)  # nothing detected on the newest frame
    selection = engine.select(*woman_640)
    assert selection.class_name == "person"
    after = engine.process(frame, 2 / 30)
    assert after.subject_row is not None and after.subject_id == selection.track_id


class _ClickDuringInference:
    """The real segmenter, with a click arriving while it runs: the moment a WebRTC stream that
    just changed resolution is processing its first frame at the new size."""

    def __init__(self, segmenter) -> None:
        self._segmenter = segmenter
        self.click = None  # called once, from inside the next predict
        self.selection = None

    def __getattr__(self, name: str):
        return getattr(self._segmenter, name)

    def predict(self, *args, **kwargs):
        if self.click is not None:
            click, self.click = self.click, None
            self.selection = click()
        return self._segmenter.predict(*args, **kwargs)


def test_a_click_while_the_stream_changes_resolution_is_taken(segmenter, dog_640: Path, woman_640) -> None:
    """Browsers rescale a WebRTC stream in its first seconds, just when people click: a click made on
    the picture at the old size, arriving before any frame at the new size is done, still locks the
    subject (it was refused as 'no frame has been processed yet')."""
    import cv2

    with open_video(dog_640) as reader:
        frames = [reader.read(i) for i in range(12)]
    clicking = _ClickDuringInference(segmenter)
    engine = LiveEngine(clicking)
    clock = iter(np.arange(100) / 30)
    for frame in frames[:5]:
        engine.process(frame, next(clock))
    clicking.click = lambda: engine.select(*woman_640, click_size=(640, 360))
    smaller = [cv2.resize(frame, (480, 270), interpolation=cv2.INTER_AREA) for frame in frames[5:]]
    after = [engine.process(frame, next(clock)) for frame in smaller]
    assert clicking.selection is not None and clicking.selection.class_name == "person"
    locked = [f for f in after if f.subject_row is not None]
    assert len(locked) >= len(after) - 2, "the click did not lock anything at the new size"
    x0, y0, x1, y1 = locked[-1].instances.boxes[locked[-1].subject_row]
    x, y = woman_640[0] * 0.75, woman_640[1] * 0.75  # the click, in the new pixels
    assert x0 <= x <= x1 and y0 <= y <= y1, "the lock is not on the woman"
