"""Class balancing, allowed on training data only."""

from __future__ import annotations

import numpy as np

from .data import FaceDataset
from .labels import EMOTIONS, NUM_CLASSES

__all__ = ["LeakageError", "oversampled_index", "oversample", "class_weights", "class_prior"]


class LeakageError(ValueError):
    """Raised when an operation would let evaluation data leak into training."""


def _training_only(dataset: FaceDataset, what: str) -> None:
    others = sorted(set(np.unique(dataset.usage)) - {"Training"})
    if others:
        raise LeakageError(
            f"refusing to {what} data that holds {', '.join(others)} rows. Balancing before "
            "splitting copies images into both sides of the split, so the test set ends up "
            "full of training images (the seed's 81% was mostly such copies). "
            "Balance dataset.split('Training') only.")


def oversampled_index(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Every row once, then random repeats until each class is as large as the largest."""
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    rng = np.random.default_rng(seed)
    extra = [rng.choice(np.flatnonzero(labels == k), counts.max() - counts[k], replace=True)
             for k in range(NUM_CLASSES) if counts[k]]
    return np.concatenate([np.arange(len(labels)), *extra])


def oversample(dataset: FaceDataset, seed: int = 0) -> FaceDataset:
    """Randomly repeat training images until every class is as large as the largest."""
    _training_only(dataset, "oversample")
    return dataset.subset(np.sort(oversampled_index(dataset.labels, seed), kind="stable"))


def class_weights(dataset: FaceDataset) -> np.ndarray:
    """Per-class loss weights n / (classes * count), as scikit-learn's 'balanced' gives."""
    _training_only(dataset, "compute class weights from")
    counts = np.bincount(dataset.labels, minlength=NUM_CLASSES).astype(np.float64)
    present = counts > 0
    weights = np.zeros(NUM_CLASSES)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def class_prior(dataset: FaceDataset) -> dict:
    """Images per emotion in the Training split and their frequencies (the class prior)."""
    labels = dataset.split("Training").labels
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    return {"split": "Training",
            "counts": {e: int(c) for e, c in zip(EMOTIONS, counts, strict=True)},
            "frequency": {e: float(c / counts.sum()) for e, c in zip(EMOTIONS, counts,
                                                                       strict=True)}}
