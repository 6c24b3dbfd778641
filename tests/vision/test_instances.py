"""`Instances`: indexing like supervision's Detections, and shapes checked on construction."""

import numpy as np
import pytest

from smartfocus.vision.instances import APPEARANCE_BINS, Instances


def _instances(rows: int) -> Instances:
    return Instances(
        track_ids=np.arange(1, rows + 1, dtype=np.int32),
        class_ids=np.zeros(rows, np.int16),
        scores=np.linspace(0.1, 0.9, rows).astype(np.float32),
        boxes=np.arange(rows * 4, dtype=np.float32).reshape(rows, 4),
        masks=np.zeros((rows, 6, 8), bool),
        appearance=np.zeros((rows, APPEARANCE_BINS), np.float32),
    )


def test_rows_are_picked_by_mask_slice_list_and_int() -> None:
    found = _instances(4)
    assert found[found.scores > 0.5].track_ids.tolist() == [3, 4]
    assert found[1:3].track_ids.tolist() == [2, 3]
    assert found[[3, 0]].track_ids.tolist() == [4, 1]
    one = found[2]
    assert len(one) == 1 and one.boxes.shape == (1, 4) and one.masks.shape == (1, 6, 8)
    assert len(found[found.scores > 2]) == 0


def test_mismatched_rows_are_refused() -> None:
    found = _instances(3)
    with pytest.raises(ValueError, match="boxes has shape"):
        Instances(
            found.track_ids, found.class_ids, found.scores, found.boxes[:2], found.masks, found.appearance
        )
    with pytest.raises(ValueError, match="masks has shape"):
        Instances(
            found.track_ids, found.class_ids, found.scores, found.boxes, found.masks[:1], found.appearance
        )
