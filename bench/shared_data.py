"""Where the benches find their footage and model (`../shared` beside the checkout), and the F:X,Y
click syntax they take on the command line (the CLI's `--focus` syntax)."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
DOG_CLIP = SHARED / "samples" / "sam2_01_dog.mp4"  # 720p, 289 frames, with audio
MODEL = SHARED / "models" / "yolov8n-seg-int8dq.pt"
DAVIS = SHARED / "datasets" / "vos-dev"


def parse_click(text: str) -> tuple[int, tuple[float, float]]:
    """ "F:X,Y" -> (frame, (x, y))."""
    frame, point = text.split(":")
    x, y = (float(value) for value in point.split(","))
    return int(frame), (x, y)
