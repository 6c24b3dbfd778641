"""Renders on a real Ray cluster on 127.0.0.1 with 2 worker processes, against one-process renders.

One cluster serves the whole module (starting one takes seconds); Ray is imported only through
`smartfocus.cluster`, which starts it on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from smartfocus import FocusPlan, FocusSession, open_video
from smartfocus.focus.selection import select_instance
from smartfocus.media.reader import open_video as open_reader
from smartfocus.runner import ChunkRunner
from smartfocus.vision.analysis import Analysis

pytest.importorskip("ray")  # the cluster extra (dev installs it)
psutil = pytest.importorskip("psutil")  # one of Ray's own dependencies

DOG = (612.0, 466.0)  # the dog on frame 0 of the dog sample
WALKER = (360.0, 380.0)  # the woman walking it
PLAN = FocusPlan().focus(0, DOG)
CHUNK_FRAMES = 96  # the 289-frame sample in 3 chunks: two cuts to check
SHORT_FRAMES = 45
TASK_TITLE = "ray::render_chunk"  # what Ray calls a worker process while it runs a render chunk


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    from smartfocus.cluster import Cluster

    with Cluster("local", num_cpus=2) as connected:
        yield connected


def _session(clip: Path, model: Path, runner: ChunkRunner | None = None, **options: Path) -> FocusSession:
    return open_video(clip, model=model, runner=runner, **options)  # the analysis: from the disk cache


@pytest.fixture(scope="module")
def one_process(dog_clip: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-process render of the dog in focus, with its mattes: what the cluster must match."""
    out = tmp_path_factory.mktemp("one_process")
    with _session(dog_clip, model_path) as session:
        session.render(out / "dog.mp4", PLAN, matte_dir=out / "mattes")
    return out


@pytest.fixture(scope="module")
def on_cluster(
    cluster: object, dog_clip: Path, model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("on_cluster")
    with _session(dog_clip, model_path, cluster.runner(chunk_frames=CHUNK_FRAMES)) as session:
        session.render(out / "dog.mp4", PLAN, matte_dir=out / "mattes")
    return out


def _audio_packets(path: Path) -> list[tuple[int | None, int | None, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(p.pts, p.dts, bytes(p)) for p in container.demux(stream) if p.size]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_a_cluster_render_matches_the_one_process_render(one_process: Path, on_cluster: Path) -> None:
    with open_reader(one_process / "dog.mp4") as one, open_reader(on_cluster / "dog.mp4") as chunked:
        assert len(one) == len(chunked) == 289
        assert np.array_equal(one.timestamps, chunked.timestamps)
        assert chunked.info.fps == one.info.fps == Fraction(30000, 1001)
        assert {96, 192} <= set(chunked.keyframes().tolist())  # each chunk starts on an IDR frame
        psnr = [_psnr(a, b) for (_, a), (_, b) in zip(one.frames(), chunked.frames(), strict=True)]
    assert _audio_packets(one_process / "dog.mp4") == _audio_packets(on_cluster / "dog.mp4")
    # The composited frames are the same: the mattes (what the stabiliser makes, after its warm-up
    # at each cut) are identical, and the first chunk, encoded from the same frames by the same
    # fresh x264, decodes identically up to its last ~10 frames (x264's lookahead sees the chunk
    # end there). From then on the two encodes take their own decisions (a fresh encoder at each
    # cut) and agree to within x264's loss at crf 18: measured 44.1 dB at worst, ~45 dB typically.
    for index in range(289):
        name = f"{index:05d}.png"
        matte = cv2.imread(str(one_process / "mattes" / name), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(matte, cv2.imread(str(on_cluster / "mattes" / name), cv2.IMREAD_UNCHANGED))
    assert all(value == float("inf") for value in psnr[: CHUNK_FRAMES - 32])
    assert min(psnr) > 42.0, min(psnr)


def _track_under(analysis: Analysis, frame: int, point: tuple[float, float]) -> int:
    instances = analysis.instances(frame)
    return int(
        instances.track_ids[select_instance(instances, *point, analysis.frame_size, analysis.class_names)]
    )


def test_a_cluster_analysis_keeps_identities_across_its_cuts(
    cluster: object, short_clip: Path, model_path: Path, tmp_path: Path
) -> None:
    with _session(short_clip, model_path) as session:
        whole = session.analyse()
    runner = cluster.runner(chunk_frames=15)  # short chunks keep the test short; each leads by 30
    with _session(short_clip, model_path, runner, cache_dir=tmp_path) as session:
        steps = session.analysis_steps()
        assert [done for done, _ in steps] == [15, 30, 45]  # three chunks, on 2 model-holding actors
        chunked = session.analyse()
    assert list(tmp_path.glob("*.npz"))  # cached like any analysis
    # The walker is in view throughout: one track in the one-process analysis, and one track, with
    # the same masks, across both cuts (frames 15 and 30) of the chunked one.
    walker, stitched = _track_under(whole, 0, WALKER), _track_under(chunked, 0, WALKER)
    assert whole.tracklets()[walker].frames.tolist() == list(range(SHORT_FRAMES))
    assert chunked.tracklets()[stitched].frames.tolist() == list(range(SHORT_FRAMES))
    for frame in range(SHORT_FRAMES):
        row = whole.tracklets()[walker].rows[frame]
        other = chunked.tracklets()[stitched].rows[frame]
        a, b = whole.mask(int(row)), chunked.mask(int(other))
        assert (a & b).sum() / (a | b).sum() > 0.9, frame
    assert len(chunked.tracklets()) == len(whole.tracklets())  # no identity split at a cut


def _chunk_pids() -> list[int]:
    pids = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if TASK_TITLE in " ".join(process.info["cmdline"] or []):
            pids.append(process.info["pid"])
    return pids


def _running_chunk(timeout: float = 30.0) -> int:
    """The pid of a worker running a render chunk (a chunk runs for seconds: it is soon seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pids := _chunk_pids():
            return pids[0]
        time.sleep(0.02)
    raise AssertionError("no render chunk was running")


def _no_chunk_left(timeout: float = 30.0) -> bool:
    """True once no worker runs a render chunk (an interrupted one takes a moment to unwind)."""
    deadline = time.monotonic() + timeout
    while _chunk_pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_worker_killed_mid_chunk_has_its_chunk_rerun(
    cluster: object, dog_clip: Path, model_path: Path, on_cluster: Path, tmp_path: Path
) -> None:
    output = tmp_path / "dog.mp4"
    with _session(dog_clip, model_path, cluster.runner(chunk_frames=CHUNK_FRAMES)) as session:
        steps = session.render_steps(output, PLAN)
        assert next(steps) == (96, 289)  # the first chunk is joined; the others run meanwhile
        victim = _running_chunk()
        os.kill(victim, signal.SIGKILL)
        assert list(steps)[-1] == (289, 289)
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == psutil.STATUS_ZOMBIE
    # the chunk ran again elsewhere and gave the same segment: the same file, byte for byte
    assert output.read_bytes() == (on_cluster / "dog.mp4").read_bytes()


def test_a_cancelled_cluster_render_leaves_no_output_and_no_task(
    cluster: object, dog_clip: Path, model_path: Path, tmp_path: Path
) -> None:
    with _session(dog_clip, model_path, cluster.runner(chunk_frames=CHUNK_FRAMES)) as session:
        steps = session.render_steps(tmp_path / "dog.mp4", PLAN, matte_dir=tmp_path / "mattes")
        next(steps)
        _running_chunk()
        steps.close()  # what a cancelled job does: the chunks are cancelled
        assert list(tmp_path.iterdir()) == []
        assert _no_chunk_left()
    assert list(tmp_path.iterdir()) == []  # nothing appeared while the chunks stopped either


@pytest.fixture(scope="module")
def short_clip(dog_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dog sample's first frames, re-encoded, with its audio for as long."""
    return _short_clip(dog_clip, tmp_path_factory.mktemp("short") / "dog45.mp4")


def _short_clip(source: Path, target: Path) -> Path:
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        video_in, audio_in = src.streams.video[0], src.streams.audio[0]
        video_out = out.add_stream("libx264", rate=video_in.average_rate)
        video_out.width, video_out.height, video_out.pix_fmt = video_in.width, video_in.height, "yuv420p"
        video_out.options = {"crf": "20", "preset": "veryfast"}
        audio_out = out.add_stream_from_template(audio_in)
        end = float(SHORT_FRAMES / video_in.average_rate)
        for packet in src.demux(audio_in):
            if packet.pts is not None and packet.pts * audio_in.time_base < end:
                packet.stream = audio_out
                out.mux(packet)
        src.seek(0)
        for index, frame in enumerate(src.decode(video_in)):
            if index == SHORT_FRAMES:
                break
            frame.pts, frame.time_base = index, 1 / Fraction(video_in.average_rate)
            out.mux(video_out.encode(frame))
        out.mux(video_out.encode(None))
    return target


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _finished(client: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _smartfocus(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "smartfocus", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _head_address() -> str:
    """The module cluster's head, for another process to join it as `ray start --address` would."""
    import ray

    return ray.get_runtime_context().gcs_address


def test_render_cli_on_the_cluster(
    cluster: object, short_clip: Path, model_path: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.mp4"
    focus = f"0:{WALKER[0]:.0f},{WALKER[1]:.0f}"
    done = _smartfocus(
        "render",
        short_clip,
        "-o",
        output,
        "--focus",
        focus,
        "--model",
        model_path,
        "--cluster",
        _head_address(),
        "--output-quality",
        "small",
        "--output-height",
        "360",
    )
    assert done.returncode == 0, done.stderr
    with open_reader(output) as rendered:  # every chunk encoded at the size asked for, so they joined
        assert len(rendered) == SHORT_FRAMES and rendered.info.has_audio
        assert (rendered.info.width, rendered.info.height) == (640, 360)
        assert 24 in rendered.keyframes().tolist()  # in 2 chunks, on the cluster's 2 slots
    refused = _smartfocus("render", short_clip, "-o", output, "--focus", focus, "--cluster", "nowhere")
    assert refused.returncode == 2 and "use local, auto, HOST:PORT or ray://HOST:PORT" in refused.stderr


def test_serve_with_cluster_does_the_whole_flow_over_http(
    cluster: object, short_clip: Path, model_path: Path, tmp_path: Path
) -> None:
    clip = short_clip
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "smartfocus",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        tmp_path / "data",
    ]
    server = subprocess.Popen(
        [*command, "--model", str(model_path), "--cluster", _head_address()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            with clip.open("rb") as file:
                uploaded = client.post("/upload", files={"file": ("dog.mp4", file, "video/mp4")})
            assert uploaded.status_code == 200, uploaded.text
            answer = uploaded.json()
            assert _finished(client, answer["analysis"]["id"])["state"] == "done"
            video_id = answer["video_id"]
            picked = client.post(
                "/select", json={"video_id": video_id, "frame": 0, "x": WALKER[0], "y": WALKER[1]}
            )
            assert picked.status_code == 200 and picked.json()["subject"]["label"] == "person", picked.text
            job = client.post("/render", json={"video_id": video_id}).json()
            assert _finished(client, job["id"])["state"] == "done"
            download = client.get("/download", params={"video_id": video_id})
            assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
        (tmp_path / "out.mp4").write_bytes(download.content)
        with open_reader(tmp_path / "out.mp4") as rendered, open_reader(clip) as source:
            assert len(rendered) == SHORT_FRAMES and np.array_equal(rendered.timestamps, source.timestamps)
            assert rendered.info.has_audio
            # rendered on the cluster's 2 slots: two chunks, the second starting on an IDR frame
            assert 24 in rendered.keyframes().tolist()
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert server.returncode in (0, -signal.SIGTERM), output
