"""The Python API as a pipeline uses it: analyse once, render several plans without inference."""

from pathlib import Path

import av
import pytest

import smartfocus
import smartfocus.vision.model


def test_second_render_reuses_the_cached_analysis(
    davis_dir: Path, model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Analyse once: a re-render with another blur runs no inference at all (the subject's closer
    look is cached with its follow), and without a closer look ("fast") neither does a new focus."""
    frames = davis_dir / "swing" / "frames"
    plan = smartfocus.FocusPlan().focus(0, (481, 283))
    for quality in ("balanced", "fast"):
        with smartfocus.open_video(frames, model=model_path, quality=quality) as video:
            video.render(tmp_path / "first.mp4", plan, blur=0.6)

    def no_inference(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached analysis must not load the model")

    monkeypatch.setattr(smartfocus.vision.model, "load_segmenter", no_inference)
    with smartfocus.open_video(frames, model=model_path) as video:
        video.render(tmp_path / "second.mp4", plan, blur=0.3, matte_dir=tmp_path / "m")
    with av.open(str(tmp_path / "second.mp4")) as container:
        assert container.streams.video[0].frames == 60
    assert len(list((tmp_path / "m").glob("*.png"))) == 60
    with smartfocus.open_video(frames, model=model_path, quality="fast") as video:
        video.render(tmp_path / "third.mp4", plan.focus(30, (481, 283)), blur=0.3)


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


def test_compositing_on_several_threads_changes_nothing(
    davis_dir: Path, model_path: Path, tmp_path: Path
) -> None:
    """Machines with cores to spare composite several frames at once (the stabiliser still runs in
    frame order): the video and the mattes are the same as from one thread."""
    import numpy as np

    from smartfocus.render.compositor import LensSettings
    from smartfocus.render.job import render_video

    # A rack focus from the girl to the swing's frame, so the rack mix is exercised too.
    plan = smartfocus.FocusPlan().focus(0, (481, 283)).focus(30, (650, 120))
    with smartfocus.open_video(davis_dir / "swing" / "frames", model=model_path) as video:
        timeline = video.timeline(plan)
        for workers in (1, 3):
            render_video(
                video.reader,
                tmp_path / f"{workers}.mp4",
                timeline,
                LensSettings(0.7),
                matte_dir=tmp_path / f"mattes{workers}",
                workers=workers,
            )
    with (
        smartfocus.media.open_video(tmp_path / "1.mp4") as one,
        smartfocus.media.open_video(tmp_path / "3.mp4") as three,
    ):
        assert len(one) == len(three) == 60
        for (_, a), (_, b) in zip(one.frames(), three.frames(), strict=True):
            np.testing.assert_array_equal(a, b)
    for png in sorted((tmp_path / "mattes1").glob("*.png")):
        assert png.read_bytes() == (tmp_path / "mattes3" / png.name).read_bytes(), png.name
    assert len(list((tmp_path / "mattes3").glob("*.png"))) == 60


def test_a_cancel_stops_the_compositing_threads_and_leaves_nothing(
    davis_dir: Path, model_path: Path, tmp_path: Path
) -> None:
    import threading

    from smartfocus.render.compositor import LensSettings
    from smartfocus.render.job import render_video

    class Cancelled(Exception):
        pass

    def cancel_at_frame_20(done: int, total: int) -> None:
        if done == 20:
            raise Cancelled

    with smartfocus.open_video(davis_dir / "swing" / "frames", model=model_path) as video:
        timeline = video.timeline(smartfocus.FocusPlan().focus(0, (481, 283)))
        with pytest.raises(Cancelled):
            render_video(
                video.reader,
                tmp_path / "out.mp4",
                timeline,
                LensSettings(0.7),
                matte_dir=tmp_path / "mattes",
                progress=cancel_at_frame_20,
                workers=3,
            )
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("smartfocus-render")]
