"""Batches of videos: inputs, a bad file in the middle, resuming, and Dask with 2 workers."""

import json
import shutil

import pandas as pd
import pytest

from fer_utils import corpus
from fer_utils.cli import PARTIAL, main
from fer_utils.corpus import COMPLETE, CORPUS_COLUMNS, analyze_many
from fer_utils.loading import ModelSpec
from fer_utils.speaker import ranking_answer
from fer_utils.tracking import Smoothing, TrackCleaning

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("corpus")]  # one exported model
TINY = {"every": 4, "max_seconds": 1.0, "annotate": False}  # 6 frames of each clip


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> ModelSpec:
    import keras

    from fer_utils.model import build_seed_cnn

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "seed.keras"
    build_seed_cnn().save(path)
    return ModelSpec(str(path))


@pytest.fixture
def clips(samples, tmp_path):
    """Two sample clips and a file that is not a video, in one folder."""
    folder = tmp_path / "talks"
    folder.mkdir()
    for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4"):
        shutil.copy(samples[name], folder / name)
    (folder / "broken.mp4").write_bytes(b"not a video at all" * 100)
    return folder


def test_files_folders_and_globs_name_each_video_once(clips, tmp_path):
    a, b = clips / "WolfgangLanger_Pexels.mp4", clips / "single_face.mp4"
    broken = clips / "broken.mp4"
    (clips / "notes.txt").write_text("not a video")
    assert corpus.video_paths([clips]) == [a, broken, b]  # sorted by name, videos only
    assert corpus.video_paths([b, str(clips / "*.mp4")]) == [b, a, broken]
    missing = tmp_path / "missing.mp4"
    assert corpus.video_paths([missing]) == [missing]  # kept: the batch records it as failed
    with pytest.raises(ValueError, match=r"nothing\*.mov: no video file"):
        corpus.video_paths([str(tmp_path / "nothing*.mov")])
    with pytest.raises(FileNotFoundError, match="nomodel.keras: no such model file"):
        analyze_many([a], tmp_path / "out", model=ModelSpec(str(tmp_path / "nomodel.keras")))
    other = tmp_path / "other" / "single_face.mp4"
    folders = corpus.output_folders([b, other], tmp_path / "out")
    assert len({f.name for f in folders.values()}) == 2
    assert all(f.name.startswith("single_face-") for f in folders.values())


def test_a_bad_file_in_the_middle_is_recorded_and_the_batch_goes_on(clips, model, tmp_path,
                                                                   capsys):
    videos = [clips / "WolfgangLanger_Pexels.mp4", clips / "broken.mp4", clips / "single_face.mp4"]
    code = main(["analyze", *map(str, videos), "--out", str(tmp_path / "out"),
                 "--model", model.path, "--every", "4", "--max-seconds", "1"])
    assert code == PARTIAL  # not every video is ok
    corpus = pd.read_csv(tmp_path / "out" / "corpus.csv")
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == f"answer: {ranking_answer(corpus)}"
    assert printed[0].split() == ["folder", "status", "duration_s", "face_seconds",
                                  "positive_share", "negative_share", "dominant", "caveats",
                                  "error"]
    assert list(corpus.columns) == CORPUS_COLUMNS
    assert corpus["status"].tolist() == ["ok", "failed", "ok"]
    assert "broken.mp4" in corpus.loc[1, "error"] and pd.isna(corpus.loc[1, "face_share"])
    assert corpus.loc[0, "face_share"] == 1.0 and corpus.loc[0, "frames_analysed"] == 6
    summary = json.loads((tmp_path / "out" / "WolfgangLanger_Pexels" / "summary.json").read_text())
    assert corpus.loc[0, "positive_share"] == summary["positive_share"]
    assert (tmp_path / "out" / "single_face" / "annotated.mp4").exists()
    assert not (tmp_path / "out" / "broken" / COMPLETE).exists()
    # The same analysis asked for as a notebook asks (defaults left out, no annotated video)
    # reuses the command's folders.
    markers = [tmp_path / "out" / v.stem / COMPLETE for v in (videos[0], videos[2])]
    stamps = [m.stat().st_mtime_ns for m in markers]
    again = analyze_many([videos[0], videos[2]], tmp_path / "out", model=model, progress=False,
                         **TINY)
    assert [m.stat().st_mtime_ns for m in markers] == stamps
    pd.testing.assert_frame_equal(again, corpus.drop(index=1).reset_index(drop=True),
                                  check_dtype=False)  # `error` is all empty in `again`


def test_a_finished_folder_serves_the_same_video_settings_and_annotation(tmp_path):
    model = ModelSpec(str(tmp_path / "m.keras"))
    given = corpus.settings_key(model, {"fps": 5.0, "annotate": False})
    spelled_out = corpus.settings_key(model, {
        "fps": 5.0, "every": None, "detector": "default", "max_seconds": None,
        "smoothing": Smoothing(), "cleaning": TrackCleaning(), "annotate": True})
    assert given == spelled_out
    assert corpus.settings_key(model, {"fps": 4.0}) != given
    assert corpus.settings_key(model, {"fps": 5.0, "smoothing": Smoothing("none")}) != given
    folder, video = tmp_path / "talk", tmp_path / "talk.mp4"
    folder.mkdir()
    video.write_bytes(b"frames")
    marker = {"row": {"status": "ok"}, "settings": given, "video": corpus.video_stamp(video)}
    (folder / COMPLETE).write_text(json.dumps(marker))
    assert corpus.completed_row(folder, video, given, annotate=False) == {"status": "ok"}
    assert corpus.completed_row(folder, video, given, annotate=True) is None  # no annotated.mp4
    other = corpus.settings_key(model, {"fps": 4.0})
    assert corpus.completed_row(folder, video, other, annotate=False) is None
    (folder / "annotated.mp4").write_bytes(b"")
    assert corpus.completed_row(folder, video, given, annotate=True) == {"status": "ok"}
    video.write_bytes(b"other frames")  # the talk replaced under the same name
    assert corpus.completed_row(folder, video, given, annotate=True) is None


def test_a_rerun_skips_finished_videos_and_redoes_the_rest(clips, model, tmp_path):
    first, second = clips / "WolfgangLanger_Pexels.mp4", clips / "single_face.mp4"
    out = tmp_path / "out"
    analyze_many([first], out, model=model, progress=False, **TINY)  # killed after the first
    marker = out / first.stem / COMPLETE
    stamp = marker.stat().st_mtime_ns
    corpus = analyze_many([first, second], out, model=model, progress=False, **TINY)
    assert marker.stat().st_mtime_ns == stamp  # the first was not redone
    assert corpus["status"].tolist() == ["ok", "ok"]
    assert (out / second.stem / COMPLETE).exists()
    (out / second.stem / COMPLETE).unlink()  # as if killed before its marker was written
    again = analyze_many([first, second], out, model=model, progress=False, **TINY)
    assert marker.stat().st_mtime_ns == stamp and (out / second.stem / COMPLETE).exists()
    pd.testing.assert_frame_equal(again, corpus)
    other = analyze_many([first], out, model=model, progress=False, **{**TINY, "every": 6})
    assert marker.stat().st_mtime_ns != stamp and other.loc[0, "frames_analysed"] == 4


def test_two_dask_workers_give_the_same_corpus_as_one(clips, model, tmp_path, capsys):
    videos = [clips / "WolfgangLanger_Pexels.mp4", clips / "single_face.mp4"]
    one = analyze_many(videos, tmp_path / "one", model=model, progress=False, **TINY)
    two = analyze_many(videos, tmp_path / "two", workers=2, model=model, progress=False, **TINY)
    assert "Dask dashboard" not in capsys.readouterr().out  # printed with the progress bar only
    assert two["status"].tolist() == ["ok", "ok"]
    pd.testing.assert_frame_equal(one, two)
    assert (tmp_path / "one" / "corpus.csv").read_text() == \
        (tmp_path / "two" / "corpus.csv").read_text()


def test_a_running_scheduler_takes_the_batch_from_the_cli(clips, model, tmp_path, capsys):
    from dask.distributed import LocalCluster

    videos = [clips / "WolfgangLanger_Pexels.mp4", clips / "single_face.mp4"]
    options = ["--every", "4", "--max-seconds", "1", "--model", model.path]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:  # a scheduler someone else started
        code = main(["analyze", *map(str, videos), "--out", str(tmp_path / "remote"),
                     "--scheduler", cluster.scheduler_address, *options])
    assert code == 0 and "Dask dashboard: http" in capsys.readouterr().out
    assert main(["analyze", *map(str, videos), "--out", str(tmp_path / "here"), *options]) == 0
    assert (tmp_path / "remote" / "corpus.csv").read_text() == \
        (tmp_path / "here" / "corpus.csv").read_text()
