"""Reading image files, turning them into the grayscale arrays the kit works on, and reframing
those arrays about their centre (zoom, shift, rotation)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_image", "to_gray", "reframe"]


def read_image(path: str) -> np.ndarray:
    """An image file as it is stored (gray, BGR or BGRA), or a clear error."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such image file; check the path.")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot read this image (corrupt, or not an image); check "
                         "that it opens in an image viewer.")
    if image.dtype == np.uint16:
        image = (image / 257).astype(np.uint8)
    return image


def to_gray(image: np.ndarray) -> np.ndarray:
    """Grayscale uint8 from a gray, BGR or BGRA image."""
    image = np.asarray(image)
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] in (1, 3, 4):
        code = {1: None, 3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}[image.shape[2]]
        gray = image[..., 0] if code is None else cv2.cvtColor(image, code)
    else:
        raise ValueError(f"not an image: array of shape {image.shape}")
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    return gray


def reframe(faces: np.ndarray, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
            rotation: float = 0.0) -> np.ndarray:
    """Faces (N, H, W) zoomed `scale` times about their centre (> 1 zooms in), moved `shift`
    = (right, down) pixels and turned `rotation` degrees anticlockwise, edges repeated."""
    faces = np.asarray(faces)
    height, width = faces.shape[1:3]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), rotation, scale)
    matrix[:, 2] += shift
    return np.stack([cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for face in faces])
