"""Real servers on loopback ports, and a short real clip to drive them with."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
import uvicorn
from fastapi import FastAPI

from smartfocus.server import Settings, create_app

CLIP_FRAMES = 45
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: tests never download a browser
UPLOAD_LIMIT = 2 << 20  # small, so the oversized-upload test stays cheap


@pytest.fixture(scope="session")
def short_clip(dog_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dog sample's first 45 frames (the woman at ~(360, 380) on frame 0) with their audio."""
    out = tmp_path_factory.mktemp("clip") / "dog45.mp4"
    with av.open(str(dog_clip)) as source, av.open(str(out), "w") as target:
        video_in, audio_in = source.streams.video[0], source.streams.audio[0]
        video_out = target.add_stream("libx264", rate=video_in.average_rate)
        video_out.width, video_out.height, video_out.pix_fmt = video_in.width, video_in.height, "yuv420p"
        video_out.options = {"crf": "20", "preset": "veryfast"}
        audio_out = target.add_stream_from_template(audio_in)
        end = float(CLIP_FRAMES / video_in.average_rate)
        frames = 0
        for packet in source.demux(video_in, audio_in):
            if packet.stream is audio_in:
                if packet.pts is not None and packet.pts * audio_in.time_base < end:
                    packet.stream = audio_out
                    target.mux(packet)
                continue
            for frame in packet.decode():
                if frames < CLIP_FRAMES:
                    frame.pts, frame.time_base = frames, Fraction(1) / video_in.average_rate
                    target.mux(video_out.encode(frame))
                    frames += 1
            if frames >= CLIP_FRAMES and packet.pts is not None and packet.pts * video_in.time_base > end + 1:
                break
        target.mux(video_out.encode(None))
    return out


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on right now."""
    return free_port()


@pytest.fixture
def server_settings(tmp_path: Path, model_path: Path) -> Callable[..., Settings]:
    """Settings for a server of the test's own (its data under `tmp_path`, the model on the CPU),
    with the limits a test passes in."""

    def settings(**limits: Any) -> Settings:
        return Settings(data_dir=tmp_path / "server", model=str(model_path), device="cpu", **limits)

    return settings


@dataclass
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[LiveServer]:
    """The real app under uvicorn on 127.0.0.1, in a thread of the test process, for one test module."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("server"),
        model=str(model_path),
        device="cpu",
        max_upload_bytes=UPLOAD_LIMIT,
        select_wait_s=0.01,  # a background click answers with its job unless it was resolved before
    )
    with serving(create_app(settings)) as url:
        yield LiveServer(url, settings)


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port, in a thread of the test process: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def serve_app() -> Callable[[FastAPI], contextlib.AbstractContextManager[str]]:
    """`serving`, for test modules that serve an app of their own (conftest is not importable)."""
    return serving


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) through Playwright, for the tests of the pages."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()
