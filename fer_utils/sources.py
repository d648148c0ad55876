"""Which data the kit uses: a file or folder named, $FER2013_CSV, data/, else synthetic faces."""

from __future__ import annotations

import os
from pathlib import Path

from .data import FaceDataset, is_synthetic_csv, load_fer2013_csv
from .folders import load_image_folders
from .paths import DATA_DIR
from .synth import default_synthetic_csv

__all__ = ["find_fer2013", "load_dataset"]


def find_fer2013(data: str | Path | None = None) -> Path | None:
    """The FER-2013 file to use: `data`, then $FER2013_CSV, then data/fer2013.csv[.gz]."""
    if data:
        return Path(data)
    if os.environ.get("FER2013_CSV"):
        return Path(os.environ["FER2013_CSV"])
    for name in ("fer2013.csv", "fer2013.csv.gz"):
        if (DATA_DIR / name).exists():
            return DATA_DIR / name
    return None


def load_dataset(data: str | Path | None = None, *, skip_bad_rows: bool = False) -> FaceDataset:
    """The kit's data: a CSV or image folder if given or found, otherwise synthetic faces."""
    path = find_fer2013(data)
    if path is None:
        return load_fer2013_csv(default_synthetic_csv(), synthetic=True)
    if path.is_dir():
        return load_image_folders(path)
    return load_fer2013_csv(path, skip_bad_rows=skip_bad_rows, synthetic=is_synthetic_csv(path))
