"""FER-2013 as arrays: the dataset object, the CSV loader, its cache and the data lookup."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .labels import EMOTIONS, NUM_CLASSES, USAGES, usage_name
from .paths import CACHE_DIR, DATA_DIR

IMAGE_SIZE = 48
PIXELS = IMAGE_SIZE * IMAGE_SIZE
_SENTINEL = 999  # joined between rows so one parse also checks every row's length
_CACHE_VERSION = 1


class DataError(ValueError):
    """Raised for input the kit cannot read; the message names the file and what to do."""


@dataclass(frozen=True)
class FaceDataset:
    """Face images with labels and the split (usage) each one belongs to."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 class indices into EMOTIONS
    usage: np.ndarray  # (N,) str, one of USAGES
    source: str  # file or folder it came from
    synthetic: bool = False
    checksum: str = ""  # sha256 of the source file, when it is one file
    soft_labels: np.ndarray | None = None  # (N, 7) label distributions (FER+ votes)
    skipped_rows: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def usages(self) -> tuple[str, ...]:
        """The usages present, in official order."""
        present = set(np.unique(self.usage))
        return tuple(u for u in USAGES if u in present)

    def subset(self, index: np.ndarray) -> FaceDataset:
        """The rows selected by a boolean mask or an index array."""
        soft = None if self.soft_labels is None else self.soft_labels[index]
        return replace(self, images=self.images[index], labels=self.labels[index],
                       usage=self.usage[index], soft_labels=soft)

    def split(self, name: str) -> FaceDataset:
        """One split by usage name or alias (`train`, `val`, `test`)."""
        usage = usage_name(name)
        if usage not in self.usages:
            raise DataError(f"{self.source} has no {usage} rows (it has {', '.join(self.usages)})")
        return self.subset(self.usage == usage)

    def counts(self) -> pd.DataFrame:
        """Images per emotion (rows) and usage (columns)."""
        table = pd.crosstab(pd.Categorical.from_codes(self.labels, EMOTIONS),
                            pd.Categorical(self.usage, categories=USAGES), dropna=False)
        table.index.name, table.columns.name = "emotion", "usage"
        return table[list(self.usages)]

    def describe(self) -> str:
        """One line saying what this data is."""
        kind = "SYNTHETIC faces drawn by fer_utils.synth" if self.synthetic else "FER-2013"
        parts = ", ".join(f"{u} {int((self.usage == u).sum()):,}" for u in self.usages)
        return f"{kind} from {self.source}: {len(self):,} images ({parts})"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assign_usage(labels: np.ndarray, seed: int = 0,
                 fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """A seeded stratified split into Training/PublicTest/PrivateTest for data without one."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    stratify = labels if counts[counts > 0].min() >= 3 else None
    train, rest = train_test_split(index, train_size=fractions[0], random_state=seed,
                                   stratify=stratify)
    rest_counts = np.bincount(labels[rest], minlength=NUM_CLASSES)
    rest_stratify = labels[rest] if stratify is not None and rest_counts[
        rest_counts > 0].min() >= 2 else None
    val, test = train_test_split(rest, train_size=fractions[1] / (fractions[1] + fractions[2]),
                                 random_state=seed, stratify=rest_stratify)
    usage = np.empty(len(labels), dtype=f"<U{max(map(len, USAGES))}")
    usage[train], usage[val], usage[test] = USAGES
    return usage


def stratified_sample(dataset: FaceDataset, images: int, seed: int = 0,
                      usages: tuple[str, ...] = ("Training",)) -> FaceDataset:
    """About `images` rows of the given usages, each (usage, class) in proportion; other
    usages are kept whole. The checksum records the sampling, so runs on it stay apart."""
    pool = np.flatnonzero(np.isin(dataset.usage, usages))
    if images >= len(pool):
        return dataset
    rng = np.random.default_rng(seed)
    keep = [np.flatnonzero(~np.isin(dataset.usage, usages))]
    for usage in usages:
        for k in range(NUM_CLASSES):
            rows = pool[(dataset.usage[pool] == usage) & (dataset.labels[pool] == k)]
            if len(rows):
                take = max(1, round(len(rows) * images / len(pool)))
                keep.append(rng.choice(rows, take, replace=False))
    sample = dataset.subset(np.sort(np.concatenate(keep)))
    return replace(sample, checksum=f"{dataset.checksum}+sample-{images}-{seed}",
                   notes=(*dataset.notes, f"stratified sample of {images} {'/'.join(usages)} "
                          f"rows (seed {seed})"))


# --------------------------------------------------------------------------- CSV


def _read_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The CSV as text columns (names stripped), plus the file's SHA-256."""
    if not path.exists():
        raise DataError(f"{path}: no such file. Check the path, or see data/README.md "
                        "for how to get FER-2013.")
    raw = path.read_bytes()
    checksum = hashlib.sha256(raw).hexdigest()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable gzip file ({e}); download it again.") from e
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected a header "
                        "'emotion,pixels,Usage' and one row per face.")
    try:
        table = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: not a FER-2013 CSV ({e}).") from e
    table.columns = [c.strip() for c in table.columns]
    return table, checksum


def _bad_rows(emotion: pd.Series, pixels: pd.Series, usage: pd.Series | None) -> dict[int, str]:
    """Row index -> what is wrong with it, checked row by row (only runs when a row is bad)."""
    problems: dict[int, str] = {}
    for i, (label, text) in enumerate(zip(emotion, pixels, strict=True)):
        tokens = text.split()
        if label.strip() not in {str(k) for k in range(NUM_CLASSES)}:
            problems[i] = f"emotion {label!r} is not an integer 0-{NUM_CLASSES - 1}"
        elif len(tokens) != PIXELS:
            problems[i] = f"{len(tokens)} pixels instead of {PIXELS}"
        elif not all(t.isdigit() and int(t) <= 255 for t in tokens):
            bad = next(t for t in tokens if not (t.isdigit() and int(t) <= 255))
            problems[i] = f"pixel value {bad!r} is not an integer 0-255"
        elif usage is not None and usage.iat[i].strip() not in USAGES:
            problems[i] = f"usage {usage.iat[i]!r} is not one of {', '.join(USAGES)}"
    return problems


def _parse_pixels(pixels: pd.Series) -> np.ndarray | None:
    """All rows parsed in one vectorised pass, or None when any row is malformed."""
    sep = f" {_SENTINEL} "
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            values = np.fromstring(sep.join(pixels.tolist()), dtype=np.int32, sep=" ")
        except ValueError:  # text that is not a number: the row-by-row check names it
            return None
    n = len(pixels)
    if values.size != n * (PIXELS + 1) - 1:
        return None
    grid = np.append(values, _SENTINEL).reshape(n, PIXELS + 1)
    if (grid[:, -1] != _SENTINEL).any() or grid[:, :-1].min() < 0 or grid[:, :-1].max() > 255:
        return None
    return grid[:, :-1].astype(np.uint8).reshape(n, IMAGE_SIZE, IMAGE_SIZE)


def _format_problems(path: Path, problems: dict[int, str], shown: int = 5) -> str:
    lines = [f"  line {i + 2}: {why}" for i, why in list(problems.items())[:shown]]
    more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
    return (f"{path}: {len(problems)} bad row(s) (the header is line 1):\n" + "\n".join(lines)
            + more + "\nFix or remove them, or load with skip_bad_rows=True "
            "(CLI: --skip-bad-rows) to drop them and report the count.")


def read_fer2013_csv(path: str | Path, *, skip_bad_rows: bool = False,
                     seed: int = 0) -> FaceDataset:
    """Parse a FER-2013 CSV (`emotion,pixels,Usage`, optionally gzipped) into a FaceDataset."""
    path = Path(path)
    table, checksum = _read_table(path)
    missing = {"emotion", "pixels"} - set(table.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                        f"found {', '.join(table.columns)}. Expected 'emotion,pixels,Usage'.")
    if table.empty:
        raise DataError(f"{path}: the file has a header but no rows.")
    usage_col = table["Usage"].str.strip() if "Usage" in table.columns else None
    emotion = table["emotion"].str.strip()
    images = _parse_pixels(table["pixels"])
    labels_ok = emotion.isin([str(k) for k in range(NUM_CLASSES)]).all()
    usage_ok = usage_col is None or usage_col.isin(USAGES).all()
    skipped = 0
    if images is None or not labels_ok or not usage_ok:
        # Only reached when something is off; irregular spacing alone yields no problems.
        problems = _bad_rows(table["emotion"], table["pixels"], usage_col)
        if problems and not skip_bad_rows:
            raise DataError(_format_problems(path, problems))
        keep = np.ones(len(table), dtype=bool)
        keep[list(problems)] = False
        skipped = int((~keep).sum())
        if skipped:
            warnings.warn(f"{path}: skipped {skipped} bad row(s): "
                          + "; ".join(f"line {i + 2}" for i in list(problems)[:5]), stacklevel=2)
        table, emotion = table[keep], emotion[keep]
        usage_col = None if usage_col is None else usage_col[keep]
        if table.empty:
            raise DataError(f"{path}: every row is bad; nothing to load.")
        images = np.stack([np.array(t.split(), dtype=np.uint8) for t in table["pixels"]])
        images = images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    labels = emotion.to_numpy().astype(np.int64)
    usage = (usage_col.to_numpy().astype(str) if usage_col is not None
             else assign_usage(labels, seed))
    return FaceDataset(images=images, labels=labels, usage=usage, source=str(path),
                       checksum=checksum, skipped_rows=skipped)


def _cache_file(path: Path) -> Path:
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    return CACHE_DIR / f"{path.name.split('.')[0]}-{key}.npz"


def load_fer2013_csv(path: str | Path, *, skip_bad_rows: bool = False, cache: bool = True,
                     synthetic: bool = False) -> FaceDataset:
    """Load a FER-2013 CSV, reusing the parsed arrays while the file is unchanged."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file. Check the path, set FER2013_CSV, or see "
                        "data/README.md for how to get FER-2013.")
    stat = path.stat()
    stamp = np.array([_CACHE_VERSION, stat.st_size, stat.st_mtime_ns], dtype=np.int64)
    cache_file = _cache_file(path)
    if cache and cache_file.exists():
        with np.load(cache_file) as saved:
            if np.array_equal(saved["stamp"], stamp):
                return FaceDataset(images=saved["images"], labels=saved["labels"],
                                   usage=saved["usage"], source=str(path), synthetic=synthetic,
                                   checksum=str(saved["checksum"]))
    dataset = replace(read_fer2013_csv(path, skip_bad_rows=skip_bad_rows), synthetic=synthetic)
    if cache and not dataset.skipped_rows:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npz")
        np.savez(tmp, images=dataset.images, labels=dataset.labels, usage=dataset.usage,
                 checksum=dataset.checksum, stamp=stamp)
        os.replace(tmp, cache_file)
    return dataset


# --------------------------------------------------------------------------- lookup


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
        from .synth import default_synthetic_csv

        return load_fer2013_csv(default_synthetic_csv(), synthetic=True)
    if path.is_dir():
        from .folders import load_image_folders

        return load_image_folders(path)
    return load_fer2013_csv(path, skip_bad_rows=skip_bad_rows, synthetic=is_synthetic_csv(path))


def synthetic_sidecar(csv: str | Path) -> Path:
    """The JSON that fer_utils.synth writes beside every CSV it generates."""
    csv = Path(csv)
    return csv.with_name(csv.name.split(".")[0] + ".synth.json")


def is_synthetic_csv(csv: str | Path) -> bool:
    """Whether a CSV was generated by fer_utils.synth (it has the generator's sidecar)."""
    return synthetic_sidecar(csv).exists()


def pixel_statistics(dataset: FaceDataset) -> pd.DataFrame:
    """Mean and spread of pixel values per emotion, and how many images are nearly blank."""
    rows = []
    for k, name in enumerate(EMOTIONS):
        images = dataset.images[dataset.labels == k].astype(np.float64)
        if len(images):
            rows.append({"emotion": name, "images": len(images), "mean": images.mean(),
                         "std": images.std(),
                         "mean per-image contrast": images.reshape(len(images), -1).std(1).mean(),
                         "near-blank images": int((images.reshape(len(images), -1).std(1) < 5)
                                                  .sum())})
    return pd.DataFrame(rows).set_index("emotion").round(2)
