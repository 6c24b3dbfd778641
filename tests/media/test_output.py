"""The rendered file's quality and size: named CRFs whose files are the sizes their names say, and a
downscale that keeps every frame, timestamp and audio packet of the source."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from smartfocus.errors import SmartfocusError
from smartfocus.media import VideoWriter, open_video, transcode
from smartfocus.media.output import OutputFormat


def _audio_packets(path: Path) -> list[tuple[bytes, int | None]]:
    with av.open(str(path)) as container:
        track = container.streams.audio[0]
        return [(bytes(p), p.duration) for p in container.demux(track) if p.size]


@pytest.fixture(scope="module")
def dog_480p(dog_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 720p dog sample transcoded at the small quality, 480 pixels high."""
    with open_video(dog_clip) as reader:  # its planes: the writer scales Yuv420Frames
        return transcode(
            reader, tmp_path_factory.mktemp("output") / "dog.mp4", output_format=OutputFormat("small", 480)
        )


def test_a_height_scales_down_and_keeps_frames_timing_and_audio(dog_clip: Path, dog_480p: Path) -> None:
    with open_video(dog_clip) as source, open_video(dog_480p) as scaled:
        assert (scaled.info.width, scaled.info.height) == (854, 480)  # 1280 * 480 / 720, made even
        assert len(scaled) == len(source) == 289
        assert scaled.info.fps == source.info.fps
        assert np.allclose(scaled.timestamps, source.timestamps, rtol=0, atol=1e-6)
        for index in (1, 144, 287):  # the same picture, scaled, and not a neighbour's
            written = scaled.read(index).astype(int)
            difference = [
                np.abs(written - cv2.resize(source.read(i), (854, 480), interpolation=cv2.INTER_AREA)).mean()
                for i in (index - 1, index, index + 1)
            ]
            assert difference[1] < 5 and difference[1] < min(difference[0], difference[2]), f"frame {index}"
    assert _audio_packets(dog_480p) == _audio_packets(dog_clip)  # AAC copied packet for packet


def test_quality_names_order_the_file_sizes(davis_dir: Path, tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(24):
        (frames / f"{index:05d}.jpg").symlink_to(davis_dir / "bear" / "frames" / f"{index:05d}.jpg")
    sizes = {}
    with open_video(frames) as reader:
        for quality in ("high", "standard", "small"):
            output = transcode(reader, tmp_path / f"{quality}.mp4", output_format=OutputFormat(quality))
            sizes[quality] = output.stat().st_size
            with av.open(str(output)) as container:
                assert (container.streams.video[0].width, container.streams.video[0].height) == (854, 480)
    assert sizes["high"] > 1.1 * sizes["standard"] and sizes["small"] < 0.6 * sizes["standard"], sizes


def test_bgr_frames_are_scaled_too(davis_dir: Path, tmp_path: Path) -> None:
    """A transform gets BGR frames; the writer scales them (area filter) as it encodes."""
    with open_video(davis_dir / "bear" / "frames") as reader:
        output = transcode(
            reader,
            tmp_path / "inverted.mp4",
            transform=lambda _, f: 255 - f,
            output_format=OutputFormat(height=240),
        )
        with open_video(output) as result:
            assert (result.info.width, result.info.height, len(result)) == (428, 240, 82)  # 427, even
            expected = cv2.resize(255 - reader.read(10), (428, 240), interpolation=cv2.INTER_AREA)
            assert np.abs(result.read(10).astype(int) - expected).mean() < 6


def test_an_odd_sized_source_scales_to_even_sides(tmp_path: Path) -> None:
    size = OutputFormat(height=64).size_for(101, 75)
    assert size == (86, 64)
    with VideoWriter(tmp_path / "odd.mp4", 101, 75, Fraction(25), size=size) as writer:
        for _ in range(3):
            writer.write(np.full((75, 101, 3), (40, 120, 200), np.uint8))
    with open_video(tmp_path / "odd.mp4") as reader:
        assert (reader.info.width, reader.info.height, len(reader)) == (86, 64, 3)
        assert np.abs(reader.read(1).astype(int) - (40, 120, 200)).max() <= 3


def test_output_format_sizes_and_refusals() -> None:
    assert OutputFormat().crf == 18 and OutputFormat().size_for(1280, 720) is None  # today's output
    assert OutputFormat(height=720).size_for(1280, 720) is None  # the source's own height: untouched
    assert OutputFormat(height=360).size_for(1280, 720) == (640, 360)
    assert OutputFormat(height=1080).size_for(1080, 1920) == (608, 1080)  # portrait: aspect kept
    with pytest.raises(SmartfocusError, match="above the video's 720 pixels; renders only scale down"):
        OutputFormat(height=1080).size_for(1280, 720)
    for height in (62, 481, 0, -2, 10_000, True, 720.0):
        with pytest.raises(SmartfocusError, match="even number of pixels from 64") as raised:
            OutputFormat(height=height)  # type: ignore[arg-type]
        assert "\n" not in str(raised.value)
    with pytest.raises(SmartfocusError, match="use one of high, standard, small"):
        OutputFormat("best")  # type: ignore[arg-type]


def test_the_writer_refuses_a_size_it_cannot_encode(tmp_path: Path) -> None:
    for size in ((63, 48), (66, 48), (64, 50)):
        with pytest.raises(ValueError, match="output size must be even and at most 64x48"):
            VideoWriter(tmp_path / "out.mp4", 64, 48, Fraction(25), size=size)
    assert list(tmp_path.iterdir()) == []
