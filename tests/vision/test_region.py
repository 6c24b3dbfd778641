"""Any object: a click on something the detector does not know, segmented and followed on real footage.

DAVIS surf: a windsurfer whose sail, board and rider form one ground-truth mask. These tests call the
region path directly (no detector), so they hold whatever the detector makes of the sail.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus.errors import SelectionError
from smartfocus.media import open_video
from smartfocus.session import FocusSession
from smartfocus.vision.propagate import track_region
from smartfocus.vision.region import GrabCutSegmenter, RegionTrack, click_segmenter

GRID = (180, 320)  # the analysis grid of an 854x480 clip at the default imgsz 320
SAIL = (297.0, 219.0)  # source pixel on the sail, frame 0 (the ground truth's deepest point)
FRAMES = 20


def _frame_folder(folder: Path, parts: list[tuple[Path, range]]) -> Path:
    """A frame folder of links to DAVIS frames (nothing copied), numbered from 0."""
    folder.mkdir()
    index = 0
    for source, frames in parts:
        for frame in frames:
            (folder / f"{index:05d}.jpg").symlink_to(source / "frames" / f"{frame:05d}.jpg")
            index += 1
    return folder


@pytest.fixture(scope="module")
def surf(davis_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _frame_folder(tmp_path_factory.mktemp("surf") / "frames", [(davis_dir / "surf", range(FRAMES))])


def _iou_with_truth(track: RegionTrack, davis_dir: Path, frame: int) -> float:
    truth = cv2.imread(str(davis_dir / "surf" / "masks" / f"{frame:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
    mask = track.mask(frame)
    assert mask is not None, f"region lost at frame {frame}"
    big = cv2.resize(mask.astype(np.float32), truth.shape[::-1], interpolation=cv2.INTER_LINEAR) > 0.5
    return float((big & truth).sum() / (big | truth).sum())


def test_a_click_is_followed_through_the_following_frames(surf: Path, davis_dir: Path) -> None:
    reported: list[tuple[int, int]] = []
    with open_video(surf) as reader:
        track = track_region(
            reader, 0, [SAIL], [], GRID, click_segmenter(), progress=lambda d, t: reported.append((d, t))
        )
    assert track.visible.all() and track.grid == GRID
    scores = {frame: _iou_with_truth(track, davis_dir, frame) for frame in (0, 5, 10, 19)}
    assert min(scores.values()) > 0.7, scores
    assert reported[0] == (0, 2 * FRAMES) and reported[-1] == (2 * FRAMES, 2 * FRAMES)  # read, then followed
    assert sum(done < FRAMES for done, _ in reported) == FRAMES  # one report per frame read
    assert [done for done, _ in reported] == sorted(done for done, _ in reported)


def test_a_click_mid_clip_is_followed_backwards_too(surf: Path, davis_dir: Path) -> None:
    with open_video(surf) as reader:
        track = track_region(reader, 10, [(382.0, 254.0)], [], GRID, click_segmenter())
    assert track.visible.all()
    assert _iou_with_truth(track, davis_dir, 0) > 0.6


def test_cancel_from_the_progress_callback(surf: Path) -> None:
    def cancel(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with open_video(surf) as reader, pytest.raises(KeyboardInterrupt):
        track_region(reader, 0, [SAIL], [], GRID, click_segmenter(), progress=cancel)


def test_a_negative_click_cuts_the_region(davis_dir: Path) -> None:
    image = cv2.imread(str(davis_dir / "surf" / "frames" / "00000.jpg"))
    small = cv2.resize(image, GRID[::-1], interpolation=cv2.INTER_AREA)
    scale = GRID[1] / image.shape[1]
    click, rider = (SAIL[0] * scale, SAIL[1] * scale), (330 * scale, 300 * scale)  # rider behind the sail
    whole = GrabCutSegmenter().segment(small, [click], [])
    cut = GrabCutSegmenter().segment(small, [click], [rider])
    assert whole[round(rider[1]), round(rider[0])] and not cut[round(rider[1]), round(rider[0])]
    assert cut.sum() < 0.95 * whole.sum()
    assert (cut & ~whole).sum() < 0.01 * whole.sum()  # removing never grows the region elsewhere


def test_the_region_stops_when_the_object_is_cut_out(davis_dir: Path, tmp_path: Path) -> None:
    spliced = _frame_folder(
        tmp_path / "cut", [(davis_dir / "surf", range(10)), (davis_dir / "car-turn", range(10, 20))]
    )
    with open_video(spliced) as reader:
        track = track_region(reader, 0, [SAIL], [], GRID, click_segmenter())
    assert track.visible[:10].all()
    assert not track.visible[10:].any()
    assert all(track.mask(frame) is None for frame in range(10, 20))


def test_regions_are_cached_on_disk(surf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with FocusSession(open_video(surf), region_cache_dir=tmp_path / "regions") as video:
        first = video.region(0, (SAIL,), grid=GRID)
    assert len(list((tmp_path / "regions").glob("*.npz"))) == 1

    def recompute(*args: object, **kwargs: object) -> RegionTrack:
        raise AssertionError("a cached region was computed again")

    monkeypatch.setattr("smartfocus.session.track_region", recompute)
    with FocusSession(open_video(surf), region_cache_dir=tmp_path / "regions") as video:
        second = video.region(0, (SAIL,), grid=GRID)
        assert np.array_equal(second.packed_masks, first.packed_masks)
        assert np.array_equal(second.visible, first.visible)
        with pytest.raises(AssertionError, match="computed again"):
            video.region(0, (SAIL,), ((330.0, 300.0),), grid=GRID)  # other clicks: another region


def test_an_unknown_region_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTFOCUS_REGION_MODEL", "sam9")
    with pytest.raises(SelectionError, match=r"unknown region model 'sam9'.*grabcut"):
        click_segmenter()
