"""One frame in, `Instances` out: YOLOv8-seg inference plus ByteTrack association."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from smartfocus.vision.instances import Instances, appearance_histograms
from smartfocus.vision.model import Segmenter

if TYPE_CHECKING:
    from ultralytics.engine.results import Results

# ByteTrack settings (ultralytics' bytetrack.yaml defaults, except a longer buffer: identity across
# long gaps is re-linked by the focus layer, but fewer fragments make that easier).
_BYTETRACK = {
    "tracker_type": "bytetrack",
    "track_high_thresh": 0.25,
    "track_low_thresh": 0.1,
    "new_track_thresh": 0.25,
    "track_buffer": 30,
    "match_thresh": 0.8,
    "fuse_score": True,
}


@dataclass(frozen=True)
class AnalysisSettings:
    """What changes an analysis' result; part of its cache key."""

    imgsz: int = 320  # model input size (long side), a multiple of 32
    conf: float = 0.1  # low on purpose: ByteTrack's second stage uses the weak detections
    stride: int = 1  # run the model on every `stride`-th frame; frames between are interpolated

    def __post_init__(self) -> None:
        if not 1 <= self.stride <= 8:
            raise ValueError(f"stride must be between 1 and 8, got {self.stride}")
        if self.imgsz % 32 or not 64 <= self.imgsz <= 1920:
            raise ValueError(f"imgsz must be a multiple of 32 between 64 and 1920, got {self.imgsz}")


# Measured with bench/davis.py (DAVIS dev, 20 sequences, one click) and bench/engine.py (720p sample,
# 2-core CPU; analysis frames/s): 320 on every other frame 73 fps; 320 on every frame 38-52 fps and
# J&F 0.715, the default, the one that keeps a first render at >= 0.15x a plain transcode; 640 on
# every frame 11.6 fps and 0.794, for small and far subjects. 640 on every other frame (0.749) costs
# a first render at 0.12-0.13x; 512 on every other frame is as fast as the default with the same
# J&F (the README's resolution table).
QUALITY_PRESETS: dict[str, AnalysisSettings] = {
    "fast": AnalysisSettings(imgsz=320, stride=2),
    "balanced": AnalysisSettings(),
    "best": AnalysisSettings(imgsz=640),
}


def analysis_settings(
    quality: str | None = None, *, imgsz: int | None = None, stride: int | None = None
) -> AnalysisSettings:
    """The preset called `quality` (default "balanced"), with `imgsz` / `stride` overriding it."""
    name = quality or "balanced"
    if name not in QUALITY_PRESETS:
        raise ValueError(f"unknown quality {name!r}; use one of {', '.join(QUALITY_PRESETS)}")
    preset = QUALITY_PRESETS[name]
    return AnalysisSettings(
        imgsz=preset.imgsz if imgsz is None else imgsz,
        conf=preset.conf,
        stride=preset.stride if stride is None else stride,
    )


def grid_shape(frame_size: tuple[int, int], imgsz: int) -> tuple[int, int]:
    """(height, width) of the mask grid for a frame of `frame_size` = (width, height)."""
    width, height = frame_size
    ratio = min(imgsz / height, imgsz / width)
    return max(round(height * ratio), 1), max(round(width * ratio), 1)


def unletterbox(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Cut ultralytics' letterbox padding off (N, H, W) model-frame masks, leaving the mask grid.

    Resizing the padded masks straight to the frame shifts edges (by up to ~20 px at 720p); the padding
    is split between both sides exactly as ultralytics' LetterBox does, so we undo it the same way.
    """
    grid_h, grid_w = grid
    pad_h, pad_w = masks.shape[1] - grid_h, masks.shape[2] - grid_w
    top, left = round(pad_h / 2 - 0.1), round(pad_w / 2 - 0.1)
    if min(pad_h, pad_w, top, left) < 0:
        raise ValueError(f"masks of shape {masks.shape[1:]} cannot hold a {grid} grid")
    return masks[:, top : top + grid_h, left : left + grid_w]


class FrameTracker:
    """Segments and tracks the frames of ONE video, in order.

    Holds its own ByteTrack state and id counter: make one per video (or per live session) and never
    share it, so two videos can never exchange track ids. The model itself is stateless and shared.
    """

    def __init__(self, segmenter: Segmenter, settings: AnalysisSettings, frame_size: tuple[int, int]) -> None:
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import IterableSimpleNamespace

        self.segmenter = segmenter
        self.settings = settings
        self.frame_size = frame_size
        self.grid = grid_shape(frame_size, settings.imgsz)
        self._tracker = BYTETracker(IterableSimpleNamespace(**_BYTETRACK))

    def update(self, frame_bgr: np.ndarray) -> Instances:
        """Detect, segment and associate one frame; returns the tracked instances in it."""
        return self.update_batch([frame_bgr])[0]

    def update_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[Instances]:
        """`update` for consecutive frames, with one batched model call: on a 2-core CPU a batch
        of 8 costs ~30% less per frame than single frames. Association stays frame by frame.

        Frames may come at any size with the video's shape, best already at the mask grid's size
        (`self.grid`, the model's input size without letterbox padding; see
        `Yuv420Frame.resized_bgr`): others are shrunk here, once, and that image also gives the
        appearance histograms. Boxes come back in the video's pixels.
        """
        images = [self._model_input(frame) for frame in frames_bgr]
        results = self.segmenter.predict(images, self.settings.imgsz, self.settings.conf)
        return [self._associate(image, result) for image, result in zip(images, results, strict=True)]

    def _model_input(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The frame at the mask grid's size: what ultralytics would letterbox it to, minus the padding.

        Shrunk bilinearly, as ultralytics' LetterBox would (what the model is used to); doing it here
        spares a second full-size resize for the appearance histograms.
        """
        grid_h, grid_w = self.grid
        height, width = frame_bgr.shape[:2]
        frame_w, frame_h = self.frame_size
        if abs(width * frame_h - height * frame_w) > max(frame_w, frame_h):  # not the video's shape
            raise ValueError(f"frame of size {(width, height)} fed to a tracker for {self.frame_size}")
        if (height, width) == self.grid:
            return frame_bgr
        return cv2.resize(frame_bgr, (grid_w, grid_h), interpolation=cv2.INTER_LINEAR)

    def _associate(self, image: np.ndarray, result: Results) -> Instances:
        """Feed one frame's detections (on its grid-size `image`) to ByteTrack and keep the tracked ones."""
        detections = result.boxes.cpu().numpy()
        width, height = self.frame_size
        grid_h, grid_w = self.grid
        detections.data[:, :4] *= np.array(
            [width / grid_w, height / grid_h] * 2, np.float32
        )  # to video pixels
        tracked = self._tracker.update(detections, image)
        if result.masks is None or len(tracked) == 0:
            return Instances.empty(self.grid)
        rows = tracked[:, 7].astype(int)
        masks = unletterbox(result.masks.data[rows].cpu().numpy() > 0.5, self.grid)
        boxes = detections.xyxy[rows].astype(np.float32)  # measured, not Kalman-smoothed
        np.clip(boxes, 0, [width, height, width, height], out=boxes)
        return Instances(
            track_ids=tracked[:, 4].astype(np.int32),
            class_ids=tracked[:, 6].astype(np.int16),
            scores=tracked[:, 5].astype(np.float32),
            boxes=boxes,
            masks=np.ascontiguousarray(masks),
            appearance=appearance_histograms(image, masks),
        )
