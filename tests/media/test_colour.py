"""The hand-written YUV <-> BGR conversions against swscale's accurate path, on real footage."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from smartfocus.media.colour import bgr_to_i420, i420_to_bgr
from smartfocus.media.reader import TO_BGR_FLAGS


@pytest.fixture(scope="module")
def dog_frames(dog_clip: Path) -> list[av.VideoFrame]:
    with av.open(str(dog_clip)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == 6:
                return frames
    raise AssertionError("the dog clip has fewer than 6 frames")


def test_decoding_matches_swscale_accurate(dog_frames: list[av.VideoFrame]) -> None:
    """BT.709 limited range (the sample's tags): same colours as swscale, no bias (which would drift)."""
    for frame in dog_frames:
        assert (frame.colorspace, frame.color_range) == (1, 1)
        ours = i420_to_bgr(frame.to_ndarray(), frame.colorspace, frame.color_range).astype(int)
        reference = frame.reformat(format="bgr24", interpolation=TO_BGR_FLAGS).to_ndarray().astype(int)
        assert np.abs(ours - reference).mean() < 0.6
        assert abs((ours - reference).mean()) < 0.2
        assert np.percentile(np.abs(ours - reference), 99) <= 4  # only chroma edges interpolate apart


def test_encoding_matches_swscale_accurate(dog_frames: list[av.VideoFrame]) -> None:
    for frame in dog_frames:
        bgr = frame.reformat(format="bgr24", interpolation=TO_BGR_FLAGS).to_ndarray()
        ours = bgr_to_i420(bgr, 1, 1).astype(int)
        reference = (
            av.VideoFrame.from_ndarray(bgr, format="bgr24")
            .reformat(
                format="yuv420p",
                dst_colorspace=Colorspace.ITU709,
                dst_color_range=ColorRange.MPEG,
                interpolation=Interpolation.AREA | Interpolation.ACCURATE_RND,
            )
            .to_ndarray()
            .astype(int)
        )
        assert np.abs(ours - reference).max() <= 1


@pytest.mark.parametrize(("colorspace", "color_range"), [(1, 1), (1, 2), (5, 1), (5, 2), (2, 1)])
def test_round_trip_keeps_luma_and_chroma(
    dog_frames: list[av.VideoFrame], colorspace: int, color_range: int
) -> None:
    """YUV -> BGR -> YUV gives back the decoded planes: re-encoding a clip does not shift its colours."""
    i420 = dog_frames[0].to_ndarray()
    back = bgr_to_i420(i420_to_bgr(i420, colorspace, color_range), colorspace, color_range).astype(int)
    luma = slice(0, i420.shape[0] * 2 // 3)
    difference = back - i420
    assert np.abs(difference[luma]).mean() < 0.01
    assert abs(difference.mean()) < 0.05
    assert np.abs(difference[luma.stop :]).mean() < 0.5  # chroma: interpolated, then averaged again


def test_full_range_uses_the_whole_byte() -> None:
    """Full-range black and white are 0 and 255 (limited range would lift and clip them)."""
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[:, 2:] = 255
    i420 = bgr_to_i420(bgr, 1, 2)
    assert i420[0, 0] == 0 and i420[0, 3] == 255
    limited = bgr_to_i420(bgr, 1, 1)
    assert limited[0, 0] == 16 and limited[0, 3] == 235
    assert np.array_equal(i420_to_bgr(limited, 1, 1), bgr)
