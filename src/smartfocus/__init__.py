"""smartfocus: click a subject in a video, keep it sharp, and blur the rest like a lens.

Layers, each depending only on the ones after it: the front ends (cli, server, live) -> session ->
render -> focus -> vision/media. `session.FocusSession` is where a click becomes a matte.
"""

__version__ = "0.1.0"

# OpenCV before PyAV, always: both wheels bundle libxcb-shape/-shm/-xfixes under the same file names;
# whichever loads first is reused, and OpenCV's Qt windows (`smartfocus desktop`, `live`) hang when they
# get PyAV's copies, which link a second libxcb.
import cv2  # noqa: F401

from smartfocus.errors import SmartfocusError
from smartfocus.focus.plan import FocusPlan, Keyframe
from smartfocus.session import FocusSession, Selection, open_video
from smartfocus.vision.model import SharedModel

__all__ = [
    "FocusPlan",
    "FocusSession",
    "Keyframe",
    "Selection",
    "SharedModel",
    "SmartfocusError",
    "__version__",
    "open_video",
]
