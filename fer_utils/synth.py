"""Synthetic faces: procedurally drawn 48x48 expressions, the kit's data when FER-2013 is absent.

Each expression is a set of facial cues (brow slant and height, eye opening, mouth curve and
opening, nose wrinkles) whose strengths vary from face to face and overlap between classes
that people confuse too (fear/surprise, sad/angry, neutral/everything). Face shape, size,
position, rotation, lighting, noise and occlusion vary as well, and a few labels are swapped
for a confusable class, so a CNN learns them well but never perfectly.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .atomic import atomic_path, write_json
from .data import IMAGE_SIZE, FaceDataset, synthetic_sidecar
from .labels import EMOTIONS, USAGES
from .options import check_values
from .paths import DATA_DIR

__all__ = [
    "GENERATOR_VERSION", "SPLIT_SIZES", "FER2013_PROPORTIONS", "LABEL_NOISE", "CONFUSABLE",
    "CUES", "generate", "write_synthetic_csv", "default_synthetic_csv",
]

GENERATOR_VERSION = 2
# Faces per split of the default synthetic dataset.
SPLIT_SIZES = {"Training": 4000, "PublicTest": 500, "PrivateTest": 500}
# FER-2013 Training class counts, so the synthetic data is as unbalanced (disgust is rare).
FER2013_PROPORTIONS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965]) / 28709
LABEL_NOISE = 0.04  # share of faces labelled with a confusable class
CONFUSABLE = {0: 4, 1: 0, 2: 5, 3: 6, 4: 0, 5: 2, 6: 4}

# Per expression: brow slant (+ = inner ends down), brow lift, eye opening, mouth curve
# (+ = smile), mouth opening, mouth width, nose wrinkle. Each is scaled by a random intensity.
CUES = {
    "angry":    (1.0, -0.5, 0.9, -0.3, 0.0, 0.8, 0.3),
    "disgust":  (0.5, -0.6, 0.6, -0.6, 0.2, 0.9, 1.0),
    "fear":     (-0.6, 0.8, 1.5, -0.3, 0.6, 1.1, 0.0),
    "happy":    (0.0, 0.1, 0.7, 1.0, 0.4, 1.2, 0.0),
    "sad":      (-1.0, 0.0, 0.8, -0.8, 0.0, 0.8, 0.0),
    "surprise": (-0.2, 1.0, 1.6, 0.0, 1.0, 0.7, 0.0),
    "neutral":  (0.0, 0.0, 1.0, 0.0, 0.0, 0.9, 0.0),
}
_SCALE = 4  # draw at 4x and downsample, for smooth strokes


def _draw_face(rng: np.random.Generator, label: int) -> np.ndarray:
    """One face drawn at `_SCALE` times 48 pixels a side, as float32; `_finish` shrinks it."""
    size = IMAGE_SIZE * _SCALE
    s = _SCALE
    background = rng.uniform(30, 200)
    img = np.full((size, size), background, np.float32)
    slant, lift, eye_open, curve, mouth_open, width, wrinkle = (
        np.array(CUES[EMOTIONS[label]]) * rng.uniform(0.65, 1.2))
    eye_open = 1.0 + (eye_open - 1.0) + rng.normal(0, 0.15)
    width = max(0.5, abs(width) + rng.normal(0, 0.1))
    cx, cy = size / 2 + rng.normal(0, 2.5) * s, size / 2 + rng.normal(1, 2.5) * s
    fw, fh = rng.uniform(14, 19) * s, rng.uniform(17, 22) * s
    skin = rng.uniform(100, 220)
    cv2.ellipse(img, (int(cx), int(cy)), (int(fw), int(fh)), 0, 0, 360, skin, -1)
    ink = skin - rng.uniform(60, 110)
    thick = max(1, int(rng.uniform(1.0, 1.8) * s))
    eye_dx, eye_y = fw * rng.uniform(0.36, 0.46), cy - fh * rng.uniform(0.12, 0.25)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        eh = max(0.6, 1.9 * eye_open) * s
        cv2.ellipse(img, (int(ex), int(eye_y)), (int(3.2 * s), int(eh)), 0, 0, 360, ink, -1)
        brow_y = eye_y - (5.5 + 2.5 * lift) * s
        inner = (ex - side * 4 * s, brow_y + 2.2 * slant * s)
        outer = (ex + side * 4 * s, brow_y - 1.0 * slant * s)
        cv2.line(img, (int(inner[0]), int(inner[1])), (int(outer[0]), int(outer[1])), ink,
                 thick + s // 2)
    nose_y = cy + fh * 0.12
    cv2.line(img, (int(cx), int(eye_y + 3 * s)), (int(cx), int(nose_y)), skin - 35, thick)
    for k in range(int(round(wrinkle * 3))):
        y = int(eye_y + (2 + 1.5 * k) * s)
        cv2.line(img, (int(cx - 3 * s), y), (int(cx + 3 * s), y), skin - 45, max(1, s // 2))
    mouth_y = cy + fh * rng.uniform(0.45, 0.58)
    mw = 6.5 * width * s
    if mouth_open > 0.25:
        cv2.ellipse(img, (int(cx), int(mouth_y + curve * 1.0 * s)),
                    (int(mw * (1.1 - 0.4 * (mouth_open > 0.8))), int(1 + 4.5 * mouth_open * s)),
                    0, 0, 360, ink - 20, -1)
    xs = np.linspace(-mw, mw, 24)
    ys = mouth_y + curve * 3.5 * s * (1 - (xs / mw) ** 2 - 0.5)  # image y points down
    if EMOTIONS[label] == "disgust":
        ys = ys - rng.uniform(0.5, 2.0) * s * (xs > 0)  # one-sided sneer
    points = np.stack([cx + xs, ys], axis=1).astype(np.int32)
    cv2.polylines(img, [points], False, ink, thick)
    return img


def _finish(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Rotate, relight, blur, add noise and occlusion, then shrink to 48x48."""
    size = img.shape[0]
    rotation = cv2.getRotationMatrix2D((size / 2, size / 2), rng.normal(0, 5), 1.0)
    img = cv2.warpAffine(img, rotation, (size, size), borderMode=cv2.BORDER_REFLECT)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    img = img * rng.uniform(0.7, 1.15) + light * rng.uniform(0, 35)
    img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 0.8))
    if rng.random() < 0.12:
        x, y = rng.integers(0, IMAGE_SIZE - 12, 2)
        w, h = rng.integers(8, 20, 2)
        img[y:y + h, x:x + w] = rng.uniform(0, 255)
    img = img + rng.normal(0, rng.uniform(2, 9), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def generate(n_train: int = SPLIT_SIZES["Training"], n_val: int = SPLIT_SIZES["PublicTest"],
             n_test: int = SPLIT_SIZES["PrivateTest"], seed: int = 0) -> FaceDataset:
    """Draw a synthetic dataset with FER-2013's class proportions and official usage names."""
    check_values(n_train=n_train, n_val=n_val, n_test=n_test)
    if n_train + n_val + n_test == 0:
        raise ValueError("synthetic data needs at least one image, but n_train, n_val and "
                         "n_test (--train, --val, --test) are all 0")
    rng = np.random.default_rng(seed)
    counts = (n_train, n_val, n_test)
    usage = np.repeat(np.array(USAGES), counts)
    labels = rng.choice(len(EMOTIONS), size=sum(counts), p=FER2013_PROPORTIONS)
    images = np.stack([_finish(rng, _draw_face(rng, k)) for k in labels])
    swap = rng.random(len(labels)) < LABEL_NOISE
    labels = np.where(swap, [CONFUSABLE[k] for k in labels], labels).astype(np.int64)
    return FaceDataset(images=images, labels=labels, usage=usage, source="fer_utils.synth",
                       synthetic=True)


def write_synthetic_csv(path: str | Path, n_train: int = SPLIT_SIZES["Training"],
                        n_val: int = SPLIT_SIZES["PublicTest"],
                        n_test: int = SPLIT_SIZES["PrivateTest"], seed: int = 0) -> Path:
    """Write synthetic faces as a FER-2013 CSV plus the sidecar that marks them synthetic."""
    path = Path(path)
    data = generate(n_train, n_val, n_test, seed)
    table = pd.DataFrame({"emotion": data.labels,
                          "pixels": [" ".join(map(str, im.ravel())) for im in data.images],
                          "Usage": data.usage})
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, compression="gzip" if path.suffix == ".gz" else None)
    write_json(synthetic_sidecar(path), {
        "generator": "fer_utils.synth", "version": GENERATOR_VERSION, "seed": seed,
        "counts": dict(zip(USAGES, (n_train, n_val, n_test), strict=True)),
        "label_noise": LABEL_NOISE, "note": "SYNTHETIC faces, not real people"})
    return path


def default_synthetic_csv() -> Path:
    """The default synthetic dataset, generated on first use (and when the generator changes)."""
    path = DATA_DIR / "synthetic" / "fer_synth.csv"
    sidecar = synthetic_sidecar(path)
    if path.exists() and sidecar.exists() and \
            json.loads(sidecar.read_text()).get("version") == GENERATOR_VERSION:
        return path
    return write_synthetic_csv(path)
