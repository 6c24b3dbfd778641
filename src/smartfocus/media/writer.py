"""Write frames as a browser-ready mp4: H.264 yuv420p, +faststart, the source's audio, atomic output.

The file is written to `.<name>.partial.mp4` next to the target and renamed only when complete, so a
crash or an exception never leaves a half-written video under the real name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import av
import cv2
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.video.reformatter import ColorRange

from smartfocus.errors import MediaError
from smartfocus.media import colour
from smartfocus.media.output import OutputFormat
from smartfocus.media.x264 import repeatable_x264_params
from smartfocus.media.yuv import BT709, Yuv420Frame, YuvColour

if TYPE_CHECKING:
    from smartfocus.media.reader import VideoReader

FINE_TIME_BASE = Fraction(1, 90000)  # MPEG's clock: exact for 24, 25, 30, 30000/1001, 50, 60 fps
# Audio codecs an mp4 holds and Chromium/Firefox play; anything else is re-encoded to AAC.
COPYABLE_AUDIO = frozenset({"aac", "mp3", "opus"})
_UNSPECIFIED = 2  # AVCOL_PRI / AVCOL_TRC / AVCOL_SPC "unspecified"
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_Packets = Generator[tuple[float, Packet], None, None]  # (start in seconds, packet ready to mux)


class VideoWriter:
    """Encode frames to an H.264 mp4 with the source's timing and audio; a context manager.

    Frames are BGR arrays or `Yuv420Frame`s. The output is limited-range 4:2:0 tagged with
    `colorspace`'s matrix: planes already in that matrix are encoded as they are (a full-range source
    only has its range mapped), so a render on planes keeps the source's colours exactly.

    Odd widths or heights are padded by one row/column replicating the edge: yuv420p needs even
    sizes and H.264 can only crop in steps of two there, so padding keeps every source pixel (cropping
    would drop one) at the price of a one-pixel-larger output.

    With `size`, frames are scaled down to it as they are encoded (each plane with OpenCV's area
    filter), so a smaller file costs the render nothing upstream: timing and audio are unchanged.

    Leaving the `with` block normally finishes the file; leaving it by an exception aborts it and
    deletes the partial file.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: Fraction,
        *,
        timestamps: Sequence[float] | None = None,
        start: int = 0,
        audio_source: str | Path | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        colorspace: int = BT709,
        gop: int | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        """Open the output.

        Args:
            path: the mp4 to create (replaced if it exists, only once writing succeeded).
            width, height: size of the frames `write` gets.
            fps: frame rate; the time base when `timestamps` is not given.
            timestamps: presentation time of each frame in seconds (variable frame rate is kept).
            start: the index (in `timestamps`) of the first frame written: a segment of a longer
                render (`media.segments`) gets the timestamps the whole render gives those frames.
            audio_source: a media file whose first audio track is carried over (copied, or re-encoded
                to AAC when mp4 cannot hold it), aligned so that its first video frame is at t=0; a
                file without audio adds none.
            crf, preset: libx264 quality and speed.
            gop: a keyframe every `gop` frames exactly and no B-frames, so any frame decodes after at
                most `gop - 1` others (a file for seeking, `media.proxy`); None: x264's own choice.
            colorspace: the YUV matrix to tag and encode in (FFmpeg's AVColorSpace: 1 = BT.709,
                5/6 = BT.601, 2 = unspecified, which players read as they read the source); pass the
                source's (`VideoInfo.yuv420`) to keep its planes as they are.
            size: (width, height) to encode at, even and no larger than the frames; None: theirs.

        Raises:
            MediaError: the output folder is missing or not writable, or the audio source is unreadable.
        """
        self.path = Path(path)
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        fps = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if start < 0 or (start and audio_source):
            raise ValueError(f"start must be 0 or more, and 0 with an audio source; got {start}")
        if not colour.has_matrix(colorspace):
            raise ValueError(
                f"colorspace {colorspace} is not one of BT.709 (1), BT.601 (5, 6) or unspecified (2)"
            )
        self.colour = YuvColour(colorspace, full_range=False)
        if not self.path.parent.is_dir():
            raise MediaError(f"{self.path}: the folder {self.path.parent} does not exist; create it first")
        if size is not None and (
            size[0] % 2 or size[1] % 2 or not (0 < size[0] <= width and 0 < size[1] <= height)
        ):
            raise ValueError(f"output size must be even and at most {width}x{height}, got {size}")
        self.width, self.height = width, height
        self._size = None if size == (width, height) else size
        self._pad = (height % 2, width % 2) if self._size is None else (0, 0)  # rows, columns added
        self._temp = self.path.with_name(f".{self.path.stem}.partial.mp4")
        self._time_base, self._pts, self._durations = _frame_timing(fps, timestamps)
        self._start = start
        self._count = 0
        self._done = False
        try:
            self._container: OutputContainer = av.open(
                str(self._temp), "w", format="mp4", container_options={"movflags": "+faststart"}
            )
        except (av.FFmpegError, OSError) as error:
            raise MediaError(
                f"{self.path}: cannot be written ({_reason(error)}); check permissions"
            ) from None
        try:
            self._video = self._container.add_stream("libx264", rate=fps)
            encoded = self._size or (width + self._pad[1], height + self._pad[0])
            self._video.width, self._video.height = encoded
            self._video.pix_fmt = "yuv420p"
            self._video.codec_context.time_base = self._time_base
            options = {"crf": str(crf), "preset": preset}
            params = [] if gop is None else [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0", "bframes=0"]
            if (repeatable := repeatable_x264_params()) is not None:
                params.append(repeatable)  # see media/x264.py: the same frames, the same bytes
            if params:
                options["x264-params"] = ":".join(params)
            self._video.codec_context.options = options
            context = self._video.codec_context
            context.colorspace = colorspace
            context.color_primaries = context.color_trc = BT709 if colorspace == BT709 else _UNSPECIFIED
            context.color_range = int(ColorRange.MPEG)
            self._audio = _AudioCarry.open(Path(audio_source), self._container) if audio_source else None
        except BaseException:
            self.abort()
            raise

    @classmethod
    def for_frames_of(
        cls,
        reader: VideoReader,
        path: str | Path,
        *,
        planar: bool,
        output: OutputFormat | None = None,
        **options: Any,
    ) -> VideoWriter:
        """A writer for `reader`'s frames: its size, rate and timestamps, and for `planar` frames
        (the decoder's planes) its YUV matrix, so they are encoded as they are; `output`: the file's
        quality and height the user chose (its CRF and scaled size); `options` as above."""
        info = reader.info
        colorspace = info.yuv420.colorspace if planar and info.yuv420 is not None else BT709
        if output is not None:
            options = {"crf": output.crf, "size": output.size_for(info.width, info.height), **options}
        return cls(
            path,
            info.width,
            info.height,
            info.fps,
            timestamps=reader.timestamps,
            colorspace=colorspace,
            **options,
        )

    def write(self, frame: np.ndarray | Yuv420Frame) -> None:
        """Encode the next frame: HxWx3 uint8 BGR or a `Yuv420Frame`, the size given at construction."""
        if self._done:
            raise ValueError(f"{self.path}: the writer is already closed")
        position = self._start + self._count
        if self._pts is not None and position >= len(self._pts):
            raise ValueError(f"{self.path}: more frames than the {len(self._pts)} timestamps given")
        encoded = av.VideoFrame.from_ndarray(self._planes(frame), format="yuv420p")
        pts = position if self._pts is None else self._pts[position]
        encoded.pts, encoded.time_base = pts, self._time_base
        self._count += 1
        try:
            self._mux_video(self._video.encode(encoded))
            if self._audio is not None:
                self._audio.mux_until(float(pts * self._time_base))
        except (av.FFmpegError, OSError) as error:
            self.abort()
            raise MediaError(f"{self.path}: writing failed ({_reason(error)}); check disk space") from None

    def _planes(self, frame: np.ndarray | Yuv420Frame) -> np.ndarray:
        """The frame as an I420 array in the output's colour (scaled to `size`, or padded to even
        sides)."""
        if isinstance(frame, Yuv420Frame):
            if (frame.height, frame.width) != (self.height, self.width):
                raise ValueError(
                    f"frame must be {self.width}x{self.height}, got {frame.width}x{frame.height}"
                )
            if self._size is not None:  # scaled before the colour mapping: fewer pixels to map
                frame = _scaled(frame, self._size)
            return frame.to_colour(self.colour).data
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be {self.height}x{self.width}x3 uint8, got {frame.shape} {frame.dtype}"
            )
        if self._size is not None:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        elif any(self._pad):
            frame = cv2.copyMakeBorder(frame, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_REPLICATE)
        return colour.bgr_to_i420(
            np.ascontiguousarray(frame), self.colour.colorspace, self.colour.color_range
        )

    def close(self) -> Path:
        """Flush the encoder, mux the rest of the audio, and move the file into place."""
        if self._done:
            return self.path
        if self._count == 0:
            self.abort()
            raise MediaError(f"{self.path}: no frames were written; nothing to save")
        try:
            self._mux_video(self._video.encode(None))
            if self._audio is not None:
                self._audio.mux_until(None)
                self._audio.close()
            self._container.close()  # writes the moov atom and moves it to the front (+faststart)
            os.replace(self._temp, self.path)
        except (av.FFmpegError, OSError) as error:
            self.abort()
            raise MediaError(f"{self.path}: writing failed ({_reason(error)}); check disk space") from None
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the partial file; the target path is left untouched."""
        self._done = True
        audio = getattr(self, "_audio", None)
        if audio is not None:
            audio.close()
        container = getattr(self, "_container", None)
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _mux_video(self, packets: list[Packet]) -> None:
        for packet in packets:
            if self._durations is not None and packet.pts is not None:
                packet.duration = self._durations.get(packet.pts, packet.duration)
            self._container.mux(packet)


def _scaled(frame: Yuv420Frame, size: tuple[int, int]) -> Yuv420Frame:
    """`frame` scaled down to `size` = (width, height), even: each plane with the area filter."""
    width, height = size
    cb, cr = frame.chroma
    half = (width // 2, height // 2)
    return Yuv420Frame.from_planes(
        cv2.resize(frame.y, size, interpolation=cv2.INTER_AREA),
        cv2.resize(cb, half, interpolation=cv2.INTER_AREA),
        cv2.resize(cr, half, interpolation=cv2.INTER_AREA),
        frame.colour,
    )


def _frame_timing(
    fps: Fraction, timestamps: Sequence[float] | None
) -> tuple[Fraction, list[int] | None, dict[int, int] | None]:
    """Time base, per-frame pts and per-pts duration for the encoder.

    Constant-rate timestamps (and none at all) use 1/fps with pts = frame number, so the mp4 holds
    exactly the source rate; anything else uses a 1/90000 clock and pts = round(t * 90000).
    """
    frame_tb = 1 / fps
    if timestamps is None:
        return frame_tb, None, None
    times = np.asarray(timestamps, dtype=np.float64)
    if len(times) == 0:
        raise ValueError("timestamps is empty")
    if np.allclose(times, np.arange(len(times)) / float(fps), rtol=0, atol=1e-6):
        return frame_tb, list(range(len(times))), None
    pts = np.round(times / float(FINE_TIME_BASE)).astype(np.int64)
    if np.any(np.diff(pts) <= 0):
        raise ValueError("timestamps must increase by at least 1/90000 s per frame")
    steps = np.diff(pts)
    last = int(np.median(steps)) if len(steps) else round(1 / (fps * FINE_TIME_BASE))
    durations = dict(zip(pts.tolist(), [*steps.tolist(), last], strict=True))
    return FINE_TIME_BASE, pts.tolist(), durations


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or type(error).__name__


class _AudioCarry:
    """The first audio track of a source, muxed into the output in time order as video is written.

    Timestamps are shifted so the source's first video frame is t=0, matching the reader's timestamps.
    """

    def __init__(self, source: InputContainer, packets: _Packets) -> None:
        self._source = source
        self._packets = packets
        self._pending: tuple[float, Packet] | None = None
        self._output: OutputContainer | None = None

    @classmethod
    def open(cls, path: Path, output: OutputContainer) -> _AudioCarry | None:
        """Add an audio stream to `output` for `path`'s first audio track; None when it has none."""
        try:
            source = av.open(str(path), metadata_errors="ignore")
        except (av.FFmpegError, OSError) as error:
            raise MediaError(
                f"{path}: audio source cannot be read ({_reason(error)}); pass audio_source=None"
            ) from None
        if not source.streams.audio:
            source.close()
            return None
        track = source.streams.audio[0]
        offset = _video_start(source)
        if track.codec_context.name in COPYABLE_AUDIO:
            stream = output.add_stream_from_template(track)
            packets = _copied(source, track, stream, offset)
        else:
            stream = output.add_stream("aac", rate=track.rate)
            # A named layout for the channel count: AAC refuses "unspecified order" layouts (e.g. AVI's).
            channels = track.codec_context.channels
            stream.layout = _LAYOUTS.get(channels, "stereo")
            packets = _reencoded(source, track, stream, offset)
        carry = cls(source, packets)
        carry._output = output
        return carry

    def mux_until(self, seconds: float | None) -> None:
        """Mux the packets that start at or before `seconds` (all of them for None)."""
        assert self._output is not None
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            start, packet = self._pending
            if seconds is not None and start > seconds:
                return
            self._output.mux(packet)
            self._pending = None

    def close(self) -> None:
        self._packets.close()
        with contextlib.suppress(Exception):
            self._source.close()


def _video_start(source: InputContainer) -> float:
    """Seconds at which the source's first video frame is shown (0 without video)."""
    if not source.streams.video:
        return 0.0
    video = source.streams.video[0]
    if video.start_time is None or video.time_base is None:
        return 0.0
    return float(video.start_time * video.time_base)


def _copied(source: InputContainer, track: AudioStream, stream: AudioStream, offset: float) -> _Packets:
    """The track's packets unchanged apart from the shift, re-labelled for the output stream."""
    shift = round(offset / track.time_base) if track.time_base else 0
    for packet in source.demux(track):
        if packet.size == 0 or packet.pts is None or packet.time_base is None:
            continue
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        start = float(packet.pts * packet.time_base)
        packet.stream = stream
        yield start, packet


def _reencoded(source: InputContainer, track: AudioStream, stream: AudioStream, offset: float) -> _Packets:
    """The track decoded and encoded to AAC (PyAV resamples and re-chunks to AAC's frame size)."""
    rate = track.rate
    time_base = Fraction(1, rate)
    for packet in source.demux(track):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        for frame in frames:
            if frame.pts is not None and frame.time_base is not None:
                frame.pts = round((frame.pts * frame.time_base - Fraction(offset)) / time_base)
                frame.time_base = time_base
            for out in stream.encode(frame):
                yield _start_of(out), out
    for out in stream.encode(None):
        yield _start_of(out), out


def _start_of(packet: Packet) -> float:
    if packet.pts is None or packet.time_base is None:
        return 0.0
    return float(packet.pts * packet.time_base)
