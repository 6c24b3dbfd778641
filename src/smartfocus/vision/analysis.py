"""Analyse once: every frame's tracked instances for a whole video, cached on disk.

After one pass (`analyse_video`), clicks, focus switches, previews and re-renders read the cached
`Analysis` and never run the model again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import cv2
import numpy as np

if TYPE_CHECKING:
    from smartfocus.media.reader import VideoReader
from smartfocus.media.transcode import read_ahead
from smartfocus.progress import Progress, Steps, drive
from smartfocus.vision.instances import APPEARANCE_BINS, Instances, interpolate_instances
from smartfocus.vision.model import Segmenter
from smartfocus.vision.segment import AnalysisSettings, FrameTracker, grid_shape

FORMAT_VERSION = 2  # 2: the packed masks in an uncompressed sidecar, mapped (not read) at load
Cached = TypeVar("Cached", bound=Any)  # whatever a cache file holds (see load_cached)
BATCH = 8  # frames per model call during analysis (see FrameTracker.update_batch)


@dataclass(frozen=True)
class Tracklet:
    """One ByteTrack id's life: the frames it was seen in, in order."""

    track_id: int
    frames: np.ndarray  # (K,) int, increasing
    rows: np.ndarray  # (K,) int, the row of each sighting in `Analysis`' flat arrays

    @property
    def start(self) -> int:
        return int(self.frames[0])

    @property
    def end(self) -> int:
        return int(self.frames[-1])


class Analysis:
    """All instances of all frames of one video, in flat arrays (one row per instance per frame).

    Masks are stored bit-packed on the mask grid; `instances(frame)` unpacks one frame on demand.
    A loaded analysis maps its masks from the cache file, so a long clip's are read from disk only
    where they are used.
    """

    def __init__(
        self,
        *,
        frame_size: tuple[int, int],
        frame_count: int,
        settings: AnalysisSettings,
        frame_index: np.ndarray,
        track_ids: np.ndarray,
        class_ids: np.ndarray,
        scores: np.ndarray,
        boxes: np.ndarray,
        appearance: np.ndarray,
        packed_masks: np.ndarray,
        class_names: dict[int, str],
    ) -> None:
        self.frame_size = frame_size
        self.frame_count = frame_count
        self.settings = settings
        self.grid = grid_shape(frame_size, settings.imgsz)
        self.frame_index = frame_index
        self.track_ids = track_ids
        self.class_ids = class_ids
        self.scores = scores
        self.boxes = boxes
        self.appearance = appearance
        self.packed_masks = packed_masks
        self.class_names = class_names
        # rows of frame f are offsets[f]:offsets[f + 1]; rows are stored in frame order
        self._offsets = np.searchsorted(frame_index, np.arange(frame_count + 1))
        self._tracklets: dict[int, Tracklet] | None = None

    @classmethod
    def from_frames(
        cls,
        frames: list[Instances],
        *,
        frame_size: tuple[int, int],
        settings: AnalysisSettings,
        class_names: dict[int, str],
    ) -> Analysis:
        """Pack per-frame instances into one analysis."""
        packer = AnalysisPacker(frame_size, settings)
        for instances in frames:
            packer.add(instances)
        return packer.analysis(class_names)

    def instances(self, frame: int) -> Instances:
        """The instances of `frame`, masks unpacked to the grid."""
        if not 0 <= frame < self.frame_count:
            raise IndexError(f"frame {frame} outside 0..{self.frame_count - 1}")
        rows = slice(self._offsets[frame], self._offsets[frame + 1])
        return Instances(
            track_ids=self.track_ids[rows],
            class_ids=self.class_ids[rows],
            scores=self.scores[rows],
            boxes=self.boxes[rows],
            masks=self._unpack(self.packed_masks[rows]),
            appearance=self.appearance[rows],
        )

    def class_vote(self, rows: np.ndarray) -> str | None:
        """The class of these detections of one object: their score-weighted vote (None for no rows)."""
        if not len(rows):
            return None
        votes = np.bincount(self.class_ids[rows].astype(np.int64), weights=self.scores[rows])
        return self.class_names.get(int(np.argmax(votes)))

    def row_of(self, frame: int, index: int) -> int:
        """The flat row of the `index`-th instance of `frame` (as ordered by `instances(frame)`)."""
        return int(self._offsets[frame]) + index

    def mask(self, row: int) -> np.ndarray:
        """The grid mask of one row."""
        return self._unpack(self.packed_masks[row : row + 1])[0]

    def _unpack(self, packed: np.ndarray) -> np.ndarray:
        size = self.grid[0] * self.grid[1]
        return np.unpackbits(packed, axis=1, count=size).astype(bool).reshape(len(packed), *self.grid)

    def tracklets(self) -> dict[int, Tracklet]:
        """Each track id's sightings, computed once."""
        if self._tracklets is None:
            order = np.lexsort((self.frame_index, self.track_ids))
            ids = self.track_ids[order]
            splits = np.flatnonzero(np.diff(ids)) + 1
            self._tracklets = {
                int(ids[group[0]]): Tracklet(int(ids[group[0]]), self.frame_index[order[group]], order[group])
                for group in np.split(np.arange(len(order)), splits)
                if len(group)
            }
        return self._tracklets

    def save(self, path: Path) -> None:
        """Write atomically (temp files + rename), so a crash never leaves a half cache: the masks'
        sidecar first, the `.npz` that makes the entry whole last."""
        save_npy(masks_path(path), np.ascontiguousarray(self.packed_masks))
        save_npz(
            path,
            meta=np.frombuffer(
                json.dumps(
                    {
                        "format": FORMAT_VERSION,
                        "frame_size": self.frame_size,
                        "frame_count": self.frame_count,
                        "settings": asdict(self.settings),
                        "class_names": self.class_names,
                    }
                ).encode(),
                np.uint8,
            ),
            frame_index=self.frame_index,
            track_ids=self.track_ids,
            class_ids=self.class_ids,
            scores=self.scores,
            boxes=self.boxes,
            appearance=self.appearance,
        )

    @classmethod
    def load(cls, path: Path) -> Analysis:
        with np.load(path) as data:
            meta = json.loads(data["meta"].tobytes())
            if meta["format"] != FORMAT_VERSION:
                raise ValueError(f"{path} has analysis format {meta['format']}, expected {FORMAT_VERSION}")
            packed_masks = np.load(masks_path(path), mmap_mode="r")
            if len(packed_masks) != len(data["frame_index"]):
                raise ValueError(f"{masks_path(path)} does not belong to {path}")
            return cls(
                frame_size=tuple(meta["frame_size"]),
                frame_count=meta["frame_count"],
                settings=AnalysisSettings(**meta["settings"]),
                class_names={int(k): v for k, v in meta["class_names"].items()},
                **{
                    key: data[key]
                    for key in ("frame_index", "track_ids", "class_ids", "scores", "boxes", "appearance")
                },
                packed_masks=packed_masks,
            )


class AnalysisPacker:
    """Frames' instances packed as they come, so a long analysis holds its bit-packed result while
    it runs (an eighth of the masks' bytes), never every frame's unpacked masks."""

    _DTYPES = (
        ("track_ids", np.int32), ("class_ids", np.int16), ("scores", np.float32),
        ("boxes", np.float32), ("appearance", np.float32),
    )  # fmt: skip

    def __init__(self, frame_size: tuple[int, int], settings: AnalysisSettings) -> None:
        self.frame_size, self.settings = frame_size, settings
        self.grid = grid_shape(frame_size, settings.imgsz)
        self._parts: dict[str, list[np.ndarray]] = {key: [] for key, _ in self._DTYPES}
        self._parts |= {"frame_index": [], "packed_masks": []}
        self.frames = 0

    def add(self, instances: Instances) -> None:
        """The next frame's instances."""
        count = len(instances)
        if count:
            self._parts["frame_index"].append(np.full(count, self.frames, np.int32))
            for key, dtype in self._DTYPES:
                self._parts[key].append(getattr(instances, key).astype(dtype))
            masks = instances.masks.reshape(count, -1).astype(bool)
            self._parts["packed_masks"].append(np.packbits(masks, axis=1))
        self.frames += 1

    def analysis(self, class_names: dict[int, str]) -> Analysis:
        bytes_per_mask = (self.grid[0] * self.grid[1] + 7) // 8
        empty = {
            "frame_index": np.zeros(0, np.int32),
            "boxes": np.zeros((0, 4), np.float32),
            "appearance": np.zeros((0, APPEARANCE_BINS), np.float32),
            "packed_masks": np.zeros((0, bytes_per_mask), np.uint8),
            **{key: np.zeros(0, dtype) for key, dtype in self._DTYPES if key not in ("boxes", "appearance")},
        }
        arrays = {key: np.concatenate(parts) if parts else empty[key] for key, parts in self._parts.items()}
        return Analysis(
            frame_size=self.frame_size,
            frame_count=self.frames,
            settings=self.settings,
            class_names=class_names,
            **arrays,
        )


def iter_analysis(
    reader: VideoReader,
    segmenter: Segmenter,
    settings: AnalysisSettings,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, Instances]]:
    """Segment and track a video (frames `start` up to `stop`) with a fresh tracker, yielding every
    frame's instances in order (a generator, so callers can show progress or stop early). With
    `settings.stride` > 1 the model runs on every stride-th frame of the video (and the last); the
    frames between get interpolated instances."""
    size = (reader.info.width, reader.info.height)
    tracker = FrameTracker(segmenter, settings, size)
    scale = tracker.grid[1] / size[0]
    last = (len(reader) if stop is None else min(stop, len(reader))) - 1
    previous: tuple[int, Instances] | None = None
    batch: list[tuple[int, np.ndarray]] = []
    # The model sees the frame at its ~320 px input size (the mask grid's), so that is all that is
    # made of each frame (for videos from the YUV planes: ~0.3 ms instead of a full BGR conversion
    # and a resize); bilinear, like ultralytics' LetterBox, which then only pads.
    decoded = reader.small_frames(tracker.grid[::-1], cv2.INTER_LINEAR, start, last + 1)
    with contextlib.closing(read_ahead(decoded, depth=BATCH)) as frames:  # decode while inferring
        for index, frame in frames:
            if index % settings.stride and index != last:
                continue  # interpolated once the next analysed frame is known
            batch.append((index, frame))
            if len(batch) < BATCH and index != last:
                continue
            found = tracker.update_batch([image for _, image in batch])
            for (analysed, _), instances in zip(batch, found, strict=True):
                if previous is not None:
                    start, before = previous
                    for skipped in range(start + 1, analysed):
                        weight = (skipped - start) / (analysed - start)
                        yield skipped, interpolate_instances(before, instances, weight, scale)
                yield analysed, instances
                previous = (analysed, instances)
            batch.clear()


def analysis_steps(
    reader: VideoReader,
    segmenter: Callable[[], Segmenter],
    weights_fingerprint: str,
    settings: AnalysisSettings,
    cache_dir: Path | None,
) -> Steps[Analysis]:
    """The video's analysis, as steps (`smartfocus.progress`): read from `cache_dir` when it was
    computed before (no step, and the model is never asked for), else computed frame by frame and
    cached. Closing the steps early caches nothing."""
    cache_file = cache_path(cache_dir, reader.info.path, weights_fingerprint, settings) if cache_dir else None
    if cache_file and (cached := load_cached(cache_file)):
        return cached
    model = segmenter()
    total = len(reader)
    packer = AnalysisPacker((reader.info.width, reader.info.height), settings)
    for index, instances in iter_analysis(reader, model, settings):
        packer.add(instances)
        yield index + 1, total
    analysis = packer.analysis(model.class_names)
    if cache_file:
        analysis.save(cache_file)
    return analysis


def analyse_video(
    reader: VideoReader,
    segmenter: Segmenter,
    settings: AnalysisSettings | None = None,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """`analysis_steps` with a loaded model, run to the end."""
    steps = analysis_steps(
        reader, lambda: segmenter, segmenter.fingerprint, settings or AnalysisSettings(), cache_dir
    )
    return drive(steps, progress)


def cache_path(cache_dir: Path, video: Path, weights_fingerprint: str, settings: AnalysisSettings) -> Path:
    """Where the analysis of (video content, weights, settings) is kept; any change misses the cache.

    Needs only the weights' fingerprint, not the loaded model, so a cache hit never loads the model.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([FORMAT_VERSION, weights_fingerprint, asdict(settings)]).encode())
    digest.update(video_fingerprint(video).encode())
    return cache_dir / f"{digest.hexdigest()[:24]}.npz"


def masks_path(path: Path) -> Path:
    """The sidecar of an analysis cache file that holds its packed masks."""
    return path.with_suffix(".masks.npy")


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write one uncompressed array atomically, for `np.load(..., mmap_mode="r")`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as file:
        np.save(file, array)
    os.replace(partial, path)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write a cache file atomically (temp file + rename): a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as file:
        np.savez_compressed(file, **arrays)
    os.replace(partial, path)


def load_cached(path: Path, load: Callable[[Path], Cached] = Analysis.load) -> Cached | None:
    """What is cached at `path` (an analysis unless another `load` is given, e.g. a region track), or
    None when there is none; a damaged or stale file (older format) is removed."""
    if not path.is_file():
        return None
    try:
        return load(path)
    except (ValueError, OSError, KeyError):
        path.unlink(missing_ok=True)
        return None


def video_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """A content hash of a video file (size + first and last MiB) or a frame folder (names + sizes);
    cheap even for long files, and it changes when the content does."""
    digest = hashlib.sha256()
    if path.is_dir():
        for entry in sorted(path.iterdir()):
            digest.update(f"{entry.name}:{entry.stat().st_size};".encode())
        return digest.hexdigest()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as file:
        digest.update(file.read(chunk))
        file.seek(max(0, size - chunk))
        digest.update(file.read(chunk))
    return digest.hexdigest()
