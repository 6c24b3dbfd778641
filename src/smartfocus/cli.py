"""`smartfocus` command line: render a clip with the subject in focus.

Exit codes: 0 success, 2 bad input (one line on stderr, no partial output), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from smartfocus import __version__

_POINT = re.compile(r"^\s*(\d+)\s*:\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*$")


def _keyframe_arg(text: str) -> tuple[int, float, float]:
    match = _POINT.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected FRAME:X,Y (e.g. 0:640,360), got {text!r}")
    return int(match[1]), float(match[2]), float(match[3])


def _strength_arg(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"blur must be between 0 (off) and 1 (maximum), got {value:g}")
    return value


def _imgsz_arg(text: str) -> int:
    value = int(text)
    if value % 32 or not 64 <= value <= 1920:
        raise argparse.ArgumentTypeError(f"imgsz must be a multiple of 32 between 64 and 1920, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartfocus",
        description="Smart autofocus for video: click a subject, keep it sharp, blur the rest like a lens.",
    )
    parser.add_argument("--version", action="version", version=f"smartfocus {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser(
        "render",
        help="render a clip with a subject in focus",
        description="Render INPUT (video file or folder of frames) to an H.264 mp4, keeping the clicked "
        "subjects sharp. Without --focus the clip is only transcoded.",
    )
    render.add_argument("input", type=Path, help="video file (mp4, mov, mkv, webm, avi) or folder of frames")
    render.add_argument("-o", "--output", type=Path, required=True, help="output .mp4")
    render.add_argument(
        "--focus",
        type=_keyframe_arg,
        action="append",
        default=[],
        metavar="F:X,Y",
        help="from frame F on, focus on the subject under source pixel (X,Y); repeat with the same F to "
        "keep several subjects sharp, with a later F to rack focus to another subject",
    )
    render.add_argument(
        "--add",
        type=_keyframe_arg,
        action="append",
        default=[],
        metavar="F:X,Y",
        help="from frame F on, also keep the subject under (X,Y) sharp",
    )
    render.add_argument(
        "--exclude",
        type=_keyframe_arg,
        action="append",
        default=[],
        metavar="F:X,Y",
        help="(X,Y) is not the subject of the --focus/--add click on frame F: a detected object there "
        "is skipped, a clicked region is cut back to leave it out",
    )
    render.add_argument(
        "--any-object",
        action="store_true",
        help="treat every click as on an object the detector does not know (segment and follow the "
        "region under it); such clicks need no flag, this is for comparing the two paths",
    )
    render.add_argument(
        "--clear", type=int, action="append", default=[], metavar="F", help="no focus from F on"
    )
    render.add_argument(
        "--blur", type=_strength_arg, default=0.6, help="blur strength, 0 (off) to 1 (default 0.6)"
    )
    render.add_argument(
        "--transition", type=float, default=0.4, metavar="SECONDS", help="rack-focus duration (default 0.4)"
    )
    render.add_argument("--matte", type=Path, metavar="DIR", help="also write one PNG matte per frame to DIR")
    render.add_argument(
        "--no-refine", action="store_true", help="use the raw segmentation matte (no edge refinement)"
    )
    render.add_argument("--model", help="YOLOv8-seg weights path or official name (env SMARTFOCUS_MODEL)")
    render.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    render.add_argument(
        "--imgsz", type=_imgsz_arg, help="analysis resolution, a multiple of 32 (default 320)"
    )
    render.add_argument(
        "--stride",
        type=int,
        choices=range(1, 9),
        metavar="N",
        help="run the model on every N-th frame and interpolate between (default 1)",
    )
    render.add_argument("--fps", type=float, help="frame rate of a frame folder (default 25)")
    render.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@contextmanager
def _progress_bar(description: str, quiet: bool):
    """A tqdm bar on stderr, driven by (done, total) callbacks."""
    from tqdm import tqdm

    bar = tqdm(
        desc=description, unit="frame", disable=quiet, file=sys.stderr, leave=False, dynamic_ncols=True
    )

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


def _render(args: argparse.Namespace) -> int:
    from smartfocus.api import open_video
    from smartfocus.errors import MediaError, SelectionError
    from smartfocus.focus.plan import FocusPlan

    if args.matte and not (args.focus or args.add):
        raise SelectionError("--matte needs a subject: add --focus F:X,Y")
    if args.output.resolve() == args.input.resolve():
        raise MediaError(f"output {args.output} is the input; choose another -o so the source is kept")
    if not args.output.parent.is_dir():
        raise MediaError(f"output folder {args.output.parent} does not exist; create it or choose another -o")
    plan = FocusPlan()
    for frame, x, y in args.focus:
        plan = plan.focus(frame, (x, y))
    for frame, x, y in args.add:
        plan = plan.add(frame, (x, y))
    for frame, x, y in args.exclude:
        plan = plan.exclude(frame, (x, y))
    for frame in args.clear:
        plan = plan.clear(frame)
    with open_video(
        args.input, model=args.model, device=args.device, imgsz=args.imgsz, fps=args.fps
    ) as video:
        if plan.keyframes:
            with _progress_bar("analysing", args.quiet) as progress:
                video.analyse(progress)
        with (
            _progress_bar("following region", args.quiet) as region_progress,
            _progress_bar("rendering", args.quiet) as progress,
        ):
            video.render(
                args.output,
                plan,
                blur=args.blur,
                transition_seconds=args.transition,
                refine=not args.no_refine,
                matte_dir=args.matte,
                progress=progress,
                any_object=args.any_object,
                region_progress=region_progress,
            )
    print(args.output, file=sys.stderr if args.quiet else sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from smartfocus.errors import SmartfocusError

    try:
        return {"render": _render}[args.command](args)
    except SmartfocusError as error:
        print(f"smartfocus: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smartfocus: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
