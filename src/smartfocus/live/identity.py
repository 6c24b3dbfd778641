"""Online identity for a live subject: the offline re-linking rules (`focus.identity`), one frame at a time.

Offline, a whole analysis is available and every tracklet end is matched globally. Live, only the past
is known, so the lock keeps the subject's last look (appearance, box, velocity) and, while its track id
is missing, accepts a *new* track only when it passes the same appearance, motion and size gates. Tracks
that were on screen together with the subject are other objects and are never accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smartfocus.focus.identity import LinkSettings, motion_gate, scale_gate
from smartfocus.vision.instances import Instances

_APPEARANCE_MEMORY = 0.9  # EMA weight of the subject's past appearance: one odd frame does not redefine it


def _center_size(box: np.ndarray) -> tuple[np.ndarray, float]:
    center = (box[:2] + box[2:]) / 2
    size = float(np.sqrt(np.prod(np.maximum(box[2:] - box[:2], 1.0))))
    return center.astype(np.float32), size


@dataclass
class SubjectLock:
    """The locked subject of one live stream. Call `update` with every processed frame's instances."""

    track_id: int
    appearance: np.ndarray
    box: np.ndarray
    settings: LinkSettings = field(default_factory=LinkSettings)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # px per frame
    missing: int = 0  # frames since the subject was last seen
    others: set[int] = field(default_factory=set)  # tracks seen beside the subject: never the subject

    @classmethod
    def from_row(cls, instances: Instances, row: int, settings: LinkSettings | None = None) -> SubjectLock:
        lock = cls(
            track_id=int(instances.track_ids[row]),
            appearance=instances.appearance[row].copy(),
            box=instances.boxes[row].copy(),
            settings=settings or LinkSettings(),
        )
        lock.others.update(_beside(instances, row, settings or LinkSettings()))
        return lock

    def rescaled(self, scale_x: float, scale_y: float) -> SubjectLock:
        """The lock for the same stream at another resolution (WebRTC scales a stream down under
        load and back up): its box and motion in the new pixels, its look kept. The tracker starts
        afresh there and its ids begin again, so no id is known yet: the next frame re-acquires the
        subject through the same gates as after a gap."""
        scale = np.array([scale_x, scale_y, scale_x, scale_y], np.float32)
        return SubjectLock(
            track_id=-1,
            appearance=self.appearance.copy(),
            box=(self.box * scale).astype(np.float32),
            settings=self.settings,
            velocity=(self.velocity * scale[:2]).astype(np.float32),
            missing=self.missing,
        )

    @property
    def lost(self) -> bool:
        return self.missing > self.settings.max_gap_frames

    def update(self, instances: Instances) -> int | None:
        """The subject's row in this frame, or None while it is not in view."""
        row = instances.index_of(self.track_id)
        if row is None and not self.lost:
            row = self._reacquire(instances)
            if row is not None:
                self.track_id = int(instances.track_ids[row])
        if row is None:
            self.missing += 1
            return None
        self._observe(instances, row)
        return row

    def _observe(self, instances: Instances, row: int) -> None:
        center, _ = _center_size(instances.boxes[row])
        previous, _ = _center_size(self.box)
        steps = max(self.missing + 1, 1)
        self.velocity = ((center - previous) / steps).astype(np.float32)
        self.box = instances.boxes[row].copy()
        self.appearance = (
            _APPEARANCE_MEMORY * self.appearance + (1 - _APPEARANCE_MEMORY) * instances.appearance[row]
        ).astype(np.float32)
        self.missing = 0
        self.others.update(_beside(instances, row, self.settings))

    def _reacquire(self, instances: Instances) -> int | None:
        """The new track that continues the subject after a gap, gated as `focus.identity` does."""
        gap = self.missing + 1
        center, size = _center_size(self.box)
        horizon = min(gap, 15)
        expected = center + self.velocity * horizon
        best: tuple[float, int] | None = None
        for row, track_id in enumerate(instances.track_ids):
            if int(track_id) in self.others:
                continue
            appearance = float(np.minimum(self.appearance, instances.appearance[row]).sum())
            if appearance < self.settings.min_appearance:
                continue
            their_center, their_size = _center_size(instances.boxes[row])
            scale = (size + their_size) / 2
            motion = (
                min(np.linalg.norm(expected - their_center), np.linalg.norm(center - their_center)) / scale
            )
            reach, max_scale_change = motion_gate(gap), scale_gate(gap)  # the longer the gap, the wider
            scale_change = abs(np.log(their_size / size))
            if motion > reach or scale_change > max_scale_change:
                continue
            cost = (1 - appearance) + 0.5 * motion / reach + 0.5 * scale_change / max_scale_change
            if best is None or cost < best[0]:
                best = (cost, row)
        return None if best is None else best[1]


def _beside(instances: Instances, row: int, settings: LinkSettings) -> set[int]:
    """Track ids of the other objects in this frame. A mask mostly inside the subject's is the subject
    detected twice (ByteTrack starts a new id a frame before the old one dies), so it is left out."""
    subject = instances.masks[row]
    area = subject.sum()
    beside = set()
    for other, track_id in enumerate(instances.track_ids):
        if other == row:
            continue
        mask = instances.masks[other]
        overlap = (mask & subject).sum()
        if overlap < settings.min_overlap_containment * max(min(mask.sum(), area), 1):
            beside.add(int(track_id))
    return beside
