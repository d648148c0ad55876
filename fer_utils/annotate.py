"""Drawing boxes, labels and probability bars on frames, and writing browser-playable video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .labels import COLOURS, EMOTIONS

__all__ = ["draw_face", "VideoWriter", "frame_at"]


def draw_face(frame: np.ndarray, box: np.ndarray, face_id: int, probs: np.ndarray) -> None:
    """Draw one face's box, id, label and a bar per emotion onto a BGR frame, in place."""
    x, y, w, h = (int(v) for v in box)
    label = EMOTIONS[int(np.argmax(probs))]
    colour = COLOURS[label]
    cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
    cv2.putText(frame, f"#{face_id} {label} {probs.max():.0%}", (x, max(12, y - 6)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    left = x + w + 6 if x + w + 110 < frame.shape[1] else max(0, x - 110)
    for k, name in enumerate(EMOTIONS):
        top = y + 12 * k
        if top + 10 > frame.shape[0]:
            break
        cv2.rectangle(frame, (left + 50, top), (left + 50 + int(50 * probs[k]), top + 9),
                      COLOURS[name], -1)
        cv2.putText(frame, name[:8], (left, top + 9), cv2.FONT_HERSHEY_PLAIN, 0.8,
                    (255, 255, 255), 1, cv2.LINE_AA)


class VideoWriter:
    """H.264 MP4 through the ffmpeg binary that imageio-ffmpeg ships (browsers play it)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float):
        import imageio_ffmpeg

        self.size = (width + width % 2, height + height % 2)  # yuv420p needs even sides
        self._frames = imageio_ffmpeg.write_frames(
            str(path), self.size, fps=fps, codec="libx264", pix_fmt_in="bgr24",
            macro_block_size=1, ffmpeg_log_level="error", output_params=["-preset", "veryfast"])
        self._frames.send(None)

    def write(self, frame: np.ndarray) -> None:
        """Append one BGR frame."""
        if frame.shape[1] != self.size[0] or frame.shape[0] != self.size[1]:
            frame = cv2.copyMakeBorder(frame, 0, self.size[1] - frame.shape[0], 0,
                                       self.size[0] - frame.shape[1], cv2.BORDER_REPLICATE)
        self._frames.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self._frames.close()


def frame_at(video: str | Path, seconds: float) -> np.ndarray:
    """The RGB frame a video shows at a time in seconds."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        capture.release()
        raise ValueError(f"{video}: cannot open this video (missing, not a video, or corrupt); "
                         "check the path.")
    try:
        capture.set(cv2.CAP_PROP_POS_MSEC, seconds * 1000)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        raise ValueError(f"{video}: no frame at {seconds:.2f} s; give a time within the video")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
