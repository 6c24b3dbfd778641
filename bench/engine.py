"""End-to-end engine speed on the 720p sample with audio.

Prints, each also as a ratio to a plain PyAV decode + H.264 encode of the same clip measured in the
same run: analysis frames/s, first full render frames/s (analysis included, cold cache), and
re-render frames/s with a different focus (cached analysis: must run no inference).

    python bench/engine.py [--clip PATH] [--model PATH] [--imgsz N] [--device D]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, default=SHARED / "samples" / "sam2_01_dog.mp4")
    parser.add_argument("--model", default=str(SHARED / "models" / "yolov8n-seg-int8dq.pt"))
    parser.add_argument("--imgsz", type=int, default=None)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--first", default="0:360,380", help="first render's click F:X,Y (the walker)")
    parser.add_argument("--second", default="0:612,466", help="re-render's click F:X,Y (the dog)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        os.environ["SMARTFOCUS_HOME"] = str(Path(scratch) / "home")  # cold cache, nothing from earlier runs
        import smartfocus
        from smartfocus.media import open_video, transcode

        out = Path(scratch)
        naive = naive_transcode(args.clip, out / "naive.mp4")
        with open_video(args.clip) as reader:
            frames = len(reader)
            start = time.perf_counter()
            transcode(reader, out / "plain.mp4")
            plain = frames / (time.perf_counter() - start)
        print(f"clip: {args.clip.name} {reader.info.width}x{reader.info.height} {frames} frames")
        print(f"naive PyAV decode+encode (no pixel access, no audio): {naive:.1f} frames/s")
        print(f"plain decode+encode (smartfocus transcode, BGR frames + audio): {plain:.1f} frames/s")

        def plan(text: str) -> smartfocus.FocusPlan:
            frame, point = text.split(":")
            x, y = map(float, point.split(","))
            return smartfocus.FocusPlan().focus(int(frame), (x, y))

        def report(name: str, fps: float) -> None:
            print(
                f"{name}: {fps:.1f} frames/s ({fps / plain:.2f}x plain, plain is {plain / fps:.2f}x faster)"
            )

        from smartfocus.vision.analysis import analyse_video
        from smartfocus.vision.model import load_segmenter
        from smartfocus.vision.segment import AnalysisSettings

        chosen = {"imgsz": args.imgsz, "stride": args.stride}
        settings = AnalysisSettings(**{key: value for key, value in chosen.items() if value is not None})
        segmenter = load_segmenter(args.model, args.device)
        print(f"device: {segmenter.device}, analysis imgsz {settings.imgsz}, stride {settings.stride}")
        with open_video(args.clip) as reader:
            start = time.perf_counter()
            analyse_video(reader, segmenter, settings)  # no cache: always runs the model
            report("analysis", frames / (time.perf_counter() - start))

        options = {"model": args.model, "device": args.device, "imgsz": args.imgsz, "stride": args.stride}
        with smartfocus.open_video(args.clip, **options) as video:
            start = time.perf_counter()
            video.render(out / "first.mp4", plan(args.first))
            report("first render (analysis included)", frames / (time.perf_counter() - start))

        with smartfocus.open_video(args.clip, **options) as video:
            start = time.perf_counter()
            video.render(out / "second.mp4", plan(args.second))
            elapsed = time.perf_counter() - start
            if video._segmenter is not None:
                print("re-render loaded the model: the analysis cache was missed", file=sys.stderr)
                return 1
            report("re-render, other focus (no inference)", frames / elapsed)
    return 0


def naive_transcode(clip: Path, output: Path) -> float:
    """Frames/s of the simplest PyAV transcode: decoded frames straight into libx264 (veryfast)."""
    import av

    start = time.perf_counter()
    with av.open(str(clip)) as source, av.open(str(output), "w") as sink:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        encoder = sink.add_stream("libx264", rate=stream.average_rate, options={"preset": "veryfast"})
        encoder.width, encoder.height, encoder.pix_fmt = stream.width, stream.height, "yuv420p"
        count = 0
        for frame in source.decode(stream):
            frame.pts = None
            sink.mux(encoder.encode(frame))
            count += 1
        sink.mux(encoder.encode())
    return count / (time.perf_counter() - start)


if __name__ == "__main__":
    sys.exit(main())
