"""One frame through the whole look: the subject matte refined, stabilised, and composited.

Shared by the render job and the previews, so a preview frame shows what the render will write. Frames
come as YUV 4:2:0 planes (`Yuv420Frame`, what the decoder gives and the encoder takes: no colour
conversion at either end) or, for odd frame sizes that 4:2:0 cannot hold, as BGR arrays. Either way
the matte is refined and stabilised at half resolution, where the refinement works anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import cv2
import numpy as np

from smartfocus.focus.timeline import FocusState
from smartfocus.media.yuv import Yuv420Frame
from smartfocus.render.compositor import LensSettings, composite, composite_yuv
from smartfocus.render.matte import MatteStabilizer, refine_matte_half
from smartfocus.vision.instances import upsample_mask

Frame = TypeVar("Frame", np.ndarray, Yuv420Frame)


@dataclass(frozen=True)
class FocusedFrame(Generic[Frame]):
    """A composited frame and the subject matte it used (half resolution, before any rack mix)."""

    image: Frame
    subject_half: np.ndarray  # (H/2, W/2) float32 in [0, 1]

    def subject_matte(self, size: tuple[int, int]) -> np.ndarray:
        """The subject matte at `size` = (width, height), bilinearly upsampled: the matte export."""
        return cv2.resize(self.subject_half, size, interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class PreparedFrame(Generic[Frame]):
    """A frame with its mattes refined, before stabilisation and compositing (see `focus_frame`)."""

    frame: Frame
    state: FocusState
    size: tuple[int, int]  # (width, height) of the frame
    half_bgr: np.ndarray  # the frame at half resolution, what the mattes are refined against
    subject_half: np.ndarray  # the subjects' matte, refined, not yet stabilised
    rack_half: np.ndarray | None  # while a rack focus is mid-way, its mix of mattes (refined)


def focus_frame(
    frame: Frame,
    state: FocusState,
    lens: LensSettings,
    *,
    refine: bool = True,
    stabilizer: MatteStabilizer | None = None,
) -> FocusedFrame[Frame]:
    """`frame` with everything but the subjects of `state` blurred.

    The three steps (`prepare_frame`, the stabiliser, `finish_frame`) can also be run apart: the
    first and last depend on their frame alone, so a render may run them on several frames at once.

    Args:
        frame: a `Yuv420Frame`, or an (H, W, 3) uint8 BGR array; the result is of the same kind.
        state: the focus timeline at this frame (subject matte, rack mix, blur strength).
        lens: the blur at full strength (scaled by the state's strength).
        refine: snap the matte to the frame's edges (and stabilise it, with `stabilizer`).
        stabilizer: the render's temporal smoothing, one per video in frame order; None for a frame
            on its own (a preview).
    """
    prepared = prepare_frame(frame, state, refine=refine)
    return finish_frame(prepared, lens, stabilise(prepared, stabilizer if refine else None))


def prepare_frame(frame: Frame, state: FocusState, *, refine: bool = True) -> PreparedFrame[Frame]:
    """The frame's mattes at half resolution, refined against it when `refine` (but not stabilised)."""
    size = (frame.width, frame.height) if isinstance(frame, Yuv420Frame) else (frame.shape[1], frame.shape[0])
    half = _half(size)
    if isinstance(frame, Yuv420Frame):
        half_bgr = frame.half_bgr()
    else:
        half_bgr = cv2.resize(frame, half, interpolation=cv2.INTER_AREA)
    subject = upsample_mask(state.subject_matte, half)
    if refine and subject.any():
        subject = refine_matte_half(half_bgr, subject, size)
    rack = None
    if not np.array_equal(state.matte, state.subject_matte):  # a rack focus is mid-way: its mix
        rack = upsample_mask(state.matte, half)
        if refine and rack.any():
            rack = refine_matte_half(half_bgr, rack, size)
    return PreparedFrame(frame, state, size, half_bgr, subject, rack)


def stabilise(prepared: PreparedFrame[Frame], stabilizer: MatteStabilizer | None) -> np.ndarray:
    """The subject matte smoothed against the previous frames' (call in frame order); as it is
    without a stabiliser (a preview, or a render without refinement)."""
    if stabilizer is None or not prepared.subject_half.any():
        return prepared.subject_half
    return stabilizer.update(prepared.subject_half)


def finish_frame(
    prepared: PreparedFrame[Frame], lens: LensSettings, subject_half: np.ndarray
) -> FocusedFrame[Frame]:
    """Composite the prepared frame with `subject_half` (its stabilised subject matte) sharp."""
    matte = subject_half if prepared.rack_half is None else prepared.rack_half
    strength = LensSettings(strength=lens.strength * prepared.state.strength)
    frame = prepared.frame
    if isinstance(frame, Yuv420Frame):
        image = composite_yuv(frame, prepared.half_bgr, matte, strength)
    else:
        image = composite(frame, cv2.resize(matte, prepared.size, interpolation=cv2.INTER_LINEAR), strength)
    return FocusedFrame(image, subject_half)


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, round(size[0] / 2)), max(1, round(size[1] / 2))
