"""A focus plan resolved against an analysis: the subject matte and blur strength at any frame.

Resolving costs no inference: clicks are looked up in the cached analysis, so switching focus,
adding a subject or changing the timing is instant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.focus.correct import CorrectedSubject, correct
from smartfocus.focus.identity import LinkSettings, SubjectTrack, follow_subject, link_tracklets
from smartfocus.focus.parts import find_parts
from smartfocus.focus.plan import FocusPlan, Keyframe, check_frame, check_inside
from smartfocus.focus.selection import select_instance
from smartfocus.vision.analysis import Analysis
from smartfocus.vision.instances import Instances
from smartfocus.vision.region import Point, RegionTrack

# A click on an unsure detection (score below UNSURE_SCORE) that covers less than PART_OF_REGION of the
# region segmented under the click, while lying mostly inside it, picked a part of something the
# detector does not know (a stroller's frame called "bicycle"): the region is the subject instead.
# Measured on DAVIS dev frames 0: only stroller's click meets this; sure detections are never checked.
UNSURE_SCORE = 0.5
PART_OF_REGION = 0.5
INSIDE_REGION = 0.5

DEFAULT_TRANSITION_S = 0.4  # a rack focus, and the blur easing out and in, take this long

RegionProvider = Callable[[int, tuple[Point, ...], tuple[Point, ...]], RegionTrack]
# The region on the click frame alone (grid mask): judging a click needs no pass over the clip.
ClickRegionProvider = Callable[[int, tuple[Point, ...], tuple[Point, ...]], np.ndarray]
"""(frame, positive points, negative points) in source pixels -> the region followed through the clip."""
# (click frame, the subject's parts as tracklet chains) -> its mask on every frame, followed with
# optical flow and judged against the detections (`focus.follow`); cached by whoever provides it
SubjectFollower = Callable[[int, tuple[SubjectTrack, ...]], RegionTrack]
# (correction frame, include points, exclude points, the subject's grid mask there) -> what the mask
# misses of the object under the points, followed through the clip (`focus.correct.FollowPiece`)
PieceProvider = Callable[[int, tuple[Point, ...], tuple[Point, ...], np.ndarray], RegionTrack | None]


class Subject(Protocol):
    """What the timeline needs of a subject, detected (`SubjectTrack`) or clicked region alike."""

    def visible(self) -> np.ndarray:
        """(frame_count,) bool."""
        ...

    def mask(self, analysis: Analysis, frame: int) -> np.ndarray | None:
        """Grid mask as float32 [0, 1], or None where the subject is not there."""
        ...

    def status(self) -> np.ndarray:
        """(frame_count,) float32: 1 detected, 0.5 carried (estimated), 0 not visible."""
        ...


class _OnRegionTrack:
    """A subject whose masks are one `RegionTrack` (bit-packed, computed once and cached)."""

    track: RegionTrack

    def visible(self) -> np.ndarray:
        return self.track.visible

    def mask(self, analysis: Analysis, frame: int) -> np.ndarray | None:
        mask = self.track.mask(frame)
        return None if mask is None else mask.astype(np.float32)


@dataclass(frozen=True)
class RegionSubject(_OnRegionTrack):
    """A subject the detector does not know: a region segmented from clicks and followed by flow."""

    frame: int
    points: tuple[Point, ...]
    exclude: tuple[Point, ...]
    track: RegionTrack

    def status(self) -> np.ndarray:
        """Segmented on the click frame, carried by flow everywhere else it was followed."""
        status = np.where(self.track.visible, 0.5, 0.0).astype(np.float32)
        status[self.frame] = 1.0
        return status


@dataclass(frozen=True)
class PartsSubject:
    """A detected subject and what it rides or carries (`focus.parts`), from the tracklet chains
    alone: what the timeline uses where no frames are at hand to follow it with optical flow."""

    parts: tuple[SubjectTrack, ...]

    def visible(self) -> np.ndarray:
        return np.logical_or.reduce([part.visible() for part in self.parts])

    def mask(self, analysis: Analysis, frame: int) -> np.ndarray | None:
        masks = [m for part in self.parts if (m := part.mask(analysis, frame)) is not None]
        return np.maximum.reduce(masks) if masks else None

    def status(self) -> np.ndarray:
        return np.maximum.reduce([part.status() for part in self.parts])


@dataclass(frozen=True)
class FollowedSubject(_OnRegionTrack):
    """A detected subject (with its parts) followed frame by frame (`focus.follow`): `status` is
    1 where detected, 0.5 where carried on optical flow, 0 where not visible."""

    track_ids: tuple[int, ...]
    track: RegionTrack

    def status(self) -> np.ndarray:
        return self.track.confidence


def subject_identity(analysis: Analysis, subject: Subject) -> tuple[str, int | None]:
    """What a subject is: the detector's class and the clicked track's id ("person", 3), or
    ("region", None) for a click on something the detector does not know. The class is the track's
    score-weighted vote, and is named only when its detections are confident (`class_name`)."""
    if isinstance(subject, CorrectedSubject):
        return subject_identity(analysis, subject.base)
    if isinstance(subject, RegionSubject):
        return "region", None
    # a FollowedSubject or SubjectTrack names its tracks; a PartsSubject's first part is the clicked one
    track = subject.parts[0] if isinstance(subject, PartsSubject) else subject
    track_id = int(track.track_ids[0])  # type: ignore[attr-defined]
    return track_name(analysis, track_id), track_id


CONFIDENT_LABEL_SCORE = 0.5  # below it the detector's class is often wrong (a kitten "person")


def track_name(analysis: Analysis, track_id: int) -> str:
    """What to call a track: its detections' score-weighted class vote, or "object" when they are
    not confident enough to state a class as fact (a subject is better called by what the user can
    see, its thumbnail, than by a wrong class)."""
    seen = np.flatnonzero(analysis.track_ids == track_id)
    if not len(seen):
        return "object"
    if float(np.median(analysis.scores[seen])) < CONFIDENT_LABEL_SCORE:
        return "object"
    return analysis.class_vote(seen) or "object"


def subject_label(analysis: Analysis, subject: Subject) -> str:
    """What to call a subject on screen: "person #3", or "region"."""
    name, track_id = subject_identity(analysis, subject)
    return name if track_id is None else f"{name} #{track_id}"


@dataclass(frozen=True)
class FocusState:
    """What the compositor needs for one frame (masks on the analysis' grid)."""

    matte: np.ndarray  # float32 [0, 1]: subjects weighted by rack-focus progress (what stays sharp)
    subject_matte: np.ndarray  # float32 [0, 1]: the subjects in focus at this frame, unweighted (export)
    strength: float  # 0..1 multiplier on the blur; eases out while no subject is in view


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3 - 2 * x)


class FocusTimeline:
    """Per-frame focus for one (analysis, plan) pair.

    Args:
        transition_frames: length of a rack focus, and of the blur easing out and back in when the
            subjects leave and re-enter the view.
        regions: segments and follows a region from clicks that land on no detected object; without
            it such a click raises SelectionError.
        click_region: the region on the click frame only, to judge a click on an unsure detection
            without following a region through the clip first (default: `regions`' click frame).
        any_object: send every click to `regions`, as if the detector had found nothing (for
            benchmarking the region path).
        follow: follows a detected subject with optical flow (see `SubjectFollower`); without it
            the tracklet chains alone say where the subject is.
        pieces: segments what a correction click adds together with the subject (see
            `PieceProvider`); without it, or where it answers None, the region under the click alone.

    A "refine" keyframe corrects the subject in focus there (`focus.correct`); it needs `regions`
    and `follow`, which follow what its clicks add or cut.
    """

    def __init__(
        self,
        analysis: Analysis,
        plan: FocusPlan,
        *,
        transition_frames: int = 12,
        fps: float | None = None,
        link_settings: LinkSettings | None = None,
        regions: RegionProvider | None = None,
        click_region: ClickRegionProvider | None = None,
        any_object: bool = False,
        follow: SubjectFollower | None = None,
        pieces: PieceProvider | None = None,
    ) -> None:
        if any_object and regions is None:
            raise ValueError("any_object needs a region provider")
        self.analysis = analysis
        self.plan = plan
        self.transition_frames = max(int(transition_frames), 1)
        self._spans = _transition_spans(plan, analysis.frame_count, self.transition_frames, fps)
        if click_region is None and regions is not None:
            provider = regions

            def click_region(frame: int, points: tuple[Point, ...], exclude: tuple[Point, ...]) -> np.ndarray:
                mask = provider(frame, points, exclude).mask(frame)
                return np.zeros(analysis.grid, bool) if mask is None else mask

        self.subjects, self.active, self.keyframe_subjects = _resolve(
            analysis,
            plan,
            link_settings or LinkSettings(),
            regions,
            click_region,
            any_object,
            follow,
            pieces,
        )
        self.first_keyframe = plan.keyframes[0].frame if plan.keyframes else analysis.frame_count
        self._weights = self._rack_weights()
        self._strength = self._strength_envelope()

    def _rack_weights(self) -> np.ndarray:
        """(frames, subjects) in [0, 1]: each subject sharpens over the `transition_frames` before the
        keyframe that brings it into focus and softens over those before the keyframe that ends it,
        so the look a keyframe asks for is reached on the keyframe itself (where the user clicked).
        A keyframe on frame 0 takes effect at once."""
        frames = self.active.shape[0]
        weights = np.zeros(self.active.shape, np.float32)
        level = np.zeros(self.active.shape[1], np.float32)
        for frame in range(self._ease_start, frames):
            span = int(self._spans[frame])  # the transition of the keyframe this frame leads to
            target = self.active[min(frame + span, frames - 1)].astype(np.float32)
            if frame == 0 and self.first_keyframe == 0:
                level = self.active[0].astype(np.float32)
            else:
                level = np.clip(level + np.sign(target - level) / span, 0, 1)
            weights[frame] = level
        return _smoothstep(weights)

    @property
    def _ease_start(self) -> int:
        """First frame the look changes on: the first keyframe, less a transition to ease in over."""
        if self.first_keyframe <= 0 or self.first_keyframe >= len(self._spans):
            return 0
        return max(self.first_keyframe - int(self._spans[self.first_keyframe - 1]), 0)

    def _strength_envelope(self) -> np.ndarray:
        """(frames,) blur multiplier: 0 until the ease into the first keyframe, eased towards 0 around
        stretches where no subject in focus is visible, so the blur never pops on or off."""
        frames = self.active.shape[0]
        visible = np.zeros(frames, np.float32)
        for column, subject in enumerate(self.subjects):
            visible = np.maximum(
                visible, (subject.visible() & (self._weights[:, column] > 0)).astype(np.float32)
            )
        if self.first_keyframe >= frames:
            return np.zeros(frames, np.float32)
        start = self._ease_start
        window = self.transition_frames | 1  # odd, so the average is centred
        padded = np.pad(visible[start:], window // 2, mode="edge")
        smooth = np.convolve(padded, np.ones(window) / window, mode="valid")
        envelope = np.zeros(frames, np.float32)
        envelope[start:] = smooth
        if self.first_keyframe > 0:  # ease in, reaching full strength on the first keyframe
            ramp = np.arange(1, frames - start + 1) / (self.first_keyframe - start + 1)
            envelope[start:] *= np.minimum(ramp, 1.0)
        return _smoothstep(np.clip(envelope, 0, 1)).astype(np.float32)

    def strength(self, frame: int) -> float:
        return float(self._strength[frame])

    def missing(self) -> list[tuple[int, int, int]]:
        """Where a subject the plan puts in focus is not found: (subject index, first frame, last
        frame) stretches. The blur eases out there; the CLI warns and the page's strip shows them."""
        stretches = []
        for column, subject in enumerate(self.subjects):
            absent = self.active[:, column] & (subject.status() == 0)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], absent.astype(np.int8), [0]])))
            stretches += [(column, int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        return sorted(stretches, key=lambda item: (item[1], item[0]))

    def subject_at(self, frame: int, x: float, y: float) -> Subject | None:
        """The subject in focus at `frame` whose mask is under (or nearest to) source pixel (x, y):
        what a click there picked. None when nothing is in focus there."""
        columns = np.flatnonzero(self.active[frame]).tolist()
        column = _nearest_subject(self.analysis, self.subjects, columns, frame, x, y)
        return None if column is None else self.subjects[column]

    def state(self, frame: int) -> FocusState:
        """The focus at `frame`."""
        grid = self.analysis.grid
        matte = np.zeros(grid, np.float32)
        subject_matte = np.zeros(grid, np.float32)
        for column, subject in enumerate(self.subjects):
            weight = self._weights[frame, column]
            in_focus = self.active[frame, column]
            if weight <= 0 and not in_focus:
                continue
            mask = subject.mask(self.analysis, frame)
            if mask is None:
                continue
            np.maximum(matte, weight * mask, out=matte)
            if in_focus:
                np.maximum(subject_matte, mask, out=subject_matte)
        return FocusState(matte=matte, subject_matte=subject_matte, strength=self.strength(frame))


def _transition_spans(plan: FocusPlan, frames: int, default: int, fps: float | None) -> np.ndarray:
    """(frames,) the rack focus' length in frames at each frame: that of the next keyframe after
    it (its own `transition` in seconds, else `default`), so each keyframe eases in over its own."""
    spans = np.full(max(frames, 1), default, np.int64)
    start = 0
    for keyframe in plan.keyframes:
        if keyframe.transition is not None:
            if fps is None:
                raise ValueError("keyframes with their own transition need the video's fps")
            spans[start : keyframe.frame] = max(1, round(keyframe.transition * fps))
        start = max(start, keyframe.frame)
    return spans


def _resolve(
    analysis: Analysis,
    plan: FocusPlan,
    settings: LinkSettings,
    regions: RegionProvider | None,
    click_region: ClickRegionProvider | None,
    any_object: bool,
    follow: SubjectFollower | None,
    pieces: PieceProvider | None = None,
) -> tuple[list[Subject], np.ndarray, tuple[tuple[int, ...], ...]]:
    """The subjects the plan's clicks pick, which are in focus at each frame (frames, subjects), and
    the subjects each keyframe picks or corrects (a page names a keyframe by them).

    A click picks the detected object under it; the clicks of one keyframe that land on none form one
    region (segmented together, so extra clicks grow it and the keyframe's exclude points cut it).
    """
    successors = link_tracklets(analysis, settings)
    subjects: list[Subject] = []
    keys: list[object] = []
    sets: list[tuple[int, set[int]]] = []
    current: set[int] = set()

    made_on: list[int] = []  # the keyframe frame each subject was first clicked on
    picked: list[tuple[int, ...]] = []  # per keyframe

    def index_of(key: object, make: Callable[[], Subject], frame: int) -> int:
        if key not in keys:
            keys.append(key)
            subjects.append(make())
            made_on.append(frame)
        return keys.index(key)

    for keyframe in plan.keyframes:
        check_frame(keyframe, analysis.frame_count)
        if keyframe.action == "refine":
            if regions is None or follow is None:
                raise SelectionError("corrections need the video's frames to follow them; open the video")
            column = _corrected_column(analysis, keyframe, subjects, current)
            subjects[column] = correct(
                analysis,
                subjects[column],
                made_on[column],
                keyframe.frame,
                keyframe.points,
                keyframe.exclude,
                lambda tid, whole, f=keyframe.frame: follow(
                    f,
                    _with_parts(analysis, f, tid, successors, settings, set())
                    if whole
                    else (follow_subject(analysis, tid, successors, settings),),
                ),
                lambda points, exclude, f=keyframe.frame: regions(f, points, exclude),
                None
                if pieces is None
                else lambda points, exclude, current, f=keyframe.frame: pieces(f, points, exclude, current),
            )
            picked.append((column,))
            continue
        instances = _without_excluded(analysis, keyframe)
        # what the exclude points ruled out is never made a part either
        excluded = set(analysis.instances(keyframe.frame).track_ids.tolist()) - set(
            instances.track_ids.tolist()
        )
        chosen: set[int] = set()
        loose: list[Point] = []
        for x, y in keyframe.points:
            check_inside(x, y, analysis.frame_size)
            if any_object:
                loose.append((x, y))
                continue
            try:
                row = select_instance(instances, x, y, analysis.frame_size, analysis.class_names)
            except SelectionError:
                if regions is None:
                    raise
                loose.append((x, y))
                continue
            unsure = click_region is not None and instances.scores[row] < UNSURE_SCORE
            if unsure and part_of_a_region(
                instances, row, click_region(keyframe.frame, ((x, y),), keyframe.exclude)
            ):
                loose.append((x, y))
                continue
            track_id = int(instances.track_ids[row])
            parts = _with_parts(analysis, keyframe.frame, track_id, successors, settings, excluded)
            ids = tuple(part.track_ids for part in parts)
            if follow is None:
                chosen.add(
                    index_of(
                        ("track", ids),
                        lambda parts=parts: parts[0] if len(parts) == 1 else PartsSubject(parts),
                        keyframe.frame,
                    )
                )
            else:
                chosen.add(
                    index_of(
                        ("followed", keyframe.frame, ids),
                        lambda f=keyframe.frame, parts=parts: FollowedSubject(
                            tuple(t for p in parts for t in p.track_ids), follow(f, parts)
                        ),
                        keyframe.frame,
                    )
                )
        if loose and regions is not None:
            points, exclude = tuple(loose), keyframe.exclude
            key = ("region", keyframe.frame, points, exclude)
            chosen.add(
                index_of(
                    key,
                    lambda f=keyframe.frame, p=points, e=exclude: RegionSubject(f, p, e, regions(f, p, e)),
                    keyframe.frame,
                )
            )
        current = {"focus": chosen, "add": current | chosen, "clear": set()}[keyframe.action]
        sets.append((keyframe.frame, set(current)))
        picked.append(tuple(sorted(chosen)))
    active = np.zeros((analysis.frame_count, len(subjects)), bool)
    for frame, members in sets:
        active[frame:] = False
        active[frame:, sorted(members)] = True
    return subjects, active, tuple(picked)


def _corrected_column(
    analysis: Analysis, keyframe: Keyframe, subjects: list[Subject], current: set[int]
) -> int:
    """The subject in focus at a "refine" keyframe that its clicks correct: the one whose mask there
    lies nearest the first click (the only one, when one subject is in focus)."""
    if not current:
        raise SelectionError(
            f"nothing is in focus on frame {keyframe.frame} to correct; click a subject first (--focus)"
        )
    x, y = (keyframe.points or keyframe.exclude)[0]
    check_inside(x, y, analysis.frame_size)
    column = _nearest_subject(analysis, subjects, sorted(current), keyframe.frame, x, y)
    return sorted(current)[0] if column is None else column


def _nearest_subject(
    analysis: Analysis, subjects: list[Subject], columns: list[int], frame: int, x: float, y: float
) -> int | None:
    """Of the subjects in `columns`, the one whose mask on `frame` lies under or nearest source
    pixel (x, y) (the first of equals); None when none has a mask there."""
    width, height = analysis.frame_size
    grid_h, grid_w = analysis.grid
    cell = np.array([min(int(y * grid_h / height), grid_h - 1), min(int(x * grid_w / width), grid_w - 1)])
    best: tuple[float, int] | None = None
    for column in columns:
        mask = subjects[column].mask(analysis, frame)
        if mask is None or not (mask > 0.5).any():
            continue
        distance = float(np.min(np.sum((np.argwhere(mask > 0.5) - cell) ** 2, axis=1)))
        if best is None or distance < best[0]:
            best = (distance, column)
    return None if best is None else best[1]


def hover_mask(
    analysis: Analysis, frame: int, row: int, successors: dict[int, int], settings: LinkSettings | None = None
) -> np.ndarray:
    """What a click on the `row`-th object of `frame` puts in focus on that frame: the object and
    what it rides or carries, exactly the click frame's mask of the subject the click makes (the
    union of its parts' detections there). The page's hover shows this, so it agrees with the click."""
    track_id = int(analysis.instances(frame).track_ids[row])
    parts = _with_parts(analysis, frame, track_id, successors, settings or LinkSettings(), set())
    rows = [int(part.rows[frame]) for part in parts if part.rows[frame] >= 0]
    return np.logical_or.reduce([analysis.mask(r) for r in rows])


def _with_parts(
    analysis: Analysis,
    frame: int,
    track_id: int,
    successors: dict[int, int],
    settings: LinkSettings,
    excluded: set[int],
) -> tuple[SubjectTrack, ...]:
    """The clicked object's tracklet chain and those of what it rides or carries (`focus.parts`)."""
    track = follow_subject(analysis, track_id, successors, settings)

    def chain(tid: int) -> SubjectTrack:
        return follow_subject(analysis, tid, successors, settings)

    return (track, *find_parts(analysis, frame, track, chain, excluded=excluded))


def part_of_a_region(instances: Instances, row: int, region: np.ndarray) -> bool:
    """Whether the unsure detection at `row` is only a part of `region` (see UNSURE_SCORE): a click
    on it focuses on the region instead."""
    detected = instances.masks[row]
    shared = float((detected & region).sum())
    return shared < PART_OF_REGION * region.sum() and shared >= INSIDE_REGION * detected.sum()


def _without_excluded(analysis: Analysis, keyframe: Keyframe) -> Instances:
    """The keyframe's detected instances, less the one a click on each exclude point would pick: a
    shift-click on the person in front of a stroller makes the click fall through to what is behind."""
    instances = analysis.instances(keyframe.frame)
    for x, y in keyframe.exclude:
        check_inside(x, y, analysis.frame_size)
        try:
            row = select_instance(instances, x, y, analysis.frame_size, analysis.class_names, tolerance_px=0)
        except SelectionError:
            continue  # on no detected object: it only shapes a clicked region
        instances = instances[np.arange(len(instances)) != row]
    return instances
