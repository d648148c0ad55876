"""FER-2013's image-folder release: `train/<emotion>/*.jpg` and `test/<emotion>/*.jpg`."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

from .data import IMAGE_SIZE, DataError, FaceDataset, split_by_class
from .images import read_image, to_gray
from .labels import EMOTIONS, USAGES, emotion_index, usage_name

__all__ = ["IMAGE_SUFFIXES", "load_image_folders"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_OFFICIAL = re.compile(r"(Training|PublicTest|PrivateTest)_")


def _read(path: Path) -> np.ndarray | None:
    """One image as 48x48 grayscale, whatever its size or colour; None if unreadable."""
    try:
        gray = to_gray(read_image(path))
    except ValueError:
        return None
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
        gray = cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return gray


def _checksum(images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> str:
    """SHA-256 of the pixels, labels and usage: what a CSV's file checksum is to a CSV."""
    digest = hashlib.sha256()
    for array in (images, labels, usage):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _halve(labels: np.ndarray, seed: int) -> np.ndarray:
    """PublicTest or PrivateTest for each test image, stratified by class when possible."""
    public, _ = split_by_class(np.arange(len(labels)), labels, 0.5, seed)
    usage = np.full(len(labels), "PrivateTest", dtype="<U11")
    usage[public] = "PublicTest"
    return usage


def load_image_folders(root: str | Path, *, skip_unreadable: bool = False,
                       seed: int = 0) -> FaceDataset:
    """Load `root/{train,test}/<emotion>/*`; official usage kept when file names carry it.

    Without usage prefixes, `train/` becomes Training and `test/` is split by a seeded
    stratified split into PublicTest and PrivateTest.
    """
    root = Path(root)
    files = sorted(p for p in root.glob("*/*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no images found under train/<emotion>/ or test/<emotion>/.")
    images, labels, usage, bad = [], [], [], []
    for path in files:
        part = path.parts[-3].lower()
        if part not in ("train", "test"):
            raise DataError(f"{path}: expected train/ or test/ then one of {', '.join(EMOTIONS)}")
        try:
            label = emotion_index(path.parts[-2])
        except ValueError as e:
            raise DataError(f"{path}: {e}") from None
        image = _read(path)
        if image is None:
            bad.append(path)
            continue
        official = _OFFICIAL.match(path.name)
        images.append(image)
        labels.append(label)
        usage.append(official.group(1) if official else part)
    if bad and not skip_unreadable:
        shown = "\n  ".join(map(str, bad[:5]))
        raise DataError(f"{len(bad)} unreadable image(s), first:\n  {shown}\n"
                        "Replace or delete them, or pass skip_unreadable=True.")
    if bad:
        warnings.warn(f"{root}: skipped {len(bad)} unreadable image(s)", stacklevel=2)
    labels_arr, usage_arr = np.array(labels, np.int64), np.array(usage, dtype="<U11")
    own_split = not set(usage_arr) <= set(USAGES)
    notes: tuple[str, ...] = ()
    if own_split:
        usage_arr[usage_arr == "train"] = usage_name("train")
        test = np.flatnonzero(usage_arr == "test")
        if len(test):
            usage_arr[test] = _halve(labels_arr[test], seed)
        notes = ("no official usage in file names: test/ split 50/50 into PublicTest and "
                 f"PrivateTest (seed {seed})",)
    stacked = np.stack(images)
    return FaceDataset(images=stacked, labels=labels_arr, usage=usage_arr, source=str(root),
                       checksum=_checksum(stacked, labels_arr, usage_arr),
                       skipped_rows=len(bad), notes=notes, own_split=own_split)
