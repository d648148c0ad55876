"""Output folders: one writer at a time, files replaced as one set, the manifest last."""

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_utils.atomic import PAUSE_AT
from fer_utils.outputs import (
    LOCK,
    MANIFEST,
    committed_set,
    output_lock,
    output_set,
    sha256_file,
)


def commit(folder, kind, **texts):
    """Stage files with these names and texts as one run of `kind` and commit them."""
    with output_set(folder, kind) as run:
        staged = {}
        for name, text in texts.items():
            staged[name] = run.stage / f"{name}.txt"
            staged[name].write_text(text)
        return run.commit(staged)


def test_a_live_lock_refuses_and_a_dead_one_is_taken_over(tmp_path):
    with output_lock(tmp_path, "analysis"), \
            pytest.raises(OSError, match="is being written by process"), \
            output_lock(tmp_path, "analysis"):
        pass
    assert not (tmp_path / LOCK).exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    (tmp_path / LOCK).write_text(json.dumps({"pid": int(gone.stdout), "host": os.uname()[1],
                                             "run": "old", "started": "then"}))
    with output_lock(tmp_path, "analysis") as run:
        assert json.loads((tmp_path / LOCK).read_text())["run"] == run
    assert sorted(os.listdir(tmp_path)) == []


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(NotADirectoryError, match="out is a file"):
        commit(tmp_path / "out", "analysis", a="1")


def test_a_new_set_replaces_the_old_one_whole(tmp_path):
    commit(tmp_path, "analysis", a="first", b="first")
    files = commit(tmp_path, "analysis", a="second")
    assert files == {"a": tmp_path / "a.txt"}
    assert sorted(os.listdir(tmp_path)) == ["a.txt", MANIFEST]  # b.txt was the old run's
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["kind"] == "analysis"
    assert manifest["files"] == {"a.txt": {"bytes": 6, "sha256": sha256_file(files["a"])}}


def test_a_run_of_another_kind_keeps_the_files_it_did_not_write(tmp_path):
    commit(tmp_path, "training", model="weights")
    commit(tmp_path, "evaluation", metrics="{}")
    assert (tmp_path / "model.txt").read_text() == "weights"


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path):
    commit(tmp_path, "analysis", a="first")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError), output_set(tmp_path, "analysis") as run:
        (run.stage / "a.txt").write_text("half")
        raise RuntimeError("crash")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_killed_run_s_staging_folder_is_cleared_by_the_next_run(tmp_path):
    (tmp_path / ".run-killed").mkdir()
    (tmp_path / ".run-killed" / "a.txt").write_text("half")
    commit(tmp_path, "analysis", a="whole")
    assert sorted(os.listdir(tmp_path)) == ["a.txt", MANIFEST]


def test_a_folder_of_another_kind_is_refused_and_left_as_it_was(tmp_path):
    commit(tmp_path / "trained", "training", model="weights")
    commit(tmp_path / "analysed", "analysis", frames="rows")
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "state.json").write_text("{}")  # a training run before its manifest
    for folder, kind in (("trained", "analysis"), ("running", "analysis"),
                         ("analysed", "evaluation")):
        before = {p.name: p.read_bytes() for p in (tmp_path / folder).iterdir()}
        with pytest.raises(ValueError, match=f"{folder} holds the files of an earlier .*nothing"):
            commit(tmp_path / folder, kind, other="x")
        assert {p.name: p.read_bytes() for p in (tmp_path / folder).iterdir()} == before


# ------------------------------------------------------------------ a kill during the commit

ROOT = Path(__file__).resolve().parents[1]
# One commit in a child process: "old" writes a, b and c; "new" writes a, b and d (and drops
# c). The child can be stopped at any pause point: "commit:staging" comes before the commit
# point, the others after it.
WRITER = """
import sys
from pathlib import Path
from fer_utils.outputs import output_set

folder, tag, names = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
with output_set(folder, "analysis") as run:
    for name in names:
        (run.stage / name).write_text(f"{tag} {name} " * 1000)
    run.commit({name: run.stage / name for name in names})
"""
OLD, NEW = ["a.txt", "b.txt", "c.txt"], ["a.txt", "b.txt", "d.txt"]
POINTS = ["commit:staging", "commit:staged", "commit:unlisted", "commit:moved:a.txt",
          "commit:moved:b.txt", "commit:moved:d.txt", "commit:dropped:c.txt", "commit:listed"]


def write_set(folder: Path, tag: str, names: list[str], pause: str | None = None):
    """Run the writer; with `pause`, return it stopped there (after it said so)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), PAUSE_AT: pause or ""}
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), tag, *names], env=env,
                             stderr=subprocess.PIPE, text=True)
    if pause is None:
        assert child.wait(timeout=60) == 0, child.stderr.read()
        return child
    assert child.stderr.readline().strip() == f"paused at {pause}"
    return child


def the_set(folder: Path) -> tuple[str, dict[str, bytes]]:
    """What a reader of the folder sees through the kit: the committed set's tag and files,
    each checked against the manifest."""
    manifest, paths = committed_set(folder)
    contents = {name: path.read_bytes() for name, path in paths.items()}
    for name, data in contents.items():
        assert hashlib.sha256(data).hexdigest() == manifest["files"][name]["sha256"], name
    tags = {data.split()[0].decode() for data in contents.values()}
    assert len(tags) == 1, f"a mixed set: {tags}"
    return tags.pop(), contents


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_any_point_of_the_commit_leaves_one_whole_set(tmp_path, point):
    folder = tmp_path / "out"
    write_set(folder, "old", OLD)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    child = write_set(folder, "new", NEW, pause=point)
    expected = "old" if point == "commit:staging" else "new"
    try:
        assert the_set(folder)[0] == expected  # while the writer is stopped there
    finally:
        child.kill()
        child.wait()
    assert the_set(folder)[0] == expected  # after the kill
    # The next run takes over the dead run's lock and first finishes (or discards) its set.
    with pytest.raises(RuntimeError), output_set(folder, "analysis"):
        raise RuntimeError("this run fails before committing anything")
    if expected == "old":
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    else:
        assert sorted(os.listdir(folder)) == sorted([*NEW, MANIFEST])
        manifest = json.loads((folder / MANIFEST).read_text())
        assert set(manifest["files"]) == set(NEW)
        assert the_set(folder)[0] == "new"


def test_kills_at_random_moments_never_leave_a_mixed_folder(tmp_path):
    """Commits back and forth between two sets, killed at random moments."""
    folder, rng = tmp_path / "out", random.Random(0)
    write_set(folder, "s0", OLD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    loop = WRITER.replace("folder, tag", "folder, _").replace(
        "with output_set", "print('ready', flush=True)\n"
        "for tag in ['s1', 's2'] * 1000:\n  with output_set").replace(
        "\n    ", "\n      ").replace("\n    run.commit", "\n      run.commit")
    tags = set()
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", loop, str(folder), "x", *NEW], env=env,
                                 stdout=subprocess.PIPE, text=True)
        # Timed from the end of its start-up, which a loaded machine can stretch past any delay.
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        child.kill()
        child.wait()
        with output_set(folder, "analysis"):  # takes over, finishes or discards
            pass
        tag, contents = the_set(folder)
        assert sorted(os.listdir(folder)) == sorted([*contents, MANIFEST])
        tags.add(tag)
    assert tags & {"s1", "s2"}  # the kills did land after commits, not only before the first


def test_every_kind_of_run_the_kit_writes_may_write_over_its_own_folder(tmp_path):
    source = "\n".join(p.read_text() for p in (ROOT / "fer_utils").glob("*.py"))
    kinds = set(re.findall(r'output_(?:set|lock)\([^,()]+, "([a-z-]+)"\)', source))
    assert {"analysis", "evaluation", "training", "in-frame"} <= kinds
    for kind in kinds:
        with output_set(tmp_path / kind, kind) as run:
            run.commit({})
        with output_set(tmp_path / kind, kind) as run:  # a second run into the same folder
            run.commit({})


def test_text_is_written_in_utf8_under_an_ascii_locale(tmp_path):
    """As on a machine whose locale cannot encode a report's "·" or "≥" (Windows, or a bare
    POSIX locale without Python's UTF-8 coercion)."""
    path, text = tmp_path / "report.html", "02 · Train: rotate +10°, gap ≥ -1.5"
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    script = ("import locale, sys; from fer_utils.atomic import write_text; "
              "assert locale.getpreferredencoding(False) == 'ANSI_X3.4-1968'; "
              f"write_text(sys.argv[1], {ascii(text)})")  # escaped: argv is decoded as ASCII
    subprocess.run([sys.executable, "-c", script, str(path)], env=env, check=True)
    assert path.read_bytes() == text.encode("utf-8")
