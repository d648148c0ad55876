"""Faces and video analysis on the real sample media, and every kind of bad input."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_utils.cli import PARTIAL, main
from fer_utils.corpus import corpus_row
from fer_utils.faces import FaceDetector, FaceSearch, crop_face, detector_config
from fer_utils.geometry import iou
from fer_utils.images import to_gray
from fer_utils.labels import EMOTIONS
from fer_utils.speaker import EVIDENCE, METRICS, MIN_RATE_S, THIRDS, answer, speaker_metrics
from fer_utils.tracking import IoUTracker, Smoothing, TrackSmoother
from fer_utils.video import (
    COLUMNS,
    SCHEMA_VERSION,
    SUMMARY_SCHEMA,
    Sampling,
    analyze,
    annotate_video,
    read_ahead,
    summary_table,
)

pytestmark = pytest.mark.slow


def test_iou_and_tracking_keep_ids_stable():
    assert iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10]]))[0, 0] == pytest.approx(1 / 3)
    tracker = IoUTracker(max_missed=1)
    assert tracker.update(np.array([[0, 0, 10, 10], [50, 50, 10, 10]])) == [0, 1]
    assert tracker.update(np.array([[52, 50, 10, 10], [1, 0, 10, 10]])) == [1, 0]
    assert tracker.update(np.zeros((0, 4))) == []
    assert tracker.update(np.zeros((0, 4))) == []
    assert tracker.update(np.array([[0, 0, 10, 10]])) == [2]  # track 0 ended after 2 misses


def test_read_ahead_keeps_order_passes_errors_and_stops_when_closed():
    assert list(read_ahead(iter(range(50)), 4)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("frame 2 is corrupt")

    with pytest.raises(ValueError, match="corrupt"):
        list(read_ahead(broken(), 4))
    produced = []

    def counting():
        for i in range(1000):
            produced.append(i)
            yield i

    items = read_ahead(counting(), 4)
    assert next(items) == 0
    items.close()
    assert len(produced) <= 6  # a few frames ahead, not the whole stream


def test_smoothing_by_hand():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    ema = TrackSmoother(Smoothing("ema", alpha=0.25))
    ema.update(0, a)
    np.testing.assert_allclose(ema.update(0, b), [0.75, 0.25])
    window = TrackSmoother(Smoothing("window", window=2))
    for p in (a, b, b):
        out = window.update(7, p)
    np.testing.assert_allclose(out, [0.0, 1.0])
    np.testing.assert_allclose(TrackSmoother(Smoothing("none")).update(0, b), b)
    with pytest.raises(ValueError):
        Smoothing("median")


def test_gray_bgr_and_bgra_images_and_crops():
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[..., 2] = 255
    assert to_gray(bgr).shape == (20, 30) and to_gray(bgr).max() == 76  # red in BT.601
    bgra = np.dstack([bgr, np.full((20, 30), 255, np.uint8)])
    np.testing.assert_array_equal(to_gray(bgra), to_gray(bgr))
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100) % 256
    crop = crop_face(gray.astype(np.uint8), (90, 90, 20, 10), size=48)  # off the edge: padded
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    with pytest.raises(ValueError, match="not an image"):
        to_gray(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="unknown detector preset"):
        detector_config("yunet")


def test_detector_finds_faces_in_the_sample_photos(samples):
    detector = FaceDetector()
    single = to_gray(cv2.imread(str(samples["single_face.jpg"])))
    assert len(detector.detect(single)) == 1
    many = to_gray(cv2.imread(str(samples["multi_face.jpg"])))
    assert len(FaceDetector("reference").detect(many)) >= 3
    rgba = cv2.imread(str(samples["Image_with_alpha.png"]), cv2.IMREAD_UNCHANGED)
    assert rgba.shape[2] == 4 and to_gray(rgba).ndim == 2


def _gray_frames(path, limit):
    capture, frames = cv2.VideoCapture(str(path)), []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(to_gray(frame))
    capture.release()
    return frames


@pytest.mark.parametrize("clip", ["WolfgangLanger_Pexels.mp4", "face_noface.mov"])
def test_searching_near_known_faces_finds_what_whole_frames_find(samples, clip):
    detector = FaceDetector()
    whole_frame_searches = []
    search = FaceSearch(detector)
    detect = detector.detect
    detector.detect = lambda gray: whole_frame_searches.append(1) or detect(gray)
    near_searches = []
    detect_near = detector.detect_near
    detector.detect_near = lambda gray, boxes: near_searches.append(1) or detect_near(gray, boxes)
    frames = _gray_frames(samples[clip], 120)
    found = [search(gray) for gray in frames]
    expected = [detect(gray) for gray in frames]
    assert [len(b) for b in found] == [len(b) for b in expected]
    overlaps = [iou(a, b)[0, 0] for a, b in zip(found, expected, strict=True) if len(a)]
    assert overlaps and np.mean(overlaps) > 0.7
    # With a face in view, the whole frame is searched only every `refresh` frames or
    # when the face is lost; without one, every frame.
    with_face = sum(bool(len(b)) for b in expected)
    assert with_face > 30
    assert len(frames) - with_face + with_face / detector.config.refresh \
        <= len(whole_frame_searches) < len(frames) - with_face + with_face / 3
    # In between, the cascade runs near the faces only every `carry` frames (or when a
    # carried face's patch no longer matches); otherwise the boxes are carried.
    assert len(near_searches) <= with_face / 2


def test_a_face_throughout(samples, untrained, tmp_path):
    result = analyze(samples["WolfgangLanger_Pexels.mp4"], untrained, tmp_path, max_seconds=2,
                     progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert list(summary) == list(SUMMARY_SCHEMA) and summary["schema_version"] == SCHEMA_VERSION
    assert summary["face_share"] == 1.0 and not summary["partial"]
    assert summary["frames_analysed"] == 48  # 2 s at 23.976 fps
    assert list(summary["faces"]) == ["0"]  # one face, one stable id
    face = summary["faces"]["0"]
    assert sum(face["emotion_share"].values()) == pytest.approx(1, abs=1e-3)
    # One positive share (confident labels), under the name the speaker figures give it.
    assert "valence_share" not in face and 0 <= face["positive_share"] <= 1
    table = summary_table(summary)
    assert table.loc["0", "positive_share"] == face["positive_share"]
    assert table.loc["0", "caveats"] == ("; ".join(face["caveats"]) or "none")
    frames = pd.read_csv(tmp_path / "frames.csv")
    assert list(frames.columns) == COLUMNS and frames["face_id"].eq(0).all()
    np.testing.assert_allclose(frames[list(COLUMNS[7:14])].sum(axis=1), 1, atol=1e-3)
    timeline = pd.read_csv(tmp_path / "timeline.csv")
    assert timeline["second"].tolist() == [0, 1]
    video = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 48
    assert (tmp_path / "timeline.png").stat().st_size > 1000
    assert result.summary == summary


def test_speaker_figures_on_the_real_clip(samples, untrained):
    result = analyze(samples["WolfgangLanger_Pexels.mp4"], untrained, None, every=2,
                     max_seconds=6, progress=False)
    summary = result.summary
    figures = [*METRICS, *EVIDENCE, "thirds"]
    assert summary["schema_version"] == SCHEMA_VERSION == 3 and set(figures) <= set(SUMMARY_SCHEMA)
    face = summary["faces"]["0"]
    for span in (summary, face, *summary["thirds"].values(), *face["thirds"].values()):
        assert span["face_share"] == 1.0  # the speaker is in every frame
        shares = [span[k] for k in ("positive_share", "negative_share", "uncertain_share")]
        assert all(0 <= s <= 1 for s in shares) and sum(shares) <= 1 + 1e-3
        assert span["positive_low"] <= span["positive_share"] <= span["positive_high"]
        assert 0 <= span["expressiveness"] <= 1 and span["dominant"] in face["emotion_share"]
        # 6 s of face: rates for the whole; each third has 2 s, too little for a rate.
        rated = span["face_seconds"] >= MIN_RATE_S
        assert rated == (span in (summary, face)) == (span["smiles_per_minute"] is not None)
    assert list(summary["thirds"]) == list(THIRDS)
    # One face: the video's figures are the face's, and both come from speaker_metrics.
    assert {k: face[k] for k in figures} == {k: summary[k] for k in figures}
    assert face["changes_per_minute"] == pytest.approx(
        face["changes"] / (face["face_seconds"] / 60), abs=1e-2)
    assert summary["frames_analysed"] == len(result.frames) == 72
    assert speaker_metrics(result.frames, 72, 2, 2 / summary["sampling"]["native_fps"]) == {
        k: summary[k] for k in figures}


def test_sampling_by_rate_is_stated_in_seconds(samples, untrained, tmp_path):
    by_rate = analyze(samples["WolfgangLanger_Pexels.mp4"], untrained, None, fps=6,
                      max_seconds=2, progress=False).summary
    assert by_rate["sampling"]["step_frames"] == 4
    assert by_rate["sampling"]["step_s"] == pytest.approx(4 / 23.976, abs=1e-3)
    assert by_rate["frames_analysed"] == 12
    every = analyze(samples["WolfgangLanger_Pexels.mp4"], untrained, None, every=8,
                    max_seconds=2, progress=False).summary
    assert every["frames_analysed"] == 6


def test_face_then_no_face_and_no_face_at_all(samples, untrained, tmp_path):
    mixed = analyze(samples["face_noface.mov"], untrained, tmp_path / "mixed", every=5,
                    progress=False).summary
    assert 0.2 < mixed["face_share"] < 0.8
    empty = analyze(samples["no_face.mp4"], untrained, tmp_path / "none", every=5,
                    progress=False).summary
    assert empty["face_share"] == 0 and empty["faces"] == {} and not empty["partial"]
    assert empty["caveats"] == ["no_face"] and empty["dominant"] is None
    assert empty["tracks"]["found"] == empty["tracks"]["kept"] == 0
    assert pd.read_csv(tmp_path / "none" / "frames.csv").empty
    assert corpus_row(Path("no_face.mp4"), tmp_path / "none", empty)["status"] == "no_face"
    assert corpus_row(Path("face_noface.mov"), tmp_path / "mixed", mixed)["status"] == "ok"


def test_the_annotated_video_is_drawn_from_the_frames_table(samples, tmp_path):
    clip = samples["WolfgangLanger_Pexels.mp4"]
    happy = {f"smoothed_{e}": float(e == "happy") for e in EMOTIONS}
    frames = pd.DataFrame([{"frame": f, "face_id": 3, "x": 40, "y": 40, "w": 120, "h": 120, **happy}
                           for f in (0, 4)])  # drawn on the first two of three analysed frames
    path = annotate_video(clip, frames, Sampling(23.976, 4), tmp_path / "a.mp4", analysed=3)
    drawn, original = cv2.VideoCapture(str(path)), cv2.VideoCapture(str(clip))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    edge = np.s_[40:160, 38:43]  # the box's left edge
    for index in (0, 4, 8):
        original.set(cv2.CAP_PROP_POS_FRAMES, index)
        change = np.abs(drawn.read()[1][edge].astype(int) - original.read()[1][edge]).mean()
        assert (change > 40) == (index < 8), index  # a box where the table has one, only there


@pytest.fixture(scope="module")
def tilted_talk(tilted_clip, untrained):
    """The sample clip tilted by 15 degrees and zoomed 1.5x, analysed frame by frame."""
    return analyze(tilted_clip, untrained, None, progress=False)


@pytest.mark.xdist_group("tilted")
def test_a_tilted_zoomed_talk_is_one_face_without_ghosts(tilted_talk):
    summary, frames = tilted_talk.summary, tilted_talk.frames
    assert summary["frames_analysed"] == 472
    tracks = summary["tracks"]
    assert tracks["kept"] == 1 and list(summary["faces"]) == ["0"]  # one face, no ghost
    assert tracks["found"] == sum(tracks[k] for k in ("joined", "dropped_fragments",
                                                      "dropped_brief", "kept"))
    assert (frames["w"] >= 0.6 * frames["w"].median()).all()  # no box on an eye


@pytest.mark.xdist_group("tilted")
def test_a_tilted_zoomed_talk_is_found_in_most_frames(tilted_talk):
    summary = tilted_talk.summary
    assert summary["frames_with_face"] >= 0.8 * summary["frames_analysed"]


def _cut_in_half(path: Path, fourcc: str, frames: int) -> Path:
    """A video of `frames` noise frames written with `fourcc`, then cut to its first half."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (96, 96))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    writer.release()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_a_truncated_video_keeps_partial_outputs(untrained, tmp_path, capsys):
    # An AVI states its frame count up front: the first half still decodes.
    broken = _cut_in_half(tmp_path / "broken.avi", "MJPG", frames=40)
    summary = analyze(broken, untrained, tmp_path / "out", progress=False).summary
    assert 10 <= summary["frames_read"] < 36 and summary["frames_analysed"] == \
        summary["frames_read"]
    assert summary["partial"] and f"after {summary['frames_read']} of 40 frames" in \
        summary["error"]
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["partial"] and saved["error"] == summary["error"]
    assert list(pd.read_csv(tmp_path / "out" / "frames.csv").columns) == COLUMNS
    model = tmp_path / "m.keras"
    untrained.model.save(model)
    capsys.readouterr()
    code = main(["analyze", str(broken), "--model", str(model), "--out", str(tmp_path / "cli")])
    assert code == PARTIAL != 1  # 1 means a bug
    assert capsys.readouterr().out.splitlines()[-1] == \
        "answer: 0 faces; no face found: nothing to measure"  # noise has no face


def test_a_label_s_longest_run_ends_where_the_face_was_not_seen():
    from fer_utils.video import _segments

    labels = np.array(["happy"] * 3 + ["sad"] + ["happy"] * 5)
    times = np.array([0.0, 0.25, 0.5, 0.75, 3.0, 3.25, 5.0, 5.25, 5.5])  # gone 1-3 s and 3.5-5 s
    assert _segments(labels, times, 0.25) == {
        "happy": {"start_s": 0.0, "end_s": 0.75, "seconds": 0.75},
        "sad": {"start_s": 0.75, "end_s": 1.0, "seconds": 0.25}}


def test_a_failure_mid_video_counts_only_the_frames_it_wrote(untrained, samples, tmp_path,
                                                              monkeypatch):
    from fer_utils import video

    classify, batches = video.classify, []

    def fails_on_the_second_batch(classifier, batch):
        batches.append(len(batch))
        if len(batches) > 1:
            raise cv2.error("the model's runtime broke")
        return classify(classifier, batch)

    monkeypatch.setattr(video, "classify", fails_on_the_second_batch)
    result = analyze(samples["WolfgangLanger_Pexels.mp4"], untrained, tmp_path / "out",
                     batch_frames=8, progress=False)  # decoding runs 16 frames and more ahead
    summary, fps = result.summary, result.summary["sampling"]["native_fps"]
    assert summary["partial"] and summary["error"].startswith("stopped after frame 7: ")
    assert summary["frames_analysed"] == summary["frames_read"] == 8
    assert summary["duration_s"] == pytest.approx(8 / fps, abs=1e-3)
    assert result.frames["frame"].max() <= 7


def test_bad_files_get_clear_errors(untrained, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such video file"):
        analyze(tmp_path / "missing.mp4", untrained, None)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ValueError, match="junk.mp4"):
        analyze(junk, untrained, None)
    cut = _cut_in_half(tmp_path / "cut.mp4", "mp4v", frames=20)  # its index sat at the end
    with pytest.raises(ValueError, match="cut.mp4"):
        analyze(cut, untrained, None)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4"):
        analyze(empty, untrained, None)


def test_live_mode_runs_headless_on_a_file(samples, tmp_path, monkeypatch, capsys):
    from fer_utils.cli import main

    model = tmp_path / "m.keras"
    from fer_utils.model import build_seed_cnn

    build_seed_cnn().save(model)
    clip = tmp_path / "clip.mp4"
    shutil.copy(samples["single_face.mp4"], clip)
    code = main(["live", "--source", str(clip), "--no-display", "--out", str(tmp_path / "live"),
                 "--model", str(model), "--max-seconds", "1"])
    summary = json.loads((tmp_path / "live" / "summary.json").read_text())
    last = capsys.readouterr().out.splitlines()[-1]  # the one-line answer, with its evidence
    assert last == f"answer: 1 face; {answer(summary)}" and code == 0
    assert f"of {summary['face_frames']} face frames" in last and "too little to rank" in last
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["live", "--source", str(clip), "--model", str(model)]) == 2
