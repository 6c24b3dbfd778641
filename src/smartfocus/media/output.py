"""The rendered file's quality and size: what a creator picks for the mp4 a render writes.

Quality is a named libx264 CRF (lower is better and bigger); the size is an output height the frames
are scaled down to where they are encoded (`media.writer`), keeping the aspect ratio with even sides
as yuv420p needs. Everything upstream (compositing, mattes) stays at the source's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Literal, get_args

from smartfocus.errors import SmartfocusError

OutputQuality = Literal["high", "standard", "small"]
OUTPUT_QUALITIES: tuple[str, ...] = get_args(OutputQuality)
# libx264 CRF per level at the writer's preset (veryfast). On the 720p dog sample (a plain transcode,
# see the README) high is 1.2x standard's file (+1.4 dB luma PSNR), small 0.41x (-6.9 dB, still ~38 dB);
# standard is what every render wrote before there was a choice.
CRF: dict[str, int] = {"high": 16, "standard": 18, "small": 26}
MIN_OUTPUT_HEIGHT = 64
MAX_OUTPUT_HEIGHT = 4320


@dataclass(frozen=True)
class OutputFormat:
    """A render's output quality and height (None: the source's size); checked when made."""

    quality: OutputQuality = "standard"
    height: int | None = None

    def __post_init__(self) -> None:
        if self.quality not in CRF:
            raise SmartfocusError(
                f"unknown output quality {self.quality!r}; use one of {', '.join(OUTPUT_QUALITIES)}"
            )
        height = self.height
        if height is not None and (
            isinstance(height, bool)
            or not isinstance(height, Integral)
            or height % 2
            or not MIN_OUTPUT_HEIGHT <= height <= MAX_OUTPUT_HEIGHT
        ):
            raise SmartfocusError(
                f"output height must be an even number of pixels from {MIN_OUTPUT_HEIGHT} to "
                f"{MAX_OUTPUT_HEIGHT} (e.g. 720), got {height!r}"
            )
        if height is not None:
            object.__setattr__(self, "height", int(height))  # a numpy integer becomes a plain int

    @property
    def crf(self) -> int:
        return CRF[self.quality]

    def size_for(self, width: int, height: int) -> tuple[int, int] | None:
        """The encoded (width, height) for a `width`x`height` source, or None to keep its size.

        Raises:
            SmartfocusError: the height asked for is above the source's (renders only scale down).
        """
        if self.height is None or self.height == height:
            return None
        if self.height > height:
            raise SmartfocusError(
                f"output height {self.height} is above the video's {height} pixels; renders only scale "
                f"down: choose {height} or less"
            )
        even_width = round(width * self.height / height / 2) * 2
        return min(max(2, even_width), width // 2 * 2), self.height
