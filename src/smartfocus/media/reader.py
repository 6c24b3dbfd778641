"""Read any frame of a video file or a folder of frames, exactly, upright and in BGR.

A video's frame index is built at open by demuxing its packets (no decoding): the sorted presentation
timestamps of the packets the decoder will show give frame n's pts. Reading frame n then means decoding
until a frame with exactly that pts comes out, so `read(n)` is frame-exact whatever the codec does
with B-frames, edit lists or a first pts that is not 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol

import av
import cv2
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter
from av.video.stream import VideoStream

from smartfocus.errors import MediaError
from smartfocus.media import colour
from smartfocus.media.yuv import BT709_LIMITED, Yuv420Frame, YuvColour

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
DEFAULT_SEQUENCE_FPS = 25  # what ffmpeg's image2 demuxer assumes
_VFR_TOLERANCE = 0.1  # a frame duration this far (relative) from the median makes a clip variable-rate
# swscale's default YUV->RGB path is fast but darkens by ~1.7 levels, so every decode+encode round trip
# would drift; full chroma interpolation with accurate rounding round-trips luma exactly (~2 ms/frame).
TO_BGR_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its input; sizes are of the upright frames `read` returns."""

    path: Path
    width: int
    height: int
    fps: Fraction  # average frame rate
    variable_fps: bool  # True when frame durations differ noticeably
    frame_count: int
    duration: float  # seconds, last frame's end included
    rotation: int  # counter-clockwise degrees (0/90/180/270) from the display matrix, already applied
    has_audio: bool
    is_image_sequence: bool
    # The colour of the frames `read_yuv` gives: the decoder's own 8-bit 4:2:0 planes where it has them
    # (BT.601/709), else converted from BGR to BT.709. None when a side is odd (4:2:0 cannot hold it).
    yuv420: YuvColour | None = None


class _FrameSource(Protocol):
    def read(self, index: int) -> np.ndarray: ...

    def read_yuv(self, index: int, yuv: YuvColour) -> Yuv420Frame: ...

    def missing_frames(self) -> list[int]: ...

    def keyframes(self) -> np.ndarray: ...

    def reach(self, index: int) -> int | None: ...

    def close(self) -> None: ...


class VideoReader:
    """Frame-exact random and sequential access to one video; a context manager.

    Not thread-safe: it holds one decoder whose position it reuses, so give each thread its own reader.
    """

    def __init__(self, info: VideoInfo, timestamps: np.ndarray, source: _FrameSource) -> None:
        self.info = info
        self.timestamps = timestamps  # float64 seconds per frame, first = 0.0
        self._source = source

    def __len__(self) -> int:
        return self.info.frame_count

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as an HxWx3 uint8 BGR array, upright; any index, any order."""
        return self._source.read(self._checked(index))

    def read_yuv(self, index: int) -> Yuv420Frame:
        """Frame `index` as YUV 4:2:0 planes in `info.yuv420`'s colour, upright; any index, any order.

        Raises:
            ValueError: the frames have an odd side (`info.yuv420` is None); use `read`.
        """
        if self.info.yuv420 is None:
            raise ValueError(
                f"{self.info.path} is {self.info.width}x{self.info.height}: 4:2:0 planes need even sides; "
                "use read()"
            )
        return self._source.read_yuv(self._checked(index), self.info.yuv420)

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield `(index, frame)` from `start` up to `stop` (default: the end), decoding straight through."""
        for index in self._indices(start, stop):
            yield index, self._source.read(index)

    def yuv_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, Yuv420Frame]]:
        """`frames` as YUV 4:2:0 planes (see `read_yuv`)."""
        for index in self._indices(start, stop):
            yield index, self.read_yuv(index)

    def small_frames(
        self,
        size: tuple[int, int],
        interpolation: int = cv2.INTER_AREA,
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """`frames` (from `start` up to `stop`) shrunk to `size` = (width, height) with
        `interpolation` (bilinear or area).

        A video file's are made from the decoder's YUV planes, each plane resized before the colour
        conversion: the same picture as resizing the BGR frame, without converting all of it.
        """
        if self.info.yuv420 is not None and not self.info.is_image_sequence:
            for index, frame in self.yuv_frames(start, stop):
                yield index, frame.resized_bgr(size, interpolation)
            return
        for index, image in self.frames(start, stop):
            yield index, cv2.resize(image, size, interpolation=interpolation)

    def missing_frames(self) -> list[int]:
        """The frames that cannot be decoded (a damaged file), in one pass over the whole video:
        what to tell a user whose file fails somewhere in the middle."""
        return self._source.missing_frames()

    def keyframes(self) -> np.ndarray:
        """Sorted indices of the frames decoding can start on without decoding earlier ones (every
        frame of a folder): where a chunked render cuts, so no chunk decodes frames it does not use."""
        return self._source.keyframes()

    def reach(self, index: int) -> int | None:
        """How many frames reading `index` decodes from where the decoder is, without seeking (0
        when it holds that frame); None when it would seek. A pool of readers gives a read the one
        that gets there soonest."""
        return self._source.reach(self._checked(index))

    def _checked(self, index: int) -> int:
        if not 0 <= index < self.info.frame_count:
            raise IndexError(f"frame {index} is out of range for {self.info.path} (0..{len(self) - 1})")
        return index

    def _indices(self, start: int, stop: int | None) -> range:
        stop = self.info.frame_count if stop is None else min(stop, self.info.frame_count)
        return range(max(start, 0), stop)

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _to_bgr(frame: VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    """A decoded frame as BGR: 8-bit 4:2:0 BT.601/709 through `colour` (~3x faster), the rest through
    swscale's accurate path."""
    yuv = _yuv_colour(frame)
    if yuv is not None:
        return colour.i420_to_bgr(frame.to_ndarray(), yuv.colorspace, yuv.color_range)
    return reformatter.reformat(frame, format="bgr24", interpolation=TO_BGR_FLAGS).to_ndarray()


def _yuv_colour(frame: VideoFrame) -> YuvColour | None:
    """The colour of a decoded frame when its planes can be used as they are (8-bit 4:2:0, BT.601/709)."""
    if frame.format.name not in ("yuv420p", "yuvj420p") or not colour.supported(
        frame.colorspace, frame.width, frame.height
    ):
        return None
    full = frame.format.name == "yuvj420p" or frame.color_range == colour.AVCOL_RANGE_JPEG
    return YuvColour(frame.colorspace, full_range=full)


def _to_yuv(frame: VideoFrame, yuv: YuvColour, reformatter: VideoReformatter) -> Yuv420Frame:
    """A decoded frame as 4:2:0 planes in colour `yuv`: as decoded when it matches, else via BGR."""
    if _yuv_colour(frame) == yuv:
        return Yuv420Frame(frame.to_ndarray(), yuv)
    return Yuv420Frame.from_bgr(_to_bgr(frame, reformatter), yuv)


def open_video(path: str | Path, *, fps: float | None = None) -> VideoReader:
    """Open a video file (mp4, mov, mkv, webm, avi, ...) or a folder of jpg/png frames.

    Args:
        path: the file or folder.
        fps: frame rate of a frame folder (default 25, like ffmpeg); ignored for video files, which
            carry their own timing.

    Raises:
        MediaError: the path is missing, not a video, has no decodable frames, or is a folder without
            frames of one size.
    """
    path = Path(path)
    if path.is_dir():
        return _open_sequence(path, fps)
    if not path.exists():
        raise MediaError(f"{path}: no such file or folder; check the path")
    return _open_file(path)


# --- video files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PacketIndex:
    """Frame pts in display order plus where decoding may start (keyframes), all in stream time base."""

    pts: np.ndarray  # (N,) int64, sorted: frame n's presentation timestamp
    last_duration: int  # duration of the last frame in display order, 0 if unknown
    key_pts: np.ndarray  # (K,) int64, sorted pts of keyframe packets (discarded ones included)
    key_dts: np.ndarray  # (K,) int64, their dts (what mp4 seeks by), same order
    from_packets: bool = True  # False: packets carry no pts, so nothing may be skipped by pts


def _index_packets(container: InputContainer, stream: VideoStream) -> _PacketIndex | None:
    """Demux (no decode) the video stream once and list the frames the decoder will show.

    Returns None when some packet has no pts, so the index has to come from decoding instead.
    """
    shown: list[tuple[int, int]] = []  # (pts, duration)
    keys: list[tuple[int, int]] = []  # (pts, dts)
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return None
            if packet.is_keyframe:
                keys.append((packet.pts, packet.dts if packet.dts is not None else packet.pts))
            # Packets before an edit list's start are flagged discard; the decoder drops their frames.
            if not packet.is_discard:
                shown.append((packet.pts, packet.duration or 0))
    except av.FFmpegError:
        pass  # a damaged tail: index what could be demuxed, reads past it fail with a MediaError
    shown.sort()
    keys.sort()
    return _PacketIndex(
        pts=np.array([p for p, _ in shown], dtype=np.int64),
        last_duration=shown[-1][1] if shown else 0,
        key_pts=np.array([p for p, _ in keys], dtype=np.int64),
        key_dts=np.array([d for _, d in keys], dtype=np.int64),
    )


def _index_by_decoding(path: Path, container: InputContainer, stream: VideoStream) -> _PacketIndex:
    """Fallback for containers whose packets carry no pts (e.g. some AVI): decode once to list frames."""
    untimed = MediaError(
        f"{path}: frames carry no timestamps (a raw stream?); re-encode it, e.g. ffmpeg -i IN -c:v libx264 "
        "OUT.mp4"
    )
    try:
        container.seek(0)  # back to the start after the indexing pass
    except av.FFmpegError:
        raise untimed from None
    pts: list[int] = []
    keys: list[int] = []
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        pts.extend(f.pts for f in frames if f.pts is not None)
        keys.extend(f.pts for f in frames if f.pts is not None and f.key_frame)
    if not pts:
        raise untimed
    key_pts = np.array(sorted(set(keys) | {min(pts)}), dtype=np.int64)
    return _PacketIndex(np.array(sorted(pts), dtype=np.int64), 0, key_pts, key_pts, from_packets=False)


class _FileSource:
    """Decodes one video stream, continuing forward when it can and seeking to a keyframe when not."""

    def __init__(self, path: Path, container: InputContainer, stream: VideoStream, index: _PacketIndex):
        self._path = path
        self._container = container
        self._stream = stream
        self._index = index
        self._frame_of_pts = {int(p): n for n, p in enumerate(index.pts)}
        self._decoded: Iterator[tuple[int, VideoFrame]] | None = None
        self._position = -1  # index of the frame `_decoded` yielded last
        self._frame: VideoFrame | None = None  # that frame
        self._last: tuple[int, np.ndarray] | None = None
        self._to_bgr = VideoReformatter()
        self._skip_until: int | None = None  # pts of the target packet while seeking to it
        self._sent: set[int | None] = set()  # pts of the packets sent to the decoder since the last seek
        self.rotation = 0
        self.seeks = 0  # how many times a read had to seek (tests check sequential reads never do)

    def first_frame(self) -> VideoFrame:
        """Decode frame 0 (positioning the decoder there) to learn the size and rotation."""
        frame = self._decode_to(0)
        if frame is None:
            raise MediaError(
                f"{self._path}: no frame could be decoded (truncated or damaged file?); re-export or "
                "re-download it"
            )
        return frame

    def check_order(self) -> None:
        """Decode on to frame 1: frames must come out with the timestamps the index expects."""
        if len(self._index.pts) > 1 and self._decode_to(1) is None:
            raise MediaError(
                f"{self._path}: frames do not come out in timestamp order (damaged file, or B-frames in "
                "an AVI); re-encode it, e.g. ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4"
            )

    def read(self, index: int) -> np.ndarray:
        if self._last is not None and self._last[0] == index:
            return self._last[1].copy()
        image = _to_bgr(self._decoded_frame(index), self._to_bgr)
        if self.rotation:
            image = cv2.rotate(image, _ROTATE[self.rotation])
        self._last = (index, image)
        return image.copy()

    def read_yuv(self, index: int, yuv: YuvColour) -> Yuv420Frame:
        return _to_yuv(self._decoded_frame(index), yuv, self._to_bgr).rotated(self.rotation)

    def _decoded_frame(self, index: int) -> VideoFrame:
        frame = self._decode_to(index)
        if frame is None:
            raise MediaError(
                f"{self._path}: frame {index} could not be decoded (truncated or damaged file?); "
                "re-export the video"
            )
        return frame

    def missing_frames(self) -> list[int]:
        seen = set()
        if self._decode_to(0) is not None:  # positioned on frame 0; then decode straight on
            seen.add(0)
            assert self._decoded is not None
            seen.update(position for position, _ in self._decoded)
        self._decoded = None  # the next read seeks afresh
        return sorted(set(range(len(self._index.pts))) - seen)

    def keyframes(self) -> np.ndarray:
        starts = np.searchsorted(self._index.pts, self._index.key_pts, side="left")
        return np.unique(starts[starts < len(self._index.pts)]).astype(np.int64)

    def close(self) -> None:
        self._decoded = None
        self._container.close()

    def _decode_to(self, index: int) -> VideoFrame | None:
        """Frame `index`: continue decoding if it lies ahead in the current GOP, else seek and decode."""
        if self._decoded is not None and self._position == index:
            return self._frame
        key = self._keyframe_for(index)
        target_pts = int(self._index.pts[index]) if self._index.from_packets else None
        if self._continues_to(index):
            self._skip_until = target_pts if target_pts not in self._sent else None
            frame = self._advance_to(index)
            if frame is not None:
                return frame
        # Seek to the keyframe at or before the target by its pts, then, should the demuxer land
        # after the target (mp4 seeks by dts), by its dts and then by ever earlier keyframes.
        if key >= 0:
            keys = self._index
            targets = [int(keys.key_pts[key]), int(keys.key_dts[key])]
            targets += [int(keys.key_dts[k]) for k in (key - 1, 0) if k >= 0]
        else:
            targets = [int(self._index.pts[0])]
        for target in dict.fromkeys(targets):
            self.seeks += 1
            self._sent.clear()
            self._skip_until = target_pts
            try:
                self._container.seek(target, backward=True, any_frame=False, stream=self._stream)
            except av.FFmpegError:
                continue
            self._decoded = self._decode_forward()
            self._position = -1
            frame = self._advance_to(index)
            if frame is not None:
                return frame
        self._decoded = None
        return None

    def reach(self, index: int) -> int | None:
        if (self._last is not None and self._last[0] == index) or (
            self._decoded is not None and self._position == index
        ):
            return 0
        return index - self._position if self._continues_to(index) else None

    def _continues_to(self, index: int) -> bool:
        """Whether decoding on from where we are reaches `index` without a seek: it costs less when we
        are already in the target's GOP (or just before its keyframe), so sequential reads never seek."""
        key = self._keyframe_for(index)
        start_frame = self._first_frame_at_or_after(self._index.key_pts[key]) if key >= 0 else 0
        return self._decoded is not None and start_frame - 1 <= self._position < index

    def _advance_to(self, index: int) -> VideoFrame | None:
        """Decode forward to frame `index`; None when the decoder passes it or ends without it."""
        assert self._decoded is not None
        for position, frame in self._decoded:
            self._position, self._frame = position, frame
            if position == index:
                return frame
            if position > index:
                break
        self._decoded = None
        return None

    def _decode_forward(self) -> Iterator[tuple[int, VideoFrame]]:
        """Frames from the demuxer's position on, each tagged with its index (frames not indexed skipped).

        Until the packet of the frame being sought (`_skip_until`) is sent, the decoder drops frames no
        other frame references: they cannot be the target nor change it, and skipping them makes seeks
        ~40% faster. A later read of a dropped frame finds it missing and seeks for it.
        """
        context = self._stream.codec_context
        try:
            for packet in self._container.demux(self._stream):
                if packet.pts is not None:
                    self._sent.add(packet.pts)
                    if packet.pts == self._skip_until:
                        self._skip_until = None
                context.skip_frame = "NONREF" if self._skip_until is not None else "DEFAULT"
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue  # a damaged packet: its frame is missing, the read that wants it fails
                for frame in frames:
                    position = self._frame_of_pts.get(frame.pts) if frame.pts is not None else None
                    if position is not None:
                        yield position, frame
        except av.FFmpegError:
            return

    def _keyframe_for(self, index: int) -> int:
        """Position in the keyframe list of the last keyframe shown at or before frame `index`."""
        return int(np.searchsorted(self._index.key_pts, self._index.pts[index], side="right")) - 1

    def _first_frame_at_or_after(self, pts: int) -> int:
        return int(np.searchsorted(self._index.pts, pts, side="left"))


def _open_file(path: Path) -> VideoReader:
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as error:
        reason = error.strerror or type(error).__name__
        raise MediaError(
            f"{path}: not a readable video ({reason}); check it is a complete mp4, mov, mkv, webm or avi"
        ) from None
    try:
        return _reader_for_container(path, container)
    except BaseException:
        container.close()
        raise


def _reader_for_container(path: Path, container: InputContainer) -> VideoReader:
    if not container.streams.video or container.format.name == "tty":
        raise MediaError(f"{path}: has no video stream; use an mp4, mov, mkv, webm or avi file")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads: output order and pixels are unchanged
    index = _index_packets(container, stream) or _index_by_decoding(path, container, stream)
    if len(index.pts) == 0:
        raise MediaError(f"{path}: no video frames found (truncated or damaged file?); re-export it")
    source = _FileSource(path, container, stream, index)
    first = source.first_frame()
    rotation = round(first.rotation / 90) * 90 % 360
    source.rotation = rotation
    source.read(0)  # cached, upright
    source.check_order()
    width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
    timing = _Timing.of(index, stream)
    info = VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=timing.fps,
        variable_fps=timing.variable,
        frame_count=len(index.pts),
        duration=timing.duration,
        rotation=rotation,
        has_audio=bool(container.streams.audio),
        is_image_sequence=False,
        yuv420=(_yuv_colour(first) or BT709_LIMITED) if width % 2 == 0 and height % 2 == 0 else None,
    )
    return VideoReader(info, timing.timestamps, source)


@dataclass(frozen=True)
class _Timing:
    """A stream's frame times, rate and duration, worked out in exact fractions of its time base."""

    timestamps: np.ndarray
    fps: Fraction
    variable: bool
    duration: float

    @classmethod
    def of(cls, index: _PacketIndex, stream: VideoStream) -> _Timing:
        time_base = stream.time_base or Fraction(1, 1)
        exact = [Fraction(int(p - index.pts[0])) * time_base for p in index.pts]
        durations = np.diff(index.pts)
        variable = _is_variable(durations)
        fps = _average_fps(exact, stream.average_rate, variable)
        last = index.last_duration or (int(np.median(durations)) if len(durations) else 0)
        duration = exact[-1] + (last * time_base if last else 1 / fps)
        timestamps = np.array([float(t) for t in exact], dtype=np.float64)
        return cls(timestamps, fps, variable, float(duration))


def _is_variable(durations: np.ndarray) -> bool:
    """True when some frame lasts noticeably longer or shorter than the typical one."""
    if len(durations) < 2:
        return False
    median = float(np.median(durations))
    allowed = max(_VFR_TOLERANCE * median, 1.0)  # one tick of slack for rounded timestamps
    return bool(np.any(np.abs(durations - median) > allowed))


def _average_fps(exact: list[Fraction], container_rate: Fraction | None, variable: bool) -> Fraction:
    """The container's rate for constant-rate clips, else frames per second over the span."""
    if not variable and container_rate:
        return Fraction(container_rate)
    if len(exact) < 2 or exact[-1] <= 0:
        return Fraction(container_rate) if container_rate else Fraction(DEFAULT_SEQUENCE_FPS)
    return (Fraction(len(exact) - 1) / exact[-1]).limit_denominator(1001)


# --- frame folders -----------------------------------------------------------------------------------


class _SequenceSource:
    """Frames of a folder, read with OpenCV (EXIF orientation ignored, like ffmpeg's image2)."""

    def __init__(self, files: list[Path], size: tuple[int, int]) -> None:
        self._files = files
        self._size = size

    def read(self, index: int) -> np.ndarray:
        file = self._files[index]
        # imdecode, not imread: ultralytics replaces cv2.imread process-wide with a PIL fallback
        try:
            data = np.fromfile(file, np.uint8)
        except OSError:
            data = np.zeros(0, np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
        if image is None:
            raise MediaError(f"{file}: cannot be read as an image; replace or remove it")
        if (image.shape[1], image.shape[0]) != self._size:
            raise MediaError(
                f"{file}: is {image.shape[1]}x{image.shape[0]}, the other frames are "
                f"{self._size[0]}x{self._size[1]}; resize it or remove it"
            )
        return image

    def read_yuv(self, index: int, yuv: YuvColour) -> Yuv420Frame:
        return Yuv420Frame.from_bgr(self.read(index), yuv)

    def missing_frames(self) -> list[int]:
        missing = []
        for index in range(len(self._files)):
            try:
                self.read(index)
            except MediaError:
                missing.append(index)
        return missing

    def keyframes(self) -> np.ndarray:
        return np.arange(len(self._files), dtype=np.int64)

    def reach(self, index: int) -> int | None:
        return 0  # every frame is its own file

    def close(self) -> None:
        pass


def _natural_key(path: Path) -> list[int | str]:
    """Sort `frame2.png` before `frame10.png`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _image_size(file: Path) -> tuple[int, int]:
    """Width and height from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError  # ultralytics/torchvision dependency

    try:
        with Image.open(file) as image:
            return image.size
    # ImportError: ultralytics patches Image.open to try an optional HEIF plugin on unknown files
    except (OSError, UnidentifiedImageError, ImportError):
        raise MediaError(f"{file}: cannot be read as an image; replace or remove it") from None


def _open_sequence(folder: Path, fps: float | None) -> VideoReader:
    files = sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()), key=_natural_key
    )
    if not files:
        raise MediaError(f"{folder}: no .jpg, .jpeg or .png frames in this folder; point to a frame folder")
    rate = Fraction(DEFAULT_SEQUENCE_FPS) if fps is None else Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise MediaError(f"{folder}: fps={fps} is not a positive frame rate; pass e.g. fps=25")
    sizes: dict[tuple[int, int], Path] = {}
    for file in files:
        sizes.setdefault(_image_size(file), file)
    if len(sizes) > 1:
        (size_a, file_a), (size_b, file_b) = list(sizes.items())[:2]
        raise MediaError(
            f"{folder}: frames differ in size ({file_a.name} is {size_a[0]}x{size_a[1]}, {file_b.name} is "
            f"{size_b[0]}x{size_b[1]}); resize them to one size"
        )
    width, height = next(iter(sizes))
    count = len(files)
    info = VideoInfo(
        path=folder,
        width=width,
        height=height,
        fps=rate,
        variable_fps=False,
        frame_count=count,
        duration=float(count / rate),
        rotation=0,
        has_audio=False,
        is_image_sequence=True,
        yuv420=BT709_LIMITED if width % 2 == 0 and height % 2 == 0 else None,
    )
    timestamps = np.array([float(n / rate) for n in range(count)], dtype=np.float64)
    return VideoReader(info, timestamps, _SequenceSource(files, (width, height)))
