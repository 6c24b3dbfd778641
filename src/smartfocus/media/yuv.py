"""Frames as 8-bit YUV 4:2:0 planes: what H.264 decoders give and encoders take.

A render that works on the planes skips two full-resolution colour conversions per frame (to BGR after
decoding, back to YUV before encoding: ~4.5 ms of a ~15 ms frame at 720p), and whatever it leaves
untouched is encoded exactly as it was decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.media import colour

BT709 = 1  # AVColorSpace numbers (FFmpeg's); 2 = unspecified, read as BT.601 like swscale does
_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


@dataclass(frozen=True)
class YuvColour:
    """How a frame's Y, Cb, Cr code values map to colour: the matrix and the range."""

    colorspace: int  # AVColorSpace: 1 = BT.709, 5/6 = BT.601, 2 = unspecified (read as BT.601)
    full_range: bool  # 0-255 for every plane; False: 16-235 luma, 16-240 chroma

    @property
    def color_range(self) -> int:
        """The AVColorRange number (1 = limited/MPEG, 2 = full/JPEG)."""
        return colour.AVCOL_RANGE_JPEG if self.full_range else 1

    def same_matrix(self, other: YuvColour) -> bool:
        """Whether both read Y, Cb, Cr with the same weights (BT.601's three tags are one matrix)."""
        return colour.luma_weights(self.colorspace) == colour.luma_weights(other.colorspace)


BT709_LIMITED = YuvColour(BT709, full_range=False)


@dataclass(frozen=True)
class Yuv420Frame:
    """One frame as I420 planes in a single (H * 3 / 2, W) uint8 array, PyAV's `yuv420p` layout.

    Width and height are even. Treat `data` as read-only: frames are shared between pipeline stages.
    """

    data: np.ndarray
    colour: YuvColour

    def __post_init__(self) -> None:
        rows, width = self.data.shape
        if self.data.dtype != np.uint8 or rows % 3 or width % 2 or (rows * 2 // 3) % 2:
            raise ValueError(
                f"expected an (H * 3 / 2, W) uint8 I420 array with even H and W, got {self.data.shape}"
            )
        if not colour.has_matrix(self.colour.colorspace):
            raise ValueError(f"colour space {self.colour.colorspace} has no YUV matrix here; use BGR frames")

    @property
    def height(self) -> int:
        return self.data.shape[0] * 2 // 3

    @property
    def width(self) -> int:
        return self.data.shape[1]

    @property
    def y(self) -> np.ndarray:
        """(H, W) luma plane (a view)."""
        return self.data[: self.height]

    @property
    def chroma(self) -> np.ndarray:
        """(2, H/2, W/2) Cb and Cr planes (a view)."""
        return self.data[self.height :].reshape(2, self.height // 2, self.width // 2)

    @classmethod
    def from_planes(cls, y: np.ndarray, cb: np.ndarray, cr: np.ndarray, yuv: YuvColour) -> Yuv420Frame:
        height, width = y.shape
        data = np.empty((height * 3 // 2, width), np.uint8)
        data[:height] = y
        chroma = data[height:].reshape(2, height // 2, width // 2)
        chroma[0], chroma[1] = cb, cr
        return cls(data, yuv)

    @classmethod
    def from_bgr(cls, frame_bgr: np.ndarray, yuv: YuvColour = BT709_LIMITED) -> Yuv420Frame:
        return cls(colour.bgr_to_i420(frame_bgr, yuv.colorspace, yuv.color_range), yuv)

    def to_bgr(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR (chroma interpolated bilinearly)."""
        return colour.i420_to_bgr(self.data, self.colour.colorspace, self.colour.color_range)

    def half_bgr(self) -> np.ndarray:
        """(H/2, W/2, 3) uint8 BGR at chroma resolution: luma averaged 2x2, no chroma interpolated.

        What the render's matte refinement and lens blur work from: both run at half resolution or
        less, and this costs a sixth of a full-resolution conversion.
        """
        return self.resized_bgr((self.width // 2, self.height // 2), cv2.INTER_AREA)

    def resized_bgr(self, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """The frame as BGR at `size` = (width, height), each plane resized (bilinear or area, both
        linear) before the colour conversion: the same picture as resizing the full BGR frame, for a
        fraction of the cost when `size` is small (what the model sees during an analysis).
        """
        cb, cr = self.chroma
        return self._planes_bgr((self.y, cb, cr), size, interpolation)

    def crop_bgr(self, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
        """The frame's `box` = (x0, y0, x1, y1) as BGR at `size` = (width, height), area-resized
        plane by plane: a detector's look at one region without converting the whole frame. The
        box's corners are even (chroma has half the resolution)."""
        if any(value % 2 for value in box):
            raise ValueError(f"a crop of YUV 4:2:0 planes needs even corners, got {box}")
        x0, y0, x1, y1 = (value // 2 for value in box)
        cb, cr = self.chroma
        luma = self.y[2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
        return self._planes_bgr((luma, cb[y0:y1, x0:x1], cr[y0:y1, x0:x1]), size, cv2.INTER_AREA)

    def _planes_bgr(
        self, planes: tuple[np.ndarray, np.ndarray, np.ndarray], size: tuple[int, int], interpolation: int
    ) -> np.ndarray:
        """Y, Cb, Cr planes (of this frame's colour) each resized to `size`, as one BGR image."""
        resized = [
            plane if plane.shape[::-1] == size else cv2.resize(plane, size, interpolation=interpolation)
            for plane in planes
        ]
        return colour.yuv_to_bgr(cv2.merge(resized), self.colour.colorspace, self.colour.color_range)

    def rotated(self, degrees: int) -> Yuv420Frame:
        """The frame turned counter-clockwise by 0, 90, 180 or 270 degrees (each plane alike)."""
        if degrees == 0:
            return self
        turn = _ROTATE[degrees]
        cb, cr = self.chroma
        return Yuv420Frame.from_planes(
            cv2.rotate(self.y, turn), cv2.rotate(cb, turn), cv2.rotate(cr, turn), self.colour
        )

    def to_colour(self, target: YuvColour) -> Yuv420Frame:
        """The same picture in another matrix or range (the same frame when nothing changes).

        A range change alone is a per-plane table; a matrix change goes through BGR.
        """
        if target == self.colour:
            return self
        if not self.colour.same_matrix(target):
            return Yuv420Frame.from_bgr(self.to_bgr(), target)
        luma_lut, chroma_lut = colour.range_tables(self.colour.full_range, target.full_range)
        cb, cr = self.chroma
        return Yuv420Frame.from_planes(
            cv2.LUT(self.y, luma_lut), cv2.LUT(cb, chroma_lut), cv2.LUT(cr, chroma_lut), target
        )
