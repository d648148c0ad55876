"""Writing files so that a crash or a full disk never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{path.name}")  # keeps the ending Keras and OpenCV look at
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(f"could not write {path}: {e}. Free some disk space and run again; "
                      f"the previous {path.name}, if any, is intact.") from e
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj: object) -> Path:
    """Write JSON atomically, indented for people to read."""
    return write_text(path, json.dumps(obj, indent=2, default=_plain) + "\n")


def _plain(value: object) -> object:
    """Turn NumPy scalars and arrays (and paths) into JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
