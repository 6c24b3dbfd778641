"""The preview copy: the source's frames and timing, with a keyframe every PREVIEW_GOP frames."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from smartfocus.media.proxy import PREVIEW_GOP, preview_copy_steps
from smartfocus.media.reader import open_video
from smartfocus.progress import drive


def test_the_preview_copy_is_the_source_frame_for_frame_and_seeks_in_short_steps(
    juggle_clip: Path, tmp_path: Path
) -> None:
    """The juggle sample has one keyframe in 247 frames (the worst case for scrubbing)."""
    copy = tmp_path / "preview.mp4"
    reports: list[tuple[int, int]] = []
    with open_video(juggle_clip) as source:
        drive(preview_copy_steps(source, copy), lambda done, total: reports.append((done, total)))
        assert reports[-1] == (len(source), len(source))
        with open_video(copy) as preview:
            assert len(preview) == len(source) == 247
            assert (preview.info.width, preview.info.height) == (source.info.width, source.info.height)
            np.testing.assert_allclose(preview.timestamps, source.timestamps, atol=1e-3)
            for index in (0, 5, 123, 246):
                difference = np.abs(preview.read(index).astype(int) - source.read(index).astype(int))
                assert difference.mean() < 2.0, (index, difference.mean())  # x264 at crf 20: near-lossless
    with av.open(str(copy)) as container:
        keyframes = [n for n, packet in enumerate(container.demux(video=0)) if packet.is_keyframe]
    assert keyframes == list(range(0, 247, PREVIEW_GOP))
    assert not list(tmp_path.glob(".*partial*"))
