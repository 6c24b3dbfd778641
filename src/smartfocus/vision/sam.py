"""A promptable "segment anything" model as the click segmenter: clicks in, the object's mask out.

MobileSAM-style ONNX weights (a TinyViT image encoder and SAM's prompt encoder + mask decoder; see
`shared/models/MODELS.md`), run with onnxruntime on the CPU or, where onnxruntime has CUDA, the GPU.
The encoder costs ~3 s a frame on a 2-core CPU, so it runs on the frames a person clicks, never on
every frame; the decoder ~0.1 s a prompt at the mask grid's size.

Written against the standard SAM ONNX interface (what `segment_anything`'s export produces); the
pre-processing (longest side to 1024, ImageNet mean/std in 0-255, zero padding bottom/right) is the
one the weights were trained with.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from smartfocus.errors import ModelError, SelectionError
from smartfocus.vision.model import DEVICE_ENV

SAM_DIR_ENV = "SMARTFOCUS_SAM_DIR"
ENCODER, DECODER = "mobilesam_encoder.onnx", "mobilesam_decoder.onnx"
INPUT_SIZE = 1024
_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
_STD = np.array([58.395, 57.12, 57.375], np.float32)
Point = tuple[float, float]


def sam_dir() -> Path | None:
    """The folder `$SMARTFOCUS_SAM_DIR` names (it must hold the two ONNX files), or None when unset."""
    chosen = os.environ.get(SAM_DIR_ENV)
    if not chosen:
        return None
    folder = Path(chosen)
    if not ((folder / ENCODER).is_file() and (folder / DECODER).is_file()):
        raise ModelError(
            f"{SAM_DIR_ENV}={chosen} does not hold {ENCODER} and {DECODER}; point it at the folder that does"
        )
    return folder


@dataclass
class SamSegmenter:
    """`ClickSegmenter` on the promptable model: include and exclude points (and, optionally, a
    box) on one frame give that object's mask.

    Frames are encoded once and kept (the last few), so more clicks on the same frame cost only the
    decoder. Not thread-safe: one per thread, like a reader.

    `device` is resolved like the detector's ("cpu", "cuda", "cuda:N"; None: `$SMARTFOCUS_DEVICE`,
    else the GPU where onnxruntime has CUDA): a CUDA device runs on onnxruntime's CUDA provider when
    this onnxruntime has one that starts (the onnxruntime-gpu build), else on the CPU provider.
    `provider` says which one ran.
    """

    folder: Path
    name: str = "mobilesam"
    wants_full_frame: bool = True  # give it the frame as shot: it resizes to 1024 itself
    cached_frames: int = 4
    device: str | None = None
    _sessions: tuple | None = field(default=None, repr=False)
    _embeddings: dict[bytes, np.ndarray] = field(default_factory=dict, repr=False)

    def segment(
        self,
        image: np.ndarray,
        positives: Sequence[Point],
        negatives: Sequence[Point],
        box: tuple[float, float, float, float] | None = None,
    ) -> np.ndarray:
        """Bool mask of `image` (BGR, any size) for the object the `positives` are on, without what
        the `negatives` are on; points and `box` (x0, y0, x1, y1) in `image` pixels."""
        if not positives:
            raise SelectionError("a region needs at least one positive click")
        height, width = image.shape[:2]
        scale = INPUT_SIZE / max(height, width)
        embedding = self._embedding(image, scale)
        points = [*positives, *negatives]
        labels = [1.0] * len(positives) + [0.0] * len(negatives)
        if box is not None:
            points += [(box[0], box[1]), (box[2], box[3])]
            labels += [2.0, 3.0]
        else:
            points.append((0.0, 0.0))  # SAM's padding point when there is no box
            labels.append(-1.0)
        _, decoder = self._load()
        masks, _scores, _low = decoder.run(
            None,
            {
                "image_embeddings": embedding,
                "point_coords": (np.array(points, np.float32) * scale)[None],
                "point_labels": np.array(labels, np.float32)[None],
                "mask_input": np.zeros((1, 1, 256, 256), np.float32),
                "has_mask_input": np.zeros(1, np.float32),
                "orig_im_size": np.array([height, width], np.float32),
            },
        )
        return masks[0, 0] > 0

    def _embedding(self, image: np.ndarray, scale: float) -> np.ndarray:
        # frames are told apart by a thumbnail: the same frame clicked again reuses its embedding
        thumbnail = cv2.resize(image, (32, 18), interpolation=cv2.INTER_AREA)
        key = thumbnail.tobytes() + str(image.shape).encode()
        if key not in self._embeddings:
            encoder, _ = self._load()
            height, width = image.shape[:2]
            size = (round(width * scale), round(height * scale))
            rgb = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
            padded = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
            padded[: size[1], : size[0]] = (rgb.astype(np.float32) - _MEAN) / _STD
            (embedding,) = encoder.run(None, {"input": padded.transpose(2, 0, 1)[None]})
            if len(self._embeddings) >= self.cached_frames:
                self._embeddings.pop(next(iter(self._embeddings)))
            self._embeddings[key] = embedding
        return self._embeddings[key]

    def _load(self) -> tuple:
        if self._sessions is None:
            try:
                import onnxruntime
            except ImportError:
                raise ModelError("the promptable segmenter needs onnxruntime: pip install onnxruntime") from None  # fmt: skip
            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            providers = onnx_providers(self.device, onnxruntime.get_available_providers())

            def open_with(chosen: list) -> tuple:
                return tuple(
                    onnxruntime.InferenceSession(str(self.folder / name), options, providers=chosen)
                    for name in (ENCODER, DECODER)
                )

            try:
                self._sessions = open_with(providers)
            except Exception:  # a CUDA provider that fails to start (driver, cuDNN): the CPU's
                if providers == [CPU_PROVIDER]:
                    raise
                self._sessions = open_with([CPU_PROVIDER])
        return self._sessions

    @property
    def provider(self) -> str:
        """The onnxruntime provider the encoder runs on (loads the model): onnxruntime itself falls
        back to the CPU where a CUDA provider is listed but cannot start."""
        return self._load()[0].get_providers()[0]


def segment_like(
    segmenter: SamSegmenter, image: np.ndarray, mask: np.ndarray, margin: float = 0.1
) -> np.ndarray:
    """The object a rough grid `mask` (on `image`, BGR as shot) lies on, segmented afresh on the grid:
    the promptable model prompted with the mask's box (grown by `margin` of its size each side, as a
    mask carried on flow lags the object) and its deepest point. What re-anchors a subject the
    detector misses (`focus.follow`)."""
    height, width = image.shape[:2]
    grid_h, grid_w = mask.shape
    sx, sy = width / grid_w, height / grid_h
    box = prompt_box(mask, (width, height), margin)
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    fresh = segmenter.segment(image, [((x + 0.5) * sx, (y + 0.5) * sy)], [], box=box)
    return cv2.resize(fresh.astype(np.float32), (grid_w, grid_h), interpolation=cv2.INTER_AREA) > 0.5


def prompt_box(
    mask: np.ndarray, size: tuple[int, int], margin: float = 0.1, points: Sequence[Point] = ()
) -> tuple[float, float, float, float]:
    """The box prompt (x0, y0, x1, y1, source pixels; `size` = (width, height)) around a grid `mask`
    and any `points` (source pixels), grown by `margin` of its size each side, inside the frame."""
    width, height = size
    sx, sy = width / mask.shape[1], height / mask.shape[0]
    ys, xs = np.nonzero(mask)
    x0 = min([float(xs.min()), *(x / sx for x, _ in points)])
    y0 = min([float(ys.min()), *(y / sy for _, y in points)])
    x1 = max([float(xs.max() + 1), *(x / sx for x, _ in points)])
    y1 = max([float(ys.max() + 1), *(y / sy for _, y in points)])
    pad_x, pad_y = margin * (x1 - x0), margin * (y1 - y0)
    return (
        max(0.0, (x0 - pad_x) * sx),
        max(0.0, (y0 - pad_y) * sy),
        min(float(width), (x1 + pad_x) * sx),
        min(float(height), (y1 + pad_y) * sy),
    )


CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


def onnx_providers(device: str | None, available: Sequence[str]) -> list:
    """onnxruntime's providers for `device` (None: `$SMARTFOCUS_DEVICE`, else CUDA when available):
    CUDA (on GPU N of "cuda:N") then the CPU, or the CPU alone."""
    device = device or os.environ.get(DEVICE_ENV) or "cuda"
    if device == "cpu" or CUDA_PROVIDER not in available:
        return [CPU_PROVIDER]
    index = int(device.partition(":")[2] or 0)
    return [(CUDA_PROVIDER, {"device_id": index}), CPU_PROVIDER]
