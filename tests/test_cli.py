"""The `smartfocus` command as a user runs it: a real process, real footage, the real model."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest


def run_cli(
    *args: object, model: Path | None = None, timeout: float = 600, home: Path | None = None
) -> subprocess.CompletedProcess:
    """`smartfocus ARGS` in a fresh process; `home`: its own SMARTFOCUS_HOME (a cold cache)."""
    command = [sys.executable, "-m", "smartfocus", *map(str, args)]
    if model is not None:
        command += ["--model", str(model)]
    env = None if home is None else {**os.environ, "SMARTFOCUS_HOME": str(home)}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _deepest_point(mask: np.ndarray) -> tuple[int, int]:
    distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(np.argmax(distance), distance.shape)
    return int(x), int(y)


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_version_and_help() -> None:
    assert run_cli("--version").stdout.startswith("smartfocus ")
    help_text = run_cli("render", "--help").stdout
    assert "--focus F:X,Y" in help_text and "--matte DIR" in help_text
    assert "--output-quality {high,standard,small}" in help_text and "--output-height N" in help_text


@pytest.mark.slow
def test_render_frame_folder_with_matte_export(davis_dir: Path, model_path: Path, tmp_path: Path) -> None:
    frames = davis_dir / "swing" / "frames"
    truth = cv2.imread(str(davis_dir / "swing" / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    x, y = _deepest_point(truth)
    out, mattes = tmp_path / "swing.mp4", tmp_path / "mattes"
    result = run_cli(
        "render", frames, "-o", out, "--focus", f"0:{x},{y}", "--matte", mattes, model=model_path
    )
    assert result.returncode == 0, result.stderr
    files = sorted(mattes.glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(60)]
    first = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    assert first.dtype == np.uint8 and first.shape == truth.shape and first.max() == 255
    assert ((first > 127) & truth).sum() / ((first > 127) | truth).sum() > 0.6
    assert _frame_count(out) == 60
    assert not list(tmp_path.glob(".*")), "temporary files were left behind"


@pytest.mark.slow
def test_a_saved_plan_renders_again_without_the_clicks_or_the_model(
    davis_dir: Path, model_path: Path, tmp_path: Path
) -> None:
    frames = davis_dir / "swing" / "frames"
    home, plan = tmp_path / "home", tmp_path / "plan.json"
    first = run_cli(
        "render", frames, "-o", tmp_path / "a.mp4", "--focus", "0:481,283", "--exclude", "0:830,20",
        "--focus", "30:300,200", "--stride", "2", "--save-plan", plan, model=model_path, home=home,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("smartfocus: loading model...") == 1  # said once, before the bar
    saved = json.loads(plan.read_text())
    assert saved == {
        "keyframes": [
            {"frame": 0, "action": "focus", "points": [[481.0, 283.0]], "exclude": [[830.0, 20.0]]},
            {"frame": 30, "action": "focus", "points": [[300.0, 200.0]]},
        ]
    }
    again = run_cli(
        "render", frames, "-o", tmp_path / "b.mp4", "--plan", plan, "--stride", "2", "--matte",
        tmp_path / "m", model=model_path, home=home,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "loading model" not in again.stderr  # the analysis came from the cache
    first_mattes = run_cli(
        "render", frames, "-o", tmp_path / "c.mp4", "--focus", "0:481,283", "--exclude", "0:830,20",
        "--focus", "30:300,200", "--stride", "2", "--matte", tmp_path / "n", model=model_path, home=home,
    )  # fmt: skip
    assert first_mattes.returncode == 0, first_mattes.stderr
    for name in ("00000.png", "00045.png"):
        assert np.array_equal(cv2.imread(str(tmp_path / "m" / name)), cv2.imread(str(tmp_path / "n" / name)))

    plan.write_text("{not json")
    broken = run_cli("render", frames, "-o", tmp_path / "d.mp4", "--plan", plan, model=model_path, home=home)
    assert broken.returncode == 2 and broken.stderr.startswith("smartfocus: error: not a focus plan")
    assert broken.stderr.count("\n") == 1 and not (tmp_path / "d.mp4").exists()


@pytest.mark.slow
def test_render_keeps_audio_and_frame_count(dog_clip: Path, model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "dog.mp4"
    result = run_cli("render", dog_clip, "-o", out, "--focus", "0:360,380", "--blur", "0.8", model=model_path)
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert video.codec_context.name == "h264" and video.codec_context.pix_fmt == "yuv420p"
        assert len(container.streams.audio) == 1
        audio_seconds = float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
    assert _frame_count(out) == 289
    assert audio_seconds == pytest.approx(9.66, abs=0.1)


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda d: d / "missing.mp4", "missing.mp4"),
        (lambda d: _write(d / "notes.mp4", b"just some text, not a video\n" * 50), "notes.mp4"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "empty"),
    ],
)
def test_bad_input_exits_2_with_one_line(make_input, message: str, tmp_path: Path, model_path: Path) -> None:
    source = make_input(tmp_path)
    out = tmp_path / "out.mp4"
    result = run_cli("render", source, "-o", out, "--focus", "0:10,10", model=model_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_output_over_the_input_is_refused(juggle_clip: Path, tmp_path: Path) -> None:
    source = tmp_path / "clip.mp4"
    source.write_bytes(juggle_clip.read_bytes())
    result = run_cli("render", source, "-o", tmp_path / "." / "clip.mp4")
    assert result.returncode == 2 and "is the input" in result.stderr
    assert source.read_bytes() == juggle_clip.read_bytes()


def test_output_in_missing_directory_is_refused(dog_clip: Path, tmp_path: Path) -> None:
    result = run_cli("render", dog_clip, "-o", tmp_path / "nope" / "out.mp4")
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not (tmp_path / "nope").exists()


def test_outputs_that_are_not_plain_files_are_refused(dog_clip: Path, tmp_path: Path) -> None:
    """A FIFO, a link or a folder at -o is refused (exit 2), not silently replaced by the rename."""
    fifo, link, folder, target = tmp_path / "pipe", tmp_path / "link.mp4", tmp_path / "dir", tmp_path / "t"
    os.mkfifo(fifo)
    target.write_bytes(b"keep me")
    link.symlink_to(target)
    folder.mkdir()
    for output, says in ((fifo, "not a regular file"), (link, "symbolic link"), (folder, "a folder")):
        result = run_cli("render", dog_clip, "-o", output)
        assert result.returncode == 2 and says in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert fifo.is_fifo() and link.is_symlink() and target.read_bytes() == b"keep me" and folder.is_dir()
    saved = run_cli("render", dog_clip, "-o", tmp_path / "o.mp4", "--save-plan", link)
    assert saved.returncode == 2 and "--save-plan" in saved.stderr and not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_click_on_no_detected_object_focuses_the_region_under_it(
    davis_dir: Path, model_path: Path, tmp_path: Path
) -> None:
    """No flag needed: the rock on surf's shore is no COCO class, so the click falls to the region path."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(12):
        (frames / f"{index:05d}.jpg").symlink_to(davis_dir / "surf" / "frames" / f"{index:05d}.jpg")
    out, mattes = tmp_path / "out.mp4", tmp_path / "mattes"
    rock = (30, 240)
    result = run_cli(
        "render", frames, "-o", out, "--focus", f"0:{rock[0]},{rock[1]}", "--matte", mattes, model=model_path
    )
    assert result.returncode == 0, result.stderr
    assert _frame_count(out) == 12
    first = cv2.imread(str(mattes / "00000.png"), cv2.IMREAD_GRAYSCALE) >= 128
    assert first[rock[1], rock[0]] and 0 < first.mean() < 0.05  # the rock, not the sea or the sail
    sail = cv2.imread(str(davis_dir / "surf" / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert not (first & sail).any()

    unpaired = run_cli("render", frames, "-o", tmp_path / "b.mp4", "--exclude", "3:10,10", model=model_path)
    assert unpaired.returncode == 2 and "nothing is in focus on frame 3 to correct" in unpaired.stderr


def test_missing_weights_fail_fast_with_a_fix(dog_clip: Path, tmp_path: Path) -> None:
    result = run_cli(
        "render", dog_clip, "-o", tmp_path / "o.mp4", "--focus", "0:1,1", "--model", tmp_path / "x.pt"
    )
    assert result.returncode == 2
    assert "x.pt not found" in result.stderr and "--model PATH" in result.stderr
    assert result.stderr.count("\n") == 1 and "analysing" not in result.stderr  # no empty bar first


def test_official_name_offline_fails_fast_instead_of_hanging(dog_clip: Path, tmp_path: Path) -> None:
    result = run_cli(
        "render",
        dog_clip,
        "-o",
        tmp_path / "o.mp4",
        "--focus",
        "0:1,1",
        "--model",
        "yolov8s-seg.pt",
        timeout=60,
    )
    if result.returncode == 0:
        pytest.skip("this machine can download official weights")
    assert result.returncode == 2
    assert "yolov8s-seg.pt" in result.stderr and "unreachable" in result.stderr


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_keyframe_past_the_end_and_matte_without_focus_are_refused(
    davis_dir: Path, model_path: Path, tmp_path: Path
) -> None:
    frames = davis_dir / "swing" / "frames"
    late = run_cli("render", frames, "-o", tmp_path / "a.mp4", "--focus", "500:400,200", model=model_path)
    assert late.returncode == 2 and "past the video's last frame 59" in late.stderr
    no_subject = run_cli("render", frames, "-o", tmp_path / "b.mp4", "--matte", tmp_path / "m")
    assert no_subject.returncode == 2 and "--matte needs a subject" in no_subject.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_a_subject_not_found_is_reported_with_its_frames(
    davis_dir: Path, model_path: Path, tmp_path: Path
) -> None:
    """The swing clip cut to grey after frame 29: the girl cannot be found from there, and the CLI
    says so (frames and seconds) instead of silently rendering those frames without blur."""
    frames = tmp_path / "frames"
    frames.mkdir()
    sources = sorted((davis_dir / "swing" / "frames").glob("*.jpg"))[:30]
    for index, source in enumerate(sources):
        (frames / f"{index:05d}.jpg").write_bytes(source.read_bytes())
    grey = np.full_like(cv2.imread(str(sources[0])), 128)
    for index in range(30, 45):
        cv2.imwrite(str(frames / f"{index:05d}.jpg"), grey)
    truth = cv2.imread(str(davis_dir / "swing" / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    x, y = _deepest_point(truth)
    out = tmp_path / "out.mp4"
    result = run_cli("render", frames, "-o", out, "--focus", f"0:{x},{y}", "--quiet", model=model_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "smartfocus: warning: subject 1 not found on frames 30-44 (1.2-1.8 s); the blur eases out there"
    ]
    assert _frame_count(out) == 45


def test_an_unknown_quality_exits_2(dog_clip: Path, tmp_path: Path) -> None:
    result = run_cli("render", dog_clip, "-o", tmp_path / "out.mp4", "--quality", "ultra")
    assert result.returncode == 2
    assert "invalid choice: 'ultra'" in result.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_output_quality_and_height_flags(
    dog_clip: Path, cut_clip: Callable[..., Path], tmp_path: Path
) -> None:
    """A plain transcode at a smaller height and quality; bad values exit 2 before any work."""
    clip = cut_clip(dog_clip, tmp_path / "dog20.mp4", 20, (640, 360))
    out = tmp_path / "small.mp4"
    result = run_cli("render", clip, "-o", out, "--output-quality", "small", "--output-height", "240")
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (426, 240)
    assert _frame_count(out) == 20
    above = run_cli("render", clip, "-o", tmp_path / "a.mp4", "--output-height", "480")
    assert above.returncode == 2 and above.stderr.count("\n") == 1
    assert "output height 480 is above the video's 360 pixels" in above.stderr
    for flag, value, says in (
        ("--output-height", "481", "--output-height: must be an even number of pixels from 64 to 4320"),
        ("--output-height", "tall", "--output-height: must be an even number of pixels from 64 to 4320"),
        ("--output-quality", "best", "--output-quality: invalid choice: 'best'"),
    ):
        bad = run_cli("render", clip, "-o", tmp_path / "b.mp4", flag, value)
        assert bad.returncode == 2 and says in bad.stderr.splitlines()[-1], bad.stderr
        assert "Traceback" not in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dog20.mp4", "small.mp4"]
