"""`smartfocus` command line: render a clip with the subject in focus.

Exit codes: 0 success, 2 bad input (one line on stderr, no partial output), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from smartfocus import __version__
from smartfocus.errors import SmartfocusError
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.timeline import DEFAULT_TRANSITION_S
from smartfocus.media.output import (
    CRF,
    MAX_OUTPUT_HEIGHT,
    MIN_OUTPUT_HEIGHT,
    OUTPUT_QUALITIES,
    OutputFormat,
)
from smartfocus.progress import Progress, Steps, drive
from smartfocus.render.compositor import DEFAULT_BLUR
from smartfocus.render.torch_backend import COMPOSITORS

T = TypeVar("T")

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


def _transition_arg(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 10.0:
        raise argparse.ArgumentTypeError(f"transition must be between 0 and 10 seconds, got {value:g}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 1 and 64, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _imgsz_arg(text: str) -> int:
    value = int(text)
    if value % 32 or not 64 <= value <= 1920:
        raise argparse.ArgumentTypeError(f"imgsz must be a multiple of 32 between 64 and 1920, got {value}")
    return value


def _output_height_arg(text: str) -> int:
    """--output-height, checked by `OutputFormat` itself (the API's check), said argparse's way."""
    try:
        height = OutputFormat(height=int(text)).height
    except (ValueError, SmartfocusError):
        height = None
    if height is None:
        raise argparse.ArgumentTypeError(
            f"must be an even number of pixels from {MIN_OUTPUT_HEIGHT} to {MAX_OUTPUT_HEIGHT} "
            f"(e.g. 720), got {text!r}"
        )
    return height


def _model_options() -> argparse.ArgumentParser:
    """--model and --device, the same for every command (a parent parser)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--model", help="YOLOv8-seg weights path or official name (env SMARTFOCUS_MODEL)")
    options.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartfocus",
        description="Smart autofocus for video: click a subject, keep it sharp, blur the rest like a lens.",
    )
    parser.add_argument("--version", action="version", version=f"smartfocus {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model = _model_options()

    render = commands.add_parser(
        "render",
        parents=[model],
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
        help="(X,Y) is not the subject: of the --focus/--add click on frame F (a detected object there "
        "is skipped, a clicked region is cut back to leave it out), or, on a frame without one, a "
        "correction that cuts what is under (X,Y) out of the subject in focus there",
    )
    render.add_argument(
        "--refine",
        type=_keyframe_arg,
        action="append",
        default=[],
        metavar="F:X,Y",
        help="correct the subject in focus on frame F: what is under (X,Y) is part of it; the "
        "corrected mask is followed from F both ways, up to the subject's other clicks",
    )
    render.add_argument(
        "--plan",
        type=Path,
        metavar="JSON",
        help="start from the focus plan in JSON (what --save-plan writes, the Python API's "
        "FocusPlan.to_json() and the server's GET /plan); --focus/--add/--exclude/--clear add to it",
    )
    render.add_argument(
        "--save-plan", type=Path, metavar="JSON", help="write the focus plan used to JSON (for --plan)"
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
        "--blur",
        type=_strength_arg,
        default=DEFAULT_BLUR,
        help=f"blur strength, 0 (off) to 1 (default {DEFAULT_BLUR})",
    )
    render.add_argument(
        "--transition",
        type=_transition_arg,
        default=DEFAULT_TRANSITION_S,
        metavar="SECONDS",
        help=f"rack-focus duration (default {DEFAULT_TRANSITION_S})",
    )
    render.add_argument(
        "--matte",
        type=Path,
        metavar="DIR",
        help="also write one PNG matte per frame to DIR (at the source's size, whatever --output-height)",
    )
    render.add_argument(
        "--no-refine", action="store_true", help="use the raw segmentation matte (no edge refinement)"
    )
    render.add_argument(
        "--compositor",
        choices=COMPOSITORS,
        default="auto",
        help="auto (default): torch on a CUDA --device, OpenCV on the CPU; torch or opencv to choose",
    )
    render.add_argument(
        "--quality",
        choices=("fast", "balanced", "best"),
        help="analysis preset: fast (320 px, every 2nd frame), balanced (320 px and a closer look at each "
        "followed subject: sharper edges, default), best (640 px: small and far subjects, ~3x slower analysis)",
    )
    render.add_argument(
        "--imgsz", type=_imgsz_arg, help="analysis resolution, a multiple of 32 (overrides --quality)"
    )
    render.add_argument(
        "--stride",
        type=int,
        choices=range(1, 9),
        metavar="N",
        help="run the model on every N-th frame and interpolate between (overrides --quality)",
    )
    render.add_argument(
        "--output-quality",
        choices=OUTPUT_QUALITIES,
        default="standard",
        help="the mp4's quality: high (CRF {high}, a bigger file), standard (CRF {standard}, default) or "
        "small (CRF {small}, about 0.4x standard's size)".format(**CRF),
    )
    render.add_argument(
        "--output-height",
        type=_output_height_arg,
        metavar="N",
        help="scale the mp4 down to N pixels high (even, aspect kept; e.g. 1080, 720, 480, 360); "
        "default: the source's size. Mattes stay at the source's size",
    )
    render.add_argument("--fps", type=float, help="frame rate of a frame folder (default 25)")
    render.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_cluster_option(render, "render")
    _add_serve(commands, model)
    _add_window_commands(commands, model)
    return parser


def _add_cluster_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help=f"{what} on a Ray cluster (pip install 'smartfocus[cluster]'): local (start one on this "
        "machine), auto (join the one `ray start` made), ray://HOST:PORT (a remote one); default "
        "$SMARTFOCUS_CLUSTER, else in this process",
    )


def _size_arg(text: str) -> tuple[int, int]:
    match = re.match(r"^\s*(\d+)\s*x\s*(\d+)\s*$", text)
    if not match or not (16 <= int(match[1]) <= 7680 and 16 <= int(match[2]) <= 4320):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT (e.g. 640x360), got {text!r}")
    return int(match[1]), int(match[2])


def _add_window_commands(commands: argparse._SubParsersAction, model: argparse.ArgumentParser) -> None:
    """`desktop` and `live`: the OpenCV windows (keys are listed in smartfocus.live.desktop)."""
    keys = "click = focus (another click racks focus to it), space = play/pause, , . = step, r = reset, b/B = blur -/+, s = save still, q = quit"
    desktop = commands.add_parser(
        "desktop",
        parents=[model],
        help="focus a video interactively in a window",
        description=f"Open VIDEO in a window and click subjects to focus. Keys: {keys}. The analysis is "
        "shared with `render` through the cache: a clip analysed once is never analysed again.",
    )
    desktop.add_argument("input", type=Path, help="video file or folder of frames")
    live = commands.add_parser(
        "live",
        parents=[model],
        help="focus a camera live in a window",
        description="Show a camera with the clicked subject in focus, in real time: frames the machine "
        "cannot keep up with are dropped, never queued. Keys: click = focus, r = reset, b/B = blur -/+, "
        "s = save still, q = quit.",
    )
    live.add_argument(
        "--camera",
        required=True,
        metavar="N|FILE",
        help="camera index (0 = the first camera) or a video file played at its own rate like a camera",
    )
    live.add_argument(
        "--size", type=_size_arg, default=(640, 360), metavar="WxH", help="frame size (default 640x360)"
    )
    for parser in (desktop, live):
        parser.add_argument(
            "--blur",
            type=_strength_arg,
            default=DEFAULT_BLUR,
            help=f"blur strength, 0 (off) to 1 (default {DEFAULT_BLUR})",
        )
        parser.add_argument(
            "--stills", type=Path, default=Path("."), metavar="DIR", help="where `s` saves stills (default .)"
        )
        parser.add_argument(
            "--imgsz", type=_imgsz_arg, help="analysis resolution, a multiple of 32 (default 320)"
        )
    desktop.add_argument("--fps", type=float, help="frame rate of a frame folder (default 25)")
    desktop.add_argument("--quiet", action="store_true", help="no progress bar while analysing")
    live.add_argument("--quiet", action="store_true", help="no line while the model loads")


def _check_window(stills: Path) -> None:
    """Fail with one line, not a Qt abort, when there is no screen or the stills folder is missing."""
    import os

    from smartfocus.errors import MediaError

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise MediaError("no display: the window needs a graphical session (DISPLAY is not set)")
    if not stills.is_dir():
        raise MediaError(f"stills folder {stills} does not exist; create it or choose another --stills")


def _desktop(args: argparse.Namespace) -> int:
    from smartfocus.live.desktop import DesktopController, OpenCVWindow, run_window
    from smartfocus.session import open_video

    _check_window(args.stills)
    with open_video(args.input, model=_shared_model(args), imgsz=args.imgsz, fps=args.fps) as session:
        _show_steps("analysing", session.analysis_steps(), args.quiet)
        controller = DesktopController(session, blur=args.blur, stills_dir=args.stills)
        run_window(controller, OpenCVWindow(f"smartfocus - {args.input.name}"))
    return 0


def _shared_model(args: argparse.Namespace):
    """The command's detector, which says on stderr when it starts loading (seconds on a CPU)."""
    from smartfocus.vision.model import SharedModel

    def announce() -> None:
        if not args.quiet:
            print("smartfocus: loading model...", file=sys.stderr, flush=True)

    return SharedModel(args.model, args.device, on_load=announce)


def _live(args: argparse.Namespace) -> int:
    from smartfocus.errors import MediaError
    from smartfocus.live.desktop import LiveController, OpenCVWindow, run_window
    from smartfocus.live.engine import LiveEngine, LiveSettings
    from smartfocus.live.stream import FileCamera, FrameSource, LiveStream, OpenCVCamera

    _check_window(args.stills)
    source: FrameSource
    if args.camera.isdigit():
        source = OpenCVCamera(int(args.camera), size=args.size)
        name = f"camera{args.camera}"
    elif Path(args.camera).is_file():
        source = FileCamera(args.camera, size=args.size)
        name = Path(args.camera).stem
    else:
        raise MediaError(f"--camera {args.camera!r} is neither a camera index nor an existing video file")
    settings = LiveSettings(blur=args.blur, **({"imgsz": args.imgsz} if args.imgsz else {}))
    engine = LiveEngine(_shared_model(args).segmenter(), settings)
    stream = LiveStream(engine, source).start()
    try:
        run_window(
            LiveController(stream, stills_dir=args.stills, name=name),
            OpenCVWindow(f"smartfocus live - {name}"),
        )
    finally:
        stream.stop()
        stream.join(timeout=5)
    return 0


def _add_serve(commands: argparse._SubParsersAction, model: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[model],
        help="start the web app (upload, click to focus, preview, render, download)",
        description="Serve the web page and its API. Binds 127.0.0.1 unless --host says otherwise.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--data-dir", type=Path, help="uploads, renders and state (default $SMARTFOCUS_HOME/server)"
    )
    serve.add_argument(
        "--max-upload-mb", type=int, default=2048, metavar="MB", help="largest accepted upload (default 2048)"
    )
    serve.add_argument(
        "--job-workers",
        type=_positive_int,
        default=2,
        metavar="N",
        help="analyses and renders run at once, shared fairly between sessions (default 2)",
    )
    serve.add_argument(
        "--max-job-minutes",
        type=_positive_float,
        default=240.0,
        metavar="MIN",
        help="a job running longer is stopped and fails (default 240)",
    )
    serve.add_argument(
        "--session-days",
        type=_positive_float,
        default=30.0,
        metavar="DAYS",
        help="a browser session unused this long is deleted with its videos and renders (default 30)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="answer requests for Host NAME too (loopback names always; with --host 0.0.0.0 any)",
    )
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow pages from ORIGIN (e.g. http://localhost:5173) to call the API; repeatable; default none",
    )
    _add_cluster_option(serve, "render jobs")


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from smartfocus.cluster import cluster_address
    from smartfocus.server import Settings, create_app
    from smartfocus.vision.model import resolve_weights

    hosts = [*args.allowed_host, args.host]
    if args.host in ("0.0.0.0", "::") and not args.allowed_host:
        hosts = ["*"]  # every interface: it answers to whatever name reaches it
    settings = Settings(
        max_upload_bytes=args.max_upload_mb << 20,
        cors_origins=tuple(args.cors_origin),
        allowed_hosts=tuple(hosts),
        device=args.device,
        job_workers=args.job_workers,
        max_job_s=args.max_job_minutes * 60,
        session_ttl_s=args.session_days * 86400,
        cluster=cluster_address(args.cluster),
    )
    overrides = {"data_dir": args.data_dir, "model": args.model}
    settings = replace(settings, **{key: value for key, value in overrides.items() if value is not None})
    resolve_weights(settings.model)  # a missing model fails here, not at the first upload
    print(f"smartfocus: serving http://{args.host}:{args.port}/ (data in {settings.data_dir})", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


def _show_steps(description: str, steps: Steps[T], quiet: bool) -> T:
    """Run long work (`smartfocus.progress` steps) under a progress bar; its result."""
    with _progress_bar(description, quiet) as progress:
        return drive(steps, progress)


@contextmanager
def _progress_bar(description: str, quiet: bool) -> Iterator[Progress]:
    """A tqdm bar on stderr, driven by (done, total) reports. It appears with the first report, so
    work that fails before it starts (a missing model, a bad click) or has nothing to do (a cached
    analysis) leaves no empty bar behind, and its rate and ETA count frames actually done."""
    from tqdm import tqdm

    bar: tqdm | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                desc=description,
                unit="frame",
                disable=True if quiet else None,  # None: bars only on a terminal, never in logs
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _render(args: argparse.Namespace) -> int:
    from smartfocus.cluster import Cluster, cluster_address
    from smartfocus.errors import MediaError, SelectionError
    from smartfocus.session import open_video

    if args.matte and not (args.focus or args.add or args.plan):
        raise SelectionError("--matte needs a subject: add --focus F:X,Y")
    if args.output.resolve() == args.input.resolve():
        raise MediaError(f"output {args.output} is the input; choose another -o so the source is kept")
    for path, what in ((args.output, "-o"), (args.save_plan, "--save-plan")):
        if path is not None:
            _check_output(path, what)
    plan = _plan_of(args)
    with ExitStack() as stack:
        address = cluster_address(args.cluster)
        cluster = stack.enter_context(Cluster(address)) if address and plan.keyframes else None
        session = stack.enter_context(
            open_video(
                args.input,
                model=_shared_model(args),
                quality=args.quality,
                imgsz=args.imgsz,
                stride=args.stride,
                fps=args.fps,
                compositor=args.compositor,
                runner=cluster.runner() if cluster is not None else None,
            )
        )
        output = OutputFormat(args.output_quality, args.output_height)
        output.size_for(session.info.width, session.info.height)  # above the source: fail before analysing
        timeline = None
        if plan.keyframes:
            _show_steps("analysing", session.analysis_steps(), args.quiet)
            with _progress_bar("following", args.quiet) as region_progress:
                timeline = session.timeline(
                    plan,
                    transition_seconds=args.transition,
                    any_object=args.any_object,
                    progress=region_progress,
                )
            _warn_missing(timeline.missing(), float(session.info.fps))
        if args.save_plan is not None:  # the plan resolved: it picks what it says
            _save_plan(plan, args.save_plan)
        steps = session.render_steps(
            args.output,
            plan,
            blur=args.blur,
            refine=not args.no_refine,
            matte_dir=args.matte,
            timeline=timeline,
            output_quality=args.output_quality,
            output_height=args.output_height,
        )
        _show_steps("rendering", steps, args.quiet)
    print(args.output, file=sys.stderr if args.quiet else sys.stdout)
    return 0


def _check_output(path: Path, flag: str) -> None:
    """An output path must be a new or a regular file in an existing folder: outputs are written to
    a temporary file and renamed over it, which would silently replace a link, a FIFO or a device."""
    import stat

    from smartfocus.errors import MediaError

    if not path.parent.is_dir():
        raise MediaError(f"output folder {path.parent} does not exist; create it or choose another {flag}")
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise MediaError(f"{flag} {path} is a symbolic link; give the path of the file itself")
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, FIFO or socket)"
        raise MediaError(f"{flag} {path} is {kind}; choose a file path")


def _plan_of(args: argparse.Namespace) -> FocusPlan:
    """The --plan file's plan (or an empty one) with the command line's clicks added."""
    from smartfocus.errors import MediaError

    plan = FocusPlan()
    if args.plan is not None:
        try:
            text = args.plan.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise MediaError(f"cannot read --plan {args.plan}: {error.strerror or error}") from None
        plan = FocusPlan.from_json(text)
    for frame, x, y in args.focus:
        plan = plan.focus(frame, (x, y))
    for frame, x, y in args.add:
        plan = plan.add(frame, (x, y))
    for frame, x, y in args.refine:
        plan = plan.refine(frame, (x, y))
    for frame, x, y in args.exclude:
        plan = plan.exclude(frame, (x, y))
    for frame in args.clear:
        plan = plan.clear(frame)
    return plan


def _save_plan(plan: FocusPlan, path: Path) -> None:
    """Write the plan's JSON whole or not at all (temp file + rename)."""
    import os

    temp = path.with_name(f".{path.name}.partial")
    temp.write_text(plan.to_json() + "\n", encoding="utf-8")
    os.replace(temp, path)


MAX_WARNINGS = 5


def _warn_missing(stretches: list[tuple[int, int, int]], fps: float) -> None:
    """One stderr line per stretch where a subject in focus was not found (the blur eases out)."""
    for subject, first, last in stretches[:MAX_WARNINGS]:
        span = f"frame {first}" if first == last else f"frames {first}-{last}"
        print(
            f"smartfocus: warning: subject {subject + 1} not found on {span} "
            f"({first / fps:.1f}-{(last + 1) / fps:.1f} s); the blur eases out there",
            file=sys.stderr,
        )
    if len(stretches) > MAX_WARNINGS:
        print(f"smartfocus: warning: ... and {len(stretches) - MAX_WARNINGS} more stretches", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"render": _render, "serve": _serve, "desktop": _desktop, "live": _live}
        return commands[args.command](args)
    except SmartfocusError as error:
        print(f"smartfocus: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smartfocus: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
