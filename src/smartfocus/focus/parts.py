"""Subjects with parts: what a clicked person rides or carries stays sharp with them.

A rider and the horse or bike, a person and the board, kite or umbrella they hold are at the same
distance from the lens, so a click on either means both. The detector sees them as separate
objects; here a click's object gains, as parts, the detections that (1) pair a person with a thing
people ride or carry (by class: two people side by side stay two subjects), (2) touch it on the
click frame, and (3) move with it over the frames both are seen (their offset, in the subject's
size, stays put). An exclude click on a part keeps it out (see `timeline`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.focus.identity import SubjectTrack
from smartfocus.vision.analysis import Analysis

PERSON = "person"
# COCO classes a person rides, stands on or holds while moving with them
CARRIED_OR_RIDDEN = frozenset(
    {
        "bicycle", "motorcycle", "horse", "skateboard", "surfboard", "skis", "snowboard", "kite",
        "umbrella", "handbag", "backpack", "suitcase", "tennis racket", "baseball bat",
    }
)  # fmt: skip


@dataclass(frozen=True)
class PartSettings:
    touch: float = 0.02  # how near counts as touching, share of the grid's long side
    min_box_share: float = 0.2  # the boxes overlap by this share of the smaller one
    max_drift: float = 0.5  # median change of their offset, in the subject's box size
    min_together: float = 0.2  # share of the subject's sightings where the part is seen too


def find_parts(
    analysis: Analysis,
    frame: int,
    subject: SubjectTrack,
    track_of: Callable[[int], SubjectTrack],
    excluded: Collection[int] = (),
    settings: PartSettings | None = None,
) -> list[SubjectTrack]:
    """The other objects on `frame` that are parts of `subject` (detected there), as their tracks.

    `track_of(track_id)` follows an object through the clip; `excluded` are track ids an exclude
    click ruled out.
    """
    settings = settings or PartSettings()
    row = int(subject.rows[frame])
    own = analysis.class_names.get(int(analysis.class_ids[row]), "")
    reach = max(1, round(settings.touch * max(analysis.grid)))
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    near = cv2.dilate(analysis.mask(row).astype(np.uint8), kernel).astype(bool)
    instances = analysis.instances(frame)
    found = []
    for index, track_id in enumerate(instances.track_ids.tolist()):
        if track_id in subject.track_ids or track_id in excluded:
            continue
        pair = {own, analysis.class_names.get(int(instances.class_ids[index]), "")}
        if PERSON not in pair or not pair & CARRIED_OR_RIDDEN:
            continue  # two people side by side stay two subjects
        if not (instances.masks[index] & near).any():
            continue
        if _box_share(analysis.boxes[row], instances.boxes[index]) < settings.min_box_share:
            continue
        other = track_of(track_id)
        if _moves_together(analysis, subject, other, frame, settings):
            found.append(other)
    return found


def _box_share(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two xyxy boxes over the smaller one's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / max(smaller, 1e-6))


def _moves_together(
    analysis: Analysis, subject: SubjectTrack, other: SubjectTrack, frame: int, settings: PartSettings
) -> bool:
    """Whether `other` keeps its place relative to `subject` wherever both are detected."""
    both = np.flatnonzero((subject.rows >= 0) & (other.rows >= 0))
    seen = int((subject.rows >= 0).sum())
    if len(both) < settings.min_together * seen:
        return False
    boxes_s, boxes_o = analysis.boxes[subject.rows[both]], analysis.boxes[other.rows[both]]
    size = np.sqrt(np.prod(np.maximum(boxes_s[:, 2:] - boxes_s[:, :2], 1.0), axis=1))
    offset = ((boxes_o[:, :2] + boxes_o[:, 2:]) - (boxes_s[:, :2] + boxes_s[:, 2:])) / 2 / size[:, None]
    at_click = offset[int(np.searchsorted(both, frame))]
    drift = np.linalg.norm(offset - at_click, axis=1)
    return float(np.median(drift)) <= settings.max_drift
