"""Loading YOLOv8-seg weights without ever touching the network or the user's home unasked.

ultralytics reads its settings and decides whether to phone home at import time, so
`configure_ultralytics()` must run before the first `import ultralytics` anywhere in the process;
`load_segmenter()` does it for you.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smartfocus.errors import ModelError
from smartfocus.paths import smartfocus_home

if TYPE_CHECKING:
    import numpy as np
    from ultralytics import YOLO
    from ultralytics.engine.predictor import BasePredictor
    from ultralytics.engine.results import Results

DEFAULT_MODEL = "yolov8n-seg.pt"
MODEL_ENV = "SMARTFOCUS_MODEL"
DEVICE_ENV = "SMARTFOCUS_DEVICE"
# Official asset names ultralytics knows how to download from its GitHub releases.
_OFFICIAL_PREFIXES = ("yolov8", "yolo11", "yolo26")
_DOWNLOAD_HOST = ("github.com", 443)


def configure_ultralytics() -> None:
    """Point ultralytics at a private settings folder and stop its network checks and auto-installs."""
    config_dir = smartfocus_home() / "ultralytics"
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ.setdefault("YOLO_VERBOSE", "False")  # its banners would interleave with our progress bars


@dataclass(frozen=True)
class Segmenter:
    """A loaded instance-segmentation model and how to run it."""

    model: YOLO
    name: str  # the weights' path or official name, part of the analysis cache key
    fingerprint: str  # identifies the weights' content, so a changed file invalidates caches
    device: str  # "cpu", "cuda:0", ...
    half: bool  # fp16 inference (CUDA only)
    # ultralytics' predictor keeps per-call state (its args, the letterbox), so one model is used by
    # one thread at a time; a process shares one Segmenter (analysis jobs, live streams) through it
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def class_names(self) -> dict[int, str]:
        return {int(key): str(value) for key, value in self.model.names.items()}

    def predict(self, images: Sequence[np.ndarray], imgsz: int, conf: float) -> list[Results]:
        """One batched inference on grid-size BGR images (see `vision.segment.FrameTracker`)."""
        with self._lock:
            return self.model.predict(
                list(images),
                imgsz=imgsz,
                conf=conf,
                device=self.device,
                quantize=16 if self.half else None,
                retina_masks=False,
                agnostic_nms=True,  # class labels are unreliable: one object must not appear twice
                verbose=False,
            )


class SharedModel:
    """The detector one process loads once and shares: the CLI, every session of a server, its jobs
    and its live streams ask this for the `Segmenter`, which is loaded on first use (thread-safe).

    `on_load` is called just before the (seconds-long) load, so a front end can say so.
    """

    def __init__(
        self,
        spec: str | os.PathLike[str] | None = None,
        device: str | None = None,
        *,
        on_load: Callable[[], None] | None = None,
    ) -> None:
        self.spec, self.device, self.on_load = spec, device, on_load
        self._segmenter: Segmenter | None = None
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def of(cls, segmenter: Segmenter) -> SharedModel:
        """A holder for a model already loaded (tests, benches)."""
        shared = cls(segmenter.name, segmenter.device)
        shared._segmenter, shared._fingerprint = segmenter, segmenter.fingerprint
        return shared

    @property
    def loaded(self) -> bool:
        return self._segmenter is not None

    def segmenter(self) -> Segmenter:
        with self._lock:
            if self._segmenter is None:
                if self.on_load is not None:
                    self.on_load()
                self._segmenter = load_segmenter(self.spec, self.device)
                self._fingerprint = self._segmenter.fingerprint
            return self._segmenter

    def fingerprint(self) -> str:
        """The weights' content hash (analysis cache keys), without loading the model when the
        weights are on disk: a cached analysis never waits for a model load."""
        if self._fingerprint is None:
            weights = resolve_weights(self.spec)
            if weights.is_file():
                self._fingerprint = weights_fingerprint(weights)
            else:  # an official name still to be downloaded: its content is known once loaded
                self.segmenter()
        assert self._fingerprint is not None
        return self._fingerprint


def resolve_device(requested: str | None = None) -> str:
    """`requested`, else `$SMARTFOCUS_DEVICE`, else the first CUDA GPU when present, else the CPU."""
    import torch

    device = requested or os.environ.get(DEVICE_ENV) or ("cuda:0" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but no CUDA GPU is available; use --device cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ModelError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")
    return device


def resolve_weights(spec: str | os.PathLike[str] | None = None) -> Path:
    """Find the weights file: `spec`, else `$SMARTFOCUS_MODEL`, else ultralytics' official nano model.

    A path that exists is used as is. An official name (e.g. `yolov8n-seg.pt`) is looked up in
    smartfocus' model folder and otherwise downloaded there by ultralytics; when the download host is
    unreachable we fail at once with a clear message instead of letting the download retry and hang.
    """
    raw = str(spec or os.environ.get(MODEL_ENV) or DEFAULT_MODEL)
    path = Path(raw).expanduser()
    if path.is_file():
        if not os.access(path, os.R_OK):
            raise ModelError(f"model weights {path} are not readable; fix the file's permissions")
        return path
    is_official_name = path.name == raw and raw.startswith(_OFFICIAL_PREFIXES) and raw.endswith(".pt")
    if not is_official_name:
        raise ModelError(
            f"model weights {raw} not found; pass --model PATH (or set {MODEL_ENV}) to a YOLOv8-seg .pt file"
        )
    local = smartfocus_home() / "models" / raw
    if local.is_file():
        return local
    if not _reachable(*_DOWNLOAD_HOST):
        raise ModelError(
            f"model weights {raw} are not on this machine and {_DOWNLOAD_HOST[0]} is unreachable to download "
            f"them; pass --model PATH (or set {MODEL_ENV}) to a local YOLOv8-seg .pt file"
        )
    local.parent.mkdir(parents=True, exist_ok=True)
    return local  # ultralytics downloads an official asset to exactly this path on first load


def load_segmenter(spec: str | os.PathLike[str] | None = None, device: str | None = None) -> Segmenter:
    """Load YOLOv8-seg weights for inference on `device` (half precision on CUDA)."""
    weights = resolve_weights(spec)
    device = resolve_device(device)
    configure_ultralytics()
    from ultralytics import YOLO

    try:
        model = YOLO(str(weights), task="segment")
    except Exception as error:  # ultralytics raises many types for a bad file; all mean the same to a user
        raise ModelError(f"cannot load model weights {weights}: {error}".splitlines()[0]) from error
    if model.task != "segment":
        raise ModelError(
            f"model {weights} is a {model.task} model; smartfocus needs a YOLO segmentation model"
        )
    _warm_up(model, device)
    return Segmenter(
        model=model,
        name=str(weights),
        fingerprint=weights_fingerprint(weights),
        device=device,
        half=device.startswith("cuda"),
    )


def _warm_up(model: YOLO, device: str) -> None:
    """Run one tiny prediction so ultralytics sets itself up now, then give torch every core.

    ultralytics' device setup pins torch to cpu_count - 1 threads: one thread on a 2-core machine,
    where two run inference about 1.75x faster. Its import also sets OpenCV to one thread, which
    would make compositing (OpenCV filters) twice as slow.

    On the CPU ultralytics' own warm-up runs nothing: it only imports torchvision, for its NMS,
    which pulls in torch._dynamo (1.2-1.6 s of every process' first render on a 2-core CPU).
    Skipping it leaves ultralytics on its own NMS, which it keeps equal to torchvision's (measured:
    the same boxes and masks on every frame of the 720p sample) and is no slower there.
    """
    import cv2
    import numpy as np
    import torch

    if device == "cpu":
        model.add_callback("on_predict_start", _skip_ultralytics_warm_up)
    model.predict(
        np.zeros((64, 64, 3), np.uint8),
        imgsz=64,
        device=device,
        quantize=16 if device != "cpu" else None,
        verbose=False,
    )
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    cv2.setNumThreads(os.cpu_count() or 1)


def _skip_ultralytics_warm_up(predictor: BasePredictor) -> None:
    predictor.done_warmup = True  # ultralytics reads it after this callback (see `_warm_up`)


def weights_fingerprint(path: Path) -> str:
    """Identifies the weights' content (part of analysis cache keys)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()[:16]


def _reachable(host: str, port: int, timeout: float = 1.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
