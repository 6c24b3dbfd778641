"""Analyses are independent: one tracker per video, never shared state."""

from pathlib import Path

import numpy as np

from smartfocus.media import open_video
from smartfocus.vision.analysis import Analysis, analyse_video
from smartfocus.vision.segment import AnalysisSettings, FrameTracker

FRAMES = 20


def _frames(folder: Path) -> list[np.ndarray]:
    with open_video(folder) as reader:
        return [frame for _, frame in reader.frames(0, FRAMES)]


def _signature(results: list) -> list[tuple]:
    return [(tuple(r.track_ids), tuple(np.round(r.boxes.ravel(), 1))) for r in results]


def test_interleaved_videos_track_exactly_as_when_alone(segmenter, davis_dir: Path) -> None:
    bear, tennis = _frames(davis_dir / "bear" / "frames"), _frames(davis_dir / "tennis" / "frames")
    size = (bear[0].shape[1], bear[0].shape[0])
    settings = AnalysisSettings()
    solo = FrameTracker(segmenter, settings, size)
    alone_bear = [solo.update(f) for f in bear]
    solo = FrameTracker(segmenter, settings, size)
    alone_tennis = [solo.update(f) for f in tennis]

    first, second = FrameTracker(segmenter, settings, size), FrameTracker(segmenter, settings, size)
    mixed_bear, mixed_tennis = [], []
    for frame_bear, frame_tennis in zip(bear, tennis, strict=True):
        mixed_bear.append(first.update(frame_bear))
        mixed_tennis.append(second.update(frame_tennis))

    assert _signature(mixed_bear) == _signature(alone_bear)
    assert _signature(mixed_tennis) == _signature(alone_tennis)
    # each video numbers its own tracks from 1: ids are per analysis, not per process
    assert min(mixed_bear[0].track_ids) == 1 and min(mixed_tennis[0].track_ids) == 1


def test_analysis_is_cached_and_reloaded_identically(segmenter, davis_dir: Path, tmp_path: Path) -> None:
    with open_video(davis_dir / "swing" / "frames") as reader:
        calls = []
        first = analyse_video(reader, segmenter, cache_dir=tmp_path, progress=lambda d, t: calls.append(d))
        assert calls[-1] == len(reader)
        calls.clear()
        again = analyse_video(reader, segmenter, cache_dir=tmp_path, progress=lambda d, t: calls.append(d))
    assert calls == [], "a cached analysis must not run the model again"
    assert isinstance(again, Analysis) and again.frame_count == first.frame_count
    np.testing.assert_array_equal(again.track_ids, first.track_ids)
    np.testing.assert_array_equal(again.packed_masks, first.packed_masks)
    for frame in (0, first.frame_count // 2, first.frame_count - 1):
        np.testing.assert_array_equal(again.instances(frame).masks, first.instances(frame).masks)


def test_masks_line_up_with_the_frame(segmenter, davis_dir: Path) -> None:
    """Un-letterboxing is exact: a mishandled letterbox shifts edges by tens of pixels."""
    import cv2

    from smartfocus.vision.instances import upsample_mask

    for sequence in ("car-turn", "bear"):
        frame = cv2.imread(str(davis_dir / sequence / "frames" / "00000.jpg"))
        truth = cv2.imread(str(davis_dir / sequence / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
        size = (frame.shape[1], frame.shape[0])
        instances = FrameTracker(segmenter, AnalysisSettings(), size).update(frame)
        best = max(
            (upsample_mask(mask, size) > 0.5 for mask in instances.masks),
            key=lambda m: (m & truth).sum() / (m | truth).sum(),
        )
        assert (best & truth).sum() / (best | truth).sum() > 0.75
        centre = np.argwhere(best).mean(axis=0)
        true_centre = np.argwhere(truth).mean(axis=0)
        assert np.abs(centre - true_centre).max() < 5, f"{sequence}: mask off by {centre - true_centre} px"
