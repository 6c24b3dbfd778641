"""A focus plan resolved against an analysis: the subject matte and blur strength at any frame.

Resolving costs no inference: clicks are looked up in the cached analysis, so switching focus,
adding a subject or changing the timing is instant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smartfocus.errors import SelectionError
from smartfocus.focus.identity import LinkSettings, SubjectTrack, follow_subject, link_tracklets
from smartfocus.focus.plan import FocusPlan
from smartfocus.focus.selection import select_instance
from smartfocus.vision.analysis import Analysis


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
    """

    def __init__(
        self,
        analysis: Analysis,
        plan: FocusPlan,
        *,
        transition_frames: int = 12,
        link_settings: LinkSettings | None = None,
    ) -> None:
        self.analysis = analysis
        self.plan = plan
        self.transition_frames = max(int(transition_frames), 1)
        self.subjects, self.active = _resolve(analysis, plan, link_settings or LinkSettings())
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
        step = 1.0 / self.transition_frames
        level = np.zeros(self.active.shape[1], np.float32)
        for frame in range(self._ease_start, frames):
            target = self.active[min(frame + self.transition_frames, frames - 1)].astype(np.float32)
            if frame == 0 and self.first_keyframe == 0:
                level = self.active[0].astype(np.float32)
            else:
                level = np.clip(level + np.sign(target - level) * step, 0, 1)
            weights[frame] = level
        return _smoothstep(weights)

    @property
    def _ease_start(self) -> int:
        """First frame the look changes on: the first keyframe, less a transition to ease in over."""
        return max(self.first_keyframe - self.transition_frames, 0) if self.first_keyframe > 0 else 0

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


def _resolve(
    analysis: Analysis, plan: FocusPlan, settings: LinkSettings
) -> tuple[list[SubjectTrack], np.ndarray]:
    """The subjects the plan's clicks pick, and which are in focus at each frame: (frames, subjects)."""
    successors = link_tracklets(analysis, settings)
    subjects: list[SubjectTrack] = []
    sets: list[tuple[int, set[int]]] = []
    current: set[int] = set()
    for keyframe in plan.keyframes:
        if keyframe.frame >= analysis.frame_count:
            raise SelectionError(
                f"keyframe at frame {keyframe.frame} is past the video's last frame {analysis.frame_count - 1}"
            )
        instances = analysis.instances(keyframe.frame)
        chosen: set[int] = set()
        for x, y in keyframe.points:
            row = select_instance(instances, x, y, analysis.frame_size, analysis.class_names)
            track = follow_subject(analysis, int(instances.track_ids[row]), successors, settings)
            known = next((i for i, s in enumerate(subjects) if s.track_ids == track.track_ids), None)
            if known is None:
                subjects.append(track)
                known = len(subjects) - 1
            chosen.add(known)
        current = {"focus": chosen, "add": current | chosen, "clear": set()}[keyframe.action]
        sets.append((keyframe.frame, set(current)))
    active = np.zeros((analysis.frame_count, len(subjects)), bool)
    for frame, members in sets:
        active[frame:] = False
        active[frame:, sorted(members)] = True
    return subjects, active
