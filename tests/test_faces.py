"""Face detectors on real media: mtcnn's boxes and landmarks, squaring, its missing-package
error and its silence on empty frames, the tilted talk, and the crop each model's card asks for."""

import json
import sys

import cv2
import numpy as np
import pytest

from fer_utils import cli
from fer_utils.artifacts import card_path, load_model
from fer_utils.faces import PRESETS, FaceDetector, FaceSearch, crop_face, faces_in_photo
from fer_utils.geometry import iou
from fer_utils.images import read_image, to_gray
from fer_utils.mtcnn_faces import shared_mtcnn, square
from fer_utils.pipeline import Framing

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mtcnn")]  # one mtcnn per worker


def test_mtcnn_finds_the_face_and_its_landmarks_in_the_sample_photo(samples):
    image = read_image(samples["single_face.jpg"])
    boxes, landmarks, confidence = shared_mtcnn().detect(image)
    assert len(boxes) == 1 and confidence[0] > 0.9
    (x, y, w, h), points = boxes[0], landmarks[0]
    assert h > w  # mtcnn's boxes are taller than wide
    assert ((points >= [x, y]) & (points <= [x + w, y + h])).all()
    eyes, nose, mouth = points[:2], points[2], points[3:]
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]  # left to right in the image
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()  # eyes, then nose, then mouth
    # The kit's detector squares the box about its centre, keeping its area.
    found = FaceDetector("photo").detect(image)
    assert len(found) == 1 and found[0, 2] == found[0, 3]
    assert found[0, 2] == pytest.approx(np.sqrt(w * h), abs=1)
    assert found[0, :2] + found[0, 2:] / 2 == pytest.approx([x + w / 2, y + h / 2], abs=1)
    assert iou(found, FaceDetector("reference").detect(to_gray(image)))[0, 0] > 0.5


def test_square_keeps_the_centre_and_the_area():
    # 40 x 90 has the area of a 60-pixel square; its centre (30, 65) stays.
    np.testing.assert_allclose(square(np.array([[10, 20, 40, 90]])), [[0, 35, 60, 60]])
    assert square(np.zeros((0, 4))).shape == (0, 4)


def test_mtcnn_reads_colour_and_gray_alike(samples):
    image = read_image(samples["multi_face.jpg"])  # five faces, one behind sunglasses
    in_colour, in_gray = (FaceDetector("photo").detect(x) for x in (image, to_gray(image)))
    assert len(in_colour) == 5 and len(in_gray) >= 4
    assert (iou(in_gray, in_colour).max(axis=1) > 0.7).all()


def test_refining_a_displaced_box_puts_it_back_on_the_face(samples):
    image = read_image(samples["multi_face.jpg"])
    found = FaceDetector("photo").detect(image)
    # Each face's box moved by a tenth of its side and shrunk by a tenth, as a face moves
    # between two refinements in a video.
    moved = found.astype(float) + found[:, 2:3] * np.array([0.1, -0.1, -0.1, -0.1])
    refined, confidence = shared_mtcnn().refine(image, moved)
    assert refined.shape == (len(found), 4) and (confidence > 0.9).all()
    overlap = iou(square(refined), found).diagonal()
    assert (overlap > 0.75).all() and (overlap > iou(moved, found).diagonal()).all()
    # Where there is no face, O-net says so: a box on the photo's plain top-left corner.
    _, empty = shared_mtcnn().refine(image, np.array([[0, 0, 40, 40]]))
    assert empty[0] < 0.5
    assert shared_mtcnn().refine(image, np.zeros((0, 4)))[0].shape == (0, 4)


def test_refining_a_face_cut_by_the_frame_edge_pads_the_missing_part(samples):
    image = read_image(samples["single_face.jpg"])
    (x, y, w, h), = FaceDetector("photo").detect(image)
    cut = x + w // 5  # the frame now starts a fifth of the way into the face
    box = np.array([[x - cut, y, w, h]])
    refined, confidence = shared_mtcnn().refine(image[:, cut:], box)
    # Padded, the box lands at IoU 0.90; stretching the visible part instead gives 0.85.
    assert confidence[0] > 0.9 and iou(square(refined), box)[0, 0] > 0.88


def test_the_video_search_refines_with_o_net_and_searches_when_the_face_is_gone(samples):
    image = read_image(samples["single_face.jpg"])
    search = FaceSearch(FaceDetector(PRESETS["default"]))
    first = search(to_gray(image), image)
    assert len(first) == 1
    shifted = np.roll(image, 6, axis=1)  # the face moved 6 pixels right
    second = search.detector.detect_near(shifted, first)
    assert len(second) == 1 and second[0, 0] - first[0, 0] == pytest.approx(6, abs=3)
    blank = np.full_like(image, 128)
    assert len(search.detector.detect_near(blank, first)) == 0


def test_a_missing_mtcnn_says_how_to_install_it(samples, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mtcnn", None)  # `import mtcnn` now fails
    shared_mtcnn.cache_clear()
    try:
        with pytest.raises(OSError, match=r"pip install 'mtcnn>=1,<2'"):
            FaceDetector("mtcnn")
        code = cli.main(["predict", "--detector", "mtcnn", str(samples["single_face.jpg"])])
        error = capsys.readouterr().err
        assert code == 2 and len(error.splitlines()) == 1 and "pip install 'mtcnn" in error
    finally:
        shared_mtcnn.cache_clear()  # the next test builds the real one again


def test_mtcnn_is_silent_on_frames_without_a_face(samples, capfd):
    capture = cv2.VideoCapture(str(samples["no_face.mp4"]))
    frames = [capture.read()[1] for _ in range(3)]
    capture.release()
    rng = np.random.default_rng(0)
    frames += [np.full((360, 640, 3), 128, np.uint8),
               rng.integers(0, 256, (360, 640, 3), dtype=np.uint8),
               np.zeros((30, 25, 3), np.uint8)]  # smaller than the smallest face
    detector = FaceDetector("mtcnn")
    capfd.readouterr()
    assert [len(detector.detect(frame)) for frame in frames] == [0] * len(frames)
    search = FaceSearch(detector)
    assert all(len(search(to_gray(frame), frame)) == 0 for frame in frames)
    assert capfd.readouterr() == ("", "")  # not a line from TensorFlow or mtcnn


def test_the_default_detector_follows_a_tilted_talk_without_ghosts(tilted_clip):
    assert PRESETS["default"].kind == "mtcnn"
    search = FaceSearch(FaceDetector("default"))
    capture, boxes = cv2.VideoCapture(str(tilted_clip)), []
    while (frame := capture.read()[1]) is not None:
        boxes.append(search(to_gray(frame), frame))
    capture.release()
    found = np.concatenate([b for b in boxes if len(b)])
    assert len(boxes) == 472 and len(found) >= 0.8 * len(boxes)
    assert max(len(b) for b in boxes) == 1  # one face, never a second box beside it
    assert found[:, 2].min() >= 0.6 * np.median(found[:, 2])  # no box on an eye


def test_a_framing_widens_and_moves_the_crop_by_shares_of_the_box():
    gray = (np.arange(200 * 200) % 251).astype(np.uint8).reshape(200, 200)
    # An 80-pixel box widened by 0.1 of its side on each side is 96 pixels; moved down by
    # 0.05 of its side, 4 pixels.
    crop = crop_face(gray, (60, 50, 80, 80), 96, Framing(margin=0.1, offset=0.05))
    assert np.array_equal(crop, gray[46:142, 52:148])
    assert np.array_equal(crop_face(gray, (60, 50, 80, 80), 64, Framing(-0.1)),
                          gray[58:122, 68:132])  # a negative margin cuts into the box
    for bad in ({"margin": -0.5}, {"offset": 0.6}):
        with pytest.raises(ValueError, match="must be a finite number"):
            Framing(**bad)


def _model_with_framing(untrained, path, margin: float):
    """A copy of the untrained model whose card says to crop mtcnn's boxes with `margin`."""
    untrained.model.save(path)
    card = {"preprocessing": {"input_size": 48, "scale": "unit",
                              "framing": {"mtcnn": {"margin": margin, "offset": 0.0}}}}
    card_path(path).write_text(json.dumps(card))
    return path


def test_the_cards_margin_is_the_crop_predict_uses(samples, untrained, tmp_path, capsys):
    photo = samples["single_face.jpg"]
    image = read_image(photo)
    printed = {}
    for margin in (0.0, 0.2):
        path = _model_with_framing(untrained, tmp_path / f"m{margin}.keras", margin)
        classifier = load_model(path)
        boxes, crops, probs = faces_in_photo(image, classifier)  # predict's own call
        assert np.array_equal(crops[0], crop_face(to_gray(image), boxes[0], 48, Framing(margin)))
        capsys.readouterr()
        assert cli.main(["predict", "--model", str(path), str(photo)]) == 0
        line = json.loads(capsys.readouterr().out)
        assert line["box"] == boxes[0].tolist()
        assert list(line["probabilities"].values()) == pytest.approx(probs[0], abs=1e-4)
        printed[margin] = line["probabilities"]
    assert printed[0.0] != printed[0.2]  # the same face, cropped as each card says
