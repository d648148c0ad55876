"""Model input: one preprocessing function, cheap batch augmentation, seeded tf.data epochs.

Every random choice is a pure function of (seed, epoch, batch), so a resumed run sees
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

from .labels import NUM_CLASSES
from .options import check_fields

__all__ = [
    "SCALES", "Preprocessing", "preprocess", "Augmentation", "pad_crop", "augment",
    "steps_per_epoch", "training_dataset", "eval_dataset",
]

SCALES = ("unit", "symmetric")  # pixels / 255 in [0, 1], or pixels / 127.5 - 1 in [-1, 1]


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its faces: square input size and pixel scaling."""

    input_size: int = 48
    scale: str = "unit"  # "unit": pixels / 255 in [0, 1]; "symmetric": [-1, 1]

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {self.scale!r}")
        check_fields(self, ("input_size",))

    def to_dict(self) -> dict:
        return asdict(self)


def preprocess(images: np.ndarray | tf.Tensor, spec: Preprocessing) -> tf.Tensor:
    """uint8 grayscale faces (N, H, W[, 1]) -> float32 model input (N, size, size, 1)."""
    x = tf.convert_to_tensor(images)
    if x.shape.rank == 3:
        x = x[..., tf.newaxis]
    x = tf.cast(x, tf.float32)
    size = spec.input_size
    if x.shape[1] != size or x.shape[2] != size:
        x = tf.image.resize(x, (size, size), method="bilinear", antialias=True)
    return x / 255.0 if spec.scale == "unit" else x / 127.5 - 1.0


@dataclass(frozen=True)
class Augmentation:
    """Batch-level training augmentation; all of it runs as a few vectorised TF ops."""

    flip: bool = True  # mirror left-right with probability 1/2
    rotation_deg: float = 10.0  # uniform in +-rotation_deg
    shift: float = 0.1  # fraction of the image size, each axis
    zoom: float = 0.1  # scale uniform in 1 +- zoom
    erase: float = 0.0  # probability of blanking one random rectangle
    crop_pad: int = 0  # reflect-pad this many pixels, then crop a random window of the size

    def __post_init__(self) -> None:
        check_fields(self, ("rotation_deg", "shift", "zoom", "erase", "crop_pad"))

    def to_dict(self) -> dict:
        return asdict(self)


def _affine(batch: int, size: int, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Per-image projective transforms (output -> input coordinates) for rotation, zoom, shift."""
    u = tf.random.stateless_uniform((batch, 4), seed=seed, minval=-1.0, maxval=1.0)
    angle = u[:, 0] * (aug.rotation_deg * math.pi / 180.0)
    scale = 1.0 + u[:, 1] * aug.zoom
    tx, ty = u[:, 2] * aug.shift * size, u[:, 3] * aug.shift * size
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    c = (size - 1) / 2.0
    zero = tf.zeros_like(cos)
    return tf.stack([cos, -sin, c - cos * c + sin * c + tx,
                     sin, cos, c - sin * c - cos * c + ty, zero, zero], axis=1)


def _erase(x: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Blank one rectangle (10-30% of the side each way) in a share `aug.erase` of images."""
    batch, size = tf.shape(x)[0], x.shape[1]
    u = tf.random.stateless_uniform((batch, 5), seed=seed)
    h = (0.1 + 0.2 * u[:, 0]) * size
    w = (0.1 + 0.2 * u[:, 1]) * size
    top, left = u[:, 2] * (size - h), u[:, 3] * (size - w)
    grid = tf.range(size, dtype=tf.float32)
    rows = (grid[None, :] >= top[:, None]) & (grid[None, :] < (top + h)[:, None])
    cols = (grid[None, :] >= left[:, None]) & (grid[None, :] < (left + w)[:, None])
    box = rows[:, :, None] & cols[:, None, :] & (u[:, 4] < aug.erase)[:, None, None]
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return tf.where(box[..., None], mean, x)


def pad_crop(x: tf.Tensor, pad: int, seed: tf.Tensor) -> tf.Tensor:
    """Reflect-pad each image by `pad` pixels and cut a random window of the original size."""
    batch, size = tf.shape(x)[0], x.shape[1]
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform((batch, 2), seed=seed, maxval=2 * pad + 1,
                                          dtype=tf.int32)
    window = tf.range(size)
    rows = offsets[:, :1] + window  # (batch, size)
    cols = offsets[:, 1:] + window
    x = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(x, cols, axis=2, batch_dims=1)


def augment(x: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Randomly flip, rotate, shift, zoom, pad-and-crop and erase a batch of model inputs."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    batch, size = tf.shape(x)[0], x.shape[1]
    if aug.flip:
        flip = tf.random.stateless_uniform((batch,), seed=seeds[0]) < 0.5
        x = tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)
    if aug.rotation_deg or aug.shift or aug.zoom:
        x = tf.raw_ops.ImageProjectiveTransformV3(
            images=x, transforms=_affine(batch, size, aug, seeds[1]),
            output_shape=tf.constant([size, size]), fill_value=0.0,
            interpolation="BILINEAR", fill_mode="REFLECT")
    if aug.crop_pad:
        x = pad_crop(x, aug.crop_pad, tf.random.experimental.stateless_fold_in(seed, 3))
    if aug.erase:
        x = _erase(x, aug, seeds[2])
    return x


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one pass over n images (the last one may be short)."""
    return math.ceil(n / batch_size)


def training_dataset(images: np.ndarray, targets: np.ndarray, *, batch_size: int, seed: int,
                     epochs: int, spec: Preprocessing, start_epoch: int = 0,
                     augmentation: Augmentation | None = None,
                     sample_weights: np.ndarray | None = None) -> tf.data.Dataset:
    """Shuffled, augmented batches for epochs start_epoch..epochs-1, reproducible per epoch.

    `targets` are class indices (N,) or label distributions (N, 7); both become distributions.
    """
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = np.eye(NUM_CLASSES, dtype=np.float32)[targets]
    x_all = tf.constant(images)
    y_all = tf.constant(targets.astype(np.float32))
    w_all = None if sample_weights is None else tf.constant(sample_weights.astype(np.float32))
    n = len(images)

    def epoch(e: tf.Tensor) -> tf.data.Dataset:
        order = tf.argsort(tf.random.stateless_uniform((n,), seed=tf.stack([seed, e])))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate().map(
            lambda b, idx: (e, b, idx))

    def load(e: tf.Tensor, b: tf.Tensor, idx: tf.Tensor):
        x = preprocess(tf.gather(x_all, idx), spec)
        if augmentation is not None:
            x = augment(x, augmentation, tf.stack([seed * 100_003 + e, b]))
        y = tf.gather(y_all, idx)
        return (x, y) if w_all is None else (x, y, tf.gather(w_all, idx))

    # One map thread: on two cores, more tf.data threads take CPU from the training step.
    epochs_ds = tf.data.Dataset.range(start_epoch, epochs)
    return (epochs_ds.flat_map(epoch)
            .map(load, num_parallel_calls=1, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))


def eval_dataset(images: np.ndarray, labels: np.ndarray, *, batch_size: int,
                 spec: Preprocessing) -> tf.data.Dataset:
    """Batches in order, no augmentation, one-hot targets (for validation during training)."""
    y = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    return (tf.data.Dataset.from_tensor_slices((images, y)).batch(batch_size)
            .map(lambda x, t: (preprocess(x, spec), t), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
