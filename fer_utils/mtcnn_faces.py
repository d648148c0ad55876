"""Faces with eye, nose and mouth landmarks from the `mtcnn` package's three cascaded networks."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

__all__ = ["INSTALL", "LANDMARKS", "MIN_FACE", "ONET_SIZE", "THRESHOLDS", "Mtcnn",
           "shared_mtcnn", "square"]

INSTALL = ("the mtcnn detector needs the mtcnn package: pip install 'mtcnn>=1,<2' (the kit's "
           "requirements have it: reinstall with `make`), or choose a Haar preset with "
           "--detector haar")
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# The smallest face mtcnn is asked for, in pixels of the image it reads. mtcnn 1.0 builds too
# many pyramid levels when asked for larger faces (its networks then fail on images a few pixels
# wide), so larger minimums are reached by shrinking the image instead.
MIN_FACE = 20
THRESHOLDS = (0.6, 0.7, 0.8)  # mtcnn's own confidence thresholds: P-net, R-net, O-net
ONET_SIZE = 48  # O-net reads 48x48 RGB patches


class Mtcnn:
    """mtcnn's P-, R- and O-nets, each compiled once into a TensorFlow graph."""

    def __init__(self) -> None:
        try:
            from mtcnn import MTCNN
        except ImportError as e:
            raise OSError(INSTALL) from e
        import tensorflow as tf

        self.mtcnn = MTCNN()
        for stage in self.mtcnn.stages:
            # mtcnn calls its networks eagerly, layer by layer; compiled, a frame takes about a
            # sixth of the time. mtcnn<2 keeps each stage's network in `_model`.
            stage._model = tf.function(stage.model, reduce_retracing=True)

    def detect(self, image: np.ndarray, thresholds: tuple[float, float, float] = THRESHOLDS
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces at least MIN_FACE pixels wide in a gray, BGR or BGRA image: mtcnn's boxes
        (K, 4) as x, y, w, h (taller than wide, not clipped to the image), landmarks (K, 5, 2)
        in LANDMARKS order as x, y, and confidences (K,)."""
        if min(image.shape[:2]) < MIN_FACE:
            return np.zeros((0, 4)), np.zeros((0, len(LANDMARKS), 2)), np.zeros(0)
        pnet, rnet, onet = thresholds
        faces = self.mtcnn.detect_faces(
            _rgb(np.asarray(image, np.uint8)), fit_to_image=False,
            min_face_size=MIN_FACE, threshold_pnet=pnet, threshold_rnet=rnet,
            threshold_onet=onet)
        boxes = np.array([face["box"] for face in faces], float).reshape(-1, 4)
        landmarks = np.array([[face["keypoints"][name] for name in LANDMARKS] for face in faces],
                             float).reshape(-1, len(LANDMARKS), 2)
        return boxes, landmarks, np.array([face["confidence"] for face in faces], float)

    def refine(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """mtcnn's last network alone on given boxes (K, 4) x, y, w, h in a gray, BGR or BGRA
        image: each box re-placed on the face near it, as mtcnn's boxes (K, 4), with O-net's
        confidence that it holds a face (K,). A face tracked from a frame before moves little,
        so this replaces a search of the window around it (2.7 ms against 11.4 ms on the
        sample clip)."""
        boxes = np.asarray(boxes, float).reshape(-1, 4)
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0)
        # O-net reads squares with the side of a box's longer edge (the kit's boxes are squares).
        side = boxes[:, 2:].max(axis=1)
        corner = boxes[:, :2] + boxes[:, 2:] / 2 - side[:, None] / 2
        patches = np.stack([_patch(image, x, y, s, ONET_SIZE)
                            for (x, y), s in zip(corner, side, strict=True)])
        offsets, _, scores = self.onet((patches.astype(np.float32) - 127.5) / 128)
        # O-net's offsets move each corner by a share of the proposal's side.
        corners = np.column_stack([corner, corner + side[:, None]])
        corners += offsets.numpy() * side[:, None]
        return (np.column_stack([corners[:, :2], corners[:, 2:] - corners[:, :2]]),
                scores.numpy()[:, 1].astype(float))

    @property
    def onet(self):
        """O-net, compiled (mtcnn<2 keeps it as the last of `stages`)."""
        return self.mtcnn.stages[-1]._model


def _rgb(image: np.ndarray) -> np.ndarray:
    """An RGB copy of a gray, BGR or BGRA image (mtcnn reads RGB)."""
    if image.ndim == 2 or image.shape[2] == 1:
        return np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _patch(image: np.ndarray, x: float, y: float, side: float, size: int) -> np.ndarray:
    """The square at x, y with this side as a size x size RGB patch; mid-grey outside the
    image (zero once mtcnn's scaling is applied)."""
    left, top, side = round(x), round(y), max(1, round(side))
    h, w = image.shape[:2]
    inside = image[max(0, top):max(0, top + side), max(0, left):max(0, left + side)]
    if inside.size == 0:
        return np.full((size, size, 3), 128, np.uint8)
    rgb = _rgb(inside)
    pad = (max(0, -top), max(0, top + side - h), max(0, -left), max(0, left + side - w))
    if any(pad):
        rgb = cv2.copyMakeBorder(rgb, *pad, cv2.BORDER_CONSTANT, value=(128, 128, 128))
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) as squares with the same centre and area: side sqrt(w * h)."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    side = np.sqrt(boxes[:, 2] * boxes[:, 3])
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    return np.column_stack([centre - side[:, None] / 2, side, side])


@cache
def shared_mtcnn() -> Mtcnn:
    """One Mtcnn per process: building its three networks takes about a second."""
    return Mtcnn()
