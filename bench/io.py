"""Media I/O speed on the 720p dog sample: decode, random access, encode, transcode, and vs ffmpeg.

Usage: python bench/io.py [clip]    (default: ../shared/samples/sam2_01_dog.mp4)
Prints one metric per line. The ffmpeg ratio needs an `ffmpeg` on PATH (Debian: apt-get install ffmpeg).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from shared_data import DOG_CLIP
from smartfocus.media import VideoWriter, open_video, transcode

RANDOM_READS = 50
ENCODE_POOL = 60  # distinct frames kept in memory for the encode-only run (they are cycled)


def bench_decode(clip: Path) -> None:
    start = time.perf_counter()
    with open_video(clip) as reader:
        opened = time.perf_counter()
        count = sum(1 for _ in reader.frames())
    done = time.perf_counter()
    print(f"open_ms: {(opened - start) * 1000:.1f}")
    print(f"decode_fps: {count / (done - opened):.1f}  (sequential, BGR out)")


def bench_random_access(clip: Path) -> None:
    with open_video(clip) as reader:
        indices = random.Random(0).sample(range(len(reader)), min(RANDOM_READS, len(reader)))
        times = []
        for index in indices:
            start = time.perf_counter()
            reader.read(index)
            times.append((time.perf_counter() - start) * 1000)
    print(f"random_access_ms_mean: {np.mean(times):.1f}  ({len(times)} random indices)")
    print(f"random_access_ms_p95: {np.percentile(times, 95):.1f}")


def bench_encode(clip: Path, folder: Path) -> None:
    with open_video(clip) as reader:
        info, total = reader.info, len(reader)
        pool = [frame for _, frame in reader.frames(0, ENCODE_POOL)]
    start = time.perf_counter()
    with VideoWriter(folder / "encode.mp4", info.width, info.height, info.fps) as writer:
        for index in range(total):
            writer.write(pool[index % len(pool)])
    print(f"encode_fps: {total / (time.perf_counter() - start):.1f}  (BGR in, libx264 crf 18 veryfast)")


def bench_transcode(clip: Path, folder: Path) -> float:
    start = time.perf_counter()
    with open_video(clip) as reader:
        transcode(reader, folder / "transcode.mp4")
        total = len(reader)
    seconds = time.perf_counter() - start
    print(f"transcode_fps: {total / seconds:.1f}  ({seconds:.2f} s, open to close, audio copied)")
    return seconds


def bench_ffmpeg(clip: Path, folder: Path, ours: float) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        print("ffmpeg_ratio: skipped (no ffmpeg on PATH; apt-get install -y ffmpeg)")
        return
    for label, extra in (("", []), ("_crf18", ["-crf", "18"])):
        command = [ffmpeg, "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset", "veryfast"]
        command += [*extra, "-c:a", "copy", str(folder / f"ffmpeg{label}.mp4")]
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
        settings = "same crf 18 as ours" if extra else "ffmpeg default crf 23"
        print(f"ffmpeg{label}_s: {seconds:.2f}")
        print(f"transcode_vs_ffmpeg{label}: {ours / seconds:.2f}x  ({settings})")


def main() -> None:
    clip = Path(sys.argv[1]) if len(sys.argv) > 1 else DOG_CLIP
    print(f"clip: {clip.name}")
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        bench_decode(clip)
        bench_random_access(clip)
        bench_encode(clip, folder)
        ours = bench_transcode(clip, folder)
        bench_ffmpeg(clip, folder, ours)


if __name__ == "__main__":
    main()
