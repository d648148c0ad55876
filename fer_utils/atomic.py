"""Writing files so that a crash or a full disk never leaves a half-written one behind."""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What to do about the operating-system errors a user can fix.
ADVICE = {
    errno.EACCES: "permission denied; change the permissions or pick another path",
    errno.EPERM: "operation not permitted; change the permissions or pick another path",
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "the disk quota is used up; free some space and run again",
    errno.EROFS: "the file system is read-only; pick another path",
    errno.ENOENT: "no such file or folder; check the path",
    errno.EEXIST: "a file is in the way; remove it or pick another path",
    errno.ENOTDIR: "a file is in the way where a folder is needed; pick another path",
    errno.EISDIR: "this is a folder where a file is needed; pass a file",
}


def explain_os_error(error: OSError, path: str | Path | None = None) -> str:
    """One line naming the file an OS error is about (else `path`) and what to do."""
    where = error.filename or path or "a file"
    return f"{where}: {ADVICE.get(error.errno) or error.strerror or error}"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer; keeps the ending that Keras, NumPy and OpenCV look at.
    tmp = path.with_name(f".partial-{os.getpid()}-{secrets.token_hex(3)}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(f"could not write {explain_os_error(e, path)}; the previous "
                      f"{path.name}, if any, is intact.") from e
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
