"""The web app's interactive speed on the 720p sample, through a real server on a loopback port.

Prints the preview latency (ms from a click, POST /select, to the focused frame, GET /frame?focused=1,
as the page does it) and preview playback frames/s (focused JPEG frames fetched in order, 3 requests
in flight like the page's prefetch), plus plain-frame playback and the upload + analysis time, the
hover's GET /subjects, GET /frame under 1 and 20 concurrent clients (p50/p95), and how long a PUT /plan
with 40 keyframes takes to apply.

    python bench/server.py [--clip PATH] [--model PATH] [--clicks N] [--frames N] [--device D]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import uvicorn

from shared_data import DOG_CLIP, MODEL, parse_click


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, default=DOG_CLIP)
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--device", default=None)
    parser.add_argument("--click", default="0:360,380", help="F:X,Y clicked (default: the walker)")
    parser.add_argument("--clicks", type=int, default=5, help="clicks timed (default 5)")
    parser.add_argument("--frames", type=int, default=120, help="frames played (default 120)")
    parser.add_argument(
        "--plan-keyframes", type=int, default=40, help="keyframes of the plan whose PUT is timed (default 40)"
    )
    args = parser.parse_args()
    frame, (x, y) = parse_click(args.click)

    from smartfocus.server import Settings, create_app

    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(data_dir=Path(scratch), model=args.model, device=args.device)
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            run(f"http://127.0.0.1:{port}", args, frame, x, y)
        finally:
            server.should_exit = True
            thread.join(30)
    return 0


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

        latencies = []
        for _ in range(args.clicks):
            client.post("/reset", json={"video_id": video_id})
            begin = time.perf_counter()
            answer = client.post("/select", json={"video_id": video_id, "frame": frame, "x": x, "y": y})
            answer.raise_for_status()
            client.get(
                "/frame",
                params={
                    "video_id": video_id,
                    "index": frame,
                    "focused": 1,
                    "v": answer.json()["plan"]["version"],
                },
            ).raise_for_status()
            latencies.append((time.perf_counter() - begin) * 1000)
        print(
            f"preview latency, click -> focused frame: median {statistics.median(latencies):.0f} ms "
            f"(first {latencies[0]:.0f}, min {min(latencies):.0f}, max {max(latencies):.0f}; {args.clicks} clicks)"
        )

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
        client.post("/reset", json={"video_id": video_id})

        count = min(args.frames, frames)
        for focused in (1, 0):
            fps = playback(client, video_id, count, focused)
            print(
                f"preview playback, {'focused' if focused else 'plain'} frames: {fps:.1f} frames/s "
                f"({count} frames, 3 requests in flight)"
            )


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
