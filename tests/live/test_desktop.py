"""The desktop window on a real clip: a real OpenCV (Qt) window on a private Xvfb display, driven
through `run_window` with scripted input.

Injecting real X input would need xdotool or XTest bindings (not installed), so scripted input enters
at the event boundary only: clicks through the window's own OpenCV mouse callback, keys as the value
`cv2.waitKey` returns (the real waitKey still runs every turn and pumps the real window).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from smartfocus.live.desktop import STATUS_HEIGHT, DesktopController, OpenCVWindow, run_window
from smartfocus.session import open_video

DOG_640 = (320.0, 220.0)  # the dog on frame 5 of the 640x360 clip


class ScriptedWindow(OpenCVWindow):
    """A real OpenCV window whose input comes from a script: ("click", x, y), ("key", k), or a check
    called with the last image shown."""

    def __init__(self, title: str, script: list) -> None:
        super().__init__(title)
        self.script: Iterator = iter(script)
        self.shown: list[np.ndarray] = []

    def show(self, image: np.ndarray) -> None:
        super().show(image)
        self.shown.append(image)

    def wait_key(self, delay_ms: int) -> int:
        super().wait_key(1)  # the real event pump
        step = next(self.script, ("key", "q"))
        if callable(step):
            step(self.shown[-1])
        elif step[0] == "click":
            self.on_mouse(cv2.EVENT_LBUTTONDOWN, step[1], step[2], 0, None)
        else:
            return ord(step[1])
        return -1


def sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[mask].mean())


@pytest.fixture()
def window_setup(x_display: str, dog_640: Path, model_path: Path, tmp_path: Path):
    video = open_video(dog_640, model=model_path)
    now = [0.0]
    controller = DesktopController(video, stills_dir=tmp_path, clock=lambda: now[0])
    yield video, controller, now
    video.close()


def test_desktop_window_clicks_keys_and_stills(window_setup, woman_640, tmp_path: Path) -> None:
    video, controller, now = window_setup
    analysis = video.analyse()

    def regions(frame: int) -> dict[str, np.ndarray]:
        """Eroded masks of the woman (track 1) and the dog (track 2), and the background far from both."""
        inst = analysis.instances(frame)
        full = {
            name: cv2.resize(
                inst.masks[inst.index_of(tid)].astype(np.uint8), (640, 360), interpolation=cv2.INTER_NEAREST
            )
            for name, tid in (("woman", 1), ("dog", 2))
        }
        kernel = np.ones((15, 15), np.uint8)
        out = {name: cv2.erode(mask, kernel) > 0 for name, mask in full.items()}
        out["background"] = cv2.dilate(full["woman"] | full["dog"], kernel * 3) == 0
        return out

    def ratios(frame: int) -> Callable[[np.ndarray], dict[str, float]]:
        source = video.reader.read(frame)
        return lambda shown: {
            name: sharpness(shown[:-STATUS_HEIGHT], mask) / sharpness(source, mask)
            for name, mask in regions(frame).items()
        }

    seen: dict[str, dict[str, float]] = {}

    def record(name: str, frame: int) -> Callable[[np.ndarray], None]:
        def check(shown: np.ndarray) -> None:
            assert controller.frame == frame
            assert shown.shape == (360 + STATUS_HEIGHT, 640, 3)
            seen[name] = ratios(frame)(shown)

        return check

    def advance(seconds: float) -> Callable[[np.ndarray], None]:
        return lambda shown: now.__setitem__(0, now[0] + seconds)

    script = [
        record("unfocused", 0),
        ("click", *map(int, woman_640)),
        record("woman", 0),
        *[("key", ".")] * 5,
        ("click", *map(int, DOG_640)),  # rack focus to the dog from frame 5
        *[("key", ".")] * 15,
        record("dog", 20),
        ("key", "s"),
        ("key", "B"),
        ("key", "B"),
        ("key", "b"),
        record("stronger", 20),
        ("key", "r"),
        record("reset", 20),
        ("key", " "),
        advance(0.5),  # 14.98 frames of playback at 29.97 fps: frame 34
        advance(0.0),
        ("key", " "),
        ("key", ","),
        ("click", 5, 360 + 10),  # the status strip: ignored
        ("key", "q"),
        ("key", "q"),  # never reached: the window loop ends at the first q
    ]
    window = ScriptedWindow("smartfocus test", script)
    run_window(controller, window)

    assert seen["unfocused"] == pytest.approx({"woman": 1, "dog": 1, "background": 1})
    assert seen["woman"]["woman"] > 0.9 and seen["woman"]["dog"] < 0.6 and seen["woman"]["background"] < 0.6
    assert seen["dog"]["dog"] > 0.9 and seen["dog"]["woman"] < 0.6 and seen["dog"]["background"] < 0.6
    assert seen["stronger"]["background"] < seen["dog"]["background"]  # blur 0.6 -> 0.7
    assert seen["reset"] == pytest.approx({"woman": 1, "dog": 1, "background": 1})
    assert controller.blur == pytest.approx(0.7) and controller.plan.keyframes == ()
    assert controller.frame == 20 + int(0.5 * 30000 / 1001) - 1 and not controller.playing and controller.quit
    still = cv2.imread(str(tmp_path / "dog_640_00020.png"))
    assert still is not None and still.shape == (360, 640, 3)
    assert sharpness(still, regions(20)["background"]) < 0.6 * sharpness(
        video.reader.read(20), regions(20)["background"]
    )


def test_a_click_on_nothing_detected_focuses_the_region_there(window_setup) -> None:
    """Like the CLI and the page: a click where the detector found nothing follows a region."""
    _video, controller, _now = window_setup
    window = ScriptedWindow("smartfocus test", [("click", 600, 20), ("key", "q")])
    run_window(controller, window)
    assert len(controller.plan.keyframes) == 1 and "focus on region" in controller.message
