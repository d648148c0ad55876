"""Writing files so that a crash or a full disk never leaves a half-written one behind."""

from __future__ import annotations

import errno
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ADVICE", "PAUSE_AT", "explain_os_error", "atomic_path", "write_text", "write_json",
           "pause_point"]

# What to do about the operating-system errors a user can fix.
ADVICE = {
    errno.EACCES: "change its permissions or pick another path",
    errno.EPERM: "change its permissions or pick another path",
    errno.ENOSPC: "free some disk space and run again",
    errno.EDQUOT: "free some space within your disk quota and run again",
    errno.EROFS: "pick a path on a writable disk",
    errno.ENOENT: "check the path",
    errno.EEXIST: "remove it or pick another path",
    errno.ENOTDIR: "a file is in the way where a folder is needed; pick another path",
    errno.EISDIR: "pass a file, not a folder",
}

# Tests only: the name of a pause_point at which the process stops and waits to be killed.
PAUSE_AT = "FER_KIT_PAUSE_AT"


def explain_os_error(error: OSError, path: str | Path | None = None) -> str:
    """One line: the file an OS error is about (else `path`), what happened, what to do."""
    where = error.filename or path or "a file"
    advice = ADVICE.get(error.errno)
    return f"{where}: {error.strerror or error}" + (f"; {advice}" if advice else "")


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
    """Write text atomically, in UTF-8 whatever the locale (reports hold "·", "°", "≥")."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
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


def pause_point(name: str) -> None:
    """A point between two writes that a kill must not spoil. When $FER_KIT_PAUSE_AT names it,
    the process says so on stderr and waits there, so a test can kill it at exactly this
    point; otherwise it does nothing."""
    if os.environ.get(PAUSE_AT) == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)
