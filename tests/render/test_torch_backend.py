"""The torch compositor backend makes the OpenCV compositor's frames, on real footage and real masks."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus.focus.selection import select_instance
from smartfocus.focus.timeline import FocusState
from smartfocus.media import open_video
from smartfocus.media.yuv import Yuv420Frame, YuvColour
from smartfocus.render.compositor import LensSettings
from smartfocus.render.frame import FocusedFrame, finish_frame, focus_frame, prepare_frame, stabilise
from smartfocus.render.matte import MatteStabilizer
from smartfocus.vision.segment import AnalysisSettings, FrameTracker

torch = pytest.importorskip("torch")

DOG, WALKER = (612, 466), (360, 380)  # on frame 0 of the dog clip (bench/engine.py's clicks)
FRAMES = 6
# Per frame: blur strength, and whether a rack focus from the walker to the dog is half-way there.
LOOKS = [(1.0, False), (1.0, False), (0.6, False), (1.0, True), (0.03, False), (0.0, False)]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine"),
    ),
]


@pytest.fixture(scope="module")
def dog_frames(dog_clip: Path, segmenter) -> tuple[list[Yuv420Frame], list[FocusState]]:
    """The clip's first frames as the render decodes them, with the real model's masks of the dog
    (followed by track id) and of the walker, as a focus timeline would give them."""
    settings = AnalysisSettings()
    with open_video(dog_clip) as reader:
        frames = [frame for _, frame in reader.yuv_frames(0, FRAMES)]
        size = (reader.info.width, reader.info.height)
    tracker = FrameTracker(segmenter, settings, size)
    grid = tracker.grid[::-1]
    found = tracker.update_batch([frame.resized_bgr(grid) for frame in frames])
    names = segmenter.class_names
    dog, walker = (
        found[0].track_ids[select_instance(found[0], *click, size, names)] for click in (DOG, WALKER)
    )
    states = []
    for instances, (strength, racking) in zip(found, LOOKS, strict=True):
        masks = {}
        for name, track in (("dog", dog), ("walker", walker)):
            row = instances.index_of(int(track))
            assert row is not None, f"the {name} is lost in the first frames"
            masks[name] = instances.masks[row].astype(np.float32)
        matte = 0.5 * masks["dog"] + 0.5 * masks["walker"] if racking else masks["dog"]
        states.append(FocusState(matte, masks["dog"], strength))
    return frames, states


def _opencv(frames: list[Yuv420Frame], states: list[FocusState], lens: LensSettings) -> list[FocusedFrame]:
    """What a render's `FocusStream` makes of the frames with the OpenCV backend."""
    stabilizer = MatteStabilizer()
    focused = []
    for frame, state in zip(frames, states, strict=True):
        prepared = prepare_frame(frame, state)
        focused.append(finish_frame(prepared, lens, stabilise(prepared, stabilizer)))
    return focused


@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_matches_opencv_on_real_frames(dog_frames, device: str) -> None:
    """Both backends run the same steps with the same weights (resizes, box filters, tables) and
    round to bytes at the same points, the same way (halves up after a 2x2 area shrink, as OpenCV's
    fast path does, to even elsewhere). What differs is float arithmetic: OpenCV's fixed-point
    8-bit colour transforms and resizes, summation order, the guided filter's 3x3 inverses. That
    flips a rounding by one level now and then at each byte stage a pixel passes (the
    half-resolution copy, the working-size blur, its upsampling, the blend: 3 levels where they
    line up), and moves the matte a little at its edge (up to ~0.06 after stabilisation), which
    weighs sharp against blurred. The bound is 4 levels anywhere and 1 for all but 0.1% of the
    values (measured: 2, and 1); the mean must stay below 1 level (~0.09 measured), and the mattes'
    mean difference below 0.001. Tolerances, not equality: float results differ between CPUs
    (SIMD widths) and on a GPU.
    """
    from smartfocus.render.torch_backend import TorchCompositor, TorchStabilizer

    frames, states = dog_frames
    lens = LensSettings(1.0)
    expected = _opencv(frames, states, lens)
    compositor = TorchCompositor(device)
    got = compositor.focus(frames, states, lens, stabilizer=TorchStabilizer(compositor))
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        difference = np.abs(want.image.data.astype(np.int16) - have.image.data.astype(np.int16))
        where = f"frame {index} (strength {states[index].strength}) on {device}"
        assert difference.mean() < 1.0, where
        assert difference.max() <= 4, where
        assert np.percentile(difference, 99.9) <= 1, where
        assert np.abs(want.subject_half - have.subject_half).mean() < 1e-3, where
    assert got[-1].image is frames[-1]  # strength 0: the frame itself, as from the OpenCV backend


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("refine", [True, False], ids=["refined", "raw-matte"])
def test_full_range_bt601_frames_and_raw_mattes_match_too(dog_frames, device: str, refine: bool) -> None:
    """The other colour tables (full-range luma, BT.601's matrix) and a render without refinement
    (no stabiliser either), on two frames, within the bounds above."""
    from smartfocus.render.torch_backend import TorchCompositor, TorchStabilizer

    frames = [frame.to_colour(YuvColour(5, full_range=True)) for frame in dog_frames[0][:2]]
    states = dog_frames[1][:2]
    lens = LensSettings(0.7)
    stabilizer = MatteStabilizer() if refine else None
    expected = [
        focus_frame(f, s, lens, refine=refine, stabilizer=stabilizer)
        for f, s in zip(frames, states, strict=True)
    ]
    compositor = TorchCompositor(device)
    got = compositor.focus(
        frames, states, lens, refine=refine, stabilizer=TorchStabilizer(compositor) if refine else None
    )
    for want, have in zip(expected, got, strict=True):
        assert have.image.colour == want.image.colour
        difference = np.abs(want.image.data.astype(np.int16) - have.image.data.astype(np.int16))
        assert difference.mean() < 1.0 and difference.max() <= 4


@pytest.mark.parametrize("device", DEVICES)
def test_480p_frames_match_too(dog_frames, device: str) -> None:
    """At 854x480 the guided filter's grid does not divide the frame evenly, and the refinement
    runs as OpenCV runs it (see `torch_backend.whole_guide_grid`): the same bounds hold."""
    from smartfocus.render.torch_backend import TorchCompositor, TorchStabilizer, whole_guide_grid

    assert not whole_guide_grid((854, 480)) and whole_guide_grid((1280, 720))
    frames = [
        Yuv420Frame.from_bgr(cv2.resize(frame.to_bgr(), (854, 480), interpolation=cv2.INTER_AREA))
        for frame in dog_frames[0][:3]
    ]
    states = dog_frames[1][:3]
    lens = LensSettings(1.0)
    expected = _opencv(frames, states, lens)
    compositor = TorchCompositor(device)
    got = compositor.focus(frames, states, lens, stabilizer=TorchStabilizer(compositor))
    for want, have in zip(expected, got, strict=True):
        difference = np.abs(want.image.data.astype(np.int16) - have.image.data.astype(np.int16))
        assert difference.mean() < 1.0 and difference.max() <= 4


@pytest.mark.parametrize("device", DEVICES)
def test_batches_and_the_stabiliser_carry_over(dog_frames, device: str) -> None:
    """A render's stream in batches of 3 (and a last one of 1) makes what one batch of all frames
    makes: the stabiliser's state carries from batch to batch in frame order."""
    from smartfocus.render.torch_backend import TorchCompositor, TorchStabilizer

    frames, states = (items[:4] for items in dog_frames)
    lens = LensSettings(0.8)
    compositor = TorchCompositor(device)
    whole = compositor.focus(frames, states, lens, stabilizer=TorchStabilizer(compositor))
    streamed = list(compositor.stream(iter(enumerate(frames)), states.__getitem__, lens, batch=3))
    assert [index for index, _ in streamed] == list(range(4))
    for one, other in zip(whole, (focused for _, focused in streamed), strict=True):
        np.testing.assert_allclose(one.subject_half, other.subject_half, atol=1e-5)
        assert np.abs(one.image.data.astype(np.int16) - other.image.data.astype(np.int16)).max() <= 1


def test_auto_picks_torch_only_for_a_cuda_device() -> None:
    from smartfocus.render.torch_backend import TorchCompositor, pick_compositor

    assert pick_compositor("cpu") is None  # OpenCV: the faster one on a CPU
    assert pick_compositor("cpu", "opencv") is None
    forced = pick_compositor("cpu", "torch")
    assert isinstance(forced, TorchCompositor) and forced.device.type == "cpu"
    if torch.cuda.is_available():
        assert pick_compositor("cuda:0").device.type == "cuda"
    with pytest.raises(ValueError, match="unknown compositor"):
        pick_compositor("cpu", "metal")


class _Timeline:
    """The one thing a render asks of a focus timeline: each frame's state."""

    def __init__(self, states: list[FocusState]) -> None:
        self.states = states

    def state(self, index: int) -> FocusState:
        return self.states[index]


def test_a_render_with_the_torch_backend_writes_the_opencv_render(
    dog_clip: Path, dog_frames, cut_clip, tmp_path: Path
) -> None:
    """Through `render_steps` (decode, composite, encode, mattes): the videos agree to within what
    the compositors do (x264 sees slightly different frames), and the mattes to within a level."""
    from smartfocus.render.job import render_video
    from smartfocus.render.torch_backend import TorchCompositor

    clip = cut_clip(dog_clip, tmp_path / "cut.mp4", FRAMES, (1280, 720))
    timeline = _Timeline(dog_frames[1])
    decoded = {}
    for name, compositor in (("opencv", None), ("torch", TorchCompositor("cpu"))):
        with open_video(clip) as reader:
            output = render_video(
                reader, tmp_path / f"{name}.mp4", timeline, LensSettings(1.0),
                matte_dir=tmp_path / name, compositor=compositor,
            )  # fmt: skip
        with open_video(output) as reader:
            decoded[name] = np.stack([frame for _, frame in reader.frames()]).astype(np.int16)
    assert np.abs(decoded["opencv"] - decoded["torch"]).mean() < 1.0
    for index in range(FRAMES):
        mattes = [
            cv2.imread(str(tmp_path / name / f"{index:05d}.png"), cv2.IMREAD_GRAYSCALE) for name in decoded
        ]
        assert np.abs(mattes[0].astype(int) - mattes[1]).mean() < 1.0
