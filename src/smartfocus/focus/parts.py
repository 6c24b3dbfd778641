"""Subjects with parts: what a clicked person rides or carries stays sharp with them.

A rider and the horse or bike, a person and the board, kite or umbrella they hold are at the same
distance from the lens, so a click on either means both. The detector sees them as separate
objects; here a click's object gains, as parts, the detections that (1) pair a person with a thing
people ride or carry (by class: two people side by side stay two subjects), (2) touch it, on the
click frame or on most of the frames both are seen (a far rider's motorbike the detector only finds
once it comes nearer), and (3) move with it over the frames both are seen (their offset, in the
subject's size, stays put). An exclude click on a part keeps it out (see `timeline`).
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
    # a part that does not touch the subject on the click frame (not detected there, say) must touch
    # it on this share of the frames both are detected, and on at least `min_contacts` of them
    min_contact_share: float = 0.5
    min_contacts: int = 3


def find_parts(
    analysis: Analysis,
    frame: int,
    subject: SubjectTrack,
    track_of: Callable[[int], SubjectTrack],
    excluded: Collection[int] = (),
    settings: PartSettings | None = None,
) -> list[SubjectTrack]:
    """The other objects that are parts of `subject` (clicked on `frame`, detected there), as their
    tracks: those touching it on `frame`, then those that meet it on most frames elsewhere.

    `track_of(track_id)` follows an object through the clip; `excluded` are track ids an exclude
    click ruled out.
    """
    settings = settings or PartSettings()
    clicked = analysis.class_names.get(int(analysis.class_ids[int(subject.rows[frame])]), "")
    contacts = _contacts(analysis, subject, clicked, excluded, settings)
    found: list[SubjectTrack] = []
    claimed = set(subject.track_ids)
    # parts touching it on the click frame first (what the hover there shows), then the others
    on_click = sorted({tid for f, tid in contacts if f == frame})
    later = sorted({tid for _, tid in contacts} - set(on_click))
    for track_id, touching_now in [(t, True) for t in on_click] + [(t, False) for t in later]:
        if track_id in claimed:
            continue
        other = track_of(track_id)
        if claimed & set(other.track_ids):
            continue
        touched = sum(1 for f, tid in contacts if tid in other.track_ids and other.rows[f] >= 0)
        if not touching_now and not _touches_mostly(subject, other, touched, settings):
            continue
        if _moves_together(analysis, subject, other, settings):
            found.append(other)
            claimed |= set(other.track_ids)
    return found


def _contacts(
    analysis: Analysis,
    subject: SubjectTrack,
    clicked: str,
    excluded: Collection[int],
    settings: PartSettings,
) -> set[tuple[int, int]]:
    """(frame, track id) of every detection that could be a part of `subject` and touches it there:
    their classes pair, their boxes overlap and its mask reaches the subject's. A track's class is
    its vote; the subject's is its vote or its label where it was clicked (`clicked`), either: the
    nano model calls a horse "person" on some frames, and the whole horse is then another track."""
    own = {clicked, analysis.class_vote(subject.rows[subject.rows >= 0]) or ""}
    votes = {
        track_id: analysis.class_vote(tracklet.rows) or ""
        for track_id, tracklet in analysis.tracklets().items()
    }
    paired = [
        t for t, name in votes.items() if any(_pairs(o, name) for o in own) and t not in subject.track_ids
    ]
    candidates = np.flatnonzero(
        np.isin(analysis.track_ids, paired) & ~np.isin(analysis.track_ids, list(excluded))
    )
    subject_rows = subject.rows[analysis.frame_index[candidates]]
    candidates, subject_rows = candidates[subject_rows >= 0], subject_rows[subject_rows >= 0]
    overlapping = (
        _box_shares(analysis.boxes[subject_rows], analysis.boxes[candidates]) >= settings.min_box_share
    )
    near: dict[int, np.ndarray] = {}
    found = set()
    for row, subject_row in zip(candidates[overlapping], subject_rows[overlapping], strict=True):
        if subject_row not in near:
            near[subject_row] = touch_zone(analysis.mask(int(subject_row)), settings.touch)
        if (analysis.mask(int(row)) & near[subject_row]).any():
            found.add((int(analysis.frame_index[row]), int(analysis.track_ids[row])))
    return found


def touch_zone(mask: np.ndarray, share: float) -> np.ndarray:
    """`mask` grown by `share` of its grid's long side: what lies in it touches the mask."""
    reach = max(1, round(share * max(mask.shape)))
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _pairs(own: str, other: str) -> bool:
    """A person and a thing people ride or carry (two people side by side stay two subjects)."""
    pair = {own, other}
    return PERSON in pair and bool(pair & CARRIED_OR_RIDDEN)


def _touches_mostly(subject: SubjectTrack, other: SubjectTrack, touched: int, settings: PartSettings) -> bool:
    """Whether `other` touched `subject` on enough of the frames both are detected."""
    both = int(((subject.rows >= 0) & (other.rows >= 0)).sum())
    return touched >= max(settings.min_contacts, settings.min_contact_share * both)


def _box_shares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row, the intersection of two (N, 4) xyxy boxes over the smaller one's area."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    smaller = np.minimum(np.prod(a[:, 2:] - a[:, :2], axis=1), np.prod(b[:, 2:] - b[:, :2], axis=1))
    return np.where((w > 0) & (h > 0), w * h / np.maximum(smaller, 1e-6), 0.0)


def _moves_together(
    analysis: Analysis, subject: SubjectTrack, other: SubjectTrack, settings: PartSettings
) -> bool:
    """Whether `other` keeps its place relative to `subject` wherever both are detected (measured
    from its usual place, the median offset: one frame's box can be far off)."""
    both = np.flatnonzero((subject.rows >= 0) & (other.rows >= 0))
    seen = int((subject.rows >= 0).sum())
    if not len(both) or len(both) < settings.min_together * seen:
        return False
    boxes_s, boxes_o = analysis.boxes[subject.rows[both]], analysis.boxes[other.rows[both]]
    size = np.sqrt(np.prod(np.maximum(boxes_s[:, 2:] - boxes_s[:, :2], 1.0), axis=1))
    offset = ((boxes_o[:, :2] + boxes_o[:, 2:]) - (boxes_s[:, :2] + boxes_s[:, 2:])) / 2 / size[:, None]
    drift = np.linalg.norm(offset - np.median(offset, axis=0), axis=1)
    return float(np.median(drift)) <= settings.max_drift
