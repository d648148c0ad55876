"""Face detection (OpenCV Haar cascade) and the face crops the models read."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .geometry import iou

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class DetectorConfig:
    """Haar cascade settings; detection runs on a copy shrunk by `downscale`."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 20  # smallest face, in pixels of the shrunk copy
    downscale: float = 3.0  # 1 = full resolution
    max_width: int = 480  # shrink further so very large frames stay fast
    # In a video: search the whole frame every `refresh` analysed frames (and whenever a
    # face is lost); in between, search only a window around each face found last,
    # widened by `search_margin` of the face's side and shrunk so the face is about
    # `search_size` pixels wide. 1 = the whole frame every time.
    refresh: int = 12
    search_margin: float = 0.25
    search_size: int = 48


PRESETS: dict[str, DetectorConfig] = {
    # About 9 ms for a whole 640x360 frame, about 1 ms around a known face, and a face in
    # every frame of the sample clip.
    "default": DetectorConfig(),
    # The seed's detectMultiScale(gray, 1.32, 5) at full size, every frame.
    "seed": DetectorConfig(scale_factor=1.32, min_neighbors=5, min_size=30, downscale=1.0,
                           max_width=100_000, refresh=1),
    # The reference for detection agreement: 1.1/5 at full resolution, every frame.
    "reference": DetectorConfig(downscale=1.0, min_size=30, max_width=100_000, refresh=1),
}


def detector_config(detector: str | DetectorConfig, **overrides) -> DetectorConfig:
    """A preset by name (default, seed, reference) or a config, with fields overridden."""
    if isinstance(detector, str):
        if detector not in PRESETS:
            raise ValueError(f"unknown detector preset {detector!r}; "
                             f"choose from {', '.join(PRESETS)}")
        detector = PRESETS[detector]
    return replace(detector, **{k: v for k, v in overrides.items() if v is not None})


class FaceDetector:
    """The Haar cascade that ships with OpenCV, with one DetectorConfig."""

    def __init__(self, config: str | DetectorConfig = "default"):
        self.config = detector_config(config)
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise OSError(f"cannot load the Haar cascade {path}; reinstall opencv-python<5.")

    def scale(self, gray: np.ndarray) -> float:
        """How much a frame is shrunk before the cascade reads it."""
        return max(self.config.downscale, gray.shape[1] / self.config.max_width, 1.0)

    def detect(self, gray: np.ndarray) -> np.ndarray:
        """Face boxes (K, 4) as x, y, w, h in the frame's own pixels, largest first."""
        return _largest_first(self._cascade(gray, self.scale(gray), self.config.min_size))

    def detect_near(self, gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Faces searched for only in a window around each box, at sizes near the box's."""
        config, found = self.config, []
        for x, y, w, h in np.asarray(boxes, int):
            pad = int(w * config.search_margin)
            left, top = max(0, x - pad), max(0, y - pad)
            window = gray[top:y + h + pad, left:x + w + pad]
            scale = max(w / config.search_size, 1.0)
            side = w / scale
            hits = self._cascade(window, scale, max(config.min_size, int(side / 1.5)),
                                 int(side * 1.5) + 1)
            if len(hits):
                # The hit whose size is nearest the box's: the same face, not a fragment.
                best = hits[np.argmin(np.abs(hits[:, 2] - w))]
                found.append(best + np.array([left, top, 0, 0], np.int32))
        kept: list[np.ndarray] = []
        for box in found:  # windows of faces side by side can find the same face twice
            if not kept or iou(box[None], np.stack(kept)).max() < 0.5:
                kept.append(box)
        return _largest_first(np.stack(kept) if kept else np.zeros((0, 4), np.int32))

    def _cascade(self, gray: np.ndarray, scale: float, min_size: int,
                 max_size: int = 0) -> np.ndarray:
        if min(gray.shape[:2]) / scale < min_size:  # too small to hold the smallest face
            return np.zeros((0, 4), np.int32)
        small = gray if scale == 1.0 else cv2.resize(
            gray, (round(gray.shape[1] / scale), round(gray.shape[0] / scale)),
            interpolation=cv2.INTER_AREA)
        found = self.cascade.detectMultiScale(
            small, scaleFactor=self.config.scale_factor, minNeighbors=self.config.min_neighbors,
            minSize=(min_size, min_size), maxSize=(max_size, max_size))
        if len(found) == 0:
            return np.zeros((0, 4), np.int32)
        return np.round(np.asarray(found, np.float64) * scale).astype(np.int32)


class FaceSearch:
    """Detection across consecutive frames: the whole frame every `refresh` frames, or
    when a face goes missing, and only around the faces found last in between."""

    def __init__(self, detector: FaceDetector):
        self.detector = detector
        self.previous = np.zeros((0, 4), np.int32)
        self.since_full = 0

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """Face boxes in this frame, largest first."""
        if len(self.previous) and self.since_full + 1 < self.detector.config.refresh:
            boxes = self.detector.detect_near(gray, self.previous)
            if len(boxes) == len(self.previous):
                self.previous, self.since_full = boxes, self.since_full + 1
                return boxes
        self.previous, self.since_full = self.detector.detect(gray), 0
        return self.previous


def _largest_first(boxes: np.ndarray) -> np.ndarray:
    return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]


def crop_face(gray: np.ndarray, box: np.ndarray | tuple, size: int = 48,
              margin: float = 0.1) -> np.ndarray:
    """A square crop around a box, widened by `margin` each side, edge-padded, size x size."""
    x, y, w, h = (int(v) for v in box)
    side = int(round(max(w, h) * (1 + 2 * margin)))
    left, top = x + w // 2 - side // 2, y + h // 2 - side // 2
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    crop = padded[top + pad:top + pad + side, left + pad:left + pad + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
