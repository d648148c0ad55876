"""A catalogue of careless and hostile inputs: each gets one clear line, never a traceback.

Every case runs the command's entry point, `cli.main`, in this process with its output
captured: one TensorFlow import serves them all. The few claims about what a terminal shows
(warnings, a folder locked by another process) run the real command in a fresh process.
"""

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from contextlib import chdir, redirect_stderr, redirect_stdout
from functools import partial
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from conftest import write_fer_csv

from fer_utils import cli
from fer_utils.atomic import PAUSE_AT
from fer_utils.outputs import LOCK, MANIFEST, write_manifest
from fer_utils.pipeline import Augmentation
from fer_utils.tracking import Smoothing
from fer_utils.training import TrainConfig, profile
from fer_utils.video import analyze

pytestmark = pytest.mark.xdist_group("bad inputs")  # one folder of bad files, one catalogue run

ROOT = Path(__file__).resolve().parents[1]
CLIP = "WolfgangLanger_Pexels.mp4"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m fer_utils.cli args` in `cwd`, with this checkout on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "fer_utils.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def call_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`cli.main(args)` in `cwd`, in this process: its exit code and what it printed."""
    out, err = StringIO(), StringIO()
    with chdir(cwd), redirect_stdout(out), redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as e:  # argparse refuses an option
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _csv_rows(count: int = 4) -> list[str]:
    rng = np.random.default_rng(0)
    return ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(map(str, rng.integers(0, 256, 2304)))},Training"
        for i in range(count)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, samples, untrained) -> Path:
    """A folder of bad (and a few good) files for the catalogue."""
    import cv2

    folder = tmp_path_factory.mktemp("bad")
    untrained.model.save(folder / "good.keras")
    (folder / "good.json").write_text(untrained.model.to_json())
    good = (folder / "good.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(good[: len(good) // 2])
    with zipfile.ZipFile(folder / "noconfig.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    (folder / "notmodel.json").write_text('{"hello": "world"}')
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    (folder / "junk.jpg").write_bytes(b"not an image")
    (folder / "junk.h5").write_bytes(b"not an HDF5 file" * 10)
    (folder / "face.jpg").write_bytes(samples["single_face.jpg"].read_bytes())
    rows = _csv_rows()
    (folder / "utf16.csv").write_bytes("\n".join(rows).encode("utf-16"))
    (folder / "binary.csv").write_bytes(bytes(range(256)) * 40)
    (folder / "empty.csv").write_bytes(b"")
    (folder / "broken.csv.gz").write_bytes(gzip.compress("\n".join(rows).encode())[:200])
    signed = rows.copy()
    signed[2] = signed[2].replace(",", ",+", 1)  # the first pixel of line 3 is '+NNN'
    (folder / "signed.csv").write_text("\n".join(signed) + "\n")
    (folder / "a_file").write_text("I am not a folder")
    clip = samples[CLIP].read_bytes()
    (folder / "head.mp4").write_bytes(clip[:16_384])
    (folder / "clip.mp4").symlink_to(samples[CLIP])
    (folder / "header.csv").write_text("emotion,pixels,Usage\n")
    for kind in ("training", "evaluation"):  # finished runs of other kinds than an analysis
        (folder / kind).mkdir()
        (folder / kind / "model.txt").write_text(f"the {kind} run's file")
        write_manifest(folder / kind, ["model.txt"], "earlier", kind)
    (folder / "reports").mkdir()  # an earlier good page of a report
    (folder / "reports" / "01_explore_data.html").write_text("<p>the last good page</p>")
    return folder


# (id, arguments, exit code, what the message must name). Paths are relative to `inputs`.
CASES = [
    ("fps zero", ["analyze", "--fps", "0", "--out", "o"], 2, "--fps: must be a finite number > 0"),
    ("fps negative", ["analyze", "--fps", "-1", "--out", "o"], 2, "--fps"),
    ("fps infinite", ["analyze", "--fps", "inf", "--out", "o"], 2, "--fps"),
    ("fps nan", ["analyze", "--fps", "nan", "--out", "o"], 2, "not 'nan'"),
    ("every zero", ["analyze", "--every", "0", "--out", "o"], 2,
     "--every: must be an integer >= 1"),
    ("every negative", ["analyze", "--every", "-5", "--out", "o"], 2, "--every"),
    ("every fraction", ["analyze", "--every", "1.5", "--out", "o"], 2, "--every"),
    ("max seconds zero", ["analyze", "--max-seconds", "0", "--out", "o"], 2, "--max-seconds"),
    ("max seconds negative", ["analyze", "--max-seconds", "-1", "--out", "o"], 2,
     "--max-seconds"),
    ("alpha zero", ["live", "--alpha", "0"], 2, "--alpha: must be a finite number in (0, 1]"),
    ("window zero", ["live", "--window", "0"], 2, "--window"),
    ("input size zero", ["predict", "--input-size", "0", "face.jpg"], 2, "--input-size"),
    ("epochs zero", ["train", "--epochs", "0", "--out", "t"], 2,
     "--epochs: must be an integer >= 1"),
    ("batch size zero", ["train", "--batch-size", "0", "--out", "t"], 2, "--batch-size"),
    ("label smoothing 2", ["train", "--label-smoothing", "2", "--out", "t"], 2,
     "--label-smoothing: must be a finite number in [0, 1)"),
    ("learning rate zero", ["train", "--lr", "0", "--out", "t"], 2, "--lr"),
    ("weight decay negative", ["train", "--weight-decay", "-1", "--out", "t"], 2,
     "--weight-decay"),
    ("momentum one", ["train", "--momentum", "1", "--out", "t"], 2, "--momentum"),
    ("early dropout negative", ["train", "--early-dropout-epochs", "-1", "--out", "t"], 2,
     "--early-dropout-epochs"),
    ("crop pad negative", ["train", "--crop-pad", "-2", "--out", "t"], 2, "--crop-pad"),
    ("erase above one", ["train", "--erase", "1.5", "--out", "t"], 2, "--erase"),
    ("crop pad over half the face", ["train", "--crop-pad", "30", "--out", "t"], 2,
     "--crop-pad"),
    ("augmentation without augmenting", ["train", "--no-augment", "--zoom", "0.2", "--out", "t"],
     2, "--no-augment"),
    ("zoom of one", ["train", "--zoom", "1", "--out", "t"], 2, "--zoom"),
    ("rotation negative", ["train", "--rotation", "-5", "--out", "t"], 2, "--rotation"),
    ("leakage images zero", ["leakage", "--images", "0", "--out", "l"], 2, "--images"),
    ("csv utf-16", ["data", "audit", "utf16.csv"], 2, "utf16.csv: the file is UTF-16"),
    ("csv binary", ["data", "audit", "binary.csv"], 2, "binary.csv: byte"),
    ("csv empty", ["data", "audit", "empty.csv"], 2, "empty.csv: the file is empty"),
    ("csv missing", ["data", "audit", "missing.csv"], 2, "missing.csv: no such file"),
    ("csv broken gzip", ["data", "audit", "broken.csv.gz"], 2, "broken.csv.gz"),
    ("csv signed pixel", ["data", "audit", "signed.csv"], 2, "line 3: pixel value '+"),
    ("model zip without config", ["predict", "--model", "noconfig.keras", "face.jpg"], 2,
     "noconfig.keras: this zip holds no config.json"),
    ("model truncated", ["predict", "--model", "truncated.keras", "face.jpg"], 2,
     "truncated.keras: not a readable .keras file"),
    ("model missing", ["predict", "--model", "missing.keras", "face.jpg"], 2,
     "missing.keras: no such model file"),
    ("json not a model", ["predict", "--model", "notmodel.json", "--weights", "good.keras",
                          "face.jpg"], 2, "notmodel.json: this JSON is not a Keras model"),
    ("weights missing", ["predict", "--model", "good.json", "--weights", "missing.h5",
                         "face.jpg"], 2, "missing.h5: no such weights file"),
    ("weights of another kind", ["predict", "--model", "good.json", "--weights", "junk.jpg",
                                 "face.jpg"], 2, "junk.jpg: not a weights file"),
    ("weights not hdf5", ["predict", "--model", "good.json", "--weights", "junk.h5",
                          "face.jpg"], 2, "junk.h5: not a readable weights file"),
    ("predict 1x1 image", ["predict", "--model", "good.keras", "tiny.png"], 0, '"faces": 0'),
    ("predict goes on past bad images",
     ["predict", "--model", "good.keras", "junk.jpg", "missing.jpg", "face.jpg"], 2,
     "2 of 3 images could not be read"),
    ("video zero frames", ["analyze", "head.mp4", "--model", "good.keras", "--out", "v"], 2,
     "head.mp4: no frame could be decoded"),
    ("analyze out is a file", ["analyze", "head.mp4", "--model", "good.keras", "--out",
                               "a_file"], 2, "a_file is a file"),
    ("train out is a file", ["train", "--epochs", "1", "--out", "a_file"], 2, "a_file is a file"),
    ("train data missing", ["train", "--data", "nope.csv", "--out", "t"], 2,
     "nope.csv: no such file"),
    ("workers zero", ["analyze", "--workers", "0", "--out", "o"], 2,
     "--workers: must be an integer in [1, "),
    ("workers a thousand", ["analyze", "--workers", "1000", "--out", "o"], 2,
     "GB of memory, and each worker needs about 2 GB"),
    ("cpu devices negative", ["train", "--cpu-devices", "-1", "--out", "t"], 2,
     "--cpu-devices: must be an integer >= 1, not '-1'"),
    ("synth count negative", ["data", "synth", "--train", "-5", "--out", "s.csv"], 2,
     "--train: must be an integer >= 0, not '-5'"),
    ("synth no image at all", ["data", "synth", "--train", "0", "--val", "0", "--test", "0",
                               "--out", "s.csv"], 2, "synthetic data needs at least one image"),
    ("prior correction 1e9", ["predict", "--prior-correction", "1e9", "face.jpg"], 2,
     "--prior-correction: must be a finite number in [0, 10] (larger values only rank"),
    ("input size of another model", ["predict", "--model", "good.keras", "--input-size", "64",
                                     "face.jpg"], 2,
     "good takes 48x48 faces, but the input size given is 64"),
    ("analyze into a training folder", ["analyze", "clip.mp4", "--model", "good.keras",
                                        "--out", "training"], 2,
     "training holds the files of an earlier training run"),
    ("analyze into an evaluation folder", ["analyze", "clip.mp4", "--model", "good.keras",
                                           "--out", "evaluation"], 2,
     "evaluation holds the files of an earlier evaluation run"),
    ("report parameter of the wrong type", ["report", "02_train", "-p", "epochs", "abc",
                                            "--out", "new-reports"], 2,
     "-p epochs: 02_train takes int or None, not 'abc' (str); nothing was run"),
]
# Errors that list each bad row of a file on a line of its own.
LISTS_ROWS = {"csv signed pixel"}
# What each case must leave as it was (paths relative to `inputs`); the catalogue checks them.
UNCHANGED = {
    "synth no image at all": ["s.csv"],
    "analyze into a training folder": ["training"],
    "analyze into an evaluation folder": ["evaluation"],
    "report parameter of the wrong type": ["new-reports"],
}


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under `path` with its bytes (None when nothing is there)."""
    if not path.exists():
        return None
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def results(inputs) -> dict[str, tuple[subprocess.CompletedProcess, bool]]:
    """Every case's exit code and output, and whether what it must not touch is as it was."""
    found = {}
    for name, args, *_ in CASES:
        kept = [inputs / path for path in UNCHANGED.get(name, [])]
        before = [snapshot(path) for path in kept]
        found[name] = (call_cli(*args, cwd=inputs), [snapshot(p) for p in kept] == before)
    return found


@pytest.mark.parametrize(("name", "code", "message"), [(c[0], c[2], c[3]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_each_bad_input_gets_a_clear_message(results, name, code, message):
    result, untouched = results[name]
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert message in output
    assert "Traceback" not in output
    if code == 2 and name not in LISTS_ROWS:  # one line, and nothing it must keep changed
        assert len(_stderr_lines(result)) == 1, result.stderr
    assert untouched


def test_predict_reports_each_bad_image_on_its_own_line(results):
    lines = [json.loads(line) for line in
             results["predict goes on past bad images"][0].stdout.splitlines()]
    errors = {line["file"]: line["error"] for line in lines if "error" in line}
    assert set(errors) == {"junk.jpg", "missing.jpg"}
    assert "junk.jpg" in errors["junk.jpg"] and "missing.jpg" in errors["missing.jpg"]
    assert any(line["file"] == "face.jpg" and "label" in line for line in lines)


def test_skipped_rows_are_one_warning_line(inputs):
    result = run_cli("data", "audit", "signed.csv", "--skip-bad-rows", cwd=inputs)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert warnings == ["warning: signed.csv: skipped 1 bad row(s): line 3"]


def test_a_signed_pixel_is_refused_by_both_parsers(tmp_path):
    """`+3` fails the same way whether the rest of the file is clean or not."""
    from fer_utils.data import DataError, read_fer2013_csv

    rows = _csv_rows()
    signed = rows.copy()
    signed[2] = signed[2].replace(",", ",+", 1)
    alone = tmp_path / "alone.csv"  # otherwise clean: the fast parse would take it
    alone.write_text("\n".join(signed) + "\n")
    with_others = tmp_path / "others.csv"  # another bad row sends it down the checked path
    with_others.write_text("\n".join([*signed, "9," + " ".join(["1"] * 2304) + ",Training"]))
    for path in (alone, with_others):
        with pytest.raises(DataError, match="line 3: pixel value '\\+"):
            read_fer2013_csv(path)


def test_an_unexpected_error_is_reported_as_a_bug_with_its_traceback(monkeypatch, capsys):
    from fer_utils import cli

    def broken(args):
        raise RuntimeError("something the kit did not expect")

    monkeypatch.setattr(cli, "_bench", broken)
    assert cli.main(["bench", "--tiny"]) == 1
    err = capsys.readouterr().err
    assert "This is a bug" in err and "Traceback" not in err
    log = Path(err.split("the full traceback is in ")[1].split(" (run with")[0])
    assert "Traceback" in log.read_text() and "something the kit did not expect" in log.read_text()
    log.unlink()
    with pytest.raises(RuntimeError):
        cli.main(["bench", "--tiny", "--debug"])


def test_a_permission_error_says_so(tmp_path, monkeypatch):
    from fer_utils import atomic

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="Permission denied; change its permissions") as error:
        atomic.write_text(tmp_path / "x.txt", "hello")
    assert "disk" not in str(error.value) and "x.txt" in str(error.value)


def test_an_unreadable_csv_is_not_served_from_the_cache(tmp_path, monkeypatch):
    from fer_utils import data

    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    images = np.zeros((7, 48, 48), np.uint8)
    path = write_fer_csv(tmp_path / "f.csv", np.arange(7), images, ["Training"] * 7)
    data.load_fer2013_csv(path)
    assert list((tmp_path / "cache").glob("*.npz"))  # cached now
    # Unreadable through the reader rather than through permissions, which root ignores.
    read_bytes = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(PermissionError, match="f.csv"):
        data.load_fer2013_csv(path)


def test_cache_files_are_private_and_keyed_by_content(tmp_path, monkeypatch):
    from fer_utils import data

    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    images = np.zeros((7, 48, 48), np.uint8)
    (tmp_path / "a").mkdir()
    first = write_fer_csv(tmp_path / "a" / "f.csv", np.arange(7), images, ["Training"] * 7)
    copy = tmp_path / "f.csv"
    copy.write_bytes(first.read_bytes())
    data.load_fer2013_csv(first)
    data.load_fer2013_csv(copy)  # same content elsewhere: the same entry
    entries = list((tmp_path / "cache").glob("*.npz"))
    assert len(entries) == 1 and entries[0].stat().st_mode & 0o777 == 0o600


def test_the_cache_folder_moves_with_an_environment_variable(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FER_KIT_CACHE": str(tmp_path / "elsewhere")}
    code = "from fer_utils.paths import CACHE_DIR; print(CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(tmp_path / "elsewhere")


# --------------------------------------------------------------------------- output folders


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def assert_consistent(folder: Path) -> dict:
    """The manifest lists exactly the folder's files, with their current checksums."""
    manifest = json.loads((folder / MANIFEST).read_text())
    files = {k: v for k, v in checksums(folder).items() if k != MANIFEST}
    assert {k: v["sha256"] for k, v in manifest["files"].items()} == files
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    return manifest


def test_two_analyses_into_one_folder(inputs, samples, tmp_path):
    """The second is refused while the first runs; the folder then holds the first, whole."""
    out = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(
        [sys.executable, "-m", "fer_utils.cli", "analyze", str(samples[CLIP]), "--model",
         str(inputs / "good.keras"), "--max-seconds", "4", "--out", str(out)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not ((out / LOCK).exists() and (out / LOCK).read_text()):
            assert first.poll() is None, first.communicate()
            time.sleep(0.02)
        first.send_signal(signal.SIGSTOP)  # holds the folder for as long as the test needs
        second = call_cli("analyze", str(samples["single_face.mp4"]), "--model", "good.keras",
                          "--out", str(out), cwd=inputs)
    finally:
        first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2 and "is being written by process" in second.stderr
    assert "Traceback" not in second.stderr
    manifest = assert_consistent(out)
    assert set(manifest["files"]) == {"frames.csv", "timeline.csv", "summary.json",
                                      "timeline.png", "annotated.mp4"}
    assert json.loads((out / "summary.json").read_text())["video"].endswith(CLIP)


def test_a_zero_frame_video_leaves_earlier_results_untouched(inputs, samples, untrained,
                                                             tmp_path):
    out = tmp_path / "earlier"
    analyze(samples[CLIP], untrained, out, max_seconds=1, progress=False)
    before = checksums(out)
    with pytest.raises(ValueError, match="no frame could be decoded"):
        analyze(inputs / "head.mp4", untrained, out, progress=False)
    assert checksums(out) == before
    assert_consistent(out)


def test_a_smaller_second_analysis_leaves_no_file_of_the_first(samples, untrained, tmp_path):
    analyze(samples[CLIP], untrained, tmp_path, max_seconds=1, progress=False)
    analyze(samples[CLIP], untrained, tmp_path, max_seconds=1, progress=False, annotate=False)
    assert not (tmp_path / "annotated.mp4").exists()
    assert_consistent(tmp_path)


def test_a_corrupt_middle_yields_the_frames_after_the_damage(samples, untrained, tmp_path):
    clip = bytearray(samples[CLIP].read_bytes())
    middle = len(clip) // 2
    clip[middle:middle + 50_000] = bytes(50_000)
    broken = tmp_path / "corrupt.mp4"
    broken.write_bytes(bytes(clip))
    result = analyze(broken, untrained, tmp_path / "out", every=4, progress=False,
                     annotate=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["partial"] and summary["gaps"]
    gap = summary["gaps"][0]
    assert gap["frames"] > 0 and gap["seconds"] == pytest.approx(gap["frames"] / 23.976, abs=1e-2)
    after = result.frames["frame"] >= gap["first_frame"] + gap["frames"]
    assert result.frames["frame"].max() > 440 and after.sum() > 30
    assert "could not be decoded and were skipped" in summary["error"]


def ffmpeg_frames(video: Path, fps: float) -> list[int]:
    """The frames ffmpeg decodes from a video, by the index their timestamps give."""
    import imageio_ffmpeg

    listing = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "quiet", "-i", str(video),
                              "-map", "0:v", "-fps_mode", "passthrough", "-f", "framemd5", "-"],
                             capture_output=True, text=True).stdout
    base = next(line for line in listing.splitlines() if line.startswith("#tb 0:"))
    num, den = map(int, base.split(":")[1].split("/"))
    return [round(int(line.split(",")[2]) * num / den * fps) for line in listing.splitlines()
            if line and not line.startswith("#")]


def test_after_a_corrupt_stretch_decoding_resumes_where_ffmpeg_does(samples, tmp_path):
    from fer_utils.video import FrameReader, open_video, sampling

    clip = bytearray(samples[CLIP].read_bytes())
    middle = len(clip) // 2
    clip[middle:middle + 50_000] = bytes(50_000)
    broken = tmp_path / "corrupt.mp4"
    broken.write_bytes(bytes(clip))
    capture, fps, count = open_video(broken)
    reader = FrameReader(capture, sampling(fps), count, ahead=0)
    read = [index for index, _, _ in reader]
    capture.release()
    # ffmpeg also returns one stray frame from inside the stretch again later, under a
    # timestamp it has already shown; the kit drops it.
    assert read == sorted(set(ffmpeg_frames(broken, fps)))
    [gap] = reader.gaps
    assert list(range(gap["first_frame"], gap["first_frame"] + gap["frames"])) == \
        sorted(set(range(count)) - set(read))


@pytest.mark.parametrize(("make", "message"), [
    (partial(TrainConfig, epochs=0), "epochs must be an integer >= 1, not 0"),
    (partial(profile, "full", label_smoothing=2.0),
     r"label_smoothing must be a finite number in \[0, 1\), not 2.0"),
    (partial(TrainConfig, learning_rate=float("nan")), "learning_rate must be a finite number > 0"),
    (partial(TrainConfig, batch_size=2.5), "batch_size must be an integer >= 1"),
    (partial(TrainConfig, weight_decay=-0.1), "weight_decay must be a finite number >= 0"),
    (partial(Augmentation, crop_pad=-1), r"crop_pad must be an integer in \[0, 24\]"),
    (partial(Smoothing, alpha=0), r"alpha must be a finite number in \(0, 1\]"),
    (partial(analyze, "any.mp4", None, None, fps=0), "fps must be a finite number > 0, not 0"),
    (partial(analyze, "any.mp4", None, None, every=-5), "every must be an integer >= 1"),
    (partial(analyze, "any.mp4", None, None, max_seconds=0), "max_seconds must be"),
], ids=["epochs", "label smoothing", "learning rate", "batch size", "weight decay", "crop pad",
        "alpha", "fps", "every", "max seconds"])
def test_the_python_api_checks_the_same_ranges(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------------------------------------- interrupts

def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT's default action in the child, even when the suite runs in the background
    (`make test &`), where SIGINT is ignored and every child inherits that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(args: list[str], cwd: Path, after: str, sig: int, pause: str = "",
              group: bool = False, extra_wait: float = 0.0) -> subprocess.CompletedProcess:
    """`fer-kit args` in a fresh process, sent `sig` once `after` shows in its output (after
    `extra_wait` more seconds); with `pause`, it waits at that pause point for the signal;
    with `group`, the signal goes to its whole process group, as a terminal's Ctrl-C does."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", PAUSE_AT: pause}
    out, err = cwd / f".{sig}.out", cwd / f".{sig}.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "fer_utils.cli", *args], cwd=cwd, env=env,
                                 stdout=stdout, stderr=stderr, start_new_session=group,
                                 preexec_fn=_ctrl_c_as_in_a_terminal)
        deadline = time.time() + 600
        while after not in out.read_text() + err.read_text():
            assert child.poll() is None and time.time() < deadline, err.read_text()
            time.sleep(0.1)
        time.sleep(extra_wait)
        if group:
            os.killpg(child.pid, sig)
        else:
            child.send_signal(sig)
        code = child.wait(timeout=300)
    texts = [path.read_text() for path in (out, err)]
    out.unlink()
    err.unlink()
    return subprocess.CompletedProcess(args, code, *texts)


def _stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    """What a command said on stderr, without progress bars and the tests' pause notice."""
    lines = [line.rsplit("\r", 1)[-1] for line in result.stderr.splitlines()]
    return [line for line in lines if line.strip() and not line.startswith("paused at")
            and "it/s]" not in line and "frame/s]" not in line and "video/s]" not in line
            and not line.lstrip().startswith(("analysing", "videos"))]


@pytest.fixture(scope="module")
def earlier(inputs, samples, untrained, synthetic_csv) -> Path:
    """Finished results an interrupted run must leave byte-identical: an analysis, an
    evaluation, a benchmark and a report page."""
    from fer_utils.bench import run_benchmarks
    from fer_utils.data import load_fer2013_csv
    from fer_utils.evaluation import evaluate

    analyze(samples[CLIP], untrained, inputs / "analysed", max_seconds=1, progress=False)
    evaluate(untrained, load_fer2013_csv(synthetic_csv), "PublicTest", inputs / "evaluated")
    run_benchmarks(inputs / "bench", tiny=True, only=["load"])
    (inputs / "talks").mkdir()
    for name in ("one", "two"):
        (inputs / "talks" / f"{name}.mp4").symlink_to(samples["single_face.mp4"])
    return inputs


# (id, arguments, what to wait for, signal, pause point, to the process group, exit code,
#  what must be left byte-identical). Paths are relative to `inputs`.
INTERRUPTS = [
    ("analyze Ctrl-C while analysing",
     ["analyze", "clip.mp4", "--model", "good.keras", "--out", "analysed"], "analysing:",
     signal.SIGINT, "", False, 130, ["analysed"]),
    ("analyze SIGTERM before its commit",
     ["analyze", "clip.mp4", "--model", "good.keras", "--max-seconds", "2", "--out",
      "analysed"], "paused at commit:staging", signal.SIGTERM, "commit:staging", False, 143,
     ["analysed"]),
    ("evaluate Ctrl-C before its commit",
     ["evaluate", "--model", "good.keras", "--data", "{synthetic}", "--out", "evaluated"],
     "paused at commit:staging", signal.SIGINT, "commit:staging", False, 130, ["evaluated"]),
    ("train Ctrl-C between two epochs' writes",
     ["train", "--data", "{synthetic}", "--epochs", "2", "--batch-size", "32", "--verbose",
      "0", "--out", "training-run"], "paused at checkpoint:2:epoch", signal.SIGINT,
     "checkpoint:2:epoch", False, 130, []),
    ("report Ctrl-C in a terminal",
     ["report", "01_explore_data", "--out", "reports"], "running 01_explore_data",
     signal.SIGINT, "", True, 130, ["reports"]),
    ("bench Ctrl-C after its first section",
     ["bench", "--tiny", "--only", "load", "train_input", "--out", "bench"],
     "paused at bench:partial", signal.SIGINT, "bench:partial", False, 130,
     ["bench/bench.json", "bench/bench.md"]),
    ("batch Ctrl-C after its first talk",
     ["analyze", "talks", "--model", "good.keras", "--max-seconds", "1", "--out", "batch"],
     "1/2", signal.SIGINT, "", False, 130, []),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "args", "after", "sig", "pause", "group", "code", "kept"),
                         INTERRUPTS, ids=[row[0] for row in INTERRUPTS])
def test_an_interrupt_stops_a_run_with_one_line_and_loses_nothing(
        earlier, synthetic_csv, name, args, after, sig, pause, group, code, kept):
    args = [arg.format(synthetic=synthetic_csv) for arg in args]
    before = [snapshot(earlier / path) for path in kept]
    result = interrupt(args, earlier, after, sig, pause, group,
                       extra_wait=5.0 if group else 0.0)
    lines = _stderr_lines(result)
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and f"interrupted ({signal.Signals(sig).name})" in lines[0], \
        repr(result.stderr)
    assert "corrupt" not in result.stdout + result.stderr
    assert [snapshot(earlier / path) for path in kept] == before
    for folder in {earlier / path if (earlier / path).is_dir() else (earlier / path).parent
                   for path in kept}:  # no staging folder, lock or half-written file left behind
        assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    if name.startswith("train"):  # the last finished epoch, whole; the run resumes from it
        state = json.loads((earlier / "training-run" / "state.json").read_text())
        assert state["epoch"] == 1 and not state["finished"]
        assert call_cli(*args, cwd=earlier).returncode == 0
    if name.startswith("bench"):  # the finished section is kept beside the old results
        partial = json.loads((earlier / "bench" / "bench.partial.json").read_text())
        assert "load" in partial and "train_input" not in partial
    if name.startswith("batch"):  # corpus.csv lists the finished talk; a re-run does the rest
        corpus = (earlier / "batch" / "corpus.csv").read_text().splitlines()
        assert len(corpus) == 2 and ",ok," in corpus[1]
        talk = earlier / "batch" / corpus[1].split(",")[1]
        assert json.loads((talk / "complete.json").read_text())["row"]["status"] == "ok"
        finished = snapshot(talk)
        assert call_cli(*args, cwd=earlier).returncode == 0
        assert snapshot(talk) == finished  # the finished talk is not analysed again
        assert (earlier / "batch" / "corpus.csv").read_text().count(",ok,") == 2


@pytest.mark.slow
def test_a_failed_report_keeps_the_last_good_page_and_says_why_on_stderr(earlier):
    good = earlier / "reports" / "01_explore_data.html"
    before = good.read_bytes()
    result = call_cli("report", "01_explore_data", "-p", "data", str(earlier / "header.csv"),
                      "--out", "reports", cwd=earlier)
    lines = _stderr_lines(result)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("fer-kit report: 01_explore_data failed at cell ")
    assert "header.csv" in lines[0] and "its last good page is kept" in lines[0]
    assert good.read_bytes() == before
    assert (earlier / "reports" / "01_explore_data.failed.html").exists()


def test_the_largest_prior_correction_gives_finite_probabilities(inputs):
    from fer_utils.model import correct_for_prior
    from fer_utils.options import MAX_PRIOR_CORRECTION

    result = call_cli("predict", "--prior-correction", str(MAX_PRIOR_CORRECTION), "face.jpg",
                      cwd=inputs)
    assert result.returncode == 0, result.stderr
    faces = [json.loads(line, parse_constant=lambda word: pytest.fail(f"not JSON: {word}"))
             for line in result.stdout.splitlines()]
    assert any("probabilities" in face for face in faces)  # a face was found and classified
    assert all(sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)
               for face in faces if "probabilities" in face)
    # Probabilities as small as float32 holds, against a prior from 1% to 30%.
    probs = np.array([[1e-38, 1e-30, 1e-20, 0.5, 0.5 - 1e-7, 1e-7, 0.0]], np.float32)
    prior = np.array([0.14, 0.01, 0.14, 0.3, 0.17, 0.11, 0.13])
    corrected = correct_for_prior(probs, prior, MAX_PRIOR_CORRECTION)
    assert np.isfinite(corrected).all() and corrected.sum() == pytest.approx(1, rel=1e-6)
