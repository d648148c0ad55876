"""One writer per output folder: a lock, a private staging folder, and a commit that completes.

A run that writes a folder (an analysis, an evaluation, a training run) holds `.fer-kit.lock`
(its PID and host) while it works. An analysis or an evaluation writes its files into
`.run-<id>/` inside the folder and commits them as one set, in four moves:

1. the new `manifest.json` (the run, its kind, each file's size and SHA-256, and the files of
   the previous set of the same kind that the new one drops) is written into the staging
   folder. This is the commit point: from here on the new set is the folder's;
2. the folder's old `manifest.json` is removed;
3. each staged file moves into place, and the dropped files of the previous set are deleted;
4. the new `manifest.json` moves into place, and the empty staging folder goes.

A run stopped before move 1 (killed, interrupted, failed) leaves the old set as it was; the
next run that takes the folder discards its staging folder. A run stopped after move 1 is
finished by the next run that takes the folder, before that run does anything else.

How a reader tells which set it sees: while `manifest.json` is present, the files it lists are
those of the run it names, whole. While it is missing, a commit is under way (or was cut short,
and the next run finishes it): `committed_set` finds the new set's files wherever they are now,
and an app can wait and read again. A reader that must know that nothing changed while it
read reads `manifest.json` again afterwards: the same `run` both times means one set.
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

from .atomic import pause_point, write_json

__all__ = [
    "LOCK", "MANIFEST", "STATE", "STALE_SECONDS", "WRITES_INTO", "FolderInUse",
    "FolderOfAnotherKind", "new_run_id", "output_folder", "output_lock", "sha256_file",
    "write_manifest", "visible_files", "committed_set", "folder_kind", "check_kind",
    "finish_commits", "OutputSet", "output_set",
]

LOCK = ".fer-kit.lock"
MANIFEST = "manifest.json"
STATE = "state.json"  # a training run's progress: it marks a training folder before its manifest
# A lock file without a readable holder (an older kit's, or damaged) is stale after this long.
STALE_SECONDS = 10.0
# The kinds of folder a run of each kind may write into: its own kind, and an evaluation may
# go beside the model in a training run's folder (and a training run resume there).
WRITES_INTO = {"analysis": ("analysis",), "evaluation": ("evaluation", "training"),
               "training": ("training", "evaluation"), "in-frame": ("in-frame",)}


class FolderInUse(OSError):
    """Raised when another live run holds the output folder."""


class FolderOfAnotherKind(ValueError):
    """Raised when a run would write into a folder that another kind of run wrote."""


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


def _read_json(path: Path) -> dict | None:
    """A JSON file's content (a lock's holder, a manifest), or None when it is missing, empty
    or unreadable."""
    try:
        return json.loads(path.read_text())
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
    """Create the lock file for `run`, whole: its record is written beside it and linked into
    place, which fails when the lock exists, so a kill never leaves a lock without its holder.
    False when the lock exists already."""
    record = lock.with_name(f"{lock.name}.{run}")
    record.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run": run,
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "command": " ".join(sys.argv)}))
    try:
        os.link(record, lock)
    except (FileExistsError, FileNotFoundError):  # held; or the holder swept our record
        return False
    finally:
        record.unlink(missing_ok=True)
    return True


@contextmanager
def output_lock(folder: str | Path, kind: str, run: str | None = None) -> Iterator[str]:
    """Hold the folder's lock for a run of `kind` (yields the run id): takes over a dead run's
    lock, refuses a folder of another kind, then finishes a commit a killed run left."""
    folder = output_folder(folder)
    run = run or new_run_id()
    lock = folder / LOCK
    while not _take(lock, run):
        holder = _read_json(lock)
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
    for leftover in folder.glob(f"{LOCK}.*"):  # records and set-aside locks of killed runs
        leftover.unlink(missing_ok=True)
    try:
        check_kind(folder, kind)
        finish_commits(folder)
        yield run
    finally:
        if (_read_json(lock) or {}).get("run") == run:
            lock.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(folder: Path, names: list[str], run: str, kind: str) -> dict:
    """A manifest: the run (and its kind) that wrote the files in `folder`, each one's SHA-256."""
    files = {name: {"bytes": (folder / name).stat().st_size,
                    "sha256": sha256_file(folder / name)} for name in sorted(names)}
    return {"kind": kind, "run": run, "host": socket.gethostname(), "pid": os.getpid(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": files}


def write_manifest(folder: Path, names: list[str], run: str, kind: str) -> Path:
    """manifest.json: the run (and its kind) that wrote the folder, each file's SHA-256."""
    return write_json(folder / MANIFEST, _manifest(folder, names, run, kind))


def visible_files(folder: Path) -> list[str]:
    """The folder's files, leaving out hidden ones and the manifest."""
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST)


def committed_set(folder: str | Path) -> tuple[dict, dict[str, Path]] | None:
    """The manifest of the folder's last committed set and where each of its files is now
    (still staged, or in place), even in the middle of a commit; None if there is none."""
    folder = Path(folder)
    for _ in range(3):  # a commit may move the staged manifest while this looks for it
        for staged in sorted(folder.glob(f".run-*/{MANIFEST}")):
            manifest = _read_json(staged)
            if manifest is not None:
                return manifest, {name: staged.parent / name if (staged.parent / name).exists()
                                  else folder / name for name in manifest["files"]}
        manifest = _read_json(folder / MANIFEST)
        if manifest is not None:
            return manifest, {name: folder / name for name in manifest["files"]}
        if not list(folder.glob(f".run-*/{MANIFEST}")):
            return None
    return None


def folder_kind(folder: str | Path) -> str | None:
    """The kind of run that wrote the folder (from its manifest; a training run's state marks
    its folder before the manifest exists), or None for a new folder."""
    found = committed_set(folder)
    if found is not None:
        return found[0].get("kind")
    return "training" if (Path(folder) / STATE).exists() else None


def check_kind(folder: str | Path, kind: str) -> None:
    """Refuse to write a run of `kind` into a folder that another kind of run wrote."""
    found = folder_kind(folder)
    if found is not None and found not in WRITES_INTO[kind]:
        raise FolderOfAnotherKind(
            f"{folder} holds the files of an earlier {found} run (its {MANIFEST} or {STATE} "
            f"says so); {kind} results written there would mix with them. Pass another output "
            "folder (nothing was changed).")


def _finish(folder: Path, stage: Path) -> None:
    """Moves 2 to 4 of a commit whose manifest is staged; safe to repeat after a kill."""
    manifest = json.loads((stage / MANIFEST).read_text())
    (folder / MANIFEST).unlink(missing_ok=True)
    pause_point("commit:unlisted")
    for name in manifest["files"]:
        if (stage / name).exists():
            os.replace(stage / name, folder / name)
            pause_point(f"commit:moved:{name}")
    for name in manifest.get("drops", []):
        (folder / name).unlink(missing_ok=True)
        pause_point(f"commit:dropped:{name}")
    os.replace(stage / MANIFEST, folder / MANIFEST)
    pause_point("commit:listed")
    shutil.rmtree(stage, ignore_errors=True)


def finish_commits(folder: Path) -> None:
    """Finish a commit that a killed run left staged with its manifest; discard staging
    folders without one (their runs stopped before committing). Call with the lock held."""
    stages = sorted(folder.glob(".run-*"), key=lambda stage: (stage / MANIFEST).exists())
    for stage in stages:
        if (stage / MANIFEST).exists():
            _finish(folder, stage)
        else:
            shutil.rmtree(stage, ignore_errors=True)


class OutputSet:
    """The files of one run, written in a staging folder and committed as one set."""

    def __init__(self, folder: Path, run: str, kind: str):
        self.folder, self.run, self.kind = folder, run, kind
        self.stage = folder / f".run-{run}"
        self.stage.mkdir()

    def commit(self, files: dict[str, Path]) -> dict[str, Path]:
        """Commit the staged files as the folder's set (see the module's docstring): the
        previous set of the same kind is replaced whole. Returns `files`' final paths."""
        pause_point("commit:staging")
        names = {key: path.name for key, path in files.items()}
        previous = committed_set(self.folder)
        old = set(previous[1]) if previous and previous[0].get("kind") == self.kind else set()
        manifest = _manifest(self.stage, list(names.values()), self.run, self.kind)
        manifest["drops"] = sorted(name for name in old - set(names.values())
                                   if Path(name).name == name)
        write_json(self.stage / MANIFEST, manifest)
        pause_point("commit:staged")
        _finish(self.folder, self.stage)
        return {key: self.folder / name for key, name in names.items()}

    def close(self) -> None:
        """Finish the commit if its manifest is staged, else discard the staging folder."""
        if (self.stage / MANIFEST).exists():
            _finish(self.folder, self.stage)
        shutil.rmtree(self.stage, ignore_errors=True)


@contextmanager
def output_set(folder: str | Path, kind: str) -> Iterator[OutputSet]:
    """Lock `folder` and stage the files of one run of `kind` (analysis, evaluation) in it;
    what is not committed is discarded."""
    with output_lock(folder, kind) as run:
        outputs = OutputSet(Path(folder), run, kind)
        try:
            yield outputs
        finally:
            outputs.close()
