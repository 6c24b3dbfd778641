"""A server killed mid-render and started again on the same data folder loses nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import httpx
import pytest

import smartfocus


def serve_command(data_dir: Path, port: int, model: Path) -> tuple[list[str], dict[str, str]]:
    """`python -m smartfocus serve` on this checkout's package, and the environment to run it in."""
    env = {**os.environ, "PYTHONPATH": str(Path(smartfocus.__file__).parents[1])}
    command = [sys.executable, "-m", "smartfocus", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    return [*command, "--model", str(model)], env


def start_server(data_dir: Path, port: int, model: Path, log: Path) -> subprocess.Popen:
    """`smartfocus serve` as its own process (so it can be killed like a crash), ready to answer."""
    command, env = serve_command(data_dir, port, model)
    process = subprocess.Popen(
        [*command, "--device", "cpu"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")


def test_serve_without_model_weights_exits_2_with_one_line(tmp_path: Path, unused_port: int) -> None:
    command, env = serve_command(tmp_path, unused_port, tmp_path / "missing.pt")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "missing.pt not found" in done.stderr


def wait_for(check: Callable[[], dict | None], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_kill_mid_render_then_restart_resumes_the_render(
    tmp_path: Path, short_clip: Path, model_path: Path, unused_port: int
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    url = f"http://127.0.0.1:{unused_port}"
    server = start_server(data_dir, unused_port, model_path, log)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            with short_clip.open("rb") as file:
                video = client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")}).json()
            video_id, analysis = video["video_id"], video["analysis"]["id"]
            wait_for(lambda: (job := client.get(f"/jobs/{analysis}").json())["state"] == "done" and job)
            plan = client.post("/select", json={"video_id": video_id, "frame": 0, "x": 360, "y": 380}).json()[
                "plan"
            ]
            job_id = client.post("/render", json={"video_id": video_id}).json()["id"]
            running = wait_for(lambda: (job := client.get(f"/jobs/{job_id}").json())["done"] > 0 and job)
            assert running["state"] == "running" and running["done"] < running["total"]
            cookies = dict(client.cookies)
        server.kill()  # like a crash: no shutdown handlers run
        server.wait(30)

        # what a kill during an upload leaves: a folder no stored video owns
        orphan = data_dir / "videos" / ("0" * 32)
        (orphan / "upload").mkdir(parents=True)
        (orphan / "upload" / "part").write_bytes(b"half a video")
        server = start_server(data_dir, unused_port, model_path, log)
        assert not orphan.exists() and (data_dir / "videos" / video_id).is_dir()  # housekeeping at start
        with httpx.Client(base_url=url, timeout=60, cookies=cookies) as client:
            # the page's reload: the same session sees its video and plan
            again = client.get(f"/videos/{video_id}").json()
            assert again["plan"]["keyframes"] == plan["keyframes"]
            done = wait_for(
                lambda: (job := client.get(f"/jobs/{job_id}").json())["state"] in ("done", "failed") and job
            )
            assert done["state"] == "done", done
            assert done["note"] == "resumed after a server restart"
            movie = client.get("/download", params={"video_id": video_id})
            assert movie.status_code == 200
            with av.open(io.BytesIO(movie.content)) as container:
                assert sum(1 for _ in container.decode(video=0)) == video["info"]["frame_count"]
        renders = data_dir / "videos" / video_id / "renders"
        assert sorted(path.name for path in renders.iterdir()) == [f"{job_id}.mp4"]  # no partial files
    finally:
        server.kill()
        server.wait(30)
