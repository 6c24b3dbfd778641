"""smartfocus: click a subject in a video, keep it sharp, and blur the rest like a lens.

Layers, each depending only on the ones after it: server -> render -> focus -> vision/media.
"""

__version__ = "0.1.0"

# OpenCV before PyAV, always: both wheels bundle libxcb-shape/-shm/-xfixes under the same file names;
# whichever loads first is reused, and OpenCV's Qt windows (`smartfocus desktop`, `live`) hang when they
# get PyAV's copies, which link a second libxcb.
import cv2  # noqa: F401

from smartfocus.api import Video, open_video
from smartfocus.errors import SmartfocusError
from smartfocus.focus.plan import FocusPlan, Keyframe

__all__ = ["FocusPlan", "Keyframe", "SmartfocusError", "Video", "__version__", "open_video"]
