"""The Python API as a pipeline uses it: analyse once, render several plans without inference."""

from pathlib import Path

import av
import pytest

import smartfocus
import smartfocus.api


def test_second_render_reuses_the_cached_analysis(
    davis_dir: Path, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = davis_dir / "swing" / "frames"
    plan = smartfocus.FocusPlan().focus(0, (481, 283))
    with smartfocus.open_video(frames, model=model_path) as video:
        video.render(tmp_path / "first.mp4", plan, blur=0.6)

    def no_inference(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached analysis must not load the model")

    monkeypatch.setattr(smartfocus.api, "load_segmenter", no_inference)
    with smartfocus.open_video(frames, model=model_path) as video:
        video.render(tmp_path / "second.mp4", plan.focus(30, (481, 283)), blur=0.3, matte_dir=tmp_path / "m")
    with av.open(str(tmp_path / "second.mp4")) as container:
        assert container.streams.video[0].frames == 60
    assert len(list((tmp_path / "m").glob("*.png"))) == 60


def test_plan_round_trips_through_json_and_selects_the_same_subject(
    davis_dir: Path, model_path: Path
) -> None:
    with smartfocus.open_video(davis_dir / "swing" / "frames", model=model_path) as video:
        plan = smartfocus.FocusPlan().focus(0, (481, 283))
        again = smartfocus.FocusPlan.from_json(plan.to_json())
        assert video.timeline(again).subjects[0].track_ids == video.timeline(plan).subjects[0].track_ids


def test_odd_and_even_frame_sizes_both_render(davis_dir: Path, model_path: Path, tmp_path: Path) -> None:
    """Even sizes render on YUV planes, odd ones (which 4:2:0 cannot hold) on BGR frames, padded by
    the writer: both keep the subject sharp and blur the rest."""
    import cv2
    import numpy as np

    sources = sorted((davis_dir / "swing" / "frames").glob("*.jpg"))[:12]
    for kind, (height, width) in {"even": (478, 852), "odd": (477, 851)}.items():
        folder = tmp_path / kind
        folder.mkdir()
        for source in sources:
            cv2.imwrite(str(folder / f"{source.stem}.png"), cv2.imread(str(source))[:height, :width])
        with smartfocus.open_video(folder, model=model_path) as video:
            assert (video.info.yuv420 is None) == (kind == "odd")
            plan = smartfocus.FocusPlan().focus(0, (481, 283))
            subject = cv2.resize(
                video.timeline(plan).state(8).subject_matte.astype(np.float32), (width, height)
            )
            output = video.render(tmp_path / f"{kind}.mp4", plan, blur=0.8)
            sharp = video.reader.read(8).astype(int)
        with smartfocus.media.open_video(output) as result:
            assert (result.info.width, result.info.height, len(result)) == (852, 478, 12)
            change = np.abs(result.read(8)[:height, :width].astype(int) - sharp).mean(axis=2)
        inside = cv2.erode((subject > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        outside = cv2.dilate((subject > 0).astype(np.uint8), np.ones((41, 41), np.uint8)) == 0
        assert inside.sum() > 2000 and outside.sum() > 200_000
        # The subject as shot (~4.5 levels of encoder noise on this detailed footage), the rest blurred
        # (~11: much of the background is flat path and lawn).
        assert change[inside].mean() < 6, kind
        assert change[outside].mean() > 2 * change[inside].mean(), kind
