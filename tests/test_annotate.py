"""Frames of a video read back by time."""

import numpy as np
import pytest

from fer_utils.annotate import VideoWriter, frame_at


def test_frame_at_reads_the_frame_shown_at_a_time(tmp_path):
    path = tmp_path / "ramp.mp4"
    writer = VideoWriter(path, 64, 48, fps=10)
    for level in range(0, 200, 10):  # 20 frames, 2 s, each brighter than the last
        writer.write(np.full((48, 64, 3), level, np.uint8))
    writer.close()
    assert abs(float(frame_at(path, 1.0).mean()) - 100) < 8
    assert float(frame_at(path, 0.0).mean()) < float(frame_at(path, 1.5).mean())
    with pytest.raises(ValueError, match="no frame at 9.00 s"):
        frame_at(path, 9.0)
    (tmp_path / "text.mp4").write_text("not a video")
    for unreadable in ("missing.mp4", "text.mp4"):
        with pytest.raises(ValueError, match=f"{unreadable}: cannot open this video"):
            frame_at(tmp_path / unreadable, 1.0)
