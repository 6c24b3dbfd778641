"""Live engine bench: end-to-end fps and latency (camera frame -> focused frame) at the camera's rate.

A fake camera plays the dog sample at its native 29.97 fps (`FileCamera`, frames rescaled to each
size) into `LiveStream`, exactly as `smartfocus live` runs: capture thread, latest-frame-wins mailbox,
processing thread. The woman is clicked on the first processed frame, so every later frame pays for
inference, matte refinement, stabilisation and the lens blur. Printed per size: processed frames per
second, frames dropped, and latency (output time - capture time) median and p95. Target on a 2-core
CPU: >= 15 fps at 640x360 with p95 < 200 ms.

Usage: .venv/bin/python bench/live.py [--device cpu|cuda] [--imgsz 320] [--frames 289] [--sizes 640x360,1280x720]
"""

import argparse
import time

import numpy as np

from shared_data import DOG_CLIP, MODEL
from smartfocus.live.engine import LiveEngine, LiveFrame, LiveSettings
from smartfocus.live.stream import FileCamera, LiveStream
from smartfocus.vision.model import load_segmenter

WOMAN = (360 / 1280, 380 / 720)  # on frame 0, as a fraction of the frame
ROW = "{:>10} {:>6} {:>6} | {:>9} {:>8} {:>8} | {:>11} {:>8} | {:>7}"


class _LimitedCamera(FileCamera):
    def __init__(self, path: str, frames: int, **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.left = frames

    def read(self) -> np.ndarray | None:
        self.left -= 1
        return super().read() if self.left >= 0 else None


def run(engine: LiveEngine, size: tuple[int, int], frames: int) -> dict[str, float]:
    locked: list[bool] = []

    def on_frame(frame: LiveFrame) -> None:
        if not locked:
            engine.select(WOMAN[0] * size[0], WOMAN[1] * size[1])
        locked.append(frame.subject_row is not None)

    camera = _LimitedCamera(str(DOG_CLIP), frames, size=size)
    started = time.monotonic()
    stats = LiveStream(engine, camera, on_frame).start().join()
    wall = time.monotonic() - started
    latencies = np.array(stats.latencies[1:]) * 1000  # the first frame also pays for the tracker setup
    return {
        "captured": stats.captured,
        "processed": stats.processed,
        "dropped": stats.dropped,
        "fps": stats.processed / wall,
        "camera_fps": stats.captured / wall,
        "median": float(np.median(latencies)),
        "p95": float(np.percentile(latencies, 95)),
        "locked": float(np.mean(locked[1:])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--frames", type=int, default=289, help="camera frames per size (default: the clip)")
    parser.add_argument("--sizes", default="640x360,1280x720")
    parser.add_argument("--no-refine", action="store_true")
    args = parser.parse_args()
    segmenter = load_segmenter(MODEL, args.device)
    print(
        f"device {segmenter.device}, imgsz {args.imgsz}, refine {not args.no_refine}, {DOG_CLIP.name} at native rate"
    )
    print(ROW.format("size", "camera", "shown", "fps", "dropped", "locked", "latency med", "p95", "target"))
    for text in args.sizes.split(","):
        width, height = map(int, text.split("x"))
        engine = LiveEngine(segmenter, LiveSettings(imgsz=args.imgsz, refine=not args.no_refine))
        r = run(engine, (width, height), args.frames)
        target = "ok" if r["fps"] >= 15 and r["p95"] < 200 else "missed"
        print(
            ROW.format(
                text,
                r["captured"],
                r["processed"],
                f"{r['fps']:.1f}",
                r["dropped"],
                f"{r['locked']:.0%}",
                f"{r['median']:.0f} ms",
                f"{r['p95']:.0f} ms",
                target if (width, height) == (640, 360) else "",
            )
        )


if __name__ == "__main__":
    main()
