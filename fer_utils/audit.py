"""Duplicate audit: pixel-identical images within and across splits."""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd

from .data import FaceDataset
from .labels import EMOTIONS, USAGES

__all__ = ["image_keys", "duplicate_groups", "duplicate_audit", "twin_share"]


def image_keys(images: np.ndarray) -> np.ndarray:
    """One hashable key per image: its pixels as a single void scalar."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    return flat.view(np.dtype((np.void, flat.shape[1]))).ravel()


def duplicate_groups(dataset: FaceDataset) -> pd.DataFrame:
    """Every group of identical images: rows, usages, labels and whether the labels disagree."""
    _, group, sizes = np.unique(image_keys(dataset.images), return_inverse=True,
                                return_counts=True)
    dup = np.flatnonzero(sizes[group] > 1)
    rows = []
    for g in np.unique(group[dup]):
        members = dup[group[dup] == g]
        labels = [EMOTIONS[k] for k in dataset.labels[members]]
        rows.append({"rows": members.tolist(), "usages": dataset.usage[members].tolist(),
                     "labels": labels, "labels_disagree": len(set(labels)) > 1})
    return pd.DataFrame(rows, columns=["rows", "usages", "labels", "labels_disagree"])


def duplicate_audit(dataset: FaceDataset) -> pd.DataFrame:
    """Per split pair: images of the first split that have an identical twin in the second."""
    keys = image_keys(dataset.images)
    rows = []
    present = [u for u in USAGES if (dataset.usage == u).any()]
    for a, b in product(present, repeat=2):
        ka, kb = keys[dataset.usage == a], keys[dataset.usage == b]
        if a == b:
            _, inverse, counts = np.unique(ka, return_inverse=True, return_counts=True)
            with_twin = int((counts[inverse] > 1).sum())
        else:
            with_twin = int(np.isin(ka, kb).sum())
        rows.append({"split": a, "twin_in": b, "images": len(ka), "with_twin": with_twin,
                     "share": round(with_twin / len(ka), 4) if len(ka) else 0.0})
    return pd.DataFrame(rows)


def twin_share(train_images: np.ndarray, test_images: np.ndarray) -> float:
    """Share of test images that have a pixel-identical twin among the training images."""
    if len(test_images) == 0:
        return 0.0
    return float(np.isin(image_keys(test_images), image_keys(train_images)).mean())
