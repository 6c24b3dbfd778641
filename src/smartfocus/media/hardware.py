"""Which H.264 hardware codecs this PyAV/FFmpeg build offers, and whether they work here.

A build may list NVENC and NVDEC (CUVID) and still find no GPU, driver or encoder unit to run them:
data-centre GPUs such as the H100 and H200 have NVDEC but no NVENC at all. So a codec counts only
once it opens. Renders use the software codecs (libx264, FFmpeg's h264 decoder) whatever this
finds: this module only reports, so a bench on a GPU machine says what the hardware could add.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

NVENC, CUVID = "h264_nvenc", "h264_cuvid"


@lru_cache(maxsize=4)
def opens(codec: str, mode: str) -> bool:
    """Whether `codec` ("w": encoder, "r": decoder) is in the build and opens on this machine."""
    import av

    if codec not in av.codecs_available:
        return False
    try:
        context = av.CodecContext.create(codec, mode)
        if mode == "w":
            context.width, context.height, context.pix_fmt = 256, 144, "yuv420p"
            context.time_base = Fraction(1, 30)
        context.open()
    except (av.FFmpegError, ValueError, RuntimeError):
        return False
    return True


def describe() -> str:
    """One line for a log or bench: what the build offers and what opens here."""
    import av

    parts = []
    for codec, mode, fallback in ((NVENC, "w", "libx264"), (CUVID, "r", "h264 (software)")):
        if codec not in av.codecs_available:
            parts.append(f"{codec} not in this build, {fallback} used")
        elif opens(codec, mode):
            parts.append(f"{codec} opens")
        else:
            parts.append(f"{codec} in the build but does not open here (no GPU, driver or unit), {fallback} used")  # fmt: skip
    return "; ".join(parts)
