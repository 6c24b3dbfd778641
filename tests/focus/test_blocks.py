"""The look-alike identity test: hands move letter blocks (no COCO class) on a mat.

`sam2_03_blocks.mp4`, 292 frames of 720p: the yellow "W" block lies still until a hand picks it up
around frame 200 and sets it down beside the "T" (frame ~225), where it stays.
"""

from pathlib import Path

import numpy as np
import pytest

from smartfocus import FocusPlan, open_video

W_BLOCK = (580.0, 500.0)  # frame 0: the W block, alone on the mat
W_PLACED = (870.0, 342.0)  # frame 240 on: the W block, set down between the T and the O


@pytest.mark.slow
def test_a_clicked_block_is_followed_reported_while_in_hand_and_found_again_by_a_correction(
    blocks_clip: Path, model_path: Path
) -> None:
    with open_video(blocks_clip, model=model_path) as session:
        picked = session.select(FocusPlan(), 0, *W_BLOCK)
        assert picked.label == "region" and picked.track_id is None
        block = picked.matte > 0.5
        grid = block.shape
        assert 150 < block.sum() < 1500  # one block (~85 px at 720p, ~20x20 grid cells), not the mat
        timeline = session.timeline(picked.plan)

        def iou(frame: int) -> float:
            matte = timeline.state(frame).subject_matte > 0.5
            return float((matte & block).sum() / (matte | block).sum())

        # while it lies still, the matte stays on it, through the hands moving around it
        overlaps = [iou(frame) for frame in range(0, 195, 5)]
        assert min(overlaps) > 0.2 and np.mean(np.array(overlaps) > 0.8) > 0.85, np.round(overlaps, 2)
        # picked up and carried: reported as not found, not silently something else
        ((subject, first, last),) = timeline.missing()
        assert subject == 0 and 195 <= first <= 215 and last == 291

        # a correction where it was set down finds it again there, the same subject
        corrected = session.timeline(picked.plan.refine(240, W_PLACED))
        cell = (int(W_PLACED[1] * grid[0] / 720), int(W_PLACED[0] * grid[1] / 1280))
        for frame in (240, 260, 291):
            matte = corrected.state(frame).subject_matte > 0.5
            assert matte[cell] and 0.5 * block.sum() < matte.sum() < 2 * block.sum(), frame
        assert all(last < 240 for _, _, last in corrected.missing())
        assert len(corrected.subjects) == 1
