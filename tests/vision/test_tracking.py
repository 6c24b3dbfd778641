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
    """Un-letterboxing is exact: our grid masks sit where ultralytics' own full-resolution masks do.

    Resizing letterboxed masks straight to the frame shifts edges by up to ~20 px on the padded axis;
    the reference here is ultralytics' `retina_masks=True`, which maps masks to the frame natively.
    """
    import cv2

    from smartfocus.vision.instances import upsample_mask

    settings = AnalysisSettings()
    for sequence in ("car-turn", "bear"):
        frame = cv2.imread(str(davis_dir / sequence / "frames" / "00000.jpg"))
        size = (frame.shape[1], frame.shape[0])
        ours = [
            upsample_mask(m, size) > 0.5 for m in FrameTracker(segmenter, settings, size).update(frame).masks
        ]
        result = segmenter.model.predict(
            frame, imgsz=settings.imgsz, conf=0.25, retina_masks=True, agnostic_nms=True, verbose=False
        )[0]
        reference = max(result.masks.data.cpu().numpy() > 0.5, key=lambda m: m.sum())
        mask = max(ours, key=lambda m: (m & reference).sum() / (m | reference).sum())
        assert (mask & reference).sum() / (mask | reference).sum() > 0.85
        for axis in (0, 1):
            shifts = range(-12, 13)
            ious = [
                (np.roll(mask, d, axis) & reference).sum() / (np.roll(mask, d, axis) | reference).sum()
                for d in shifts
            ]
            assert abs(shifts[int(np.argmax(ious))]) <= 1, f"{sequence}: mask shifted on axis {axis}"


def test_frames_between_model_runs_are_interpolated(segmenter, davis_dir: Path) -> None:
    """With stride 2 the model skips odd frames; their masks are interpolated close to the real ones."""
    from smartfocus.vision.analysis import iter_analysis

    with open_video(davis_dir / "car-turn" / "frames") as reader:
        every = dict(iter_analysis(reader, segmenter, AnalysisSettings(stride=1)))
        strided = dict(iter_analysis(reader, segmenter, AnalysisSettings(stride=2)))
    assert sorted(strided) == list(range(len(reader)))
    for frame in range(1, 40, 2):
        full, interpolated = every[frame], strided[frame]
        assert len(interpolated) >= 1
        car_full = full.masks[np.argmax(full.masks.sum(axis=(1, 2)))]
        car_interpolated = interpolated.masks[np.argmax(interpolated.masks.sum(axis=(1, 2)))]
        iou = (car_full & car_interpolated).sum() / (car_full | car_interpolated).sum()
        assert iou > 0.8, f"frame {frame}: interpolated mask IoU {iou:.2f}"


def test_a_video_is_analysed_from_its_planes_as_from_its_frames(
    segmenter, dog_clip: Path, tmp_path: Path
) -> None:
    """Videos feed the model a grid-size copy made from the decoder's YUV planes; the same frames as
    image files go through BGR. Both must find the same objects in the same places."""
    import cv2

    from smartfocus.media.transcode import transcode

    with open_video(dog_clip) as reader:
        folder = tmp_path / "frames"
        folder.mkdir()
        for index, frame in reader.frames(0, FRAMES):
            cv2.imwrite(str(folder / f"{index:05d}.png"), frame)
    clip = tmp_path / "clip.mp4"
    with open_video(folder) as frames:
        transcode(frames, clip)  # what the analysis of `clip` decodes ...
    with open_video(clip) as video:
        for index, frame in video.frames():
            cv2.imwrite(str(folder / f"{index:05d}.png"), frame)  # ... are then exactly these frames
        assert video.info.yuv420 is not None
        from_planes = analyse_video(video, segmenter)
    with open_video(folder) as frames:
        from_files = analyse_video(frames, segmenter)
    assert from_planes.frame_count == from_files.frame_count == FRAMES
    agree = [
        _same_place(found.instances(index), other.instances(index))
        for index in range(FRAMES)
        for found, other in ((from_planes, from_files), (from_files, from_planes))
    ]
    matched = np.concatenate(agree)
    assert len(matched) >= 2 * FRAMES  # the walker and, mostly, the dog
    # A detection near the NMS or score threshold may change shape with rounding; the rest agree.
    assert matched.mean() >= 0.9, f"{matched.sum()} of {len(matched)} confident instances agree"


def _same_place(found, other) -> np.ndarray:
    """For each confident instance of `found`: whether `other` has it too, in the same place."""
    confident = found.scores >= 0.6
    same = []
    for box, mask in zip(found.boxes[confident], found.masks[confident], strict=True):
        match = int(np.argmin(np.abs(other.boxes - box).sum(axis=1))) if len(other) else None
        if match is None:
            same.append(False)
            continue
        iou = (mask & other.masks[match]).sum() / max((mask | other.masks[match]).sum(), 1)
        same.append(bool(np.abs(other.boxes[match] - box).max() < 6 and iou > 0.9))
    return np.array(same, bool)
