"""Face detection (OpenCV's Haar cascade or mtcnn's networks), tracking between full searches,
and the face crops the models read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from .geometry import iou
from .images import to_gray
from .model import FaceClassifier
from .mtcnn_faces import MIN_FACE, THRESHOLDS, shared_mtcnn, square
from .pipeline import DEFAULT_FRAMING, Framing

__all__ = [
    "CASCADE", "DETECTOR_KINDS", "DetectorConfig", "PRESETS", "PHOTO_PRESET", "detector_config",
    "FaceDetector", "FaceSearch", "face_patch", "carry", "crop_face", "faces_in_photo",
]

CASCADE = "haarcascade_frontalface_default.xml"
DETECTOR_KINDS = ("haar", "mtcnn")  # OpenCV's Haar cascade; mtcnn's P-, R- and O-nets


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings; detection runs on a copy shrunk by `downscale`."""

    kind: str = "haar"  # one of DETECTOR_KINDS
    scale_factor: float = 1.1  # Haar: step between the cascade's window sizes
    min_neighbors: int = 5  # Haar: overlapping hits a face needs
    thresholds: tuple[float, float, float] = THRESHOLDS  # mtcnn: P-, R-, O-net confidences
    min_size: int = 20  # smallest face, in pixels of the shrunk copy
    downscale: float = 3.0  # 1 = full resolution
    max_width: int = 480  # shrink further so very large frames stay fast
    # In a video: search the whole frame every `refresh` analysed frames (and whenever a
    # face is lost); in between, search only near each face found last: mtcnn's last
    # network re-places its box; Haar searches a window widened by `search_margin` of the
    # face's side and shrunk so the face is about `search_size` pixels wide. 1 = the whole
    # frame every time.
    refresh: int = 12
    search_margin: float = 0.25
    search_size: int = 48
    # Between detector searches, carry each face's box to where its previous patch matches
    # best in the window (normalised correlation at least `carry_score`, else search with
    # the detector): the detector runs every `carry` analysed frames. 1 = every frame.
    carry: int = 1
    carry_score: float = 0.8
    carry_size: int = 24  # face width, in pixels, at which patches are matched

    def __post_init__(self) -> None:
        if self.kind not in DETECTOR_KINDS:
            raise ValueError(f"detector kind must be one of {', '.join(DETECTOR_KINDS)}, "
                             f"not {self.kind!r}")

    def describe(self) -> dict:
        """The settings as JSON reads them back (summary.json's `detector`)."""
        return {**asdict(self), "thresholds": list(self.thresholds)}


# Video presets search the whole frame every `refresh` analysed frames (and whenever a face
# is lost), near each face every `carry`-th frame, and carry the faces' patches in between;
# the others search every whole frame. An mtcnn search costs more than Haar's, so it runs
# half as often: at refresh=24, carry=6 the video default ran at 6.7x fer's frames per
# second, under the 8x it must keep, and at 48/12 at 8.1x (`fer-kit bench --only video`).
# Searching near a face with O-net alone, rather than all three networks in a window, made
# the same schedule 16% faster on the sample clip (294 against 254 frames a second, runs
# interleaved; 9.2x to 9.9x fer in three bench runs), its boxes as close to an every-frame
# search's (mean IoU 0.89 and 0.90).
_MTCNN_VIDEO = DetectorConfig(kind="mtcnn", refresh=48, carry=12)
PRESETS: dict[str, DetectorConfig] = {
    # mtcnn on a copy shrunk 3x: it follows a head tilted 15 degrees, which Haar loses, and
    # finds the sample clip's face in every frame.
    "default": _MTCNN_VIDEO,
    "mtcnn": _MTCNN_VIDEO,
    # The Haar cascade on a copy shrunk 3x: the video default before mtcnn.
    "haar": DetectorConfig(refresh=24, carry=6),
    # mtcnn at full resolution (up to 1920 pixels wide) with its first two networks less
    # strict, for photos: more faces found, and time matters less than in a video.
    "photo": DetectorConfig(kind="mtcnn", thresholds=(0.5, 0.5, 0.7), downscale=1.0,
                            max_width=1920, refresh=1),
    # The seed's detectMultiScale(gray, 1.32, 5) at full size, every frame.
    "seed": DetectorConfig(scale_factor=1.32, min_neighbors=5, min_size=30, downscale=1.0,
                           max_width=100_000, refresh=1),
    # The reference for detection agreement: 1.1/5 at full resolution, every frame.
    "reference": DetectorConfig(downscale=1.0, min_size=30, max_width=100_000, refresh=1),
}
PHOTO_PRESET = "photo"  # what predict and faces_in_photo use unless told otherwise


def detector_config(detector: str | DetectorConfig, **overrides) -> DetectorConfig:
    """A preset by name (PRESETS) or a config, with fields overridden."""
    if isinstance(detector, str):
        if detector not in PRESETS:
            raise ValueError(f"unknown detector preset {detector!r}; "
                             f"choose from {', '.join(PRESETS)}")
        detector = PRESETS[detector]
    return replace(detector, **{k: v for k, v in overrides.items() if v is not None})


class FaceDetector:
    """One DetectorConfig's face finder: the Haar cascade that ships with OpenCV, or mtcnn."""

    def __init__(self, config: str | DetectorConfig = "default"):
        self.config = detector_config(config)
        if self.config.kind == "mtcnn":
            self.mtcnn = shared_mtcnn()
            return
        path = cv2.data.haarcascades + CASCADE
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise OSError(f"cannot load the Haar cascade {path}; reinstall opencv-python<5.")

    def scale(self, image: np.ndarray) -> float:
        """How much a frame is shrunk before the detector reads it."""
        return max(self.config.downscale, image.shape[1] / self.config.max_width, 1.0)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Face boxes (K, 4) as x, y, w, h in the frame's own pixels, largest first, in a gray
        or BGR image (mtcnn finds more faces in colour; Haar reads gray)."""
        return _largest_first(self._find(image, self.scale(image), self.config.min_size))

    def detect_near(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Faces searched for only near each box: mtcnn's last network re-places each box
        (boxes it no longer thinks a face are dropped); Haar searches a window around each
        box at sizes near the box's."""
        config, found = self.config, []
        if config.kind == "mtcnn":
            refined, confidence = self.mtcnn.refine(image, boxes)
            return _largest_first(np.round(square(refined[confidence >= config.thresholds[2]]))
                                  .astype(np.int32))
        for x, y, w, h in np.asarray(boxes, int):
            pad = int(w * config.search_margin)
            left, top = max(0, x - pad), max(0, y - pad)
            window = image[top:y + h + pad, left:x + w + pad]
            scale = max(w / config.search_size, 1.0)
            side = w / scale
            hits = self._find(window, scale, max(config.min_size, int(side / 1.5)),
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

    def _find(self, image: np.ndarray, scale: float, min_size: int,
              max_size: int = 0) -> np.ndarray:
        """Faces between min_size and max_size (0: any) pixels wide in a copy shrunk by
        `scale`, as boxes in `image`'s pixels."""
        if self.config.kind == "mtcnn":
            # mtcnn finds faces from MIN_FACE pixels up: shrink further for larger minimums.
            scale *= max(min_size / MIN_FACE, 1.0)
            min_size = MIN_FACE
        else:
            image = to_gray(image)
        if min(image.shape[:2]) / scale < min_size:  # too small to hold the smallest face
            return np.zeros((0, 4), np.int32)
        small = image if scale == 1.0 else cv2.resize(
            image, (round(image.shape[1] / scale), round(image.shape[0] / scale)),
            interpolation=cv2.INTER_AREA)
        if self.config.kind == "mtcnn":
            found = square(self.mtcnn.detect(small, self.config.thresholds)[0])
            found = found[(found[:, 2] >= min_size) & ((found[:, 2] <= max_size) | (max_size == 0))]
        else:
            found = self.cascade.detectMultiScale(
                small, scaleFactor=self.config.scale_factor,
                minNeighbors=self.config.min_neighbors, minSize=(min_size, min_size),
                maxSize=(max_size, max_size))
        if len(found) == 0:
            return np.zeros((0, 4), np.int32)
        return np.round(np.asarray(found, np.float64) * scale).astype(np.int32)


class FaceSearch:
    """Detection across consecutive frames: the whole frame every `refresh` frames, or when
    a face goes missing; in between, only around the faces found last, and on all but every
    `carry`-th frame by matching each face's previous patch instead of the detector (while
    every face lies inside the frame: mtcnn's boxes can reach past its edges)."""

    def __init__(self, detector: FaceDetector):
        self.detector = detector
        self.previous = np.zeros((0, 4), np.int32)
        self.patches: list[np.ndarray] = []
        self.since_full = self.since_cascade = 0

    def __call__(self, gray: np.ndarray, colour: np.ndarray | None = None) -> np.ndarray:
        """Face boxes in this frame, largest first; the detector reads the frame in `colour`
        (BGR) when given."""
        config, image = self.detector.config, gray if colour is None else colour
        if len(self.previous) and self.since_full + 1 < config.refresh:
            self.since_full += 1
            if self.since_cascade + 1 < config.carry and self.patches:
                carried = carry(gray, self.previous, self.patches, config)
                if carried is not None:
                    self.since_cascade += 1
                    return self._keep(gray, carried)
            boxes = self.detector.detect_near(image, self.previous)
            if len(boxes) == len(self.previous):
                self.since_cascade = 0
                return self._keep(gray, boxes)
        self.since_full = self.since_cascade = 0
        return self._keep(gray, self.detector.detect(image))

    def _keep(self, gray: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Remember this frame's boxes and face patches for the next frame."""
        self.previous = boxes
        inside = ((boxes[:, :2] >= 0) & (boxes[:, :2] + boxes[:, 2:] <= gray.shape[::-1])).all()
        self.patches = [face_patch(gray, box, self.detector.config.carry_size)
                        for box in boxes] if self.detector.config.carry > 1 and inside else []
        return boxes


def face_patch(gray: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """A face's box, shrunk so the face is `size` pixels wide."""
    x, y, w, h = (int(v) for v in box)
    return cv2.resize(gray[y:y + h, x:x + w], (size, max(1, round(h * size / w))),
                      interpolation=cv2.INTER_AREA)


def carry(gray: np.ndarray, boxes: np.ndarray, patches: list[np.ndarray],
          config: DetectorConfig) -> np.ndarray | None:
    """Each box moved to where its patch matches best nearby, or None when any face's best
    match scores below `config.carry_score` (the face changed or left: search again)."""
    moved = []
    for (x, y, w, h), patch in zip(np.asarray(boxes, int), patches, strict=True):
        scale = w / config.carry_size
        pad = int(w * config.search_margin)
        left, top = max(0, x - pad), max(0, y - pad)
        window = gray[top:y + h + pad, left:x + w + pad]
        small = cv2.resize(window, (round(window.shape[1] / scale), round(window.shape[0] / scale)),
                           interpolation=cv2.INTER_AREA)
        if small.shape[0] < patch.shape[0] or small.shape[1] < patch.shape[1]:
            return None  # the face reached the frame's edge
        _, score, _, (dx, dy) = cv2.minMaxLoc(
            cv2.matchTemplate(small, patch, cv2.TM_CCOEFF_NORMED))
        if score < config.carry_score:
            return None
        moved.append([left + round(dx * scale), top + round(dy * scale), w, h])
    return np.array(moved, np.int32).reshape(-1, 4)


def _largest_first(boxes: np.ndarray) -> np.ndarray:
    return boxes[np.argsort(-boxes[:, 2] * boxes[:, 3], kind="stable")]


def crop_face(gray: np.ndarray, box: np.ndarray | tuple, size: int = 48,
              framing: Framing = DEFAULT_FRAMING) -> np.ndarray:
    """A square crop around a box, widened by `framing.margin` of its side each side and moved
    down by `framing.offset` of it, edge-padded, size x size."""
    x, y, w, h = (int(v) for v in box)
    side = int(round(max(w, h) * (1 + 2 * framing.margin)))
    left = x + w // 2 - side // 2
    top = y + h // 2 + int(round(max(w, h) * framing.offset)) - side // 2
    pad = max(0, -left, -top, left + side - gray.shape[1], top + side - gray.shape[0])
    padded = np.pad(gray, pad, mode="edge") if pad else gray
    crop = padded[top + pad:top + pad + side, left + pad:left + pad + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def faces_in_photo(image: np.ndarray, classifier: FaceClassifier,
                   detector: str | DetectorConfig = PHOTO_PRESET, framing: Framing | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detect, crop and classify every face of one gray or BGR image: boxes (N, 4), the model's
    crops (N, S, S) and probabilities (N, 7). The crop is the model's framing for the detector
    (its card's) unless `framing` is given."""
    detector = FaceDetector(detector)
    boxes = detector.detect(image)
    gray = to_gray(image)
    size = classifier.preprocessing.input_size
    framing = framing or classifier.preprocessing.framing_for(detector.config.kind)
    crops = np.array([crop_face(gray, box, size, framing) for box in boxes],
                     np.uint8).reshape(-1, size, size)
    return boxes, crops, classifier.predict(crops)

