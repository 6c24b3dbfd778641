"""Render a video with a focus timeline: decode, composite each frame, encode, export mattes.

This is where the layers meet: media (frames in and out), focus (which pixels are the subject and
how strong the blur is) and the compositor (how it looks). It runs no inference.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict, Unpack

import cv2
import numpy as np

from smartfocus.errors import MediaError
from smartfocus.focus.timeline import FocusState, FocusTimeline
from smartfocus.media.output import OutputFormat
from smartfocus.media.reader import VideoReader
from smartfocus.media.transcode import Frame, transcode_steps
from smartfocus.media.yuv import Yuv420Frame
from smartfocus.progress import Progress, Steps, drive
from smartfocus.render.compositor import LensSettings
from smartfocus.render.frame import FocusedFrame, PreparedFrame, finish_frame, prepare_frame, stabilise
from smartfocus.render.matte import MatteStabilizer

if TYPE_CHECKING:
    from smartfocus.render.torch_backend import TorchCompositor

MAX_WORKERS = 8


class FocusStates(Protocol):
    """What a render needs of a timeline: the focus at each frame it writes (a `FocusTimeline`, or
    a chunk's share of one, `render.chunks.PackedStates`)."""

    def state(self, frame: int) -> FocusState: ...


def render_video(
    reader: VideoReader,
    output: Path,
    timeline: FocusTimeline | None,
    lens: LensSettings,
    *,
    progress: Progress | None = None,
    **options: Unpack[RenderOptions],
) -> Path:
    """`render_steps` (with the same options) run to the end, reporting to `progress`."""
    return drive(render_steps(reader, output, timeline, lens, **options), progress)


class RenderOptions(TypedDict, total=False):
    """`render_steps`' keyword options."""

    refine: bool
    matte_dir: Path | None
    workers: int | None
    compositor: TorchCompositor | None
    output_format: OutputFormat | None


def render_steps(
    reader: VideoReader,
    output: Path,
    timeline: FocusTimeline | None,
    lens: LensSettings,
    *,
    refine: bool = True,
    matte_dir: Path | None = None,
    workers: int | None = None,
    compositor: TorchCompositor | None = None,
    output_format: OutputFormat | None = None,
) -> Steps[Path]:
    """Write `output` (H.264 with the source's audio and timing) and, with `matte_dir`, one 8-bit PNG
    matte per frame (`00000.png`, 255 = subject). Without a timeline the video is only transcoded.

    `workers`: frames composited at once (default `default_workers()`); the output is the same for
    any number. `compositor`: the torch backend to composite with (`torch_backend.pick_compositor`);
    None for the OpenCV one. `output_format`: the video's quality and height (default: standard,
    the source's size); the mattes keep the source's size whatever the video's.

    Yields (frames written, total). Outputs appear only when complete: the video through the
    writer's temp file, the mattes in a temp folder renamed at the end; closing the steps early
    leaves neither.
    """
    if timeline is None:
        return (yield from transcode_steps(reader, output, output_format=output_format))
    with matte_folder(matte_dir) as matte_tmp:
        planar = reader.info.yuv420 is not None  # the render works on planes wherever it can
        compositor = compositor if planar else None  # frames of odd sizes come as BGR: OpenCV's
        stream = FocusStream(timeline, lens, refine, matte_tmp, workers or default_workers(), compositor)
        yield from transcode_steps(reader, output, stream=stream, yuv=planar, output_format=output_format)
    return output


@contextlib.contextmanager
def matte_folder(matte_dir: Path | None) -> Iterator[Path | None]:
    """A temp folder beside `matte_dir` for the mattes, renamed over it when the block completes
    and removed when it fails or is cancelled; None without `matte_dir`."""
    if matte_dir is None:
        yield None
        return
    matte_tmp = _prepare_matte_dir(matte_dir)
    try:
        yield matte_tmp
    except BaseException:
        shutil.rmtree(matte_tmp, ignore_errors=True)
        raise
    shutil.rmtree(matte_dir, ignore_errors=True)
    os.replace(matte_tmp, matte_dir)


def default_workers() -> int:
    """Frames to composite at once: half the cores (decoding and x264 need the rest), 1 on 2 cores,
    where a second compositing thread only competes with the encoder."""
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 1) // 2))


class FocusStream:
    """The render's frames through `render.frame`: preparing and finishing frames on `workers`
    threads (OpenCV and numpy release the GIL), the stabiliser between them in frame order; or,
    with a `compositor`, through the torch backend in batches (which takes YUV frames only)."""

    def __init__(
        self,
        timeline: FocusStates,
        lens: LensSettings,
        refine: bool,
        matte_dir: Path | None,
        workers: int,
        compositor: TorchCompositor | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.timeline, self.lens, self.refine = timeline, lens, refine
        self.matte_dir = matte_dir
        self.workers = workers
        self.compositor = compositor

    def __call__(
        self, frames: Iterator[tuple[int, Frame]], stabilizer: MatteStabilizer | None = None
    ) -> Iterator[tuple[int, Frame]]:
        """The frames composited, in order. `stabilizer`: one already warmed up on the frames before
        these (a chunk of a longer render); a fresh one by default. The torch compositor keeps its
        own stabiliser and renders whole videos only."""
        if self.compositor is not None:
            if stabilizer is not None:
                raise ValueError("the torch compositor renders whole videos; chunks use the OpenCV one")
            batches = self.compositor.stream(frames, self.timeline.state, self.lens, refine=self.refine)
            for index, focused in batches:
                yield index, self._export(index, focused)
            return
        if stabilizer is None and self.refine:
            stabilizer = MatteStabilizer()
        if self.workers == 1:
            for index, frame in frames:
                prepared = prepare_frame(frame, self.timeline.state(index), refine=self.refine)
                yield index, self._finish(index, prepared, stabilise(prepared, stabilizer))
            return
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="smartfocus-render")
        preparing: deque[tuple[int, Future[PreparedFrame[Frame]]]] = deque()
        finishing: deque[tuple[int, Future[Frame]]] = deque()

        def stabilise_oldest() -> None:
            index, future = preparing.popleft()
            prepared = future.result()
            finishing.append(
                (index, pool.submit(self._finish, index, prepared, stabilise(prepared, stabilizer)))
            )

        try:
            for index, frame in frames:
                state = self.timeline.state(index)
                preparing.append((index, pool.submit(prepare_frame, frame, state, refine=self.refine)))
                if len(preparing) > self.workers:
                    stabilise_oldest()
                if len(finishing) > self.workers:
                    done, future = finishing.popleft()
                    yield done, future.result()
            while preparing:
                stabilise_oldest()
            while finishing:
                done, future = finishing.popleft()
                yield done, future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, index: int, prepared: PreparedFrame[Frame], subject_half: np.ndarray) -> Frame:
        return self._export(index, finish_frame(prepared, self.lens, subject_half))

    def _export(self, index: int, focused: FocusedFrame[Frame]) -> Frame:
        """The frame to encode, its matte written first where the render exports mattes."""
        if self.matte_dir is not None:
            image = focused.image
            size = (image.width, image.height) if isinstance(image, Yuv420Frame) else image.shape[1::-1]
            png = np.clip(focused.subject_matte(size) * 255 + 0.5, 0, 255).astype(np.uint8)
            cv2.imwrite(str(self.matte_dir / f"{index:05d}.png"), png)
        return focused.image


def _prepare_matte_dir(matte_dir: Path) -> Path:
    if not matte_dir.parent.is_dir():
        raise MediaError(
            f"matte folder {matte_dir} is in a missing directory; create {matte_dir.parent} first"
        )
    if matte_dir.exists() and not matte_dir.is_dir():
        raise MediaError(f"matte folder {matte_dir} exists and is not a folder; choose another --matte path")
    temp = matte_dir.with_name(f".{matte_dir.name}.partial")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    return temp
