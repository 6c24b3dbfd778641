"""Join separately encoded segments of one render into a single mp4, without re-encoding.

A chunked render (`render.chunks`) encodes each stretch of frames on its own, with the writer's
settings and the timestamps the whole render gives those frames (`VideoWriter(start=...)`). Every
segment opens with an IDR frame and x264's GOPs are closed, so the segments' packets can follow one
another as they are; the join only copies them, shifts each segment back to its exact timestamps
(mp4 edit lists round a segment's start to the movie's millisecond clock) and muxes the source's
audio once, as the writer does. The result is the same kind of file as a one-process render: same
frame count, timestamps, colour tags and audio, written atomically.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer
from av.video.stream import VideoStream

from smartfocus.errors import MediaError
from smartfocus.media.writer import _AudioCarry, _reason

EDIT_LIST_SLACK_S = 0.002  # how far an mp4 edit list may move a segment's start (its clock is in ms)


class SegmentJoiner:
    """Appends segments in frame order to `path` (through a temp file); `close` finishes it.

    Args:
        path: the mp4 to create (replaced only once it is complete).
        timestamps: every frame's presentation time in seconds, for the whole render.
        audio_source: a media file whose first audio track is carried over, as `VideoWriter` does.
    """

    def __init__(self, path: Path, timestamps: Sequence[float], *, audio_source: Path | None = None) -> None:
        self.path = path
        if not path.parent.is_dir():
            raise MediaError(f"{path}: the folder {path.parent} does not exist; create it first")
        self._timestamps = timestamps
        self._audio_source = audio_source
        self._temp = path.with_name(f".{path.stem}.partial.mp4")
        self._container: OutputContainer | None = None
        self._video: VideoStream | None = None
        self._extradata: bytes | None = None
        self._audio: _AudioCarry | None = None
        self._frames = 0
        self._last_dts: int | None = None
        self._done = False

    @property
    def frames(self) -> int:
        """Frames joined so far."""
        return self._frames

    def add(self, segment: Path | bytes) -> int:
        """Append `segment` (an mp4, a file or its bytes, whose frames come next) and return how many
        frames it held."""
        if self._done:
            raise ValueError(f"{self.path}: the join is already closed")
        try:
            opened = io.BytesIO(segment) if isinstance(segment, bytes) else str(segment)
            with av.open(opened, metadata_errors="ignore") as source:
                stream = source.streams.video[0]
                self._check_matches(stream)
                packets = [p for p in source.demux(stream) if p.size and p.pts is not None]
                if not packets or self._frames + len(packets) > len(self._timestamps):
                    raise MediaError(
                        f"segment {self._name(segment)}: {len(packets)} frames do not fit the render; render it again"
                    )
                time_base = stream.time_base
                assert time_base is not None
                first = round(Fraction(self._timestamps[self._frames]) / time_base)
                shift = first - min(p.pts for p in packets)
                if abs(shift * time_base) > EDIT_LIST_SLACK_S:
                    raise MediaError(
                        f"segment {self._name(segment)}: was encoded for other frames than the next ones (out of order)"
                    )
                for packet in packets:
                    self._mux(packet, shift)
        except (av.FFmpegError, OSError) as error:
            self.abort()
            raise MediaError(
                f"{self.path}: joining segment {self._name(segment)} failed ({_reason(error)})"
            ) from None
        except BaseException:
            self.abort()
            raise
        self._frames += len(packets)
        return len(packets)

    def _name(self, segment: Path | bytes) -> str:
        return f"at frame {self._frames}" if isinstance(segment, bytes) else str(segment)

    def _check_matches(self, stream: VideoStream) -> None:
        """Open the output on the first segment; every later one must have its codec setup."""
        extradata = bytes(stream.codec_context.extradata or b"")
        if self._container is None:
            self._container = av.open(
                str(self._temp), "w", format="mp4", container_options={"movflags": "+faststart"}
            )
            self._video = self._container.add_stream_from_template(stream)
            self._video.time_base = stream.time_base
            self._extradata = extradata
            if self._audio_source is not None:
                self._audio = _AudioCarry.open(self._audio_source, self._container)
        elif extradata != self._extradata:
            raise MediaError(
                f"{self.path}: a segment was encoded with other settings (its SPS/PPS differ); "
                "render every segment with the same smartfocus version"
            )

    def _mux(self, packet: av.Packet, shift: int) -> None:
        assert self._container is not None and self._video is not None
        packet.pts += shift
        if packet.dts is not None:
            packet.dts += shift
            if self._last_dts is not None and packet.dts <= self._last_dts:
                raise MediaError(f"{self.path}: segments overlap in time (dts {packet.dts}); cannot join")
            self._last_dts = packet.dts
        packet.stream = self._video
        self._container.mux(packet)
        if self._audio is not None and packet.time_base is not None:
            self._audio.mux_until(float(packet.pts * packet.time_base))

    def close(self) -> Path:
        """Mux the rest of the audio and move the file into place; every frame must be there."""
        if self._done:
            return self.path
        if self._container is None or self._frames != len(self._timestamps):
            self.abort()
            raise MediaError(
                f"{self.path}: {self._frames} of {len(self._timestamps)} frames were joined; nothing saved"
            )
        try:
            if self._audio is not None:
                self._audio.mux_until(None)
                self._audio.close()
            self._container.close()
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
        """Stop and delete the partial file; the target path is left untouched."""
        self._done = True
        if self._audio is not None:
            self._audio.close()
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def __enter__(self) -> SegmentJoiner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
