"""Receive an upload: stream the multipart body to a temp file under a size limit, then check it is
a video we can decode before it becomes one.

Hand-written on python-multipart's streaming parser because Starlette's form parsing spools the
whole file before the route runs, so it cannot refuse an oversized upload while it streams in.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from smartfocus.errors import MediaError
from smartfocus.media.reader import open_video
from smartfocus.server.errors import ApiError, storage_fault
from smartfocus.server.settings import Settings
from smartfocus.server.store import is_id

FIELD = b"file"
SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})


@dataclass(frozen=True)
class Received:
    path: Path
    filename: str  # the client's name, display only
    size: int


async def receive_file(
    content_type: str, body: AsyncIterator[bytes], folder: Path, limit: int, idle_timeout_s: float
) -> Received:
    """Write the multipart field `file` of the request body to `folder/upload` (at most `limit` bytes).

    Raises ApiError (413 too large, 400 malformed or no `file` field, 408 when no data arrives for
    `idle_timeout_s`: a stalled client must not hold a request and a half-written file for ever);
    the caller removes `folder`.
    """
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(
            415, "unsupported_media_type", "send the video as multipart/form-data in a field named 'file'"
        )
    state: dict[str, Any] = {"headers": {}, "field": b"", "value": b"", "out": None, "size": 0}
    target = folder / "upload"
    found: list[str] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if disposition.get(b"name") == FIELD and not found:
            found.append(disposition.get(b"filename", b"video.mp4").decode("utf-8", "replace"))
            state["out"] = target.open("wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        out: BinaryIO | None = state["out"]
        if out is not None:
            out.write(data[start:end])
            state["size"] += end - start

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
        state["headers"] = {}

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    received = 0
    chunks = aiter(body)
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), idle_timeout_s)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ApiError(
                    408, "upload_stalled", f"no data arrived for {idle_timeout_s:g} s; the upload was dropped"
                ) from None
            received += len(chunk)
            if received > limit + 64 * 1024:  # the multipart framing around the file is small
                raise ApiError(
                    413, "upload_too_large", f"the upload is larger than the limit of {_size(limit)}"
                )
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except Exception as error:  # python-multipart raises its own errors for broken framing
        if (fault := storage_fault(error)) is not None:  # the server's disk, not the upload
            raise fault from error
        raise ApiError(400, "malformed_upload", f"the multipart body could not be read: {error}") from error
    finally:
        if state["out"] is not None:
            state["out"].close()
    if not found:
        raise ApiError(400, "missing_file", "no field named 'file' in the upload; send the video as 'file'")
    if state["size"] > limit:
        raise ApiError(413, "upload_too_large", f"the upload is larger than the limit of {_size(limit)}")
    if state["size"] == 0:
        raise ApiError(422, "invalid_video", "the uploaded file is empty; choose a video file")
    suffix = Path(found[0]).suffix.lower()
    final = folder / f"source{suffix if suffix in SUFFIXES else '.mp4'}"
    target.rename(final)
    return Received(final, Path(found[0]).name or "video.mp4", state["size"])


def check_limits(info: dict[str, Any], settings: Settings) -> None:
    """Refuse (413, naming the limit) a video too long or too large to analyse here."""
    limits = (
        (
            info["frame_count"] > settings.max_frames,
            f"{info['frame_count']} frames; the limit is {settings.max_frames}",
        ),
        (
            info["width"] * info["height"] > settings.max_pixels,
            f"{info['width']}x{info['height']} pixels; the limit is {settings.max_pixels} per frame",
        ),
        (
            info["duration"] > settings.max_duration_s,
            f"{info['duration']:.0f} s long; the limit is {settings.max_duration_s:.0f} s",
        ),
    )
    for exceeded, what in limits:
        if exceeded:
            raise ApiError(413, "video_too_large", f"the video has {what}; trim or scale it down")


def probe(path: Path) -> dict[str, Any]:
    """The video's facts, after decoding its first and last frame (a truncated file fails here)."""
    try:
        with open_video(path) as reader:
            reader.read(0)
            reader.read(len(reader) - 1)
            info = reader.info
    except MediaError as error:
        raise ApiError(
            422, "invalid_video", f"not a video we can decode: {_strip(str(error), path)}"
        ) from error
    except Exception as error:  # PyAV/FFmpeg errors on damaged files
        raise ApiError(
            422,
            "invalid_video",
            f"not a video we can decode ({type(error).__name__}); upload an mp4, mov, mkv, webm or avi file",
        ) from error
    if info.frame_count < 1:
        raise ApiError(422, "invalid_video", "the video has no frames")
    return {
        "width": info.width,
        "height": info.height,
        "fps": float(info.fps),
        "frame_count": info.frame_count,
        "duration": info.duration,
        "has_audio": info.has_audio,
    }


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def remove_orphans(videos_dir: Path, known: set[str]) -> list[str]:
    """Remove the upload folders no stored video owns (a process killed mid-upload leaves one);
    their ids. Only folders named like our ids are touched."""
    orphans = [f for f in videos_dir.iterdir() if f.is_dir() and is_id(f.name) and f.name not in known]
    for folder in orphans:
        remove(folder)
    return [folder.name for folder in orphans]


def _strip(message: str, path: Path) -> str:
    """Server paths are none of the client's business."""
    return message.replace(f"{path}: ", "").replace(str(path), "the upload")


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:g} {unit}" if unit == "bytes" else f"{count:.1f} {unit}".replace(".0 ", " ")
        count /= 1024
    return str(count)
