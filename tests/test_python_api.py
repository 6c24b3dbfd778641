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
