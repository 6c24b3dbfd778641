"""The Python API: the whole product in a few calls, for pipelines.

    import smartfocus
    with smartfocus.open_video("clip.mp4", model="yolov8n-seg-int8dq.pt") as video:
        plan = smartfocus.FocusPlan().focus(0, (640, 360)).focus(120, (300, 200))
        video.render("out.mp4", plan, blur=0.6, matte_dir="mattes/")

The first render analyses the clip once (cached on disk); later renders with other plans reuse it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.focus.follow import (
    FOLLOW_VERSION,
    FollowSettings,
    flow_size,
    follow_subject_masks,
    settings_for,
    with_takeovers,
)
from smartfocus.focus.identity import SubjectTrack
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.timeline import FocusTimeline
from smartfocus.media.reader import VideoInfo, VideoReader
from smartfocus.media.reader import open_video as _open_reader
from smartfocus.paths import smartfocus_home
from smartfocus.render.compositor import LensSettings
from smartfocus.render.job import ProgressCallback, render_video
from smartfocus.vision.analysis import Analysis, analyse_video, cache_path, load_cached, video_fingerprint
from smartfocus.vision.model import Segmenter, load_segmenter, resolve_weights, weights_fingerprint
from smartfocus.vision.propagate import RegionSettings, segment_on_grid, track_region
from smartfocus.vision.region import (
    ClickSegmenter,
    Point,
    RegionTrack,
    click_segmenter,
    region_cache_path,
)
from smartfocus.vision.segment import AnalysisSettings, analysis_settings


class Video:
    """One video: its frames, its (lazily computed, cached) analysis, and renders of it."""

    def __init__(
        self,
        reader: VideoReader,
        *,
        model: str | os.PathLike[str] | None = None,
        device: str | None = None,
        settings: AnalysisSettings | None = None,
        cache_dir: Path | None = None,
        segmenter: Segmenter | None = None,
        region_cache_dir: Path | None = None,
    ) -> None:
        """`segmenter`: an already loaded model to share between videos (a server analysing many
        uploads loads it once); otherwise it is loaded from `model` when first needed."""
        self.reader = reader
        self.settings = settings or AnalysisSettings()
        self.cache_dir = cache_dir or smartfocus_home() / "analyses"
        self.region_cache_dir = region_cache_dir or smartfocus_home() / "regions"
        self._fingerprint: str | None = None
        self._model_spec, self._device = model, device
        self._segmenter: Segmenter | None = segmenter
        self._analysis: Analysis | None = None
        self._click_segmenter: ClickSegmenter | None = None
        self._analysis_key: str | None = None  # the analysis cache's name: what follow caches build on

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()

    @property
    def info(self) -> VideoInfo:
        return self.reader.info

    def analyse(self, progress: ProgressCallback | None = None) -> Analysis:
        """Segment and track the whole video once; cached in memory and on disk."""
        if self._analysis is not None:
            return self._analysis
        weights = resolve_weights(self._model_spec)
        cache_file = None
        if weights.is_file():  # else an official name still to be downloaded: nothing cached yet
            fingerprint = weights_fingerprint(weights)
            cache_file = cache_path(self.cache_dir, self.reader.info.path, fingerprint, self.settings)
            self._analysis = load_cached(cache_file)
        if self._analysis is None:
            if self._segmenter is None:
                self._segmenter = load_segmenter(self._model_spec, self._device)
            self._analysis = analyse_video(self.reader, self._segmenter, self.settings, progress=progress)
            fingerprint = self._segmenter.fingerprint  # known now, also for freshly downloaded weights
            if cache_file is None:
                cache_file = cache_path(self.cache_dir, self.reader.info.path, fingerprint, self.settings)
            self._analysis.save(cache_file)
        self._analysis_key = cache_file.stem if cache_file is not None else None
        return self._analysis

    def timeline(
        self,
        plan: FocusPlan,
        *,
        transition_seconds: float = 0.4,
        any_object: bool = False,
        progress: ProgressCallback | None = None,
    ) -> FocusTimeline:
        """The plan resolved against the analysis. A click on no detected object focuses on the region
        under it (segmented and followed through the clip, cached on disk; `progress` reports that
        pass); `any_object` treats every click so, as if nothing had been detected."""
        frames = max(1, round(transition_seconds * float(self.reader.info.fps)))
        analysis = self.analyse()

        def regions(frame: int, points: tuple[Point, ...], exclude: tuple[Point, ...]) -> RegionTrack:
            return self.region(frame, points, exclude, grid=analysis.grid, progress=progress)

        def click_region(frame: int, points: tuple[Point, ...], exclude: tuple[Point, ...]) -> np.ndarray:
            """The region on the click frame only: enough to judge a click, without following it."""
            image = self.reader.read(frame)
            small = cv2.resize(image, analysis.grid[::-1], interpolation=cv2.INTER_AREA)
            size = (self.reader.info.width, self.reader.info.height)
            return segment_on_grid(small, size, points, exclude, self.click_segmenter, image)

        return FocusTimeline(
            analysis,
            plan,
            transition_frames=frames,
            regions=regions,
            click_region=click_region,
            any_object=any_object,
            follow=self.followed,
        )

    def followed(self, frame: int, parts: tuple[SubjectTrack, ...]) -> RegionTrack:
        """A detected subject (its parts' tracklet chains, seen on `frame`) followed through the clip
        with optical flow (`focus.follow`); cached on disk next to the regions."""
        key = ("follow", FOLLOW_VERSION, self._analysis_key, [list(p.track_ids) for p in parts])
        path = region_cache_path(
            self.region_cache_dir, self._video_fingerprint(), frame, (), (), (key, self._follow_settings)
        )
        if self._analysis_key is not None and (cached := load_cached(path, RegionTrack.load)) is not None:
            return cached
        track = self._follow(frame, parts)
        if self._analysis_key is not None:
            track.save(path)
        return track

    def _follow(
        self, frame: int, parts: tuple[SubjectTrack, ...], seed: np.ndarray | None = None
    ) -> RegionTrack:
        analysis = self.analyse()
        size = flow_size(analysis.grid)

        def frames(start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
            return self.reader.small_frames(size, cv2.INTER_AREA, start, stop)

        return follow_subject_masks(analysis, frames, frame, parts, self._follow_settings, seed=seed)

    @property
    def _follow_settings(self) -> FollowSettings:
        return settings_for(self.settings.imgsz)

    @property
    def click_segmenter(self) -> ClickSegmenter:
        """The segmenter for clicks on no detected object (`vision.region.click_segmenter`), made
        once: a promptable model keeps its sessions and the frames it encoded."""
        if self._click_segmenter is None:
            self._click_segmenter = click_segmenter()
        return self._click_segmenter

    def _video_fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = video_fingerprint(self.reader.info.path)
        return self._fingerprint

    def region(
        self,
        frame: int,
        points: tuple[Point, ...],
        exclude: tuple[Point, ...] = (),
        *,
        grid: tuple[int, int] | None = None,
        progress: ProgressCallback | None = None,
    ) -> RegionTrack:
        """The region under `points` (source pixels) on `frame`, minus `exclude`, followed through the
        clip on the analysis' mask grid; cached on disk, so asking again costs nothing."""
        analysis = self.analyse()
        grid = grid or analysis.grid
        segmenter = self.click_segmenter
        settings = RegionSettings(segmenter=segmenter.name)
        key = (grid, settings, FOLLOW_VERSION, self._follow_settings, self._analysis_key)
        path = region_cache_path(
            self.region_cache_dir, self._video_fingerprint(), frame, points, exclude, key
        )
        if (cached := load_cached(path, RegionTrack.load)) is not None:
            return cached
        track = track_region(
            self.reader, frame, points, exclude, grid, segmenter, settings.propagation, progress
        )
        if grid == analysis.grid:  # a detection that later finds the region takes it over there
            track = with_takeovers(track, self._follow(frame, (), seed=track.mask(frame)))
        track.save(path)
        return track

    def render(
        self,
        output: str | os.PathLike[str],
        plan: FocusPlan | None = None,
        *,
        blur: float = 0.6,
        transition_seconds: float = 0.4,
        refine: bool = True,
        matte_dir: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
        any_object: bool = False,
        region_progress: ProgressCallback | None = None,
        timeline: FocusTimeline | None = None,
    ) -> Path:
        """Render with `plan` (no plan: a plain transcode). Analyses first if needed; clicks on no
        detected object are followed as regions (see `timeline`). A `timeline` already resolved
        from the plan (say, to report its `missing()` stretches first) is used as it is."""
        if timeline is None and plan and plan.keyframes:
            timeline = self.timeline(
                plan,
                transition_seconds=transition_seconds,
                any_object=any_object,
                progress=region_progress,
            )
        return render_video(
            self.reader,
            Path(output),
            timeline,
            LensSettings(strength=blur),
            refine=refine,
            matte_dir=Path(matte_dir) if matte_dir else None,
            progress=progress,
        )


def open_video(
    path: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    device: str | None = None,
    quality: str | None = None,
    imgsz: int | None = None,
    stride: int | None = None,
    fps: float | None = None,
) -> Video:
    """Open a video file or frame folder for focusing (nothing is analysed until needed).

    `quality` is an analysis preset ("fast", "balanced" (default), "best"; see
    `vision.segment.QUALITY_PRESETS`); `imgsz` and `stride` override its resolution and stride.
    """
    try:
        settings = analysis_settings(quality, imgsz=imgsz, stride=stride)
    except ValueError as error:
        raise SelectionError(str(error)) from None
    return Video(_open_reader(path, fps=fps), model=model, device=device, settings=settings)
