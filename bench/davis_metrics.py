"""DAVIS region (J) and boundary (F) measures, plus the simulated user that places corrective clicks.

J and F follow davisvideochallenge/davis2017-evaluation (`davis2017/metrics.py`: `db_eval_iou`,
`f_measure`, `_seg2bmap`) so that our numbers can be set beside published DAVIS results. The
reference dilates with scikit-image's `disk`, which is thinner than OpenCV's `MORPH_ELLIPSE` of the
same size (197 vs 213 pixels at radius 8), so `disk` below rebuilds scikit-image's kernel instead.
"""

import math

import cv2
import numpy as np

Click = tuple[int, int, int]
"""(frame, x, y) in source pixels."""


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union; two empty masks agree perfectly (1.0), as in the reference."""
    pred, gt = _as_bool(pred), _as_bool(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred & gt) / union)


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary map: a pixel differs from its right, bottom or bottom-right neighbour.

    Outside the image counts as background except along the last row and column, where the reference
    compares only along the edge. A mask that fills the whole frame therefore has no boundary at all.
    """
    seg = _as_bool(mask)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """scikit-image's `disk(radius)` (x² + y² <= r²) as a uint8 kernel: the reference's dilation shape."""
    grid = np.arange(-radius, radius + 1)
    return (grid[None, :] ** 2 + grid[:, None] ** 2 <= radius**2).astype(np.uint8)


def boundary_pixels(shape: tuple[int, ...], bound_th: float = 0.008) -> int:
    """Match tolerance in pixels: a share of the image diagonal when below 1, else a pixel count."""
    if bound_th >= 1:
        return int(bound_th)
    return math.ceil(bound_th * math.hypot(shape[0], shape[1]))


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure: contour precision and recall, each matched within the tolerance disk."""
    pred, gt = _as_bool(pred), _as_bool(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    fg_b = seg2bmap(pred)
    gt_b = seg2bmap(gt)
    n_fg = np.count_nonzero(fg_b)
    n_gt = np.count_nonzero(gt_b)
    # Corner cases exactly as the reference: no contour on one side gives P or R of 0, none on both is 1.
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0
    kernel = disk(boundary_pixels(pred.shape, bound_th))
    fg_dil = cv2.dilate(fg_b.astype(np.uint8), kernel) > 0
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel) > 0
    precision = np.count_nonzero(fg_b & gt_dil) / n_fg
    recall = np.count_nonzero(gt_b & fg_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def deepest_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel farthest (L2) from the mask's border; ties go to the first in raster order.

    The image edge counts as border too (the mask is padded with background), so a subject cut by the
    frame is clicked well inside what is visible rather than against the edge.
    """
    m = _as_bool(mask)
    if not m.any():
        raise ValueError("deepest_point of an empty mask")
    padded = np.pad(m, 1).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The biggest 8-connected blob of a mask (ties -> lowest label, i.e. first in raster order)."""
    m = _as_bool(mask).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return np.zeros(m.shape, bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def next_click(pred_masks: list[np.ndarray], gt_masks: list[np.ndarray]) -> Click | None:
    """Where a user would click next: the deepest point of the biggest missed blob in the worst frame.

    Only frames that miss some ground truth are candidates, because a click can only add a subject; a
    frame that is wrong only by extra foreground (or an empty-GT frame) cannot be fixed by clicking.
    Among those, the lowest J wins, ties to the earliest frame. None when nothing is missing anywhere.
    """
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predicted masks for {len(gt_masks)} ground-truth masks")
    best: tuple[float, int, np.ndarray] | None = None
    for i, (pred, gt) in enumerate(zip(pred_masks, gt_masks, strict=True)):
        pred_b, gt_b = _as_bool(pred), _as_bool(gt)
        missing = gt_b & ~pred_b
        if not missing.any():
            continue
        j = region_j(pred_b, gt_b)
        if best is None or j < best[0]:
            best = (j, i, missing)
    if best is None:
        return None
    _, frame, missing = best
    x, y = deepest_point(largest_component(missing))
    return frame, x, y


def lost_in_view(per_frame_j: list[float], gt_masks: list[np.ndarray], lost_j: float) -> tuple[int, int]:
    """(frames lost, frames in view): a frame is in view when its ground truth is not empty, and
    lost when its J is below `lost_j`. An empty prediction on an empty ground truth scores J 1, so
    the overall lost share counts only false positives on those frames; this one asks whether the
    subject was missed while it could be seen."""
    if len(per_frame_j) != len(gt_masks):
        raise ValueError(f"{len(per_frame_j)} scores for {len(gt_masks)} ground-truth masks")
    in_view = [bool(_as_bool(gt).any()) for gt in gt_masks]
    lost = sum(j < lost_j for j, seen in zip(per_frame_j, in_view, strict=True) if seen)
    return lost, sum(in_view)


def _as_bool(mask: np.ndarray) -> np.ndarray:
    """Masks may arrive as bool, 0/1 or 0/255; anything non-zero is foreground."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {m.shape}")
    return m if m.dtype == bool else m != 0


def correction_changes(scores: list[float]) -> list[float]:
    """What each corrective click did, before the bench takes a harmful one back: `scores` are one
    sequence's J&F after each render (the first click's, then each correction's, in order); each
    correction is compared with the best result kept before it (a click that made things worse was
    undone, so the next one starts from the kept result). A user without the bench's oracle undo
    gets these changes."""
    changes: list[float] = []
    if not scores:
        return changes
    kept = scores[0]
    for score in scores[1:]:
        changes.append(score - kept)
        kept = max(kept, score)
    return changes
