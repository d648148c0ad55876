"""FER-2013 as arrays: the dataset object, the CSV loader and its cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .labels import EMOTIONS, NUM_CLASSES, USAGES, usage_name
from .paths import CACHE_DIR

__all__ = [
    "IMAGE_SIZE", "PIXELS", "DataError", "FaceDataset", "split_by_class", "assign_usage",
    "stratified_sample", "read_fer2013_csv", "load_fer2013_csv", "synthetic_sidecar",
    "is_synthetic_csv", "pixel_statistics",
]

IMAGE_SIZE = 48
PIXELS = IMAGE_SIZE * IMAGE_SIZE
_CACHE_VERSION = 2


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
    notes: tuple[str, ...] = field(default_factory=tuple)  # how the rows were chosen or split
    own_split: bool = False  # the source had no usage, so the kit split it with a seed

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
        """Images per expression (rows) and usage (columns)."""
        table = pd.crosstab(pd.Categorical.from_codes(self.labels, EMOTIONS),
                            pd.Categorical(self.usage, categories=USAGES), dropna=False)
        table.index.name, table.columns.name = "expression", "usage"
        return table[list(self.usages)]

    def describe(self) -> str:
        """One line saying what this data is."""
        kind = "SYNTHETIC faces drawn by fer_utils.synth" if self.synthetic else "FER-2013"
        parts = ", ".join(f"{u} {int((self.usage == u).sum()):,}" for u in self.usages)
        return "; ".join((f"{kind} from {self.source}: {len(self):,} images ({parts})",
                          *self.notes))


def split_by_class(index: np.ndarray, labels: np.ndarray, first_share: float, seed: int,
                   min_count: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """`index` in two seeded parts, the first about `first_share` of it; stratified by class
    (`labels`, one per index) when every class has `min_count` rows and fits in both parts."""
    from sklearn.model_selection import train_test_split

    present = np.bincount(labels)[np.unique(labels)]
    first = int(first_share * len(index))
    fits = present.min() >= min_count and min(first, len(index) - first) >= len(present)
    return tuple(train_test_split(index, train_size=first_share, random_state=seed,
                                  stratify=labels if fits else None))


def assign_usage(labels: np.ndarray, seed: int = 0,
                 fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """A seeded stratified split into Training/PublicTest/PrivateTest for data without one."""
    train, rest = split_by_class(np.arange(len(labels)), labels, fractions[0], seed, min_count=3)
    val, test = split_by_class(rest, labels[rest], fractions[1] / (fractions[1] + fractions[2]),
                               seed)
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


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise DataError(f"{path}: no such file. Check the path, set FER2013_CSV, or see "
                        "data/README.md for how to get FER-2013.")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty; expected a header "
                        "'emotion,pixels,Usage' and one row per face.")
    return raw


def _gunzip(path: Path, raw: bytes) -> bytes:
    """The file's text, gunzipped when it is gzip."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: not a readable gzip file ({e}); download it again.") from e


def _text_blocks(raw: bytes, size: int = 1 << 22) -> Iterator[bytes]:
    """The file's text in blocks, gunzipped on the fly (no copy of the whole text)."""
    view = memoryview(raw)
    if raw[:2] != b"\x1f\x8b":
        yield from (bytes(view[i:i + size]) for i in range(0, len(raw), size))
        return
    inflate = zlib.decompressobj(wbits=31)
    for i in range(0, len(raw), size):
        yield inflate.decompress(view[i:i + size])
    if not inflate.eof:
        raise zlib.error("the gzip stream ends early")


_TO_COMMAS = bytes.maketrans(b" ", b",")


def _unsigned(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The blocks, stopped by a ValueError at the first sign (+ or -): the checked parse
    names its row, since a FER-2013 field never holds one."""
    for block in blocks:
        if b"+" in block or b"-" in block:
            raise ValueError("a signed value")
        yield block


def _comma_rows(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The text's lines, with every pixel its own comma-separated field."""
    rest = b""
    for block in blocks:
        *lines, rest = (rest + block).translate(_TO_COMMAS, b'"').split(b"\n")
        yield from lines
    if rest:
        yield rest


def _parse_fast(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Labels, images and usage in one streamed, vectorised pass (NumPy's C reader), or
    None when the file is anything but a clean FER-2013 CSV: the row-by-row path then
    says what is wrong."""
    blocks = _text_blocks(raw)
    first = next(blocks)
    header = first[:first.find(b"\n")].decode("utf-8", "replace").strip("\ufeff\r")
    columns = [c.strip() for c in header.split(",")]
    if sorted(columns) not in (["emotion", "pixels"], ["Usage", "emotion", "pixels"]):
        return None
    widths = {"emotion": 1, "pixels": PIXELS, "Usage": 1}
    offsets = np.cumsum([0] + [widths[c] for c in columns])
    start = dict(zip(columns, offsets[:-1].tolist(), strict=True))
    codes = {usage: i for i, usage in enumerate(USAGES)}
    converters = {start["Usage"]: codes.__getitem__} if "Usage" in start else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a header without rows
            rows = _comma_rows(_unsigned(itertools.chain([first], blocks)))
            grid = np.loadtxt(rows, dtype=np.uint8, delimiter=",", comments=None, skiprows=1,
                              converters=converters, ndmin=2, encoding="latin-1")
    except (ValueError, KeyError, zlib.error):  # a bad value or row; a broken gzip stream
        return None
    labels = grid[:, start["emotion"]].astype(np.int64)
    if len(grid) == 0 or labels.max() >= NUM_CLASSES:
        return None
    images = grid[:, start["pixels"]:start["pixels"] + PIXELS].reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    usage = np.asarray(USAGES)[grid[:, start["Usage"]]] if converters else None
    return labels, np.ascontiguousarray(images), usage


def _check_text(path: Path, text: bytes) -> None:
    """Refuse UTF-16 and binary files, naming the file and what to do."""
    if text[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: the file is UTF-16 text; save it again as UTF-8 (in Excel: "
                        "'CSV UTF-8') with the header 'emotion,pixels,Usage'.")
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: byte {e.start} is not UTF-8 text, so this is not a FER-2013 "
                        "CSV (a binary file, or text in another encoding); save it as UTF-8 "
                        "with the header 'emotion,pixels,Usage'.") from None
    if b"\0" in text:
        raise DataError(f"{path}: the file holds NUL bytes, so it is binary, not a FER-2013 CSV; "
                        "expected the header 'emotion,pixels,Usage'.")


def _read_table(path: Path, text: bytes) -> pd.DataFrame:
    """The CSV as text columns (names stripped)."""
    _check_text(path, text)
    try:
        table = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: not a FER-2013 CSV ({e}).") from e
    table.columns = [c.strip() for c in table.columns]
    return table


def _bad_rows(emotion: pd.Series, pixels: pd.Series, usage: pd.Series | None) -> dict[int, str]:
    """Row index -> what is wrong with it, checked row by row."""
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


def _format_problems(path: Path, problems: dict[int, str], shown: int = 5) -> str:
    lines = [f"  line {i + 2}: {why}" for i, why in list(problems.items())[:shown]]
    more = f"\n  ... and {len(problems) - shown} more" if len(problems) > shown else ""
    return (f"{path}: {len(problems)} bad row(s) (the header is line 1):\n" + "\n".join(lines)
            + more + "\nFix or remove them, or load with skip_bad_rows=True "
            "(CLI: --skip-bad-rows) to drop them and report the count.")


def _parse_checked(path: Path, raw: bytes, skip_bad_rows: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Row by row, for a file the fast parse refused: name the bad rows, or skip them."""
    table = _read_table(path, _gunzip(path, raw))
    missing = {"emotion", "pixels"} - set(table.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                        f"found {', '.join(table.columns)}. Expected 'emotion,pixels,Usage'.")
    if table.empty:
        raise DataError(f"{path}: the file has a header but no rows.")
    usage = table["Usage"].str.strip() if "Usage" in table.columns else None
    problems = _bad_rows(table["emotion"], table["pixels"], usage)
    if problems and not skip_bad_rows:
        raise DataError(_format_problems(path, problems))
    if problems:
        warnings.warn(f"{path}: skipped {len(problems)} bad row(s): "
                      + "; ".join(f"line {i + 2}" for i in list(problems)[:5]), stacklevel=3)
    keep = np.ones(len(table), dtype=bool)
    keep[list(problems)] = False
    if not keep.any():
        raise DataError(f"{path}: every row is bad; nothing to load.")
    table = table[keep]
    images = np.stack([np.array(t.split(), dtype=np.uint8) for t in table["pixels"]])
    labels = table["emotion"].str.strip().to_numpy().astype(np.int64)
    usage = None if usage is None else usage[keep].to_numpy().astype(str)
    return labels, images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), usage, len(problems)


def _parse_csv(path: Path, raw: bytes, skip_bad_rows: bool, seed: int) -> FaceDataset:
    """The dataset in a FER-2013 CSV's bytes: the fast parse, else the checked one."""
    fast = _parse_fast(raw)
    labels, images, usage, skipped = (*fast, 0) if fast is not None else \
        _parse_checked(path, raw, skip_bad_rows)
    own_split = usage is None
    return FaceDataset(images=images, labels=labels,
                       usage=assign_usage(labels, seed) if own_split else usage,
                       source=str(path), checksum=hashlib.sha256(raw).hexdigest(),
                       skipped_rows=skipped, own_split=own_split,
                       notes=(f"no Usage column: split 80/10/10 into {', '.join(USAGES)} "
                              f"by class (seed {seed})",) if own_split else ())


def read_fer2013_csv(path: str | Path, *, skip_bad_rows: bool = False,
                     seed: int = 0) -> FaceDataset:
    """Parse a FER-2013 CSV (`emotion,pixels,Usage`, optionally gzipped) into a FaceDataset."""
    path = Path(path)
    return _parse_csv(path, _read_bytes(path), skip_bad_rows, seed)


def _cache_file(path: Path, checksum: str) -> Path:
    """Where the parsed arrays of a CSV with this content are kept ($FER_KIT_CACHE)."""
    return CACHE_DIR / f"{path.name.split('.')[0]}-v{_CACHE_VERSION}-{checksum[:16]}.npz"


def _read_cache(file: Path, path: Path, checksum: str) -> FaceDataset | None:
    """The dataset saved in a cache file, or None when there is none or it is unreadable."""
    try:
        with np.load(file) as saved:
            return FaceDataset(images=saved["images"], labels=saved["labels"],
                               usage=saved["usage"], source=str(path), checksum=checksum,
                               notes=tuple(map(str, saved["notes"])),
                               own_split=bool(saved["own_split"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _write_cache(file: Path, dataset: FaceDataset) -> None:
    """Save the parsed arrays, readable by their owner only."""
    with atomic_path(file) as tmp:
        np.savez(tmp, images=dataset.images, labels=dataset.labels, usage=dataset.usage,
                 notes=np.array(dataset.notes, dtype=str), own_split=dataset.own_split)
        tmp.chmod(0o600)


def load_fer2013_csv(path: str | Path, *, skip_bad_rows: bool = False, cache: bool = True,
                     synthetic: bool = False) -> FaceDataset:
    """Load a FER-2013 CSV, reusing the arrays parsed from the same content before.

    The file is read every time (so a user who may not read it gets no cached copy), and
    its SHA-256 picks the cache entry.
    """
    path = Path(path)
    raw = _read_bytes(path)
    checksum = hashlib.sha256(raw).hexdigest()
    file = _cache_file(path, checksum)
    dataset = _read_cache(file, path, checksum) if cache and file.exists() else None
    if dataset is None:
        dataset = _parse_csv(path, raw, skip_bad_rows, seed=0)
        if cache and not dataset.skipped_rows:
            _write_cache(file, dataset)
    return replace(dataset, synthetic=synthetic)


def synthetic_sidecar(csv: str | Path) -> Path:
    """The JSON that fer_utils.synth writes beside every CSV it generates."""
    csv = Path(csv)
    return csv.with_name(csv.name.split(".")[0] + ".synth.json")


def is_synthetic_csv(csv: str | Path) -> bool:
    """Whether a CSV was generated by fer_utils.synth (it has the generator's sidecar)."""
    return synthetic_sidecar(csv).exists()


def pixel_statistics(dataset: FaceDataset) -> pd.DataFrame:
    """Mean and spread of pixel values per expression, and how many images are nearly blank."""
    rows = []
    for k, name in enumerate(EMOTIONS):
        images = dataset.images[dataset.labels == k].astype(np.float64)
        if len(images):
            rows.append({"expression": name, "images": len(images), "mean": images.mean(),
                         "std": images.std(),
                         "mean per-image contrast": images.reshape(len(images), -1).std(1).mean(),
                         "near-blank images": int((images.reshape(len(images), -1).std(1) < 5)
                                                  .sum())})
    return pd.DataFrame(rows).set_index("expression").round(2)
