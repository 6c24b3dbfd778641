"""x264's CPU capabilities less AVX-512: what makes an encode repeatable on AVX-512 machines.

Measured on an Intel Xeon with AVX-512 (x264 core 165 in PyAV 18's wheel): the same frames with the
same timestamps and settings, encoded twice in one process, gave different bitstreams whenever other
AVX-512 code (torch inference, OpenCV, numpy) had run before the encode, with x264 on one thread too
(so not its threading); a fresh process, or x264 held to its AVX2 kernels, gave the same bytes every
time. A render must be a function of its inputs (two renders of one plan, or with another number of
compositing threads, are compared byte for byte), so the encoder is given the capabilities x264
detects itself, minus AVX-512. Nothing here changes on a CPU without AVX-512.

x264 has no "everything but" switch and its `asm` parameter trusts what it is told (naming a feature
the CPU lacks would crash), so the flags come from x264's own `x264_cpu_detect`, called through
ctypes in the libx264 that PyAV's wheel bundles.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from pathlib import Path

X264_CPU_AVX512 = 1 << 16  # x264.h


def _libx264() -> str | None:
    """The libx264 PyAV's wheel ships (`av.libs/` on Linux and Windows, `av/.dylibs/` on macOS), else
    the system's."""
    import av

    package = Path(av.__file__).resolve().parent
    for folder in (package.parent / "av.libs", package / ".dylibs"):
        for candidate in sorted(folder.glob("libx264*")):
            return str(candidate)
    return ctypes.util.find_library("x264")


@lru_cache(maxsize=1)
def repeatable_x264_params() -> str | None:
    """`x264-params` that keep x264 off its AVX-512 kernels, or None where it would not use them
    (or where libx264 cannot be found, and x264 stays as it is)."""
    path = _libx264()
    if path is None:
        return None
    try:
        detect = ctypes.CDLL(path).x264_cpu_detect
    except (OSError, AttributeError):
        return None
    detect.restype = ctypes.c_uint32
    flags = int(detect())
    if not flags & X264_CPU_AVX512:
        return None
    return f"asm={flags & ~X264_CPU_AVX512}"
