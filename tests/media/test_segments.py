"""Segments encoded apart join into the file a one-piece encode makes: frames, timing, audio."""

from pathlib import Path

import av
import numpy as np
import pytest

from smartfocus.errors import MediaError
from smartfocus.media.reader import open_video
from smartfocus.media.segments import SegmentJoiner
from smartfocus.media.writer import VideoWriter

FRAMES = 60
CUT = 25  # not a source keyframe: a segment may start anywhere


def _encode(clip: Path, target: Path, start: int, stop: int, *, audio: bool = False) -> Path:
    with open_video(clip) as reader:
        info = reader.info
        assert info.yuv420 is not None
        with VideoWriter(
            target,
            info.width,
            info.height,
            info.fps,
            timestamps=reader.timestamps[:FRAMES],
            start=start,
            audio_source=clip if audio else None,
            colorspace=info.yuv420.colorspace,
        ) as writer:
            for _, frame in reader.yuv_frames(start, stop):
                writer.write(frame)
    return target


def _audio(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.fixture(scope="module")
def segments(dog_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("segments")
    return _encode(dog_clip, folder / "a.mp4", 0, CUT), _encode(dog_clip, folder / "b.mp4", CUT, FRAMES)


def test_joined_segments_have_the_one_piece_timing_and_audio(
    dog_clip: Path, segments: tuple[Path, Path], tmp_path: Path
) -> None:
    whole = _encode(dog_clip, tmp_path / "whole.mp4", 0, FRAMES, audio=True)
    with open_video(dog_clip) as reader:
        timestamps = reader.timestamps[:FRAMES]
    with SegmentJoiner(tmp_path / "joined.mp4", timestamps, audio_source=dog_clip) as joiner:
        assert [joiner.add(segment) for segment in segments] == [CUT, FRAMES - CUT]
    with open_video(whole) as one, open_video(tmp_path / "joined.mp4") as joined:
        assert len(joined) == len(one) == FRAMES
        assert np.array_equal(joined.timestamps, one.timestamps)
        assert joined.keyframes().tolist() == [0, CUT]  # each segment opens on its IDR frame
        # the first segment's frames before x264's lookahead reaches its end decode identically
        assert all(np.array_equal(joined.read(i), one.read(i)) for i in range(0, CUT - 12, 4))
    assert _audio(tmp_path / "joined.mp4") == _audio(whole)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["joined.mp4", "whole.mp4"]


def test_a_join_missing_frames_or_out_of_order_leaves_nothing(
    dog_clip: Path, segments: tuple[Path, Path], tmp_path: Path
) -> None:
    with open_video(dog_clip) as reader:
        timestamps = reader.timestamps[:FRAMES]
    joiner = SegmentJoiner(tmp_path / "short.mp4", timestamps)
    joiner.add(segments[0])
    with pytest.raises(MediaError, match=f"{CUT} of {FRAMES} frames were joined"):
        joiner.close()
    with (
        pytest.raises(MediaError, match="out of order"),
        SegmentJoiner(tmp_path / "twice.mp4", timestamps) as twice,
    ):
        twice.add(segments[0])
        twice.add(segments[0])
    assert list(tmp_path.iterdir()) == []
