"""One writer per output folder: a lock, a private staging folder, and a manifest written last.

A run that writes a folder (an analysis, a training run, an evaluation) holds `.fer-kit.lock`
(its PID and host) while it works, writes its files into `.run-<id>/` inside the folder, and
moves them into place only when it has finished. `manifest.json` comes last and names the
run and every file it wrote, so a folder whose manifest is missing was interrupted while
its files were being replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .atomic import write_json

__all__ = [
    "LOCK", "MANIFEST", "STALE_SECONDS", "FolderInUse", "new_run_id", "output_folder",
    "output_lock", "sha256_file", "write_manifest", "visible_files", "manifest_files",
    "OutputSet", "output_set",
]

LOCK = ".fer-kit.lock"
MANIFEST = "manifest.json"
STALE_SECONDS = 10.0  # a lock file still empty after this long was left by a crash


class FolderInUse(OSError):
    """Raised when another live run holds the output folder."""


def new_run_id() -> str:
    """A name no other run shares: UTC time, PID and a random tag."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}-{secrets.token_hex(3)}"


def output_folder(folder: str | Path) -> Path:
    """`folder`, created if missing; refuses a path that is a file."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, but an output folder is needed here; "
                                 "pass a folder path (it is created if missing).")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _holder(lock: Path) -> dict | None:
    """The run recorded in a lock file, or None when it is empty or unreadable."""
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether a process with this PID runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _stale(lock: Path, holder: dict | None) -> bool:
    """Whether the lock's holder is gone (dead on this host, or the file never got written)."""
    if holder is None:
        try:
            return time.time() - lock.stat().st_mtime > STALE_SECONDS
        except FileNotFoundError:
            return True
    return holder.get("host") == socket.gethostname() and not _alive(int(holder["pid"]))


def _take(lock: Path, run: str) -> bool:
    """Create the lock file for `run`; False when it exists already."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "run": run,
                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "command": " ".join(sys.argv)}, f)
    return True


@contextmanager
def output_lock(folder: str | Path, run: str | None = None) -> Iterator[str]:
    """Hold the folder's lock for the block (yields the run id); takes over a dead run's."""
    folder = output_folder(folder)
    run = run or new_run_id()
    lock = folder / LOCK
    while not _take(lock, run):
        holder = _holder(lock)
        if not _stale(lock, holder):
            who = (f"process {holder['pid']} on {holder['host']} (since {holder['started']})"
                   if holder else "another run")
            raise FolderInUse(f"{folder} is being written by {who}; wait for it to finish or "
                              f"pass another output folder. If that run is gone, delete {lock}.")
        try:  # set the dead run's lock aside; of two runs taking over, one wins the rename
            os.replace(lock, folder / f"{LOCK}.stale-{run}")
            (folder / f"{LOCK}.stale-{run}").unlink()
        except FileNotFoundError:
            pass
    try:
        yield run
    finally:
        if (_holder(lock) or {}).get("run") == run:
            lock.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, names: list[str], run: str, kind: str) -> Path:
    """manifest.json: the run (and its kind) that wrote the folder, each file's SHA-256."""
    files = {name: {"bytes": (folder / name).stat().st_size,
                    "sha256": sha256_file(folder / name)} for name in sorted(names)}
    return write_json(folder / MANIFEST, {
        "kind": kind, "run": run, "host": socket.gethostname(), "pid": os.getpid(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files})


def visible_files(folder: Path) -> list[str]:
    """The folder's files, leaving out hidden ones and the manifest."""
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST)


def manifest_files(folder: Path, kind: str) -> list[str]:
    """The plain file names the folder's manifest lists when a run of `kind` wrote it."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    if manifest.get("kind") != kind:
        return []
    return [name for name in manifest.get("files", {}) if Path(name).name == name]


class OutputSet:
    """The files of one run, written in a staging folder and moved into place as one set."""

    def __init__(self, folder: Path, run: str, kind: str):
        self.folder, self.run, self.kind = folder, run, kind
        self.stage = folder / f".run-{run}"
        self.stage.mkdir()

    def commit(self, files: dict[str, Path]) -> dict[str, Path]:
        """Move the staged files into the folder, drop the files of the previous run of the
        same kind that this one lacks, write the manifest; returns `files`' final paths."""
        old = set(manifest_files(self.folder, self.kind))
        (self.folder / MANIFEST).unlink(missing_ok=True)  # no manifest while the set changes
        final = {key: self.folder / path.name for key, path in files.items()}
        for key, path in files.items():
            os.replace(path, final[key])
        for name in old - {path.name for path in final.values()}:
            (self.folder / name).unlink(missing_ok=True)
        write_manifest(self.folder, [path.name for path in final.values()], self.run,
                       self.kind)
        return final

    def discard(self) -> None:
        """Remove the staging folder and whatever is left in it."""
        shutil.rmtree(self.stage, ignore_errors=True)


@contextmanager
def output_set(folder: str | Path, kind: str) -> Iterator[OutputSet]:
    """Lock `folder` and stage the files of one run of `kind` (analysis, evaluation) in it;
    what is not committed is discarded."""
    with output_lock(folder) as run:
        for leftover in Path(folder).glob(".run-*"):  # a killed run's; none is live now
            shutil.rmtree(leftover, ignore_errors=True)
        outputs = OutputSet(Path(folder), run, kind)
        try:
            yield outputs
        finally:
            outputs.discard()
