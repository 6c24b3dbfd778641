"""Compositor bench: ms per frame on CPU, and before/after stills of a real frame to look at.

Times `refine_matte`, `MatteStabilizer.update` and `composite` on frame 100 of the dog sample (the
woman's YOLOv8-seg mask as the coarse matte) at 720p and upscaled to 1080p, at low, medium and
maximum strength: the BGR path (live, previews, odd sizes), then the render's path on YUV 4:2:0
planes (`render.frame`: a half-resolution copy, refine and stabilise at half resolution,
`composite_yuv`). Outputs are kept alive between iterations as a render loop would (it hands each
frame to the encoder). Medians of `--repeat` runs are printed, plus the sum of the best runs, which
is closer to the real cost when other work shares the cores. Stills go to bench/out/ (gitignored).

Usage: .venv/bin/python bench/composite.py [--repeat N] [--no-stills] [--threads N]
"""

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from shared_data import DOG_CLIP, MODEL
from smartfocus.media.yuv import Yuv420Frame
from smartfocus.render.compositor import LensSettings, MatteStabilizer, composite, composite_yuv, refine_matte
from smartfocus.render.matte import refine_matte_half

OUT = Path(__file__).resolve().parent / "out"
FRAME_INDEX = 100
STRENGTHS = {"low": 0.2, "medium": 0.6, "max": 1.0}
PERSON = 0  # COCO class id
ROW = "{:>9} {:>6} {:>4} | {:>9} | {:>8} | {:>9} | {:>6} | {:>10}"


def read_frame(path: Path, index: int) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise SystemExit(f"{path} has fewer than {index + 1} frames")


def person_mask(frame: np.ndarray) -> np.ndarray:
    """The most confident person's mask at frame resolution, float32 in [0, 1]."""
    os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="0", YOLO_CONFIG_DIR="/tmp/yc")
    from ultralytics import YOLO

    result = YOLO(str(MODEL)).predict(frame, imgsz=640, retina_masks=True, verbose=False)[0]
    classes = result.boxes.cls.cpu().numpy().astype(int)
    people = np.flatnonzero(classes == PERSON)
    if result.masks is None or people.size == 0:
        raise SystemExit("no person found in the bench frame")
    best = people[np.argmax(result.boxes.conf.cpu().numpy()[people])]
    return result.masks.data[best].cpu().numpy().astype(np.float32)


def timings_ms(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, best) ms of `repeat` runs; on a busy machine the best is the closer to the real cost."""
    kept = run()  # warm-up (LUTs, kernels); also keeps one output alive like a render loop
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        kept = run()
        times.append(time.perf_counter() - start)
    del kept
    return 1000 * float(np.median(times)), 1000 * float(np.min(times))


def bench(frame: np.ndarray, coarse: np.ndarray, repeat: int) -> None:
    label = f"{frame.shape[0]}p"
    refine, refine_best = timings_ms(lambda: refine_matte(frame, coarse), repeat)
    matte = refine_matte(frame, coarse)
    stabilizer = MatteStabilizer()
    stabilizer.update(matte)
    stabilize, stabilize_best = timings_ms(lambda: stabilizer.update(matte), repeat)
    for name, strength in STRENGTHS.items():
        lens = LensSettings(strength)
        comp, comp_best = timings_ms(lambda lens=lens: composite(frame, matte, lens), repeat)
        total, best = refine + stabilize + comp, refine_best + stabilize_best + comp_best
        print(
            ROW.format(
                label,
                name,
                f"{strength:.1f}",
                *(f"{ms:.1f}" for ms in (comp, refine, stabilize, total, best)),
            )
        )


def bench_planes(frame: np.ndarray, coarse: np.ndarray, repeat: int) -> None:
    """The render's path: what `render.frame.focus_frame` does to a `Yuv420Frame`."""
    label = f"{frame.shape[0]}p yuv"
    planes = Yuv420Frame.from_bgr(frame)
    size = (planes.width, planes.height)
    coarse_half = cv2.resize(coarse, (size[0] // 2, size[1] // 2), interpolation=cv2.INTER_LINEAR)
    copy, copy_best = timings_ms(planes.half_bgr, repeat)
    half_bgr = planes.half_bgr()
    refine, refine_best = timings_ms(lambda: refine_matte_half(half_bgr, coarse_half, size), repeat)
    matte = refine_matte_half(half_bgr, coarse_half, size)
    stabilizer = MatteStabilizer()
    stabilizer.update(matte)
    stabilize, stabilize_best = timings_ms(lambda: stabilizer.update(matte), repeat)
    for name, strength in STRENGTHS.items():
        lens = LensSettings(strength)
        comp, comp_best = timings_ms(lambda lens=lens: composite_yuv(planes, half_bgr, matte, lens), repeat)
        # the half-resolution copy is counted with the refinement that needs it
        total = copy + refine + stabilize + comp
        best = copy_best + refine_best + stabilize_best + comp_best
        print(
            ROW.format(
                label,
                name,
                f"{strength:.1f}",
                *(f"{ms:.1f}" for ms in (comp, copy + refine, stabilize, total, best)),
            )
        )


def save_stills(frame: np.ndarray, coarse: np.ndarray) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    matte = refine_matte(frame, coarse)
    cv2.imwrite(str(OUT / "dog_f100_before.png"), frame)
    cv2.imwrite(str(OUT / "dog_f100_matte_coarse.png"), np.uint8(np.clip(coarse, 0, 1) * 255 + 0.5))
    cv2.imwrite(str(OUT / "dog_f100_matte_refined.png"), np.uint8(matte * 255 + 0.5))
    for name, strength in STRENGTHS.items():
        cv2.imwrite(str(OUT / f"dog_f100_after_{name}.png"), composite(frame, matte, LensSettings(strength)))
    # Round bokeh needs point lights, which the dog clip lacks: a night-street-like test card.
    lights = np.full((720, 1280, 3), 18, np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(70):
        centre = (int(rng.integers(0, 1280)), int(rng.integers(0, 720)))
        colour = [int(c) for c in rng.integers(120, 256, 3)]
        cv2.circle(lights, centre, int(rng.integers(2, 6)), colour, -1)
    text = np.zeros((720, 1280), np.uint8)
    cv2.putText(text, "SHARP", (470, 400), cv2.FONT_HERSHEY_DUPLEX, 4, 255, 8, cv2.LINE_AA)
    lights[text > 0] = (230, 230, 230)
    subject = cv2.dilate(text, np.ones((3, 3), np.uint8)).astype(np.float32) / 255
    side = np.concatenate([lights, composite(lights, subject, LensSettings(1.0))], axis=1)
    cv2.imwrite(str(OUT / "lights_before_after.png"), side)
    print(f"stills in {OUT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--no-stills", action="store_true", help="only print timings")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="OpenCV threads (default: all cores)"
    )
    args = parser.parse_args()

    frame = read_frame(DOG_CLIP, FRAME_INDEX)
    coarse = person_mask(frame)
    # Importing ultralytics switches OpenCV to one thread (cv2.setNumThreads(0)); a render process
    # that loads the model has the same problem, so this sets it explicitly either way.
    cv2.setNumThreads(args.threads)
    print(
        f"{os.cpu_count()} cores, OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}; median of {args.repeat} runs, ms per frame"
    )
    print(ROW.format("frame", "level", "str", "composite", "refine", "stabilize", "total", "best total"))
    bench(frame, coarse, args.repeat)
    size_1080 = (1920, 1080)
    frame_1080 = cv2.resize(frame, size_1080, interpolation=cv2.INTER_CUBIC)
    coarse_1080 = cv2.resize(coarse, size_1080, interpolation=cv2.INTER_LINEAR)
    bench(frame_1080, coarse_1080, args.repeat)
    bench_planes(frame, coarse, args.repeat)
    bench_planes(frame_1080, coarse_1080, args.repeat)
    if not args.no_stills:
        save_stills(frame, coarse)


if __name__ == "__main__":
    main()
