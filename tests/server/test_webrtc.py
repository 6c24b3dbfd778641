"""The live page in a real browser: Debian's Chromium sends a fake camera (a y4m cut from the dog
sample) over WebRTC to a real server on a loopback port, clicks the woman, and gets focused frames back."""

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from aiortc import RTCPeerConnection, VideoStreamTrack

from smartfocus.live.engine import LiveSettings
from smartfocus.server.webrtc import LiveService, create_live_app
from smartfocus.vision.model import SharedModel

CHROMIUM = Path("/usr/bin/chromium")
WOMAN = (180.0, 190.0)  # in the 640x360 camera picture
# (x0, y0, x1, y1) in the 640x360 picture; WebRTC may scale the stream down, so they are scaled to it
WOMAN_PATCH = (140, 140, 195, 230)  # her torso and legs, always inside her
BACKGROUND_PATCH = (430, 10, 630, 110)  # the building and trees, top right


@pytest.fixture(scope="module")
def fake_camera(
    dog_clip: Path, cut_clip: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """60 frames of the dog sample at 640x360 as a y4m, the format Chromium's fake camera plays."""
    path = tmp_path_factory.mktemp("camera") / "dog.y4m"
    return cut_clip(
        dog_clip, path, 60, (640, 360), codec="rawvideo", container_format="yuv4mpegpipe", rate=30, options={}
    )


@pytest.fixture(scope="module")
def live_server(model_path: Path, serve_app) -> Iterator[str]:
    """The live router in a real uvicorn server on a free loopback port."""
    service = LiveService(SharedModel(str(model_path), "cpu"), settings=LiveSettings(imgsz=256))
    with serve_app(create_live_app(service)) as url:
        yield url


def sharpness(image: np.ndarray, patch: tuple[int, int, int, int]) -> float:
    scale = image.shape[1] / 640
    x0, y0, x1, y1 = (round(v * scale) for v in patch)
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F)).mean())


GRAB = """() => {
  const video = document.getElementById('view');
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  return canvas.toDataURL('image/png');
}"""


def grab(page) -> np.ndarray:
    """The frame the <video> shows now, at its own resolution, as BGR."""
    data = base64.b64decode(page.evaluate(GRAB).split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def subject_contrast(page, frames: int = 5) -> float:
    """Median over a few frames of woman sharpness / background sharpness (same frame, same codec)."""
    ratios = []
    for _ in range(frames):
        image = grab(page)
        assert image.shape[0] * 16 == image.shape[1] * 9  # the camera's picture, maybe scaled down
        ratios.append(sharpness(image, WOMAN_PATCH) / sharpness(image, BACKGROUND_PATCH))
        page.wait_for_timeout(150)
    return float(np.median(ratios))


def settle(page, done, seconds: float = 45) -> float:
    """Contrast once `done(contrast)` holds, or the last one after `seconds`: on a loaded machine the
    eased-in blur may take a while to come back through the encoder."""
    deadline = time.monotonic() + seconds
    while True:
        contrast = subject_contrast(page, 3)
        if done(contrast) or time.monotonic() > deadline:
            return contrast


def test_browser_webcam_click_to_focus(live_server: str, fake_camera: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={fake_camera}",
            ],
        )
        # a HiDPI screen and a <video> drawn larger than the stream: clicks must still map to pixels
        context = browser.new_context(viewport={"width": 1100, "height": 900}, device_scale_factor=2)
        page = context.new_page()
        page.goto(f"{live_server}/live")
        page.click("#start")
        page.wait_for_function(
            "() => { const v = document.getElementById('view'); return v.videoWidth > 0 && v.currentTime > 1; }",
            timeout=60_000,
        )
        before = subject_contrast(page)

        box = page.locator("#view").bounding_box()
        assert box is not None and box["width"] > 640  # CSS-scaled
        # the element letterboxes the picture (object-fit: contain); WOMAN is in 640x360 pixels
        scale = min(box["width"] / 640, box["height"] / 360)
        left = box["x"] + (box["width"] - 640 * scale) / 2
        top = box["y"] + (box["height"] - 360 * scale) / 2
        page.mouse.click(left + WOMAN[0] * scale, top + WOMAN[1] * scale)
        try:
            page.wait_for_function(
                "() => document.getElementById('status').textContent.startsWith('Focus on person')",
                timeout=20_000,
            )
        except PlaywrightTimeout:
            pytest.fail(f"the click did not focus the woman; the page says {page.text_content('#status')!r}")
        after = settle(page, lambda contrast: contrast > 2 * before)

        # the page's own slider turns the blur off again
        page.locator("#blur").fill("0")
        off = settle(page, lambda contrast: contrast < 0.6 * after)

        session = page.evaluate("() => session")
        # the stream goes on while the page is open: on a loaded machine frames are dropped, so
        # wait (bounded) for enough of them to have been processed rather than assume a rate
        deadline = time.monotonic() + 30
        while True:
            stats = httpx.get(f"{live_server}/live/{session}/stats").json()
            if stats["processed"] > 30 or time.monotonic() > deadline:
                break
            page.wait_for_timeout(500)
        browser.close()

    assert after > 2 * before, (before, after)  # the background went soft, the woman did not
    assert off < 0.6 * after, (before, after, off)
    assert stats["processed"] > 30 and stats["width"] * 9 == stats["height"] * 16


def test_control_endpoints_refuse_bad_input(live_server: str) -> None:
    unknown = httpx.post(f"{live_server}/live/nope/select", json={"x": 1, "y": 1})
    assert unknown.status_code == 404 and "no live session" in unknown.json()["error"]["message"]
    bad_offer = httpx.post(f"{live_server}/live/offer", json={"sdp": "v=0", "type": "answer"})
    assert bad_offer.status_code == 422
    page = httpx.get(f"{live_server}/live")
    assert page.status_code == 200 and "live.js" in page.text
    # the stylesheet it shares with the editor is served by the live-only app too
    assert httpx.get(f"{live_server}/web/style.css").status_code == 200


def test_an_offer_that_never_connects_is_hung_up_and_sessions_are_capped(model_path: Path, serve_app) -> None:
    """A real aiortc peer sends its offer and walks away without applying the answer: the server hangs
    it up after the connect timeout; past `max_sessions` offers get a 503."""

    async def make_offer() -> dict:
        peer = RTCPeerConnection()
        peer.addTrack(VideoStreamTrack())
        await peer.setLocalDescription(await peer.createOffer())
        offer = {"sdp": peer.localDescription.sdp, "type": peer.localDescription.type}
        await peer.close()
        return offer

    offer = asyncio.run(make_offer())
    service = LiveService(SharedModel(str(model_path), "cpu"), connect_timeout_s=1.0, max_sessions=1)
    with serve_app(create_live_app(service)) as url, httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post("/live/offer", json=offer)
        assert answer.status_code == 200, answer.text
        session = answer.json()["session"]
        refused = client.post("/live/offer", json=offer)
        assert refused.status_code == 503 and "live sessions" in refused.json()["error"]["message"]
        deadline = time.monotonic() + 20
        while client.get(f"/live/{session}/stats").status_code == 200:
            assert time.monotonic() < deadline, "the abandoned session was never hung up"
            time.sleep(0.2)
        assert client.get(f"/live/{session}/stats").status_code == 404 and not service.sessions
        assert client.post("/live/offer", json=offer).status_code == 200  # room again
