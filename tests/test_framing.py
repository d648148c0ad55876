"""Faces in frames: the frames, the kit's path through them, the scores, the margin curve and
the framing grid, each against a hand-made case; and `fer-kit evaluate --in-frame`."""

import json
import shlex
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_utils import cli
from fer_utils import framing as fr
from fer_utils.artifacts import card_path, load_model
from fer_utils.data import load_fer2013_csv
from fer_utils.faces import FaceDetector, crop_face, detector_config, faces_in_photo
from fer_utils.images import read_image, reframe, to_gray
from fer_utils.paths import PREVIOUS_MODEL
from fer_utils.pipeline import Framing

pytestmark = pytest.mark.xdist_group("framing")


@pytest.fixture(scope="module")
def synthetic(synthetic_csv):
    return load_fer2013_csv(synthetic_csv, cache=False)


@pytest.fixture(scope="module")
def benchmark(untrained, synthetic, tmp_path_factory):
    """One small run of the benchmark on synthetic faces, written to a folder."""
    out = tmp_path_factory.mktemp("in_frame")
    result = fr.in_frame_benchmark({"untrained": untrained}, synthetic, "PublicTest",
                                detectors=("default", "reference"), per_class=3, tta=("scales",),
                                fer=False, resamples=200, out=out)
    return result, out


def test_the_same_seed_draws_and_frames_the_same_faces(synthetic):
    first, again = (fr.faces_in_frames(synthetic, "val", per_class=3, seed=5) for _ in range(2))
    assert np.array_equal(first.rows, again.rows) and np.array_equal(first.frames, again.frames)
    other = fr.faces_in_frames(synthetic, "val", per_class=3, seed=6)
    assert not np.array_equal(first.rows, other.rows)
    labels = synthetic.split("PublicTest").labels
    counts = np.bincount(first.labels, minlength=7)
    assert np.array_equal(counts, np.minimum(np.bincount(labels, minlength=7), 3))
    assert first.frames.shape == (len(first.rows), fr.FRAME_SIZE, fr.FRAME_SIZE)
    assert np.array_equal(first.crops, synthetic.split("val").images[first.rows])
    assert np.array_equal(fr.balanced_subset(labels, 3, 5), first.rows)


def test_a_face_is_enlarged_bicubic_and_centred_on_its_edge_colour():
    face = np.full((48, 48), 90, np.uint8)
    face[0, :] = 10  # one dark edge row: the median of the ring stays 90
    face[10:30, 12:40] = 200
    frame, box = fr.place_in_frame(face)
    side = 48 * fr.UPSCALE
    corner = (fr.FRAME_SIZE - side) // 2
    assert list(box) == [corner, corner, side, side]
    assert np.array_equal(frame[corner:corner + side, corner:corner + side],
                          cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC))
    outside = np.ones(frame.shape, bool)
    outside[corner:corner + side, corner:corner + side] = False
    assert (frame[outside] == 90).all()
    with pytest.raises(ValueError, match="does not fit a 100px frame"):
        fr.place_in_frame(face, size=100)


def test_a_face_placed_in_a_frame_is_found_and_cropped_within_a_few_pixels(samples, capsys):
    gray = to_gray(read_image(samples["single_face.jpg"]))
    face = crop_face(gray, FaceDetector("reference").detect(gray)[0], 48, Framing(0.0))
    frame, placed = fr.place_in_frame(face)
    frames = fr.Frames(frame[None], placed[None], np.array([3]), face[None], np.array([0]),
                    "PublicTest", 0)
    found = fr.detect_placed(frames, "reference")
    assert np.abs(found[0] - placed).max() <= 4  # the box the face was put in, near enough
    crop = fr.framed_crops(frames, placed[None], 48, Framing(0.0))[0]
    assert np.abs(crop.astype(int) - face).mean() < 3  # that box's crop is the face again
    empty = fr.Frames(np.full((1, fr.FRAME_SIZE, fr.FRAME_SIZE), 128, np.uint8), placed[None],
                   np.array([3]), face[None], np.array([0]), "PublicTest", 0)
    assert list(fr.detect_placed(empty, "reference")[0]) == [-1] * 4  # nothing there: a miss
    assert capsys.readouterr().err == ""  # no progress bar unless one is asked for


def test_a_detection_counts_only_where_it_overlaps_the_placed_face():
    placed = np.array([56, 56, 144, 144])
    found = np.array([[0, 0, 40, 40], [60, 50, 140, 150], [56, 56, 144, 144]])
    assert fr.matched_box(found, placed) == 2
    assert fr.matched_box(found[:2], placed) == 1
    assert fr.matched_box(found[:1], placed) == -1
    assert fr.matched_box(np.zeros((0, 4)), placed) == -1


def test_the_benchmark_takes_the_photo_path_of_the_kit(benchmark, untrained, synthetic):
    """At the model's own crop, each detector's row is what faces_in_photo (fer-kit predict)
    gives on the same frames: the face it finds where the face was placed, and its label."""
    result, _ = benchmark
    frames = fr.faces_in_frames(synthetic, "PublicTest", per_class=3)
    for detector in ("default", "reference"):
        found, right = 0, 0
        for frame, placed, label in zip(frames.frames, frames.boxes, frames.labels, strict=True):
            boxes, _, probs = faces_in_photo(frame, untrained, detector)
            if (match := fr.matched_box(boxes, placed)) >= 0:
                found += 1
                right += probs[match].argmax() == label
        row = result.table.query("detector == @detector and tta == 'none'").iloc[0]
        own = untrained.preprocessing.framing_for(detector_config(detector).kind)
        assert row["margin"] == own.margin and row["faces"] == len(frames.labels)
        assert row["found"] == found > 0
        assert row["accuracy_on_found"] == pytest.approx(right / found)
        assert row["accuracy_misses_wrong"] == pytest.approx(right / len(frames.labels))
        assert row["detection_rate"] == pytest.approx(found / len(frames.labels))


def test_scores_and_their_intervals_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    found = np.array([1, 1, 1, 0, 1, 1, 0, 0], bool)
    predicted = np.array([0, 1, 1, 2, 0])  # for the five faces found
    scores = fr.in_frame_scores(labels, found, predicted, resamples=300)
    assert scores["faces"] == 8 and scores["found"] == 5
    assert scores["detection_rate"] == 5 / 8
    assert scores["accuracy_on_found"] == 3 / 5  # faces 0, 2 and 4 are right
    assert scores["accuracy_misses_wrong"] == 3 / 8
    for key in ("detection_rate", "accuracy_on_found", "accuracy_misses_wrong"):
        assert scores[f"{key}_ci95_low"] <= scores[key] <= scores[f"{key}_ci95_high"]
        assert scores[f"{key}_ci95_low"] < scores[f"{key}_ci95_high"]
    none = fr.in_frame_scores(labels, np.zeros(8, bool), np.zeros(0, int), resamples=50)
    assert none["detection_rate"] == 0 and np.isnan(none["accuracy_on_found"])


def _hand_reframe(image: np.ndarray, scale: float = 1.0, shift: tuple = (0, 0),
                  rotation: float = 0.0) -> np.ndarray:
    """The transform written out: each output pixel's source point (undo the shift, the turn
    and the zoom about the centre), read bilinearly with the edges repeated."""
    h, w = image.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    y, x = np.mgrid[0:h, 0:w].astype(float)
    u, v = x - cx - shift[0], y - cy - shift[1]
    t = np.radians(rotation)  # anticlockwise as seen, with y pointing down
    sx = np.clip(cx + (np.cos(t) * u - np.sin(t) * v) / scale, 0, w - 1)
    sy = np.clip(cy + (np.sin(t) * u + np.cos(t) * v) / scale, 0, h - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = sx - x0, sy - y0
    img = image.astype(float)
    return ((img[y0, x0] * (1 - fx) + img[y0, x1] * fx) * (1 - fy)
            + (img[y1, x0] * (1 - fx) + img[y1, x1] * fx) * fy)


@pytest.mark.parametrize("cell", list(fr.GRID))
def test_each_grid_cell_is_the_transform_it_names(cell, synthetic):
    face = synthetic.split("PublicTest").images[0]
    change = fr.GRID[cell]
    difference = np.abs(reframe(face[None], **change)[0] - _hand_reframe(face, **change))
    # OpenCV interpolates in fixed point (1/32 pixel): a level or two at sharp edges.
    assert difference.max() <= 3 and difference.mean() < 0.5


def test_quarter_turns_shifts_and_zooms_are_exact():
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48)).astype(np.uint8)
    assert np.array_equal(reframe(faces, rotation=90), np.rot90(faces, axes=(1, 2)))
    padded = np.pad(faces, ((0, 0), (0, 0), (4, 0)), mode="edge")
    assert np.array_equal(reframe(faces, shift=(4, 0)), padded[:, :, :48])
    assert np.array_equal(reframe(faces, shift=(0, -4))[:, :44], faces[:, 4:])
    assert np.array_equal(reframe(faces), faces)
    zoomed_out = reframe(faces, scale=0.5)  # the face at half size, its edges repeated around
    assert zoomed_out[0, 0, 0] == faces[0, 0, 0] and zoomed_out[0, -1, -1] == faces[0, -1, -1]


def test_the_grid_has_every_cell_its_mean_and_the_gap(benchmark, untrained, synthetic):
    result, _ = benchmark
    part = synthetic.split("PublicTest")
    grid = fr.framing_grid(untrained, part.images, part.labels)["accuracy"]
    assert list(grid.index) == ["single crop", *fr.GRID, "grid mean", "grid mean - single crop"]
    assert grid["grid mean"] == pytest.approx(np.mean([grid[c] for c in fr.GRID]))
    assert grid["grid mean - single crop"] == pytest.approx(grid["grid mean"]
                                                            - grid["single crop"])
    expected = (untrained.predict(reframe(part.images, scale=1.2)).argmax(1) == part.labels)
    assert grid["scale 1.2"] == pytest.approx(expected.mean())
    assert np.allclose(result.grid.set_index("framing")["accuracy"].loc[grid.index], grid)


def test_the_framed_copy_deals_each_cell_to_an_equal_share_of_the_faces(synthetic):
    faces = synthetic.split("PublicTest").images[:23]
    framed = fr.framed_copy(faces, seed=1)
    assert framed.shape == faces.shape and framed.dtype == faces.dtype
    by_cell = {cell: [i for i in range(len(faces))
                      if np.array_equal(framed[i], reframe(faces[i:i + 1], **change)[0])]
               for cell, change in fr.GRID.items()}
    assert sorted(len(found) for found in by_cell.values()) == [2] * 7 + [3] * 3  # 23 = 7x2+3x3
    assert sorted(i for found in by_cell.values() for i in found) == list(range(len(faces)))
    assert np.array_equal(fr.framed_copy(faces, seed=1), framed)
    assert not np.array_equal(fr.framed_copy(faces, seed=2), framed)


def test_the_margin_curve_and_the_best_margin(benchmark):
    result, _ = benchmark
    curve = result.margins
    assert list(curve["margin"].unique()) == list(fr.MARGINS)
    best = fr.best_margins(curve)
    for _, row in best.iterrows():
        one = curve.query("detector == @row.detector")
        assert row["accuracy_on_found"] == one["accuracy_on_found"].max()
        assert row["best_margin"] == one.loc[one["accuracy_on_found"].idxmax(), "margin"]
        # The faces found do not depend on the margin, so every point scores the same faces.
        table = result.table.query("detector == @row.detector")
        assert set(one["found"]) == {row["found"]} == set(table["found"])
        single = table.query("tta == 'none'").iloc[0]
        at_own = one.query("margin == @single.margin")["accuracy_on_found"].item()
        assert at_own == single["accuracy_on_found"]


def test_a_kind_s_crop_is_its_presets_pooled_peak_the_smallest_of_equals():
    rows = []
    for detector, found, right in (("haar", 10, (5, 7, 6)), ("reference", 20, (11, 13, 14)),
                                   ("default", 10, (6, 8, 8))):
        rows += [{"model": "m", "detector": detector, "margin": margin, "found": found,
                  "accuracy_on_found": hits / found}
                 for margin, hits in zip((-0.05, 0.0, 0.1), right, strict=True)]
    margins = pd.DataFrame(rows + [{**rows[0], "model": "other", "accuracy_on_found": 1.0}])
    crop, choice = fr.framing_choice(margins, "m", "PublicTest", 70, 3, "fer-kit evaluate ...")
    # haar + reference right 16, 20, 20 of 30: a tie, the smaller margin wins; mtcnn 6, 8, 8.
    assert crop == {"haar": {"margin": 0.0, "offset": 0.0}, "mtcnn": {"margin": 0.0, "offset": 0.0}}
    assert choice["presets"] == {"haar": ["haar", "reference"], "mtcnn": ["default"]}
    assert choice["faces_found"] == {"haar": 30, "mtcnn": 10} and choice["seed"] == 3
    assert choice["accuracy_on_found_by_margin"]["haar"] == {"-0.05": 0.5333, "0": 0.6667,
                                                             "0.1": 0.6667}
    with pytest.raises(ValueError, match="PublicTest only"):
        fr.framing_choice(margins, "m", "PrivateTest", 70, 3, "")


def test_scale_tta_rows_sit_beside_the_single_view(benchmark, untrained):
    result, _ = benchmark
    table = result.table
    assert list(table["tta"]) == ["none", "scales"] * 2
    for _, pair in table.groupby("detector"):
        assert pair["found"].nunique() == 1  # the same faces, another way of classifying
    assert result.settings["fer_path"] == "not asked for"


def test_the_files_hold_the_tables(benchmark):
    result, out = benchmark
    saved = json.loads((out / "in_frame.json").read_text())
    assert saved["settings"]["per_class"] == 3 and saved["settings"]["split"] == "PublicTest"
    assert len(saved["in_frame"]) == len(result.table) == 4
    assert [r["best_margin"] for r in saved["best_margins"]] == list(
        fr.best_margins(result.margins)["best_margin"])
    assert {p.name for p in out.iterdir()} >= {"in_frame.csv", "margins.csv", "grid.csv",
                                                "in_frame.json", "manifest.json"}
    summary = result.summary()
    first = result.table.iloc[0]
    assert summary.iloc[0]["faces found % [95%]"].startswith(f"{100 * first.detection_rate:.1f} [")


def test_fer_kit_evaluate_in_frame(synthetic_csv, tmp_path, capsys):
    out = tmp_path / "frames"
    code = cli.main(["evaluate", "--in-frame", "--data", str(synthetic_csv), "--split", "val",
                     "--detector", "reference", "--per-class", "2", "--margin", "0",
                     "--seed", "3", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0 and "Best crop margin" in printed.out and "grid mean" in printed.out
    # The long parts show their progress, on stderr, where the tables do not go.
    assert "reference detector" in printed.err and "framing grid, " in printed.err
    saved = json.loads((out / "in_frame.json").read_text())
    assert saved["settings"]["detectors"] == ["reference"] and saved["settings"]["margin"] == 0
    assert saved["settings"]["seed"] == 3 and saved["settings"]["per_class"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--in-frame", "--per-class", "0"], "--per-class: must be an integer >= 1"),
    (["--in-frame", "--margin", "-0.5"], "--margin: must be a finite number in (-0.5, 1]"),
])
def test_out_of_range_in_frame_options_are_refused(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["evaluate", "--out", str(tmp_path / "x"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_fer_kit_records_the_chosen_crop_in_the_model_card(synthetic_csv, tmp_path, capsys):
    model = tmp_path / "fer_cnn.keras"
    shutil.copy(PREVIOUS_MODEL, model)
    shutil.copy(card_path(PREVIOUS_MODEL), card_path(model))
    argv = ["evaluate", "--in-frame", "--record-framing", "--data", str(synthetic_csv),
            "--split", "val", "--detector", "reference", "--detector", "default",
            "--per-class", "2", "--model", str(model), "--out", str(tmp_path / "frames")]
    assert cli.main(argv) == 0 and f"crop recorded in {card_path(model)}" in capsys.readouterr().out
    card = json.loads(card_path(model).read_text())
    margins = pd.read_csv(tmp_path / "frames" / "margins.csv")
    faces = json.loads((tmp_path / "frames" / "in_frame.json").read_text())["settings"]["faces"]
    crop, choice = fr.framing_choice(margins, str(model), "PublicTest", faces, 0, "")
    assert card["preprocessing"]["framing"] == crop and card["preprocessing"]["input_size"] == 48
    assert card["framing_choice"] == {**choice, "command": "fer-kit " + shlex.join(argv)}
    loaded = load_model(model).preprocessing
    assert all(loaded.framing_for(kind) == Framing(**c) for kind, c in crop.items())


def test_a_crop_is_not_recorded_from_a_split_other_than_publictest(tmp_path, capsys):
    card = card_path(PREVIOUS_MODEL).read_bytes()
    assert cli.main(["evaluate", "--in-frame", "--record-framing", "--split", "test",
                     "--model", str(PREVIOUS_MODEL), "--out", str(tmp_path / "x")]) == 2
    assert "add --split PublicTest" in capsys.readouterr().err
    assert card_path(PREVIOUS_MODEL).read_bytes() == card and not (tmp_path / "x").exists()


def test_in_frame_options_without_in_frame_are_refused(tmp_path, capsys):
    assert cli.main(["evaluate", "--out", str(tmp_path / "x"), "--per-class", "5"]) == 2
    assert "--per-class: only with --in-frame" in capsys.readouterr().err
