"""Reading real footage: frame-exact random access, rotation, edit lists, frame folders, bad inputs."""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from smartfocus.errors import MediaError
from smartfocus.media import VideoReader, open_video
from smartfocus.media import reader as reader_module
from smartfocus.media.colour import i420_to_bgr
from smartfocus.media.yuv import BT709_LIMITED, Yuv420Frame, YuvColour


def _keyframe_indices(reader: VideoReader) -> list[int]:
    """Display indices of the keyframes, found independently of the reader by demuxing."""
    if reader.info.is_image_sequence:
        return []
    with av.open(str(reader.info.path)) as container:
        stream = container.streams.video[0]
        keys = [p.pts for p in container.demux(stream) if p.is_keyframe and p.pts is not None]
        first = min(p for p in keys)
        seconds = [float((k - first) * stream.time_base) for k in keys]
    return [int(np.argmin(np.abs(reader.timestamps - s))) for s in seconds if s >= 0]


def _probe_indices(reader: VideoReader, count: int = 10) -> list[int]:
    """Frames worth reading randomly: ends, keyframes and their neighbours, and a spread between."""
    last = len(reader) - 1
    picks = {0, 1, last - 1, last, last // 2}
    for key in _keyframe_indices(reader):
        picks.update({key - 1, key, key + 1})
    picks.update(np.linspace(0, last, count).astype(int).tolist())
    return sorted(i for i in picks if 0 <= i <= last)


def _digest(frame: np.ndarray) -> str:
    return hashlib.sha1(frame.tobytes()).hexdigest()


def _assert_random_equals_sequential(path: Path) -> None:
    """Frames read in shuffled order, each followed by the next two, equal a straight decode."""
    with open_video(path) as reader:
        sequential = [_digest(frame) for _, frame in reader.frames()]
        order = _probe_indices(reader)
    random.Random(7).shuffle(order)
    with open_video(path) as reader:
        for index in order:
            for following in range(index, min(index + 3, len(sequential))):
                assert _digest(reader.read(following)) == sequential[following], f"{path.name}: {following}"


def test_dog_clip_info(dog_clip: Path) -> None:
    with open_video(dog_clip) as reader:
        info = reader.info
        assert (info.width, info.height, info.frame_count, len(reader)) == (1280, 720, 289, 289)
        assert info.fps == Fraction(30000, 1001) and not info.variable_fps
        assert info.duration == pytest.approx(289 * 1001 / 30000, abs=1e-6)
        assert info.has_audio and not info.is_image_sequence and info.rotation == 0
        assert reader.timestamps[0] == 0.0
        assert np.allclose(np.diff(reader.timestamps), 1001 / 30000)
        frame = reader.read(0)
        assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8


def test_juggle_clip_info(juggle_clip: Path) -> None:
    with open_video(juggle_clip) as reader:
        info = reader.info
        assert (info.width, info.height, info.frame_count, info.fps) == (1280, 720, 247, Fraction(24))
        assert not info.has_audio


def test_index_matches_a_full_decode(dog_clip: Path) -> None:
    """The packet index (no decoding) lists exactly the frames a decoder shows, in order and pixels."""
    with av.open(str(dog_clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = list(container.decode(stream))
        time_base = stream.time_base
    with open_video(dog_clip) as reader:
        expected = [float((f.pts - decoded[0].pts) * time_base) for f in decoded]
        assert np.allclose(reader.timestamps, expected, atol=1e-9)
        for index, frame in reader.frames():
            if index % 16 == 0:
                reference = frame_to_bgr(decoded[index])
                assert np.array_equal(frame, reference), f"frame {index}"


def frame_to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """The decoded frame's exact pixels, converted as the reader converts 8-bit 4:2:0 BT.709."""
    return i420_to_bgr(frame.to_ndarray(), frame.colorspace, frame.color_range)


@pytest.mark.parametrize("clip", ["dog_clip", "juggle_clip"])
def test_random_reads_equal_sequential_reads(clip: str, request: pytest.FixtureRequest) -> None:
    _assert_random_equals_sequential(request.getfixturevalue(clip))


def test_random_reads_equal_sequential_reads_in_a_frame_folder(davis_dir: Path) -> None:
    _assert_random_equals_sequential(davis_dir / "bear" / "frames")


def test_sequential_reads_never_seek(dog_clip: Path) -> None:
    with open_video(dog_clip) as reader:
        seeks = reader._source.seeks  # type: ignore[attr-defined]
        assert sum(1 for _ in reader.frames()) == 289
        assert reader._source.seeks == seeks  # type: ignore[attr-defined]
        reader.read(200)  # a jump into the second GOP seeks once, to its keyframe
        assert reader._source.seeks == seeks + 1  # type: ignore[attr-defined]


def test_reach_says_how_far_a_read_decodes_on_without_seeking(dog_clip: Path) -> None:
    with open_video(dog_clip) as reader:
        reader.read(10)
        assert (reader.reach(10), reader.reach(13)) == (0, 3)
        assert reader.reach(5) is None  # behind: it would seek
        assert reader.reach(260) is None  # the next GOP: it would seek to its keyframe
        seeks = reader._source.seeks  # type: ignore[attr-defined]
        reader.read(13)
        assert reader._source.seeks == seeks  # type: ignore[attr-defined]


def test_read_rejects_out_of_range(dog_clip: Path) -> None:
    with open_video(dog_clip) as reader, pytest.raises(IndexError, match="out of range"):
        reader.read(289)


@pytest.fixture(scope="module")
def edit_list_clip(dog_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dog clip remuxed with its first 40 frames before t=0, which mp4 hides with an edit list."""
    path = tmp_path_factory.mktemp("editlist") / "edit_list.mp4"
    with av.open(str(dog_clip)) as source, av.open(str(path), "w") as output:
        video = source.streams.video[0]
        stream = output.add_stream_from_template(video)
        shift = 40 * 1001
        for packet in source.demux(video):
            if packet.size:
                packet.pts -= shift
                packet.dts -= shift
                packet.stream = stream
                output.mux(packet)
    return path


def test_edit_list_frames_are_hidden_and_exact(edit_list_clip: Path, dog_clip: Path) -> None:
    with open_video(edit_list_clip) as reader, open_video(dog_clip) as original:
        assert len(reader) == 249 and reader.timestamps[0] == 0.0
        for index in (248, 0, 120, 5):
            assert np.array_equal(reader.read(index), original.read(index + 40)), f"frame {index}"


def _rotated_clip(source: Path, path: Path, degrees: int, frames: int) -> list[np.ndarray]:
    """Re-encode the first frames of `source` with a display matrix; returns the unrotated frames."""
    originals = []
    with av.open(str(source)) as clip, av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=24, options={"crf": "12", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.set_display_rotation(degrees)
        for frame in clip.decode(video=0):
            originals.append(frame_to_bgr(frame))
            output.mux(stream.encode(frame))
            if len(originals) == frames:
                break
        output.mux(stream.encode(None))
    return originals


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_video_comes_out_upright(juggle_clip: Path, tmp_path: Path, degrees: int) -> None:
    originals = _rotated_clip(juggle_clip, tmp_path / f"rot{degrees}.mp4", degrees, frames=6)
    with open_video(tmp_path / f"rot{degrees}.mp4") as reader:
        assert reader.info.rotation == degrees
        upright = np.rot90(originals[0], k=degrees // 90)  # display matrix angles are counter-clockwise
        assert (reader.info.height, reader.info.width) == upright.shape[:2]
        for index in (5, 0, 3):
            frame = reader.read(index)
            expected = np.rot90(originals[index], k=degrees // 90)
            assert frame.shape == expected.shape
            assert np.abs(frame.astype(int) - expected).mean() < 3, f"frame {index}"
            # The planes are turned alike: the same picture as the BGR read (up to the chroma
            # interpolation's fixed-point rounding, which is not the same in both orientations).
            planes = reader.read_yuv(index)
            assert (planes.height, planes.width) == frame.shape[:2]
            difference = np.abs(planes.to_bgr().astype(int) - frame)
            assert difference.mean() < 0.25 and difference.max() <= 4, f"frame {index}"


def test_yuv_planes_are_the_decoded_frames(dog_clip: Path) -> None:
    """`read_yuv` gives the decoder's own planes (what `read` converts), in any order."""
    with open_video(dog_clip) as reader:
        assert reader.info.yuv420 == YuvColour(colorspace=1, full_range=False)
        bgr = {index: reader.read(index) for index in (200, 3, 120)}
        for index in (120, 3, 200):
            planes = reader.read_yuv(index)
            assert planes.data.shape == (1080, 1280) and planes.colour == reader.info.yuv420
            np.testing.assert_array_equal(planes.to_bgr(), bgr[index])
            # A small copy made plane by plane is the full frame, shrunk.
            small = cv2.resize(bgr[index], (320, 180), interpolation=cv2.INTER_LINEAR).astype(int)
            assert np.abs(planes.resized_bgr((320, 180)).astype(int) - small).mean() < 1.0
        small = dict(reader.small_frames((320, 180), cv2.INTER_AREA))
        assert len(small) == len(reader)
        expected = cv2.resize(bgr[120], (320, 180), interpolation=cv2.INTER_AREA).astype(int)
        assert np.abs(small[120].astype(int) - expected).mean() < 1.0
        streamed = dict(reader.yuv_frames(10, 13))
        assert sorted(streamed) == [10, 11, 12]
        np.testing.assert_array_equal(streamed[11].data, reader.read_yuv(11).data)


def test_yuv_planes_of_frame_folders_and_odd_sizes(davis_dir: Path, tmp_path: Path) -> None:
    with open_video(davis_dir / "bear" / "frames") as reader:  # 854x480 jpgs: converted to BT.709
        assert reader.info.yuv420 == BT709_LIMITED
        frame = reader.read(4)
        np.testing.assert_array_equal(reader.read_yuv(4).data, Yuv420Frame.from_bgr(frame).data)
    odd = tmp_path / "odd"
    odd.mkdir()
    cv2.imwrite(str(odd / "0.png"), np.zeros((75, 101, 3), np.uint8))
    with open_video(odd) as reader:
        assert reader.info.yuv420 is None
        with pytest.raises(ValueError, match="even sides"):
            reader.read_yuv(0)


def test_frame_folder(davis_dir: Path) -> None:
    folder = davis_dir / "bear" / "frames"
    with open_video(folder) as reader:
        info = reader.info
        assert info.is_image_sequence and not info.has_audio
        assert (info.width, info.height, info.fps) == (854, 480, Fraction(25))
        assert info.frame_count == len(list(folder.glob("*.jpg")))
        assert np.array_equal(reader.read(3), cv2.imread(str(folder / "00003.jpg")))
    with open_video(folder, fps=10) as reader:
        assert reader.info.fps == 10 and reader.timestamps[5] == pytest.approx(0.5)


def test_frame_folder_sorts_numbers_naturally(tmp_path: Path) -> None:
    for number in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"f{number}.png"), np.full((8, 6, 3), number, np.uint8))
    with open_video(tmp_path) as reader:
        assert [int(frame[0, 0, 0]) for _, frame in reader.frames()] == [1, 2, 10]


def _assert_media_error(path: Path, *words: str) -> None:
    with pytest.raises(MediaError) as raised:
        open_video(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_missing_path(tmp_path: Path) -> None:
    _assert_media_error(tmp_path / "nope.mp4", "no such file")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 20)
    _assert_media_error(path, "not a readable video")


def test_truncated_file(dog_clip: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(dog_clip.read_bytes()[:20_000])
    _assert_media_error(path, "truncated")


def test_empty_folder(tmp_path: Path) -> None:
    _assert_media_error(tmp_path, "no .jpg")


def test_folder_with_mixed_frame_sizes(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "00000.png"), np.zeros((8, 6, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "00001.png"), np.zeros((10, 6, 3), np.uint8))
    _assert_media_error(tmp_path, "differ in size")


def test_folder_with_an_unreadable_frame(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "00000.png"), np.zeros((8, 6, 3), np.uint8))
    (tmp_path / "00001.png").write_bytes(b"not a png")
    with pytest.raises(MediaError, match=r"00001\.png: cannot be read"):
        open_video(tmp_path)


def test_index_from_decoding_when_packets_have_no_pts(
    dog_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Containers without packet pts (some AVI) are indexed by one decode pass and read just as exactly."""
    with open_video(dog_clip) as reader:
        expected = {i: _digest(reader.read(i)) for i in (288, 10, 251, 249)}
        timestamps = reader.timestamps
    monkeypatch.setattr(reader_module, "_index_packets", lambda container, stream: None)
    with open_video(dog_clip) as reader:
        assert np.array_equal(reader.timestamps, timestamps)
        for index, digest in expected.items():
            assert _digest(reader.read(index)) == digest, f"frame {index}"
