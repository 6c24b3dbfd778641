"""Shared test data: real footage from the read-only `../shared` folder next to the repository."""

from collections.abc import Callable
from pathlib import Path

import cv2  # before any test module imports av: see smartfocus/__init__.py
import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder (samples, DAVIS frames, models); tests never copy it into the repo."""
    path = (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()
    if not path.is_dir():
        pytest.skip(f"shared test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def dog_clip(shared_dir: Path) -> Path:
    """1280x720, 30000/1001 fps, 289 frames, AAC stereo audio, a timecode data stream, B-frames."""
    return shared_dir / "samples" / "sam2_01_dog.mp4"


def _cut_clip(
    source: Path,
    target: Path,
    frames: int,
    size: tuple[int, int],
    *,
    codec: str = "libx264",
    container_format: str | None = None,
    rate: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """The first `frames` frames of `source` at `size` (area-averaged), as `codec` in `target` at
    `rate` frames/s (default: the source's); x264 is ultrafast at crf 18 unless `options` say."""
    import av  # here, so that cv2 above is always imported first

    with av.open(str(source)) as src, av.open(str(target), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate or src.streams.video[0].average_rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"} if options is None else options
        for index, frame in enumerate(src.decode(video=0)):
            if index == frames:
                break
            image = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_AREA)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target


@pytest.fixture(scope="session")
def cut_clip() -> Callable[..., Path]:
    """`cut_clip(source, target, frames, (width, height), ...)`: a short, smaller real clip (see
    `_cut_clip`), for tests that need one of their own."""
    return _cut_clip


@pytest.fixture(scope="session")
def blocks_clip(shared_dir: Path) -> Path:
    """1280x720, 29.97 fps, 292 frames: hands moving look-alike letter blocks (no COCO class)."""
    return shared_dir / "samples" / "sam2_03_blocks.mp4"


@pytest.fixture(scope="session")
def juggle_clip(shared_dir: Path) -> Path:
    """1280x720, 24 fps, 247 frames, no audio, a single keyframe."""
    return shared_dir / "samples" / "sam2_05_default_juggle.mp4"


@pytest.fixture(scope="session")
def davis_dir(shared_dir: Path) -> Path:
    """DAVIS sequences: `<davis_dir>/<sequence>/frames/00000.jpg...` (854x480) and `masks/`."""
    return shared_dir / "datasets" / "vos-dev"


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """smartfocus' cache and ultralytics' settings go to a temp folder, never the user's home."""
    import os

    home = tmp_path_factory.mktemp("smartfocus_home")
    os.environ["SMARTFOCUS_HOME"] = str(home)
    return home


@pytest.fixture(scope="session")
def model_path(shared_dir: Path) -> Path:
    """The offline YOLOv8n-seg weights (see ../shared/models/MODELS.md)."""
    return shared_dir / "models" / "yolov8n-seg-int8dq.pt"


@pytest.fixture(scope="session")
def segmenter(model_path: Path, isolated_home: Path):
    """The real model, loaded once per test session: on the CPU (CI has no GPU) unless
    SMARTFOCUS_DEVICE names another device, so the same tests check the CUDA path on a GPU machine."""
    import os

    from smartfocus.vision.model import load_segmenter

    return load_segmenter(model_path, os.environ.get("SMARTFOCUS_DEVICE", "cpu"))


# Whole areas a machine without these tools cannot test, found by their tests' skip reasons.
_AREAS = {
    "Xvfb": ("the desktop and camera windows", "xvfb xauth"),
    "chromium": ("the web page and the WebRTC page", "chromium"),
}


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """At the end of the run: which areas were skipped for a missing tool, and what installs them."""
    reasons = [str(report.longrepr) for report in terminalreporter.stats.get("skipped", [])]
    missing = [(area, package) for tool, (area, package) in _AREAS.items() if any(tool in r for r in reasons)]
    if missing:
        areas = " and ".join(area for area, _ in missing)
        packages = " ".join(package for _, package in missing)
        terminalreporter.write_line(
            f"NOT TESTED on this machine: {areas}; install with: apt-get install -y {packages} "
            "(as root; .ci/run does it)",
            yellow=True,
        )
