"""The analysis in chunks that can run anywhere, with track identities stitched across the cuts.

Each chunk segments and tracks its frames with a fresh tracker that starts `LEAD_FRAMES` early,
so by the chunk's first frame ByteTrack holds what is in view. Over the last `MATCH_FRAMES` of
that lead the chunk and the one before it saw the same frames; each of the chunk's tracks takes
the id of the earlier track its masks overlap most (mean IoU at least `MATCH_IOU`), so a subject
crossing a cut keeps its identity. A track the stitching cannot place (one that only starts near
the cut) gets a new id, which the focus engine's tracklet linking (`focus.identity`) re-links like
any id ByteTrack gave up on. The driver keeps only bit-packed results, a chunk at a time.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartfocus.media.reader import VideoReader
from smartfocus.media.reader import open_video as open_reader
from smartfocus.progress import Steps
from smartfocus.runner import ChunkRunner, plan_cuts
from smartfocus.vision.analysis import Analysis, AnalysisPacker, cache_path, iter_analysis, load_cached
from smartfocus.vision.model import Segmenter
from smartfocus.vision.segment import AnalysisSettings

LEAD_FRAMES = 30  # frames a chunk's tracker runs before the chunk: ByteTrack confirms tracks by then
MATCH_FRAMES = 10  # the lead's last frames, where both chunks' trackers are settled, vote on identities
MATCH_IOU = 0.5  # mean mask IoU for a track to continue an earlier one
_ROWS = ("frame_index", "track_ids", "class_ids", "scores", "boxes", "appearance", "packed_masks")


@dataclass(frozen=True)
class AnalysisJob:
    """One chunk of an analysis: frames [lead, stop) tracked, [start, stop) kept."""

    source: Path
    sequence_fps: float | None  # a frame folder's rate; None for a video file
    settings: AnalysisSettings
    lead: int
    start: int
    stop: int


def analyse_chunk(segmenter: Segmenter, job: AnalysisJob) -> Analysis:
    """Frames [lead, stop) segmented and tracked with a fresh tracker; frame 0 of the result is
    `job.lead`."""
    with open_reader(job.source, fps=job.sequence_fps) as reader:
        packer = AnalysisPacker((reader.info.width, reader.info.height), job.settings)
        for _, instances in iter_analysis(reader, segmenter, job.settings, job.lead, job.stop):
            packer.add(instances)
    return packer.analysis(segmenter.class_names)


class _Stitched:
    """Chunk results joined in frame order, their track ids made one numbering for the video."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {key: [] for key in _ROWS}
        self._previous: tuple[AnalysisJob, Analysis, dict[int, int]] | None = None
        self._next_id = 1
        self.class_names: dict[int, str] = {}

    def add(self, job: AnalysisJob, chunk: Analysis) -> None:
        ids = self._identities(job, chunk)
        keep = chunk.frame_index >= job.start - job.lead
        self._parts["frame_index"].append((chunk.frame_index[keep] + job.lead).astype(np.int32))
        self._parts["track_ids"].append(np.array([ids[int(t)] for t in chunk.track_ids[keep]], np.int32))
        for key in _ROWS[2:]:
            self._parts[key].append(getattr(chunk, key)[keep])
        self.class_names = chunk.class_names
        self._previous = (job, chunk, ids)

    def _identities(self, job: AnalysisJob, chunk: Analysis) -> dict[int, int]:
        """The chunk's track ids -> the video's: an earlier track's where the masks say so."""
        votes: dict[tuple[int, int], float] = defaultdict(float)
        sightings: dict[int, int] = defaultdict(int)
        if self._previous is not None:
            before_job, before, before_ids = self._previous
            for frame in range(max(job.lead, job.start - MATCH_FRAMES), job.start):
                new, old = chunk.instances(frame - job.lead), before.instances(frame - before_job.lead)
                for row, track in enumerate(new.track_ids.tolist()):
                    sightings[track] += 1
                    for other, earlier in enumerate(old.track_ids.tolist()):
                        if (iou := _iou(new.masks[row], old.masks[other])) > 0:
                            votes[track, before_ids[earlier]] += iou
        mapping: dict[int, int] = {}
        for (track, earlier), total in sorted(votes.items(), key=lambda item: -item[1]):
            if (
                track not in mapping
                and earlier not in mapping.values()
                and total / sightings[track] >= MATCH_IOU
            ):
                mapping[track] = earlier
        for track in np.unique(chunk.track_ids).tolist():
            if track not in mapping:
                mapping[track] = self._next_id
                self._next_id += 1
        return mapping

    def analysis(self, frame_size: tuple[int, int], frame_count: int, settings: AnalysisSettings) -> Analysis:
        arrays = {key: np.concatenate(parts) for key, parts in self._parts.items()}
        return Analysis(
            frame_size=frame_size,
            frame_count=frame_count,
            settings=settings,
            class_names=self.class_names,
            **arrays,
        )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def chunked_analysis_steps(
    reader: VideoReader,
    runner: ChunkRunner,
    load: Callable[[], Segmenter],
    weights_fingerprint: str,
    settings: AnalysisSettings,
    cache_dir: Path | None,
) -> Steps[Analysis]:
    """`vision.analysis.analysis_steps` with the frames analysed in chunks by `runner`, on workers
    that each load the model once (`load`) and keep it: the same cache, yielding (frames analysed,
    total) after each chunk. Closing the steps cancels the chunks still running; nothing is cached."""
    info = reader.info
    cache_file = cache_path(cache_dir, info.path, weights_fingerprint, settings) if cache_dir else None
    if cache_file and (cached := load_cached(cache_file)):
        return cached
    total = len(reader)
    cuts = plan_cuts(total, reader.keyframes(), runner.chunk_frames(total))
    sequence_fps = float(info.fps) if info.is_image_sequence else None
    jobs = [
        AnalysisJob(info.path, sequence_fps, settings, max(0, start - LEAD_FRAMES), start, stop)
        for start, stop in zip(cuts, [*cuts[1:], total], strict=True)
    ]
    stitched = _Stitched()
    with contextlib.closing(runner.ordered_with(load, analyse_chunk, jobs)) as chunks:
        for job, chunk in zip(jobs, chunks, strict=True):
            stitched.add(job, chunk)
            yield job.stop, total
    analysis = stitched.analysis((info.width, info.height), total, settings)
    if cache_file:
        analysis.save(cache_file)
    return analysis
