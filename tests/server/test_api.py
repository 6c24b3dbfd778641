"""The HTTP/WebSocket API against a real uvicorn server on a loopback port, with the real model."""

from __future__ import annotations

import io
import json
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from smartfocus.cli import build_parser

WOMAN = (360.0, 380.0)  # on frame 0 of the dog sample
DOG_30 = (620.0, 500.0)  # on frame 30
CLIP_FRAMES = 45  # conftest.short_clip


def upload(client: httpx.Client, clip: Path) -> dict:
    with clip.open("rb") as file:
        response = client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")})
    assert response.status_code == 200, response.text
    return response.json()


def follow(server: Any, client: httpx.Client, job_id: str, timeout: float = 120) -> list[dict]:
    """Every update the job's WebSocket sends, until it finishes."""
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    url = server.url.replace("http", "ws", 1) + f"/ws/jobs/{job_id}"
    updates = []
    with connect(url, additional_headers={"Cookie": cookie}, open_timeout=10) as socket:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                updates.append(json.loads(socket.recv(timeout=deadline - time.monotonic())))
            except ConnectionClosed:  # the server closes the socket once the job is finished
                break
    assert updates and updates[-1]["state"] in ("done", "failed", "cancelled"), updates[-1:]
    return updates


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="module")
def client(live_server: Any) -> httpx.Client:
    with httpx.Client(base_url=live_server.url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def analysed(live_server: Any, client: httpx.Client, short_clip: Path) -> dict:
    """An uploaded clip whose analysis finished (followed over the WebSocket)."""
    answer = upload(client, short_clip)
    updates = follow(live_server, client, answer["analysis"]["id"])
    assert updates[-1]["state"] == "done", updates[-1]
    assert updates[-1]["done"] == updates[-1]["total"] == CLIP_FRAMES
    return answer


def test_health_and_openapi(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/upload", "/frame", "/select", "/reset", "/render", "/download", "/plan", "/live/offer"):
        assert route in paths
    live_page = client.get("/live")  # the webcam page is served by the same app
    assert live_page.status_code == 200 and "text/html" in live_page.headers["content-type"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text  # works offline
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    # CORS stays off unless configured: another origin's page gets no permission to read answers
    preflight = client.options(
        "/health", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"


def test_full_flow_upload_select_preview_render_download(
    live_server: Any, client: httpx.Client, analysed: dict, tmp_path: Path
) -> None:
    video_id = analysed["video_id"]
    info = analysed["info"]
    assert (info["width"], info["height"], info["frame_count"], info["has_audio"]) == (
        1280,
        720,
        CLIP_FRAMES,
        True,
    )

    answer = client.post("/select", json={"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]})
    assert answer.status_code == 200, answer.text
    subject = answer.json()["subject"]
    assert subject["label"] == "person" and subject["track_id"] is not None
    mask = cv2.imdecode(np.frombuffer(_data(subject["mask"]), np.uint8), cv2.IMREAD_UNCHANGED)[:, :, 3]
    gy, gx = int(WOMAN[1] * mask.shape[0] / 720), int(WOMAN[0] * mask.shape[1] / 1280)
    assert mask[gy, gx] == 255 and 0.005 < (mask > 127).mean() < 0.3  # her, not the whole frame
    assert answer.json()["plan"]["keyframes"] == [
        {"frame": 0, "action": "focus", "points": [list(WOMAN)], "exclude": [], "transition": None}
    ]
    # what following her cached lies under the server's data folder, like everything it writes
    assert list(live_server.settings.regions_dir.glob("*.npz"))
    assert list(live_server.settings.analyses_dir.glob("*.npz"))

    plain = decode(client.get("/frame", params={"video_id": video_id, "index": 0}).content)
    focused = decode(client.get("/frame", params={"video_id": video_id, "index": 0, "focused": 1}).content)
    assert plain.shape == focused.shape == (720, 1280, 3)
    changed = np.abs(plain.astype(int) - focused.astype(int)).mean(axis=2) > 12
    her = cv2.erode(cv2.resize(mask, (1280, 720)), np.ones((15, 15), np.uint8)) > 127
    assert changed[~her].mean() > 0.05  # the background is blurred...
    assert changed[her].mean() < 0.02  # ...she is not
    # the playback preview: the same look at 640 px (the lens is a share of the frame)
    params = {"video_id": video_id, "index": 0, "focused": 1, "width": 640}
    small = decode(client.get("/frame", params=params).content)
    assert small.shape == (360, 640, 3)
    shrunk = cv2.resize(focused, (640, 360), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - shrunk.astype(int)).mean() < 4
    assert client.get("/frame", params={**params, "width": 10}).status_code == 422

    render = client.post("/render", json={"video_id": video_id})
    assert render.status_code == 202, render.text
    updates = follow(live_server, client, render.json()["id"])
    assert updates[-1]["state"] == "done", updates[-1]
    assert any(0 < u["done"] < CLIP_FRAMES for u in updates)  # progress arrived while it ran
    download = client.get("/download", params={"video_id": video_id})
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    assert client.get(updates[-1]["download_url"]).content == download.content
    with av.open(io.BytesIO(download.content)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert sum(1 for _ in container.decode(stream)) == CLIP_FRAMES
    with av.open(io.BytesIO(download.content)) as container:
        assert len(container.streams.audio) == 1


def test_subjects_under_the_pointer(client: httpx.Client, analysed: dict) -> None:
    answer = client.get("/subjects", params={"video_id": analysed["video_id"], "frame": 0})
    assert answer.status_code == 200, answer.text
    labels = {subject["label"] for subject in answer.json()}
    assert {"person", "dog"} <= labels
    person = next(s for s in answer.json() if s["label"] == "person")
    x0, y0, x1, y1 = person["box"]
    assert x0 < WOMAN[0] < x1 and y0 < WOMAN[1] < y1
    assert client.get("/subjects", params={"video_id": analysed["video_id"], "frame": 999}).status_code == 422


def test_select_on_nothing_is_a_clear_422_and_keeps_the_plan(client: httpx.Client, analysed: dict) -> None:
    video_id = analysed["video_id"]
    before = client.get("/plan", params={"video_id": video_id}).json()
    answer = client.post("/select", json={"video_id": video_id, "frame": 0, "x": 5000, "y": 10})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_selection"
    assert "outside" in answer.json()["error"]["message"]
    assert client.get("/plan", params={"video_id": video_id}).json() == before


def test_a_new_plan_is_prepared_by_a_job_and_applied_when_it_is_done(
    live_server: Any, client: httpx.Client, analysed: dict
) -> None:
    """PUT /plan with subjects never followed before answers at once with a job (202); the plan
    becomes the video's when the job is done. What can be refused at once (a click outside the
    picture) is a 422 before any job."""
    video_id = analysed["video_id"]
    client.post("/reset", json={"video_id": video_id})
    before = client.get("/plan", params={"video_id": video_id}).json()
    keyframes = [
        {"frame": 3, "action": "focus", "points": [list(WOMAN)]},
        {"frame": 30, "action": "add", "points": [list(DOG_30)]},
    ]
    answer = client.put("/plan", json={"video_id": video_id, "keyframes": keyframes, "blur": 0.8})
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["kind"] == "plan" and job["state"] in ("queued", "running")
    updates = follow(live_server, client, job["id"])
    assert updates[-1]["state"] == "done", updates[-1]
    assert updates[-1]["done"] == updates[-1]["total"] == 2 * CLIP_FRAMES  # frames followed
    plan = client.get("/plan", params={"video_id": video_id}).json()
    assert [(k["frame"], k["action"]) for k in plan["keyframes"]] == [(3, "focus"), (30, "add")]
    assert plan["blur"] == 0.8 and plan["version"] > before["version"]
    preview = client.get("/frame", params={"video_id": video_id, "index": 31, "focused": 1})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    outside = client.put(
        "/plan", json={"video_id": video_id, "keyframes": [{"frame": 0, "points": [[5000, 10]]}]}
    )
    assert outside.status_code == 422 and "outside" in outside.json()["error"]["message"]
    assert client.get("/plan", params={"video_id": video_id}).json() == plan
    client.post("/reset", json={"video_id": video_id})


def test_select_on_an_undetected_thing_focuses_the_region_there(client: httpx.Client, analysed: dict) -> None:
    """Like the CLI: no flag, a click where the detector found nothing follows the region under it."""
    video_id = analysed["video_id"]
    subjects = client.get("/subjects", params={"video_id": video_id, "frame": 0}).json()
    x, y = 1150.0, 120.0  # the building's wall, top right: no detection there
    assert not any(s["box"][0] <= x <= s["box"][2] and s["box"][1] <= y <= s["box"][3] for s in subjects)
    answer = client.post("/select", json={"video_id": video_id, "frame": 0, "x": x, "y": y})
    assert answer.status_code == 200, answer.text
    subject = answer.json()["subject"]
    assert subject["track_id"] is None and subject["mask"].startswith("data:image/png")
    preview = client.get("/frame", params={"video_id": video_id, "index": 10, "focused": 1})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    client.post("/reset", json={"video_id": video_id})


def test_a_background_click_is_a_job_with_progress_that_applies_its_pick(
    live_server: Any, client: httpx.Client, analysed: dict
) -> None:
    """The page's clicks (`background`): one whose region takes seconds to follow answers 202 with
    a select job; its progress rises frame by frame, and when done it carries what a plain click
    answers and the plan has the click. The same click on that plan again is answered at once."""
    video_id = analysed["video_id"]
    client.post("/reset", json={"video_id": video_id})
    before = client.get("/plan", params={"video_id": video_id}).json()
    click = {"video_id": video_id, "frame": 5, "x": 1100.0, "y": 160.0, "background": True}  # the wall
    answer = client.post("/select", json=click)
    assert answer.status_code == 202, answer.text
    assert answer.json()["kind"] == "select"
    updates = follow(live_server, client, answer.json()["id"])
    final = updates[-1]
    assert final["state"] == "done", final
    assert final["total"] == CLIP_FRAMES and len({u["done"] for u in updates}) > 2  # frame by frame
    assert final["selection"]["track_id"] is None and final["selection"]["frame"] == 5
    assert final["selection"]["mask"].startswith("data:image/png")
    plan = client.get("/plan", params={"video_id": video_id}).json()
    assert [(k["frame"], k["action"]) for k in plan["keyframes"]] == [(5, "focus")]
    assert plan["version"] > before["version"]
    client.post("/reset", json={"video_id": video_id})
    again = client.post("/select", json=click)  # resolved before, on the plan it applies to
    assert again.status_code == 200, again.text
    assert again.json()["subject"]["label"] == final["selection"]["label"]
    client.post("/reset", json={"video_id": video_id})


def test_a_cancelled_click_leaves_the_plan_as_it_was(
    live_server: Any, client: httpx.Client, analysed: dict
) -> None:
    video_id = analysed["video_id"]
    client.post("/reset", json={"video_id": video_id})
    before = client.get("/plan", params={"video_id": video_id}).json()
    click = {"video_id": video_id, "frame": 20, "x": 80.0, "y": 90.0, "background": True}  # top left
    answer = client.post("/select", json=click)
    assert answer.status_code == 202, answer.text
    client.post(f"/jobs/{answer.json()['id']}/cancel").raise_for_status()
    final = follow(live_server, client, answer.json()["id"], timeout=30)[-1]
    assert final["state"] == "cancelled" and final["selection"] is None, final
    assert client.get("/plan", params={"video_id": video_id}).json() == before
    outside = client.post("/select", json={**click, "x": 5000.0})  # refused at once, no job
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "invalid_selection"


def test_plan_edits_keyframes_and_reset(client: httpx.Client, analysed: dict) -> None:
    video_id = analysed["video_id"]
    client.post("/reset", json={"video_id": video_id})
    client.post("/select", json={"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]})
    added = client.post(
        "/select", json={"video_id": video_id, "frame": 30, "x": DOG_30[0], "y": DOG_30[1], "mode": "add"}
    )
    assert added.status_code == 200, added.text
    plan = added.json()["plan"]
    assert [(k["frame"], k["action"]) for k in plan["keyframes"]] == [(0, "focus"), (30, "add")]
    # a focus click on a keyframe's frame replaces its subjects instead of piling up
    switched = client.post(
        "/select", json={"video_id": video_id, "frame": 30, "x": DOG_30[0], "y": DOG_30[1]}
    )
    assert [(k["frame"], k["action"]) for k in switched.json()["plan"]["keyframes"]] == [
        (0, "focus"),
        (30, "focus"),
    ]
    thumbnail = client.get("/plan/keyframes/1/thumbnail", params={"video_id": video_id})
    assert thumbnail.headers["content-type"] == "image/jpeg" and decode(thumbnail.content).shape == (
        96,
        96,
        3,
    )
    plan = client.delete("/plan/keyframes/1", params={"video_id": video_id}).json()
    assert [k["frame"] for k in plan["keyframes"]] == [0]
    assert client.delete("/plan/keyframes/5", params={"video_id": video_id}).status_code == 404
    put = client.put("/plan", json={"video_id": video_id, "keyframes": plan["keyframes"], "blur": 0.9})
    assert put.json()["blur"] == 0.9 and put.json()["version"] > plan["version"]
    bad = client.put(
        "/plan", json={"video_id": video_id, "keyframes": [{"frame": 0, "points": [[5, 5]]}], "blur": 2}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert client.post("/reset", json={"video_id": video_id}).json()["keyframes"] == []


def test_concurrent_clicks_are_all_kept_and_stale_edits_are_refused(
    client: httpx.Client, analysed: dict
) -> None:
    video_id = analysed["video_id"]
    client.post("/reset", json={"video_id": video_id})
    clicks = [(frame, "focus" if frame == 0 else "add") for frame in (0, 2, 4, 6)]  # she is still there

    def click(frame: int, mode: str) -> int:
        body = {"video_id": video_id, "frame": frame, "x": WOMAN[0], "y": WOMAN[1], "mode": mode}
        return client.post("/select", json=body, timeout=120).status_code

    with ThreadPoolExecutor(len(clicks)) as pool:  # all in flight at once, as quick clicks are
        codes = list(pool.map(lambda c: click(*c), clicks))
    plan = client.get("/plan", params={"video_id": video_id}).json()
    assert codes == [200] * len(clicks)
    assert sorted(k["frame"] for k in plan["keyframes"]) == [0, 2, 4, 6]  # none lost

    # the blur alone (what the page's slider sends) keeps the keyframes as the server has them
    blurred = client.put("/plan", json={"video_id": video_id, "blur": 0.3}).json()
    assert blurred["blur"] == 0.3 and blurred["keyframes"] == plan["keyframes"]
    # an edit made on an older version is refused, and changes nothing
    stale = client.put(
        "/plan", json={"video_id": video_id, "keyframes": [], "blur": 0.5, "version": plan["version"]}
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "plan_conflict"
    current = client.get("/plan", params={"video_id": video_id}).json()
    assert current["keyframes"] == plan["keyframes"] and current["blur"] == 0.3
    fresh = client.put("/plan", json={"video_id": video_id, "keyframes": [], "version": current["version"]})
    assert fresh.status_code == 200 and fresh.json()["keyframes"] == [] and fresh.json()["blur"] == 0.3


def test_a_render_exports_its_mattes_as_a_zip_of_pngs(
    live_server: Any, client: httpx.Client, analysed: dict
) -> None:
    video_id = analysed["video_id"]
    client.post("/reset", json={"video_id": video_id})
    client.post("/select", json={"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]})
    job = client.post("/render", json={"video_id": video_id, "mattes": True}).json()
    final = follow(live_server, client, job["id"])[-1]
    assert final["state"] == "done" and final["mattes_url"], final
    archive = client.get(final["mattes_url"])
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        assert bundle.namelist() == [f"{i:05d}.png" for i in range(CLIP_FRAMES)]
        matte = cv2.imdecode(np.frombuffer(bundle.read("00000.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert matte.shape == (720, 1280) and matte.dtype == np.uint8
    assert matte[int(WOMAN[1]), int(WOMAN[0])] > 200 and 0.02 < (matte > 127).mean() < 0.5  # her, not all
    renders = live_server.settings.videos_dir / video_id / "renders"
    assert not [p for p in renders.iterdir() if p.is_dir() or p.name.startswith(".")]  # no PNG folder left
    plain = client.post("/render", json={"video_id": video_id}).json()
    assert follow(live_server, client, plain["id"])[-1]["mattes_url"] is None
    missing = client.get("/download", params={"job_id": plain["id"], "what": "mattes"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    client.post("/reset", json={"video_id": video_id})


def test_a_render_at_a_quality_and_height_downloads_at_that_size(
    live_server: Any, client: httpx.Client, analysed: dict
) -> None:
    video_id = analysed["video_id"]
    client.post("/select", json={"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]})
    asked = {"video_id": video_id, "output_quality": "small", "output_height": 360, "mattes": True}
    job = client.post("/render", json=asked)
    assert job.status_code == 202, job.text
    assert (job.json()["output_quality"], job.json()["output_height"]) == ("small", 360)
    final = follow(live_server, client, job.json()["id"])[-1]
    assert final["state"] == "done", final
    download = client.get(final["download_url"])
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(download.content)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 360) and len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(stream)) == CLIP_FRAMES
    with zipfile.ZipFile(io.BytesIO(client.get(final["mattes_url"]).content)) as bundle:
        matte = cv2.imdecode(np.frombuffer(bundle.read("00000.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert matte.shape == (720, 1280)  # the mattes keep the video's size
    client.post("/reset", json={"video_id": video_id})


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"output_height": 1080}, "above the video's 720 pixels"),
        ({"output_height": 361}, "output_height: Input should be a multiple of 2"),
        ({"output_height": 32}, "output_height: Input should be greater than or equal to 64"),
        ({"output_height": "tall"}, "output_height: Input should be a valid integer"),
        ({"output_quality": "ultra"}, "output_quality: Input should be 'high', 'standard' or 'small'"),
    ],
)
def test_bad_render_options_are_a_422_and_start_nothing(
    live_server: Any, client: httpx.Client, analysed: dict, options: dict, says: str
) -> None:
    video_id = analysed["video_id"]
    latest = client.get(f"/videos/{video_id}").json()["render"]
    answer = client.post("/render", json={"video_id": video_id, **options})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request" and says in error["message"], error
    assert client.get(f"/videos/{video_id}").json()["render"] == latest  # no job was queued


def test_cancel_leaves_no_output(live_server: Any, client: httpx.Client, analysed: dict) -> None:
    video_id = analysed["video_id"]
    client.post("/select", json={"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]})
    job = client.post("/render", json={"video_id": video_id}).json()
    cancelled = client.post(f"/jobs/{job['id']}/cancel").json()
    final = follow(live_server, client, job["id"])[-1] if cancelled["state"] != "cancelled" else cancelled
    assert final["state"] == "cancelled" and final["download_url"] is None
    renders = live_server.settings.videos_dir / video_id / "renders"
    assert not list(renders.glob(f"*{job['id']}*"))
    assert client.get("/download", params={"job_id": job["id"]}).status_code == 409


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "oversized", "wrong_field"])
def test_bad_uploads_are_refused_and_leave_nothing(
    live_server: Any, client: httpx.Client, short_clip: Path, case: str
) -> None:
    content = {
        "empty": b"",
        "text": b"this is a text file, renamed to .mp4\n" * 20,
        "truncated": short_clip.read_bytes()[: short_clip.stat().st_size // 2],
        "oversized": b"\0" * (live_server.settings.max_upload_bytes + (1 << 20)),
        "wrong_field": b"x",
    }[case]
    before = sorted(live_server.settings.videos_dir.iterdir())
    field = "video" if case == "wrong_field" else "file"
    answer = client.post("/upload", files={field: ("clip.mp4", content, "video/mp4")})
    expected = {"empty": 422, "text": 422, "truncated": 422, "oversized": 413, "wrong_field": 400}[case]
    assert answer.status_code == expected, answer.text
    error = answer.json()["error"]
    assert error["code"] in {"invalid_video", "upload_too_large", "missing_file"} and error["message"]
    assert str(live_server.settings.data_dir) not in error["message"]  # no server paths leak out
    assert sorted(live_server.settings.videos_dir.iterdir()) == before


def test_a_damaged_upload_fails_without_showing_server_paths(
    live_server: Any, client: httpx.Client, short_clip: Path, tmp_path: Path
) -> None:
    """A clip with bytes zeroed in the middle passes the upload check (first and last frames
    decode) and fails in its analysis; the messages name no file of the server's."""
    data = bytearray(short_clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 40_000] = bytes(40_000)  # frame 9 on no longer decodes
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    answer = upload(client, damaged)
    job = follow(live_server, client, answer["analysis"]["id"])[-1]
    messages = [job.get("error") or ""]
    for index in range(0, CLIP_FRAMES, 4):
        frame = client.get("/frame", params={"video_id": answer["video_id"], "index": index})
        if frame.status_code != 200:
            messages.append(frame.json()["error"]["message"])
    assert any("could not be decoded" in m for m in messages), messages  # it did fail, and says why
    deadline = time.monotonic() + 120  # the preview job decodes the whole file: it says where it is damaged
    while (preview := client.get(f"/videos/{answer['video_id']}").json()["preview"])["state"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert preview["state"] == "failed" and "the video is damaged" in preview["error"], preview
    assert f"of its {CLIP_FRAMES} frames cannot be decoded (frames " in preview["error"]
    assert (
        "upload it again" in preview["error"] and str(live_server.settings.data_dir) not in preview["error"]
    )
    assert all(str(live_server.settings.data_dir) not in m and "source.mp4" not in m for m in messages)
    assert all("the uploaded video" in m for m in messages if m)


def test_two_sessions_do_not_see_each_other(
    live_server: Any, client: httpx.Client, analysed: dict, short_clip: Path
) -> None:
    video_id = analysed["video_id"]
    job_id = analysed["analysis"]["id"]
    with httpx.Client(base_url=live_server.url, timeout=60) as other:
        assert other.get("/health").status_code == 200
        assert "smartfocus_session" not in other.cookies  # probes create no sessions
        assert other.get("/").status_code == 200  # the page does: its own session cookie
        assert other.cookies.get("smartfocus_session") != client.cookies.get("smartfocus_session")
        refused = [
            other.get("/frame", params={"video_id": video_id, "index": 0}),
            other.get("/plan", params={"video_id": video_id}),
            other.get(f"/videos/{video_id}"),
            other.post("/select", json={"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]}),
            other.post("/reset", json={"video_id": video_id}),
            other.post("/render", json={"video_id": video_id}),
            other.get(f"/jobs/{job_id}"),
            other.post(f"/jobs/{job_id}/cancel"),
            other.get("/download", params={"video_id": video_id}),
            other.get("/frame", params={"video_id": "../../etc/passwd", "index": 0}),
        ]
        assert [r.status_code for r in refused] == [404] * len(refused)
        assert all(r.json()["error"]["code"] == "not_found" for r in refused)
        assert other.get("/videos").json() == []  # the recent list is the session's own
        recent = client.get("/videos").json()
        assert recent[0]["video_id"] == video_id or video_id in [v["video_id"] for v in recent]
        assert all(v["info"]["frame_count"] > 0 and v["analysis"] for v in recent)
        cookie = f"smartfocus_session={other.cookies.get('smartfocus_session')}"
        with (
            connect(
                live_server.url.replace("http", "ws", 1) + f"/ws/jobs/{job_id}",
                additional_headers={"Cookie": cookie},
            ) as socket,
            pytest.raises(ConnectionClosed),
        ):
            socket.recv(timeout=10)
        assert socket.close_code == 4404
        # the other session's own upload is its own, and the first session's plan is untouched
        plan_before = client.get("/plan", params={"video_id": video_id}).json()
        mine = upload(other, short_clip)
        assert client.get(f"/videos/{mine['video_id']}").status_code == 404
        other.post(f"/jobs/{mine['analysis']['id']}/cancel")
        assert client.get("/plan", params={"video_id": video_id}).json() == plan_before


def _data(url: str) -> bytes:
    import base64

    return base64.b64decode(url.split(",", 1)[1])


def test_hostile_requests_are_refused_before_any_work(
    live_server: Any, client: httpx.Client, analysed: dict, short_clip: Path
) -> None:
    video_id = analysed["video_id"]
    reset = {"video_id": video_id}
    checks = [
        # DNS rebinding: a page on a foreign name that resolves to this machine
        (client.get("/plan", params=reset, headers={"Host": "evil.example:8000"}), 400, "invalid_host"),
        # CSRF: another site's page posting to the local server
        (client.post("/reset", json=reset, headers={"Origin": "https://evil.example"}), 403, "cross_origin"),
        (client.post("/reset", json=reset, headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross_origin"),
        # a huge JSON body is refused from its length, unread
        (client.post("/reset", content=b"{" + b" " * (2 << 20) + b"}",
                     headers={"Content-Type": "application/json"}), 413, "body_too_large"),
        # JSON nested deeper than the parser goes
        (client.post("/reset", content=b"[" * 100_000 + b"]" * 100_000,
                     headers={"Content-Type": "application/json"}), 422, "invalid_request"),
    ]  # fmt: skip
    for answer, status, code in checks:
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert client.get("/plan", params=reset).json()["keyframes"] is not None  # untouched, still served
    own = client.post("/reset", json=reset, headers={"Origin": live_server.url})
    assert own.status_code == 200  # the page's own origin is fine


def test_videos_over_the_frame_limit_are_refused(
    tmp_path_factory: pytest.TempPathFactory, model_path: Path, short_clip: Path, serve_app
) -> None:
    from smartfocus.server import Settings, create_app

    data = tmp_path_factory.mktemp("limited")
    settings = Settings(data_dir=data, model=str(model_path), device="cpu", max_frames=30)
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as other:
        answer = upload_raw(other, short_clip)
        assert answer.status_code == 413 and answer.json()["error"]["code"] == "video_too_large"
        assert "45 frames; the limit is 30" in answer.json()["error"]["message"]
        assert not any((data / "videos").iterdir())  # nothing kept


def upload_raw(client: httpx.Client, clip: Path) -> httpx.Response:
    with clip.open("rb") as file:
        return client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")})
