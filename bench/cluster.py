"""Render speed and memory, one process against a local Ray cluster of 1, 2 and 4 workers.

Usage: python bench/cluster.py [--minutes 10] [--workers 0,1,2,4] [--clips sample,long]

For the 720p dog sample and a long clip (the sample's packets repeated for `--minutes`, with its
audio: built in a temp folder, never kept), prints per configuration the render's frames/s and the
peak resident memory of the process driving it and of the largest worker. Each render runs in a
fresh process, so peaks are its own; the analysis and the followed subject are cached before
(the long clip's analysis is the sample's, repeated: this bench is about rendering).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from shared_data import DOG_CLIP, MODEL

WALKER = (360.0, 380.0)  # frame 0 of the dog sample


def build_long_clip(source: Path, target: Path, minutes: float) -> int:
    """`source`'s packets repeated (video and audio, shifted in time) for `minutes`, no re-encoding;
    how many times."""
    import av

    with av.open(str(source)) as probe:
        video = probe.streams.video[0]
        frames = sum(1 for p in probe.demux(video) if p.size)
        duration = Fraction(frames) / Fraction(video.average_rate)
    repeats = max(1, round(minutes * 60 / float(duration)))
    with av.open(str(target), "w") as out:
        with av.open(str(source)) as src:
            streams = {
                s.index: out.add_stream_from_template(s) for s in (src.streams.video[0], src.streams.audio[0])
            }
        for repeat in range(repeats):
            with av.open(str(source)) as src:
                tracks = [src.streams.video[0], src.streams.audio[0]]
                for packet in src.demux(*tracks):
                    if not packet.size or packet.pts is None or packet.time_base is None:
                        continue
                    start = packet.pts * packet.time_base
                    if packet.stream.type == "audio" and (start >= duration or (repeat and start < 0)):
                        continue  # audio past the video's end (or primed before it) would overlap
                    shift = round(repeat * duration / packet.time_base)
                    packet.pts += shift
                    packet.dts = None if packet.dts is None else packet.dts + shift
                    packet.stream = streams[packet.stream.index]
                    out.mux(packet)
    return repeats


def tile_analysis(source: Path, long_clip: Path, repeats: int, home: Path) -> None:
    """Cache, for the long clip, the sample's analysis repeated `repeats` times."""
    from smartfocus import open_video
    from smartfocus.vision.analysis import Analysis, cache_path

    with open_video(source, model=MODEL, cache_dir=home) as session:
        one = session.analyse()
        fingerprint = session.model.fingerprint()
        settings = session.settings
    rows = len(one.frame_index)
    tiled = Analysis(
        frame_size=one.frame_size,
        frame_count=one.frame_count * repeats,
        settings=one.settings,
        class_names=one.class_names,
        frame_index=(
            np.tile(one.frame_index, repeats) + np.repeat(np.arange(repeats), rows) * one.frame_count
        ).astype(np.int32),
        **{
            key: np.concatenate([getattr(one, key)] * repeats)
            for key in ("track_ids", "class_ids", "scores", "boxes", "appearance", "packed_masks")
        },
    )
    tiled.save(cache_path(home, long_clip, fingerprint, settings))


class PeakMemory:
    """The largest resident set of this process and of its Ray workers (its local cluster's
    processes are its descendants), sampled while a render runs. (Not `ru_maxrss`: Linux carries
    the parent's peak over into a child.)"""

    def __init__(self) -> None:
        self.driver_peak = 0
        self.worker_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            self.driver_peak = max(self.driver_peak, me.memory_info().rss)
            for process in me.children(recursive=True):
                try:
                    command = " ".join(process.cmdline())
                    if command.startswith("ray::") and "Agent" not in command:
                        self.worker_peak = max(self.worker_peak, process.memory_info().rss)
                except psutil.Error:  # it ended meanwhile
                    continue

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def prepare(clip: Path, home: Path) -> None:
    """Analyse (or load) the clip and follow the walker, caching both: the renders only load them."""
    from smartfocus import FocusPlan, open_video

    with open_video(clip, model=MODEL, cache_dir=home, region_cache_dir=home) as session:
        session.timeline(FocusPlan().focus(0, WALKER))


def render_once(clip: Path, workers: int, home: Path, out: Path) -> dict:
    """One render of the walker in focus: in this process (workers 0) or on a local cluster."""
    from smartfocus import FocusPlan, open_video
    from smartfocus.cluster import Cluster

    plan = FocusPlan().focus(0, WALKER)
    cluster = Cluster("local", num_cpus=workers).connect() if workers else None
    try:
        runner = cluster.runner() if cluster else None
        with open_video(clip, model=MODEL, cache_dir=home, region_cache_dir=home, runner=runner) as session:
            session.timeline(plan)  # analysis and following from the cache: only the render is timed
            frames = session.frame_count
            with PeakMemory() as memory:
                start = time.perf_counter()
                session.render(out, plan)
                seconds = time.perf_counter() - start
    finally:
        if cluster is not None:
            cluster.close()
    return {
        "fps": frames / seconds,
        "frames": frames,
        "driver_mb": memory.driver_peak >> 20,
        "worker_mb": memory.worker_peak >> 20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long clip (default 10)")
    parser.add_argument(
        "--workers", default="0,1,2,4", help="cluster sizes to try, 0 = one process (default 0,1,2,4)"
    )
    parser.add_argument("--clips", default="sample,long", help="which clips (default sample,long)")
    parser.add_argument(
        "--child", nargs=4, metavar=("CLIP", "WORKERS", "HOME", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        clip, workers, home, out = args.child
        print(json.dumps(render_once(Path(clip), int(workers), Path(home), Path(out))))
        return
    sizes = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="smartfocus-bench-cluster-") as folder:
        temp = Path(folder)
        clips = {}
        if "sample" in args.clips:
            clips["sample 720p (289 frames)"] = DOG_CLIP
        if "long" in args.clips:
            long_clip = temp / "long.mp4"
            tile_analysis(DOG_CLIP, long_clip, build_long_clip(DOG_CLIP, long_clip, args.minutes), temp)
            clips[f"long 720p ({args.minutes:g} min)"] = long_clip
        for name, clip in clips.items():
            prepare(clip, temp)
            for workers in sizes:
                command = [
                    sys.executable,
                    __file__,
                    "--child",
                    str(clip),
                    str(workers),
                    str(temp),
                    str(temp / "out.mp4"),
                ]
                done = subprocess.run(
                    command, capture_output=True, text=True, env={**os.environ, "RAY_DEDUP_LOGS": "0"}
                )
                if done.returncode != 0:
                    print(
                        f"{name}: {workers} workers failed: {done.stderr.strip().splitlines()[-1:]}",
                        flush=True,
                    )
                    continue
                result = json.loads(done.stdout.strip().splitlines()[-1])
                where = "one process" if workers == 0 else f"cluster, {workers} worker{'s' * (workers > 1)}"
                worker = f", worker peak {result['worker_mb']} MB" if workers else ""
                print(
                    f"{name}, {where}: {result['fps']:.1f} frames/s ({result['frames']} frames), "
                    f"driver peak {result['driver_mb']} MB{worker}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
