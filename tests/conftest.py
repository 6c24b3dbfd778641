"""Shared test data: real footage from the read-only `../shared` folder next to the repository."""

from pathlib import Path

import cv2  # noqa: F401  before any test module imports av: see smartfocus/__init__.py
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
