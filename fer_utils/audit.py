"""Duplicate audit: pixel-identical images within and across splits."""

from __future__ import annotations

from collections import Counter
from itertools import product

import numpy as np
import pandas as pd

from .data import FaceDataset
from .labels import EMOTIONS, USAGES

__all__ = [
    "image_keys", "duplicate_groups", "group_summary", "duplicate_audit", "twin_rows", "twin_share",
]


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


def _tally(values: list[str]) -> str:
    """Values with their counts, most common first: 'Training 13, PublicTest 1'."""
    return ", ".join(f"{value} {count}" for value, count in Counter(values).most_common())


def group_summary(groups: pd.DataFrame, shown_rows: int = 3) -> pd.DataFrame:
    """Duplicate groups for reading, largest first: size, splits and labels with their counts,
    and the first rows (so no cell grows with the group)."""
    table = pd.DataFrame({
        "images": groups["rows"].map(len),
        "splits": groups["usages"].map(_tally),
        "labels": groups["labels"].map(_tally),
        "labels disagree": groups["labels_disagree"],
        "rows": groups["rows"].map(lambda rows: ", ".join(map(str, rows[:shown_rows])) + (
            f" and {len(rows) - shown_rows} more" if len(rows) > shown_rows else "")),
    })
    return table.sort_values("images", ascending=False, kind="stable").reset_index(drop=True)


def duplicate_audit(dataset: FaceDataset) -> pd.DataFrame:
    """Per split pair: images of the first split that have an identical twin in the second,
    as a count and a percentage of the first split."""
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
                     "percent": round(100 * with_twin / len(ka), 2) if len(ka) else 0.0})
    return pd.DataFrame(rows)


def twin_rows(train_images: np.ndarray, test_images: np.ndarray) -> np.ndarray:
    """For each test image, whether a pixel-identical twin is among the training images."""
    return np.isin(image_keys(test_images), image_keys(train_images))


def twin_share(train_images: np.ndarray, test_images: np.ndarray) -> float:
    """Share of test images that have a pixel-identical twin among the training images."""
    if len(test_images) == 0:
        return 0.0
    return float(twin_rows(train_images, test_images).mean())
