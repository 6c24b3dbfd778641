"""What a real server cleans up: sessions unused for `session_ttl_s` with their files, stalled uploads."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
from fastapi import FastAPI

from smartfocus.server import Settings, create_app


def upload_and_analyse(client: httpx.Client, clip: Path) -> str:
    with clip.open("rb") as file:
        answer = client.post("/upload", files={"file": ("clip.mp4", file, "video/mp4")})
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["analysis"]["id"]
    deadline = time.monotonic() + 120
    while (job := client.get(f"/jobs/{job_id}").json()).get("state") in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job.get("state") == "done", job
    return answer.json()["video_id"]


def test_an_unused_session_expires_with_its_videos_and_a_used_one_stays(
    server_settings: Callable[..., Settings],
    short_clip: Path,
    serve_app: Callable[[FastAPI], AbstractContextManager[str]],
) -> None:
    settings = server_settings(session_ttl_s=4.0, housekeeping_interval_s=0.5)
    with (
        serve_app(create_app(settings)) as url,
        httpx.Client(base_url=url, timeout=60) as idle,
        httpx.Client(base_url=url, timeout=60) as busy,
    ):
        idle_video = upload_and_analyse(idle, short_clip)
        busy_video = upload_and_analyse(busy, short_clip)
        assert (settings.videos_dir / idle_video).is_dir()
        deadline = time.monotonic() + 30
        while (settings.videos_dir / idle_video).exists():  # busy keeps using the server meanwhile
            assert time.monotonic() < deadline, "the unused session's video was never removed"
            assert busy.get(f"/videos/{busy_video}").status_code == 200
            time.sleep(0.3)
        assert busy.get(f"/videos/{busy_video}").status_code == 200
        assert (settings.videos_dir / busy_video / "source.mp4").is_file()
        gone = idle.get(f"/videos/{idle_video}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


def test_a_stalled_upload_is_dropped_with_a_408_and_leaves_nothing(
    server_settings: Callable[..., Settings],
    serve_app: Callable[[FastAPI], AbstractContextManager[str]],
) -> None:
    """A client that sends half an upload and then nothing gets 408 after the idle timeout."""
    settings = server_settings(upload_idle_timeout_s=1.0)
    with serve_app(create_app(settings)) as url:
        host, port = url.removeprefix("http://").split(":")
        part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n' + b"\0" * 1000
        head = (
            f"POST /upload HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: 100000\r\n\r\n"
        ).encode()
        with socket.create_connection((host, int(port)), timeout=20) as connection:
            connection.sendall(head + part)
            begin = time.monotonic()
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        assert time.monotonic() - begin < 15
        status, _, body = answer.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(body)["error"]["code"] == "upload_stalled"
        assert not [f for f in settings.videos_dir.iterdir() if f.is_dir()]
