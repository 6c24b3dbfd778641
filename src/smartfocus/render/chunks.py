"""A focus render in chunks that can run anywhere: each composites and encodes its own stretch of
frames, and the driver joins the segments without re-encoding (`media.segments`).

What makes a chunk's frames those of a one-process render:
- its focus states are the timeline's own, packed (losslessly) so a worker needs no analysis;
- the matte stabiliser, the one thing carried from frame to frame, is warmed up on the last
  `WARMUP_FRAMES` frames before the chunk that have a subject matte (only those change its
  state). It moves at least `STABLE_STEP` = 1/4 of the way to each new matte, so what it remembers
  from before the warm-up is scaled by at most 0.75^48 < 1e-6: below float32's resolution of a
  matte near 1, so the composited pixels agree;
- its segment is encoded with the writer's settings and the timestamps the whole render gives those
  frames; each segment starts on an IDR frame (x264's GOPs are closed), so they join as they are.
What differs is x264's own choices at each cut (a fresh encoder, its rate control and frame types
starting over), so decoded pixels near a cut match a one-process render to within the encoder's
loss (the tests measure PSNR), not bit for bit. Frame count, timestamps and audio are identical.

Chunks run through a `smartfocus.runner.ChunkRunner`: in this process, or on a Ray cluster.
"""

from __future__ import annotations

import contextlib
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartfocus.focus.timeline import FocusState, FocusTimeline
from smartfocus.media.output import OutputFormat
from smartfocus.media.reader import VideoReader
from smartfocus.media.reader import open_video as open_reader
from smartfocus.media.segments import SegmentJoiner
from smartfocus.media.transcode import READ_AHEAD, Frame, read_ahead
from smartfocus.media.writer import VideoWriter
from smartfocus.progress import Steps
from smartfocus.render.compositor import LensSettings
from smartfocus.render.frame import prepare_frame, stabilise
from smartfocus.render.job import FocusStream, matte_folder
from smartfocus.render.matte import MatteStabilizer
from smartfocus.runner import ChunkRunner, plan_cuts

WARMUP_FRAMES = 48  # see the module docstring


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of a render, and the earlier frames its stabiliser is warmed up on."""

    start: int
    stop: int
    warmup: tuple[int, ...]


def plan_chunks(timeline: FocusTimeline, keyframes: np.ndarray, chunk_frames: int) -> list[Chunk]:
    """The render's chunks, each with its warm-up frames."""
    frame_count = timeline.analysis.frame_count
    cuts = plan_cuts(frame_count, keyframes, chunk_frames)
    with_matte = _matte_frames(timeline)
    chunks = []
    for start, stop in zip(cuts, [*cuts[1:], frame_count], strict=True):
        before = with_matte[with_matte < start][-WARMUP_FRAMES:]
        chunks.append(Chunk(start, stop, tuple(int(f) for f in before)))
    return chunks


def _matte_frames(timeline: FocusTimeline) -> np.ndarray:
    """Frames where some subject in focus is visible: where the render's subject matte is not empty,
    the only frames that move the stabiliser."""
    visible = np.zeros(timeline.active.shape, bool)
    for column, subject in enumerate(timeline.subjects):
        visible[:, column] = subject.visible()
    return np.flatnonzero(np.any(visible & timeline.active, axis=1))


@dataclass(frozen=True)
class PackedStates:
    """A timeline's focus states for some frames, zlib-packed (the mattes are mostly zeros): what a
    chunk's worker needs of the focus, a small fraction of the analysis behind it."""

    grid: tuple[int, int]
    # frame -> (matte, subject matte or None where it equals the matte, blur strength)
    frames: dict[int, tuple[bytes, bytes | None, float]]

    @classmethod
    def of(cls, timeline: FocusTimeline, frames: Iterable[int]) -> PackedStates:
        packed = {}
        for frame in frames:
            state = timeline.state(frame)
            same = np.array_equal(state.matte, state.subject_matte)
            subject = None if same else zlib.compress(state.subject_matte.tobytes(), 1)
            packed[frame] = (zlib.compress(state.matte.tobytes(), 1), subject, state.strength)
        return cls(timeline.analysis.grid, packed)

    def state(self, frame: int) -> FocusState:
        matte, subject, strength = self.frames[frame]
        matte_array = self._unpack(matte)
        subject_array = matte_array if subject is None else self._unpack(subject)
        return FocusState(matte=matte_array, subject_matte=subject_array, strength=strength)

    def _unpack(self, data: bytes) -> np.ndarray:
        return np.frombuffer(zlib.decompress(data), np.float32).reshape(self.grid).copy()


@dataclass(frozen=True)
class ChunkJob:
    """Everything a worker needs to render one chunk; the source is read where it lies (on a
    cluster, a path every machine sees)."""

    source: Path
    sequence_fps: float | None  # a frame folder's rate; None for a video file
    chunk: Chunk
    states: PackedStates
    lens: LensSettings
    refine: bool
    mattes: bool  # also export the chunk's mattes
    workers: int  # compositing threads inside the chunk
    output_format: OutputFormat  # every segment encoded alike, so they join


@dataclass(frozen=True)
class ChunkOutput:
    """What a chunk made, as bytes: the worker writes nothing the driver has to find or clean up,
    so a chunk still stopping after a cancel, or one run twice after its worker died, leaves no
    trace."""

    segment: bytes  # the chunk's mp4 (no audio), for `media.segments`
    mattes: dict[int, bytes]  # frame -> its matte's PNG (empty unless asked for)


def render_chunk(job: ChunkJob) -> ChunkOutput:
    """Composite and encode one chunk."""
    chunk = job.chunk
    with open_reader(job.source, fps=job.sequence_fps) as reader:
        info = reader.info
        planar = info.yuv420 is not None  # as `render_steps`: on planes wherever it can
        stabilizer = MatteStabilizer() if job.refine else None
        for index in chunk.warmup:
            frame = reader.read_yuv(index) if planar else reader.read(index)
            stabilise(prepare_frame(frame, job.states.state(index), refine=job.refine), stabilizer)
        source: Iterator[tuple[int, Frame]] = (
            reader.yuv_frames(chunk.start, chunk.stop) if planar else reader.frames(chunk.start, chunk.stop)
        )
        with tempfile.TemporaryDirectory(prefix="smartfocus-chunk-") as folder:
            path = Path(folder) / "segment.mp4"
            stream = FocusStream(
                job.states, job.lens, job.refine, Path(folder) if job.mattes else None, job.workers
            )
            writer = VideoWriter.for_frames_of(
                reader, path, planar=planar, output=job.output_format, start=chunk.start
            )
            frames = read_ahead(source, READ_AHEAD)
            composited = read_ahead(stream(frames, stabilizer), READ_AHEAD)
            with writer, contextlib.closing(frames), contextlib.closing(composited):
                for _, image in composited:
                    writer.write(image)
            mattes = {int(png.stem): png.read_bytes() for png in Path(folder).glob("*.png")}
            return ChunkOutput(path.read_bytes(), mattes)


def chunked_render_steps(
    reader: VideoReader,
    output: Path,
    timeline: FocusTimeline,
    lens: LensSettings,
    runner: ChunkRunner,
    *,
    refine: bool = True,
    matte_dir: Path | None = None,
    workers: int = 1,
    output_format: OutputFormat | None = None,
) -> Steps[Path]:
    """`render.job.render_steps` with the frames rendered in chunks by `runner`: the same outputs
    (see the module docstring for how exactly), yielding (frames joined, total) after each chunk.
    Closing the steps cancels the chunks still running; nothing is left at `output` or `matte_dir`.
    """
    info = reader.info
    output_format = output_format or OutputFormat()
    output_format.size_for(info.width, info.height)  # a height above the source fails before any chunk
    chunks = plan_chunks(timeline, reader.keyframes(), runner.chunk_frames(len(reader)))
    audio = info.path if info.has_audio and not info.is_image_sequence else None
    sequence_fps = float(info.fps) if info.is_image_sequence else None
    total = len(reader)
    with matte_folder(matte_dir) as matte_tmp:
        jobs = (
            ChunkJob(
                info.path,
                sequence_fps,
                chunk,
                PackedStates.of(timeline, [*chunk.warmup, *range(chunk.start, chunk.stop)]),
                lens,
                refine,
                matte_tmp is not None,
                workers,
                output_format,
            )
            for chunk in chunks
        )  # packed as the runner takes them, so only the chunks in flight are held
        segments = runner.ordered(render_chunk, jobs)
        with (
            SegmentJoiner(output, reader.timestamps, audio_source=audio) as joiner,
            contextlib.closing(segments),
        ):
            for made in segments:
                joiner.add(made.segment)
                if matte_tmp is not None:
                    for index, png in made.mattes.items():
                        (matte_tmp / f"{index:05d}.png").write_bytes(png)
                yield joiner.frames, total
    return output
