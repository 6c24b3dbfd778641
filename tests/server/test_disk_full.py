"""A server whose data folder fills up, on a real (small) tmpfs: JSON errors that say so, reads
that keep working, and everything back once space is freed."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from smartfocus.server import Settings, create_app

WOMAN = (360.0, 380.0)  # on frame 0 of the short clip


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs, mounted for the test (needs root; skipped with the reason otherwise)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs as a small disk")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Write a file until the disk is full; the file, to delete to free the space again."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 20, 1 << 12, 1):  # big writes, then the last partial blocks
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * chunk)
    finally:
        os.close(descriptor)
    with pytest.raises(OSError) as full:
        (folder / "probe").write_bytes(b"\0" * 65536)
    assert full.value.errno == errno.ENOSPC
    return filler


def _wait_analysed(client: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            assert job["state"] == "done", job
            return
        time.sleep(0.2)
    raise AssertionError("the analysis did not finish")


def test_a_full_disk_answers_json_errors_and_recovers(
    small_disk: Path, short_clip: Path, model_path: Path, serve_app
) -> None:
    settings = Settings(data_dir=small_disk, model=str(model_path), device="cpu")
    with serve_app(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        with short_clip.open("rb") as file:
            uploaded = client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")})
        assert uploaded.status_code == 200, uploaded.text
        video_id = uploaded.json()["video_id"]
        _wait_analysed(client, uploaded.json()["analysis"]["id"])

        filler = _fill(small_disk)
        click = {"video_id": video_id, "frame": 0, "x": WOMAN[0], "y": WOMAN[1]}
        refused = [
            client.post("/select", json=click),
            client.post("/render", json={"video_id": video_id}),
            httpx.post(f"{url}/reset", json={"video_id": video_id}),  # no cookie: a new session
        ]
        for answer in refused:
            assert answer.status_code in (503, 507), answer.text
            assert answer.json()["error"]["code"] in ("insufficient_storage", "storage_unavailable")
            assert str(small_disk) not in answer.text  # no server paths
        with short_clip.open("rb") as file:
            upload = client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")})
        assert upload.status_code == 507 and upload.json()["error"]["code"] == "insufficient_storage"
        # reads still work, with or without a session
        assert client.get("/plan", params={"video_id": video_id}).status_code == 200
        assert client.get("/frame", params={"video_id": video_id, "index": 3}).status_code == 200
        assert httpx.get(f"{url}/health").status_code == 200

        filler.unlink()
        again = client.post("/select", json=click)
        assert again.status_code == 200, again.text
        assert [k["frame"] for k in again.json()["plan"]["keyframes"]] == [0]
