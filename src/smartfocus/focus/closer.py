"""A followed subject's masks redrawn from a closer look (`vision.zoom`): the detector run again on
a crop around the subject, on every frame it is visible, gives sharper edges and finds the pieces the
whole-frame analysis saw too small.

Only what the closer look agrees is the subject replaces the followed mask: the crop's detections
that lie within the subject's (grown) mask, together about as large as it and overlapping it. The
followed mask stays where the crop explains nothing of it (a carried part the detector does not
know), so the closer look sharpens identity decisions already made, never makes new ones. Where the
follower lost the subject, it searches on from the frames next to the gap, where the subject's last
motion led, for a detection of about its size: a ball the flow lost under a player's feet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from smartfocus.focus.follow import CARRIED, DETECTED, Look, mask_centre
from smartfocus.vision.region import RegionTrack

BATCH = 8  # frames looked at in one model call (batched inference costs less per frame)


@dataclass(frozen=True)
class CloserSettings:
    """What a closer look must agree with; part of the follow cache key."""

    inside: float = 0.7  # share of a crop detection within the grown subject mask to be a piece of it
    grow: float = 0.1  # the subject mask is grown by this share of its size (sqrt of its area)
    min_overlap: float = 0.5  # IoU of the pieces' union with the followed mask to replace it
    keep: float = 0.15  # followed cells further than this share of its size from the pieces stay
    # Where the follower lost the subject, the closer look searches on from each side of the gap for
    # up to `max_gap` frames: around where the subject was (moved on by its last motion), within
    # `reach` times its size, for a detection `max_growth` times its size or less either way.
    max_gap: int = 15
    reach: float = 1.0
    max_growth: float = 2.0


def closer_masks(
    track: RegionTrack,
    look: Look,
    settings: CloserSettings | None = None,
    *,
    check: Callable[[], None] | None = None,
) -> RegionTrack:
    """`track` with each visible frame's mask redrawn from `look` where it agrees (see the module
    docstring); frames are looked at in increasing order (a decoder's order), `BATCH` at a time.
    A carried frame whose closer look finds the subject counts as detected."""
    settings = settings or CloserSettings()
    masks = np.zeros((len(track.visible), *track.grid), bool)
    status = track.confidence.copy()
    visible = np.flatnonzero(track.visible)
    for first in range(0, len(visible), BATCH):
        if check is not None:
            check()
        frames = visible[first : first + BATCH].tolist()
        followed = [track.mask(frame) for frame in frames]
        for frame, mask, pieces in zip(frames, followed, look(frames, followed), strict=True):
            redrawn = redraw(mask, pieces, settings)
            masks[frame] = mask if redrawn is None else redrawn
            if redrawn is not None and status[frame] == CARRIED:
                status[frame] = DETECTED
    found = track.visible.copy()
    _into_gaps(masks, found, status, look, settings, check)
    return RegionTrack.from_masks(masks, found, status)


def _into_gaps(
    masks: np.ndarray,
    found: np.ndarray,
    status: np.ndarray,
    look: Look,
    settings: CloserSettings,
    check: Callable[[], None] | None,
) -> None:
    """Fill the frames next to found ones where the closer look sees the subject (see
    `CloserSettings.max_gap`), walking into each gap from both of its sides; in place."""
    count = len(found)
    for step in (1, -1):
        for edge in range(count) if step == 1 else range(count - 1, -1, -1):
            behind = edge - step
            if found[edge] or not 0 <= behind < count or not found[behind]:
                continue
            last = masks[behind]
            before = behind - step
            motion = (
                mask_centre(last) - mask_centre(masks[before])
                if 0 <= before < count and found[before]
                else np.zeros(2)
            )
            frame = edge
            while 0 <= frame < count and not found[frame] and abs(frame - edge) < settings.max_gap:
                if check is not None:
                    check()
                expected = _moved(last, motion)
                if not expected.any():
                    break  # its motion took it out of the picture
                size = float(np.sqrt(last.sum()))
                (pieces,) = look([frame], [_dilate(expected, max(1, round(settings.reach * size)))])
                piece = None if pieces is None else _nearest_alike(pieces, expected, size, settings)
                if piece is None:
                    break
                motion = mask_centre(piece) - mask_centre(last)
                masks[frame], found[frame], status[frame] = piece, True, DETECTED
                last, frame = piece, frame + step


def _nearest_alike(
    pieces: np.ndarray, expected: np.ndarray, size: float, settings: CloserSettings
) -> np.ndarray | None:
    """The piece nearest `expected` (the subject's mask moved on) within reach and of about its size."""
    best, best_distance = None, settings.reach * size
    for piece in pieces:
        side = float(np.sqrt(piece.sum()))
        if not side or not 1 / settings.max_growth <= side / size <= settings.max_growth:
            continue
        distance = float(np.linalg.norm(mask_centre(piece) - mask_centre(expected)))
        if distance <= best_distance:
            best, best_distance = piece, distance
    return best


def _moved(mask: np.ndarray, shift: np.ndarray) -> np.ndarray:
    matrix = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
    height, width = mask.shape
    return cv2.warpAffine(mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST).astype(
        bool
    )


def redraw(followed: np.ndarray, pieces: np.ndarray | None, settings: CloserSettings) -> np.ndarray | None:
    """The subject drawn from the crop's detections (`pieces`, grid masks) that lie within the
    `followed` mask, plus the followed cells none of them explains; None when they do not agree
    (or there was no closer look: `pieces` None)."""
    if pieces is None or not len(pieces):
        return None
    size = float(np.sqrt(followed.sum()))
    grown = _dilate(followed, max(1, round(settings.grow * size)))
    areas = pieces.reshape(len(pieces), -1).sum(axis=1)
    within = (pieces & grown).reshape(len(pieces), -1).sum(axis=1)
    chosen = pieces[(areas > 0) & (within >= settings.inside * np.maximum(areas, 1))]
    if not len(chosen):
        return None
    drawn = chosen.any(axis=0)
    overlap = (drawn & followed).sum() / max((drawn | followed).sum(), 1)
    if overlap < settings.min_overlap:
        return None
    unexplained = followed & ~_dilate(drawn, max(1, round(settings.keep * size)))
    return drawn | unexplained


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
