"""Render a video with a focus timeline: decode, composite each frame, encode, export mattes.

This is where the layers meet: media (frames in and out), focus (which pixels are the subject and
how strong the blur is) and the compositor (how it looks). It runs no inference.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from smartfocus.errors import MediaError
from smartfocus.focus.timeline import FocusTimeline
from smartfocus.media.reader import VideoReader
from smartfocus.media.transcode import Frame, transcode
from smartfocus.render.compositor import LensSettings
from smartfocus.render.frame import focus_frame
from smartfocus.render.matte import MatteStabilizer

ProgressCallback = Callable[[int, int], None]


def render_video(
    reader: VideoReader,
    output: Path,
    timeline: FocusTimeline | None,
    lens: LensSettings,
    *,
    refine: bool = True,
    matte_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write `output` (H.264 with the source's audio and timing) and, with `matte_dir`, one 8-bit PNG
    matte per frame (`00000.png`, 255 = subject). Without a timeline the video is only transcoded.

    Outputs appear only when complete: the video through the writer's temp file, the mattes in a
    temp folder renamed at the end.
    """
    if timeline is None:
        return transcode(reader, output, progress=progress)
    size = (reader.info.width, reader.info.height)
    matte_tmp = _prepare_matte_dir(matte_dir) if matte_dir else None
    stabilizer = MatteStabilizer()

    def render_frame(index: int, frame: Frame) -> Frame:
        focused = focus_frame(frame, timeline.state(index), lens, refine=refine, stabilizer=stabilizer)
        if matte_tmp is not None:
            png = np.clip(focused.subject_matte(size) * 255 + 0.5, 0, 255).astype(np.uint8)
            cv2.imwrite(str(matte_tmp / f"{index:05d}.png"), png)
        return focused.image

    try:
        planar = reader.info.yuv420 is not None  # the render works on planes wherever it can
        transcode(reader, output, transform=render_frame, yuv=planar, progress=progress)
    except BaseException:
        if matte_tmp is not None:
            shutil.rmtree(matte_tmp, ignore_errors=True)
        raise
    if matte_tmp is not None and matte_dir is not None:
        shutil.rmtree(matte_dir, ignore_errors=True)
        os.replace(matte_tmp, matte_dir)
    return output


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
