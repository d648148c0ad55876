"""Output folders: one writer at a time, files replaced as one set, the manifest last."""

import json
import os
import subprocess
import sys

import pytest

from fer_utils.outputs import LOCK, MANIFEST, output_lock, output_set, sha256_file


def commit(folder, kind, **texts):
    """Stage files with these names and texts as one run of `kind` and commit them."""
    with output_set(folder, kind) as run:
        staged = {}
        for name, text in texts.items():
            staged[name] = run.stage / f"{name}.txt"
            staged[name].write_text(text)
        return run.commit(staged)


def test_a_live_lock_refuses_and_a_dead_one_is_taken_over(tmp_path):
    with output_lock(tmp_path), pytest.raises(OSError, match="is being written by process"), \
            output_lock(tmp_path):
        pass
    assert not (tmp_path / LOCK).exists()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    (tmp_path / LOCK).write_text(json.dumps({"pid": int(gone.stdout), "host": os.uname()[1],
                                             "run": "old", "started": "then"}))
    with output_lock(tmp_path) as run:
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
