"""The online subject lock: a lost subject is re-acquired only by a new track that looks and sits like it."""

import numpy as np

from smartfocus.live.identity import SubjectLock
from smartfocus.vision.instances import APPEARANCE_BINS, Instances

GRID = (18, 32)  # mask grid of a 320x180 frame at 10 px per cell
RED, BLUE = np.zeros(APPEARANCE_BINS, np.float32), np.zeros(APPEARANCE_BINS, np.float32)
RED[0], BLUE[30] = 1.0, 1.0


def frame(*objects: tuple[int, tuple[int, int, int, int], np.ndarray]) -> Instances:
    """Instances of (track id, box in px, appearance); masks fill the boxes on the 10 px grid."""
    masks = np.zeros((len(objects), *GRID), bool)
    for row, (_, (x0, y0, x1, y1), _) in enumerate(objects):
        masks[row, y0 // 10 : y1 // 10, x0 // 10 : x1 // 10] = True
    return Instances(
        track_ids=np.array([o[0] for o in objects], np.int32),
        class_ids=np.zeros(len(objects), np.int16),
        scores=np.ones(len(objects), np.float32),
        boxes=np.array([o[1] for o in objects], np.float32).reshape(-1, 4),
        masks=masks,
        appearance=np.array([o[2] for o in objects], np.float32).reshape(-1, APPEARANCE_BINS),
    )


def test_a_new_track_that_continues_the_subject_is_reacquired() -> None:
    first = frame((1, (100, 50, 140, 130), RED), (2, (250, 50, 290, 130), BLUE))
    lock = SubjectLock.from_row(first, 0)
    assert lock.update(frame((2, (250, 50, 290, 130), BLUE))) is None  # subject occluded
    after = frame((2, (250, 50, 290, 130), BLUE), (7, (104, 52, 144, 132), RED))
    assert lock.update(after) == 1 and lock.track_id == 7


def test_focus_never_moves_to_another_object() -> None:
    lock = SubjectLock.from_row(frame((1, (100, 50, 140, 130), RED), (2, (150, 50, 190, 130), RED)), 0)
    # the subject is gone; the red neighbour seen beside it, though close and alike, is not it
    assert lock.update(frame((2, (110, 50, 150, 130), RED))) is None
    # a new track in the subject's place but of another colour is not it either
    assert lock.update(frame((2, (150, 50, 190, 130), RED), (9, (100, 50, 140, 130), BLUE))) is None
    # nor a new red one on the far side of the frame
    assert lock.update(frame((2, (150, 50, 190, 130), RED), (11, (280, 90, 310, 170), RED))) is None
    assert lock.track_id == 1 and lock.missing == 3


def test_a_duplicate_id_inside_the_subject_is_not_counted_as_another_object() -> None:
    # ByteTrack starts id 5 on the subject a frame before id 1 dies
    lock = SubjectLock.from_row(frame((1, (100, 50, 140, 130), RED), (5, (100, 60, 140, 130), RED)), 0)
    assert lock.update(frame((5, (102, 60, 142, 130), RED))) == 0 and lock.track_id == 5
