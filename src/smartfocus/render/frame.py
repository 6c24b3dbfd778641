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


def focus_frame(
    frame: Frame,
    state: FocusState,
    lens: LensSettings,
    *,
    refine: bool = True,
    stabilizer: MatteStabilizer | None = None,
) -> FocusedFrame[Frame]:
    """`frame` with everything but the subjects of `state` blurred.

    Args:
        frame: a `Yuv420Frame`, or an (H, W, 3) uint8 BGR array; the result is of the same kind.
        state: the focus timeline at this frame (subject matte, rack mix, blur strength).
        lens: the blur at full strength (scaled by the state's strength).
        refine: snap the matte to the frame's edges (and stabilise it, with `stabilizer`).
        stabilizer: the render's temporal smoothing, one per video in frame order; None for a frame
            on its own (a preview).
    """
    if isinstance(frame, Yuv420Frame):
        size = (frame.width, frame.height)
        half_bgr = frame.half_bgr()
    else:
        size = (frame.shape[1], frame.shape[0])
        half_bgr = cv2.resize(frame, _half(size), interpolation=cv2.INTER_AREA)
    half = _half(size)
    subject = upsample_mask(state.subject_matte, half)
    if refine and subject.any():
        subject = refine_matte_half(half_bgr, subject, size)
        if stabilizer is not None:
            subject = stabilizer.update(subject)
    matte = subject
    if not np.array_equal(state.matte, state.subject_matte):  # a rack focus is mid-way: its mix
        matte = upsample_mask(state.matte, half)
        if refine and matte.any():
            matte = refine_matte_half(half_bgr, matte, size)
    strength = LensSettings(strength=lens.strength * state.strength)
    if isinstance(frame, Yuv420Frame):
        image = composite_yuv(frame, half_bgr, matte, strength)
    else:
        image = composite(frame, cv2.resize(matte, size, interpolation=cv2.INTER_LINEAR), strength)
    return FocusedFrame(image, subject)


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, round(size[0] / 2)), max(1, round(size[1] / 2))
