"""Which classifier to load, as a picklable spec, and a per-process cache of loaded ones.

A spec names a model file and its options, never the model itself, so it can key a cache and
travel to Dask workers, each of which loads the model once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from .artifacts import load_model
from .model import FaceClassifier
from .paths import SHIPPED_MODEL
from .pipeline import Preprocessing

__all__ = ["ModelSpec", "cached_classifier"]


@dataclass(frozen=True)
class ModelSpec:
    """Where to load a classifier from: a path and its options, never the model."""

    path: str = str(SHIPPED_MODEL)
    weights: str | None = None
    preprocessing: Preprocessing | None = None
    prior_correction: float = 0.0


def cached_classifier(spec: ModelSpec) -> FaceClassifier:
    """The classifier for `spec`, loaded once per process (so once per Dask worker), and again
    when its file is rewritten, as retraining into the same path does."""
    return _loaded(spec, _file_version(spec.path), _file_version(spec.weights))


def _file_version(path: str | None) -> tuple[int, int] | None:
    """Modification time and size of `path`: they change when the file is rewritten."""
    if path is None or not os.path.exists(path):
        return None  # load_model says what is missing
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=4)
def _loaded(spec: ModelSpec, *versions: tuple[int, int] | None) -> FaceClassifier:
    """load_model for `spec`, cached per version of its files."""
    return load_model(spec.path, spec.weights, spec.preprocessing, spec.prior_correction)
