"""Loading the detector on the CPU skips ultralytics' warm-up, which there only imports torchvision
(1.2-1.6 s of every CLI run); its own NMS then finds exactly what torchvision's finds."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import av
import numpy as np
from smartfocus.vision.model import load_segmenter

segmenter = load_segmenter(sys.argv[1], "cpu")
assert "torchvision" not in sys.modules, "loading the model imported torchvision"
with av.open(sys.argv[2]) as container:
    frames = [f.to_ndarray(format="bgr24") for _, f in zip(range(16), container.decode(video=0))]
own = [(r.boxes.data.numpy(), r.masks.data.numpy()) for r in segmenter.predict(frames, 320, 0.1)]
import torchvision  # ultralytics uses torchvision's NMS once it is imported
theirs = [(r.boxes.data.numpy(), r.masks.data.numpy()) for r in segmenter.predict(frames, 320, 0.1)]
assert sum(len(boxes) for boxes, _ in own) > 16, "too few detections to compare"
for (boxes, masks), (their_boxes, their_masks) in zip(own, theirs, strict=True):
    assert np.array_equal(boxes, their_boxes) and np.array_equal(masks, their_masks)
print("same")
"""


def test_the_cpu_model_loads_without_torchvision_and_finds_the_same(
    model_path: Path, dog_clip: Path, isolated_home: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(model_path), str(dog_clip)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "same"
