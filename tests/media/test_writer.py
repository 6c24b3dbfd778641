"""Writing real footage: browser-ready mp4, same frames and timing, audio kept in sync, atomic output."""

from __future__ import annotations

import random
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from smartfocus.errors import MediaError
from smartfocus.media import VideoWriter, open_video, transcode
from smartfocus.media.yuv import YuvColour


def _top_level_boxes(path: Path) -> list[str]:
    """The mp4's top-level box types in file order (ftyp, moov, mdat, ...)."""
    boxes, data, offset = [], path.read_bytes(), 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size == 0:
            break
        offset += size
    return boxes


def _stream_span(path: Path, kind: str) -> float | None:
    """Seconds from the first packet's start to the last packet's end of the first `kind` stream."""
    with av.open(str(path)) as container:
        streams = getattr(container.streams, kind)
        if not streams:
            return None
        stream = streams[0]
        spans = [(p.pts, p.pts + (p.duration or 0)) for p in container.demux(stream) if p.size]
        return float((max(e for _, e in spans) - min(s for s, _ in spans)) * stream.time_base)


def _codec(path: Path) -> tuple[str, str | None]:
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        return context.name, context.pix_fmt


@pytest.fixture(scope="module")
def transcoded(
    dog_clip: Path, juggle_clip: Path, davis_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Path]]:
    """(source, output) for both sample clips and one DAVIS folder, each transcoded once."""
    folder = tmp_path_factory.mktemp("transcoded")
    sources = {"dog": dog_clip, "juggle": juggle_clip, "bear": davis_dir / "bear" / "frames"}
    results = {}
    for name, source in sources.items():
        with open_video(source) as reader:
            results[name] = (source, transcode(reader, folder / f"{name}.mp4"))
    return results


@pytest.mark.parametrize("name", ["dog", "juggle", "bear"])
def test_transcode_keeps_frames_rate_and_duration(
    name: str, transcoded: dict[str, tuple[Path, Path]]
) -> None:
    source, output = transcoded[name]
    with open_video(source) as before, open_video(output) as after:
        frame = 1 / float(before.info.fps)
        assert len(after) == len(before)
        assert after.info.fps == before.info.fps
        assert after.info.duration == pytest.approx(before.info.duration, abs=frame)
        assert np.allclose(after.timestamps, before.timestamps, atol=frame / 2)
        for index in (1, len(before) // 2, len(before) - 2):  # the same frame, not a neighbour
            written = after.read(index).astype(int)
            difference = [np.abs(written - before.read(i)).mean() for i in (index - 1, index, index + 1)]
            assert difference[1] < 6 and difference[1] < min(difference[0], difference[2]), f"frame {index}"
    assert _codec(output) == ("h264", "yuv420p")


@pytest.mark.parametrize("name", ["dog", "juggle", "bear"])
def test_output_is_faststart(name: str, transcoded: dict[str, tuple[Path, Path]]) -> None:
    boxes = _top_level_boxes(transcoded[name][1])
    assert boxes.index("moov") < boxes.index("mdat")


def test_dog_audio_is_kept_with_its_duration(transcoded: dict[str, tuple[Path, Path]]) -> None:
    source, output = transcoded["dog"]
    source_audio, output_audio = _stream_span(source, "audio"), _stream_span(output, "audio")
    assert source_audio is not None and output_audio is not None
    assert output_audio == pytest.approx(source_audio, abs=0.05)
    with av.open(str(output)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"


def test_audio_is_interleaved_with_video(transcoded: dict[str, tuple[Path, Path]]) -> None:
    """In file order, audio never runs far ahead of or behind video (not all dumped at the end)."""
    with av.open(str(transcoded["dog"][1])) as container:
        latest = {"audio": 0.0, "video": 0.0}
        worst = 0.0
        for packet in container.demux():
            if packet.size and packet.pts is not None and packet.stream.type in latest:
                latest[packet.stream.type] = float(packet.pts * packet.time_base)
                worst = max(worst, abs(latest["audio"] - latest["video"]))
    assert worst < 1.5


@pytest.mark.parametrize("name", ["juggle", "bear"])
def test_no_audio_is_invented(name: str, transcoded: dict[str, tuple[Path, Path]]) -> None:
    assert _stream_span(transcoded[name][1], "audio") is None


@pytest.fixture(scope="module")
def vfr_clip(dog_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """90 dog frames shown for irregular times (20-100 ms) plus the dog's audio for that span."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    steps = random.Random(3).choices([20, 33, 50, 67, 100], k=90)
    times_ms = np.concatenate([[0], np.cumsum(steps[:-1])])
    end = (times_ms[-1] + steps[-1]) / 1000
    with av.open(str(dog_clip)) as source, av.open(str(path), "w") as output:
        video = output.add_stream("libx264", rate=30, options={"crf": "18", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        audio_in = source.streams.audio[0]
        audio = output.add_stream_from_template(audio_in)
        for frame, pts in zip(source.decode(video=0), times_ms, strict=False):
            frame.pts, frame.time_base = int(pts), Fraction(1, 1000)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        source.seek(0)
        for packet in source.demux(audio_in):
            if packet.size and packet.pts * packet.time_base < end:
                packet.stream = audio
                output.mux(packet)
    return path, times_ms / 1000


def test_variable_frame_rate_is_detected(vfr_clip: tuple[Path, np.ndarray]) -> None:
    path, times = vfr_clip
    with open_video(path) as reader:
        assert reader.info.variable_fps
        assert np.allclose(reader.timestamps, times, atol=1e-6)


def test_variable_frame_rate_timing_and_audio_survive_transcode(
    vfr_clip: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    path, times = vfr_clip
    with open_video(path) as reader:
        output = transcode(reader, tmp_path / "vfr_out.mp4")
        frame = 1 / float(reader.info.fps)
        with open_video(output) as result:
            assert len(result) == len(times)
            assert np.abs(result.timestamps - times).max() < frame
            assert result.info.variable_fps
            assert result.info.duration == pytest.approx(reader.info.duration, abs=frame)
    source_audio, output_audio = _stream_span(path, "audio"), _stream_span(output, "audio")
    assert source_audio is not None and output_audio is not None
    assert output_audio == pytest.approx(source_audio, abs=0.05)
    video = _stream_span(output, "video")
    assert video is not None and output_audio == pytest.approx(video, abs=0.15)  # still in sync


def test_audio_mp4_cannot_hold_is_reencoded_to_aac(dog_clip: Path, tmp_path: Path) -> None:
    """PCM audio in a .mov (not playable from mp4 in browsers) comes out as AAC of the same length."""
    source = tmp_path / "pcm.mov"
    with av.open(str(dog_clip)) as clip, av.open(str(source), "w") as output:
        video = output.add_stream("libx264", rate=Fraction(30000, 1001), options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        audio = output.add_stream("pcm_s16le", rate=48000, layout="stereo")
        for index, frame in zip(range(30), clip.decode(video=0), strict=False):
            frame.pts, frame.time_base = index, Fraction(1001, 30000)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        clip.seek(0)
        for frame in clip.decode(audio=0):
            if frame.time > 1.0:
                break
            frame.pts = None
            output.mux(audio.encode(frame))
        output.mux(audio.encode(None))
    with open_video(source) as reader:
        output_path = transcode(reader, tmp_path / "pcm_out.mp4")
    with av.open(str(output_path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    source_audio, output_audio = _stream_span(source, "audio"), _stream_span(output_path, "audio")
    assert source_audio is not None and output_audio is not None
    assert output_audio == pytest.approx(source_audio, abs=0.05)


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [np.repeat(rng.integers(0, 255, (75, 101, 1), dtype=np.uint8), 3, axis=2) for _ in range(3)]
    for frame in frames:
        frame[:] = frame[:1, :1]  # flat frames survive compression almost untouched
    with VideoWriter(tmp_path / "odd.mp4", 101, 75, Fraction(25)) as writer:
        for frame in frames:
            writer.write(frame)
    with open_video(tmp_path / "odd.mp4") as reader:
        assert (reader.info.width, reader.info.height, len(reader)) == (102, 76, 3)
        for index, frame in reader.frames():
            assert np.abs(frame.astype(int) - frames[index][0, 0]).max() <= 3


def test_progress_and_transform(davis_dir: Path, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    with open_video(davis_dir / "bear" / "frames") as reader:
        output = transcode(
            reader,
            tmp_path / "inverted.mp4",
            transform=lambda _, f: 255 - f,
            progress=lambda *a: calls.append(a),
        )
        with open_video(output) as result:
            assert np.abs(result.read(10).astype(int) - (255 - reader.read(10).astype(int))).mean() < 6
    assert calls[0] == (1, 82) and calls[-1] == (82, 82) and len(calls) == 82


def _full_range_bt601_clip(source: Path, path: Path, frames: int) -> None:
    """The first frames of `source` as a full-range (yuvj420p) BT.601 clip, like many phones write."""
    with av.open(str(source)) as clip, av.open(str(path), "w") as output:
        stream = output.add_stream("libx264", rate=24, options={"crf": "10", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuvj420p"
        stream.codec_context.colorspace, stream.codec_context.color_range = 5, 2
        for count, frame in enumerate(clip.decode(video=0)):
            if count == frames:
                break
            converted = frame.reformat(format="yuvj420p", dst_colorspace=5, dst_color_range=2)
            converted.pts, converted.time_base = count, Fraction(1, 24)
            output.mux(stream.encode(converted))
        output.mux(stream.encode(None))


def test_transcode_keeps_the_sources_matrix_and_colours(dog_clip: Path, tmp_path: Path) -> None:
    """Planes pass through: a BT.601 full-range source comes out BT.601 (limited range, which every
    player takes) and looks the same; a transform can ask for the planes too."""
    source = tmp_path / "bt601_full.mp4"
    _full_range_bt601_clip(dog_clip, source, frames=8)
    with open_video(source) as reader:
        assert reader.info.yuv420 == YuvColour(colorspace=5, full_range=True)
        seen = []
        output = transcode(
            reader, tmp_path / "out.mp4", transform=lambda _, f: seen.append(type(f).__name__) or f, yuv=True
        )
        with av.open(str(output)) as container:
            context = container.streams.video[0].codec_context
            assert (context.pix_fmt, context.colorspace, context.color_range) == ("yuv420p", 5, 1)
        with open_video(output) as result:
            assert result.info.yuv420 == YuvColour(colorspace=5, full_range=False)
            for index in (0, 7):
                difference = result.read(index).astype(int) - reader.read(index)
                assert np.abs(difference).mean() < 2.5 and abs(difference.mean()) < 0.5, f"frame {index}"
    assert seen == ["Yuv420Frame"] * 8


def test_planes_need_even_sides(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"{index}.png"), np.full((75, 101, 3), 90, np.uint8))
    with open_video(folder) as reader:
        with pytest.raises(ValueError, match="even sides"):
            transcode(reader, tmp_path / "out.mp4", transform=lambda _, f: f, yuv=True)
        output = transcode(reader, tmp_path / "out.mp4")  # BGR frames, padded by the writer
    assert not list(tmp_path.glob(".*partial*"))
    with open_video(output) as result:
        assert (result.info.width, result.info.height, len(result)) == (102, 76, 2)


def test_output_in_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist") as raised:
        VideoWriter(tmp_path / "missing" / "out.mp4", 64, 48, Fraction(25))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "missing").exists()


def test_exception_leaves_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous render")
    with pytest.raises(RuntimeError), VideoWriter(path, 64, 48, Fraction(25)) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("render failed")
    assert path.read_bytes() == b"previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_wrong_frame_size_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="64x3"),
        VideoWriter(tmp_path / "out.mp4", 64, 48, Fraction(25)) as writer,
    ):
        writer.write(np.zeros((48, 63, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_leave_no_output(dog_clip: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(dog_clip.read_bytes()[:20_000])
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    for bad in (tmp_path / "missing.mp4", text, truncated, empty):
        with pytest.raises(MediaError):
            transcode(open_video(bad), out / "result.mp4")
    assert list(out.iterdir()) == []


def test_cancel_from_progress_leaves_nothing(davis_dir: Path, tmp_path: Path) -> None:
    def cancel(done: int, total: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with open_video(davis_dir / "bear" / "frames") as reader, pytest.raises(KeyboardInterrupt):
        transcode(reader, tmp_path / "cancelled.mp4", progress=cancel)
    assert list(tmp_path.iterdir()) == []
