"""Short real clips for the live tests, cut from the shared dog sample into a temp folder."""

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def dog_640(dog_clip: Path, cut_clip: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames of the dog sample at 640x360, 29.97 fps."""
    return cut_clip(dog_clip, tmp_path_factory.mktemp("live") / "dog_640.mp4", 60, (640, 360))


@pytest.fixture(scope="session")
def woman_640() -> tuple[float, float]:
    """The woman walking the dog on frame 0, in 640x360 pixels ((360, 380) in the source)."""
    return (180.0, 190.0)


@pytest.fixture(scope="session")
def x_display():
    """A private X server (Xvfb) for OpenCV windows; DISPLAY points at it for the session."""
    import os
    import shutil
    import subprocess

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (.ci/run installs it)")
    read_fd, write_fd = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()  # Xvfb picks a free display and writes its number when ready
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield os.environ["DISPLAY"]
    if previous is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = previous
    server.terminate()
    server.wait(10)
