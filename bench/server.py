"""The web app's interactive speed on the 720p sample, through a real server on a loopback port.

Prints the preview latency (ms from a click, POST /select, to the focused frame, GET /frame?focused=1,
as the page does it; p50 / p95, of 5 clicks the slowest, and the first click) for a detected subject
(the walker by default) and for undetected ones (fresh clicks on things the detector does not know,
each on a frame of its own, so nothing cached answers: the server segments the region and follows it
through the clip), and preview playback frames/s (focused JPEG frames fetched in order, 3 requests
in flight like the page's prefetch), plus plain-frame playback and the upload + analysis time, the
hover's GET /subjects, GET /frame under 1 and 20 concurrent clients (p50/p95), and how long a PUT /plan
with 40 keyframes takes to apply. `bench/page.py` measures the page's own playback in a browser.

    python bench/server.py [--clip PATH] [--model PATH] [--clicks N] [--region-clicks N] [--frames N]
                           [--device D]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from shared_data import DOG_CLIP, MODEL, parse_click


def add_clip_arguments(parser: argparse.ArgumentParser) -> None:
    """The clip, the model and the click both web benches take."""
    parser.add_argument("--clip", type=Path, default=DOG_CLIP)
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--device", default=None)
    parser.add_argument("--click", default="0:360,380", help="F:X,Y clicked (default: the walker)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_clip_arguments(parser)
    parser.add_argument(
        "--clicks", type=int, default=5, help="clicks on the detected subject timed (default 5)"
    )
    parser.add_argument(
        "--region-clicks",
        type=int,
        default=5,
        help="fresh clicks on undetected things timed, each on its own frame (default 5; 0: none)",
    )
    parser.add_argument("--frames", type=int, default=120, help="frames played (default 120)")
    parser.add_argument(
        "--plan-keyframes", type=int, default=40, help="keyframes of the plan whose PUT is timed (default 40)"
    )
    args = parser.parse_args()
    frame, (x, y) = parse_click(args.click)

    from smartfocus.server import Settings

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), model=args.model, device=args.device)
        with serving(settings) as (url, _):
            run(url, args, frame, x, y)
    return 0


@contextlib.contextmanager
def serving(settings: Any) -> Iterator[tuple[str, Any]]:
    """The app on a loopback port in a thread of this process: (its URL, the app)."""
    from smartfocus.server import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)


def run(url: str, args: argparse.Namespace, frame: int, x: float, y: float) -> None:
    with httpx.Client(base_url=url, timeout=300) as client:
        start = time.perf_counter()
        with args.clip.open("rb") as file:
            video = client.post("/upload", files={"file": (args.clip.name, file, "video/mp4")}).json()
        uploaded = time.perf_counter() - start
        video_id, job = video["video_id"], video["analysis"]["id"]
        while client.get(f"/jobs/{job}").json()["state"] not in ("done", "failed", "cancelled"):
            time.sleep(0.1)
        analysed = time.perf_counter() - start
        while (copy := client.get(f"/videos/{video_id}").json()["preview"])["state"] not in (
            "done",
            "failed",
        ):
            time.sleep(0.1)
        copied = time.perf_counter() - start
        frames = video["info"]["frame_count"]
        print(f"clip: {args.clip.name} {video['info']['width']}x{video['info']['height']}, {frames} frames")
        print(
            f"upload + validation: {uploaded * 1000:.0f} ms; analysis done after {analysed:.1f} s "
            f"({frames / (analysed - uploaded):.1f} frames/s, model load included); the preview copy "
            f"{copy['state']} after {copied:.1f} s (it runs beside the analysis)"
        )

        latencies = [click(client, video_id, frame, x, y)[0] for _ in range(args.clicks)]
        if latencies:
            print(
                f"preview latency, click -> focused frame, detected subject at {frame}:{x:g},{y:g}: "
                f"{percentiles(latencies)} ms (first {latencies[0]:.0f}, min {min(latencies):.0f}, "
                f"max {max(latencies):.0f}; {len(latencies)} clicks, the same one, after a reset each)"
            )
        if args.region_clicks:
            regions, picked = region_clicks(client, video_id, frames, args.region_clicks)
            if regions:
                print(
                    f"preview latency, click -> focused frame, undetected subject (a region segmented and "
                    f"followed through the clip): {percentiles(regions)} ms (first {regions[0]:.0f}, "
                    f"min {min(regions):.0f}, max {max(regions):.0f}; {len(regions)} fresh clicks: "
                    f"{', '.join(picked)})"
                )
            else:
                print("preview latency, undetected subject: no click found a region")

        hovers = []
        for index in range(0, frames, max(1, frames // 20)):
            begin = time.perf_counter()
            client.get("/subjects", params={"video_id": video_id, "frame": index}).raise_for_status()
            hovers.append((time.perf_counter() - begin) * 1000)
        print(
            f"hover -> subjects on a frame (GET /subjects): {percentiles(hovers)} ms ({len(hovers)} frames)"
        )

        for clients in (1, 20):
            waits = frame_latencies(client, video_id, frames, clients)
            print(f"GET /frame (plain, random frames), {clients} concurrent clients: {percentiles(waits)} ms")

        keyframes = [
            {"frame": index, "action": "focus" if n == 0 else "add", "points": [[x, y]]}
            for n, index in enumerate(
                range(0, frames, max(1, frames // args.plan_keyframes))[: args.plan_keyframes]
            )
        ]
        begin = time.perf_counter()
        answer = client.put("/plan", json={"video_id": video_id, "keyframes": keyframes}, timeout=1800)
        answered = time.perf_counter() - begin
        state = "applied"
        if answer.status_code == 202:  # prepared by a job: wait for it, and time a plain frame meanwhile
            waits = []
            while (job := client.get(f"/jobs/{answer.json()['id']}").json())["state"] in (
                "queued",
                "running",
            ):
                start = time.perf_counter()
                client.get("/frame", params={"video_id": video_id, "index": len(waits) % frames})
                waits.append((time.perf_counter() - start) * 1000)
                time.sleep(0.2)
            state = (
                f"job {job['state']}; GET /frame meanwhile {percentiles(waits)} ms" if waits else job["state"]
            )
        print(
            f"PUT /plan with {len(keyframes)} keyframes at ({x:g}, {y:g}): answered in {answered * 1000:.0f} ms "
            f"(HTTP {answer.status_code}), plan in place after {time.perf_counter() - begin:.1f} s ({state})"
        )
        # the focused playback with the clicked subject in focus (on a reset plan, focused=1 frames are
        # plain ones: what this line measured before 2026-12-02)
        click(client, video_id, frame, x, y)

        count = min(args.frames, frames)
        for focused in (1, 0):
            fps = playback(client, video_id, count, focused)
            print(
                f"preview playback, {f'focused on {frame}:{x:g},{y:g}' if focused else 'plain'} frames: "
                f"{fps:.1f} frames/s ({count} frames, 3 requests in flight)"
            )
        client.post("/reset", json={"video_id": video_id})


def click(client: httpx.Client, video_id: str, frame: int, x: float, y: float) -> tuple[float, Any]:
    """ms from a click (POST /select, on a reset plan) to its focused frame, as the page does it;
    and the answer's subject (None where the click picked nothing: 422)."""
    client.post("/reset", json={"video_id": video_id}).raise_for_status()
    begin = time.perf_counter()
    answer = client.post("/select", json={"video_id": video_id, "frame": frame, "x": x, "y": y})
    if answer.status_code == 422:
        return (time.perf_counter() - begin) * 1000, None
    answer.raise_for_status()
    client.get(
        "/frame",
        params={"video_id": video_id, "index": frame, "focused": 1, "v": answer.json()["plan"]["version"]},
    ).raise_for_status()
    return (time.perf_counter() - begin) * 1000, answer.json()["subject"]


# Things on the dog sample the detector does not know (the planters, the pillar, the ferns, the
# trees, the far building): tried in turn, skipping any point inside a detection's box on that frame.
REGION_POINTS = [
    (500, 310),
    (1200, 300),
    (650, 130),
    (80, 380),
    (460, 70),
    (1190, 70),
    (900, 120),
    (250, 520),
]


def region_clicks(
    client: httpx.Client, video_id: str, frames: int, count: int
) -> tuple[list[float], list[str]]:
    """ms per click on something undetected, each a fresh one (its own frame and point, so no cached
    region answers it), verified as one: the answer names no tracked detection."""
    latencies, picked = [], []
    for n in range(count):
        index = round((n + 0.5) * (frames - 1) / count)
        boxes = [
            subject["box"]
            for subject in client.get("/subjects", params={"video_id": video_id, "frame": index}).json()
        ]
        for k in range(len(REGION_POINTS)):
            x, y = REGION_POINTS[(n + k) % len(REGION_POINTS)]
            if any(x0 - 20 <= x <= x1 + 20 and y0 - 20 <= y <= y1 + 20 for x0, y0, x1, y1 in boxes):
                continue
            latency, subject = click(client, video_id, index, x, y)
            if subject is not None and subject["track_id"] is None:
                latencies.append(latency)
                picked.append(f"{index}:{x},{y} {subject['label']}")
                break
    client.post("/reset", json={"video_id": video_id})
    return latencies, picked


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.0f}, p95 {p95:.0f}"


def frame_latencies(client: httpx.Client, video_id: str, frames: int, clients: int) -> list[float]:
    """ms per GET /frame with `clients` requests in flight at once, 5 each, on spread-out frames."""

    def fetch(n: int) -> float:
        begin = time.perf_counter()
        index = (n * 37) % frames
        client.get(
            "/frame", params={"video_id": video_id, "index": index, "v": f"c{clients}-{n}"}
        ).raise_for_status()
        return (time.perf_counter() - begin) * 1000

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(fetch, range(5 * clients)))


def playback(client: httpx.Client, video_id: str, count: int, focused: int) -> float:
    def fetch(index: int) -> None:
        client.get(
            "/frame",
            params={"video_id": video_id, "index": index, "focused": focused, "v": f"bench{focused}"},
        ).raise_for_status()

    begin = time.perf_counter()
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(fetch, range(count)))
    return count / (time.perf_counter() - begin)


if __name__ == "__main__":
    sys.exit(main())
