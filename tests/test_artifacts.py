"""Saving in every format the kit ships and loading every format a user brings."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

from fer_utils.artifacts import (
    TFLiteClassifier,
    accuracy_line,
    card_path,
    export_model,
    export_tflite,
    load_model,
    model_card,
    update_card,
)
from fer_utils.model import FaceClassifier, build_seed_cnn
from fer_utils.pipeline import DEFAULT_FRAMING, Framing, Preprocessing

pytestmark = pytest.mark.xdist_group("artifacts")  # one exported model


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)


@pytest.fixture(scope="module")
def classifier() -> FaceClassifier:
    keras.utils.set_random_seed(1)
    model = build_seed_cnn()
    # Non-trivial batch-norm statistics, so a format that dropped them would show.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 2.0, np.float32))
    return FaceClassifier(model=model, name="fer_cnn")


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    stem = tmp_path_factory.mktemp("export") / "fer_cnn"
    card = model_card(classifier, data={"source": "test"}, split_protocol="none",
                      validation={}, training={"seed": 1})
    return export_model(classifier, stem, card)


def test_export_writes_every_format_and_a_card(exported):
    assert {"keras", "json", "weights", "tflite", "tflite_dynamic_range",
            "card"} <= set(exported)
    assert all(path.exists() for path in exported.values())
    card = json.loads(exported["card"].read_text())
    assert card["parameters"]["total"] == 792_855
    assert card["preprocessing"] == {"input_size": 48, "scale": "unit", "framing": {}}
    assert "restricted" in card["limitations"] and card["libraries"]["keras"] == keras.__version__


def test_the_tflite_export_lists_signatures_only_when_verbose(classifier, tmp_path, capsys):
    export_tflite(classifier.model, tmp_path / "quiet.tflite")
    assert "TensorSpec" not in capsys.readouterr().out
    export_tflite(classifier.model, tmp_path / "verbose.tflite", verbose=True)
    assert "TensorSpec" in capsys.readouterr().out


def test_keras_round_trip_predicts_identically(classifier, exported, faces):
    loaded = load_model(exported["keras"])
    np.testing.assert_array_equal(loaded.predict(faces), classifier.predict(faces))
    assert loaded.card["name"] == "fer_cnn"


def test_json_and_weights_pair_predicts_identically(classifier, exported, faces):
    loaded = load_model(exported["json"], weights=exported["weights"])
    np.testing.assert_allclose(loaded.predict(faces), classifier.predict(faces), atol=1e-6)


def test_tflite_files_agree_with_keras(classifier, exported, faces):
    expected = classifier.predict(faces)
    np.testing.assert_allclose(TFLiteClassifier(exported["tflite"]).predict(faces), expected,
                               atol=1e-5)
    quantised = TFLiteClassifier(exported["tflite_dynamic_range"]).predict(faces)
    assert np.abs(quantised - expected).max() < 0.05


def test_a_tflite_model_predicts_without_a_word_on_stderr(exported):
    """TFLite announces its CPU delegate on fd 2 once per process: a fresh process shows it."""
    child = subprocess.run(
        [sys.executable, "-c", "import sys, numpy as np\n"
         "from fer_utils.artifacts import TFLiteClassifier\n"
         "TFLiteClassifier(sys.argv[1]).predict(np.zeros((3, 48, 48), np.uint8))",
         str(exported["tflite"])], capture_output=True, text=True, check=True)
    assert child.stderr == ""


def test_exported_model_holds_no_augmentation(exported):
    config = json.loads(exported["json"].read_text())
    classes = {layer["class_name"] for layer in config["config"]["layers"]}
    assert not {c for c in classes if c.startswith("Random")}


def _keras2_json(model: keras.Model) -> str:
    """The architecture as Keras 2.12 `to_json()` wrote it (as the seed shipped it)."""
    layers = [{"class_name": "InputLayer", "config": {
        "batch_input_shape": [None, 48, 48, 1], "dtype": "float32", "sparse": False,
        "ragged": False, "name": "conv2d_input"}}]
    for layer in model.layers:
        config = layer.get_config()
        config.pop("dtype", None)
        config["dtype"] = "float32"
        if isinstance(layer, keras.layers.BatchNormalization):
            config["axis"] = [3]
        for key, value in config.items():
            if isinstance(value, dict) and "class_name" in value:
                config[key] = {"module": "keras.initializers", "class_name": value["class_name"],
                               "config": value.get("config", {}), "registered_name": None}
        if not layers[1:]:
            config["batch_input_shape"] = [None, 48, 48, 1]
        layers.append({"module": "keras.layers", "class_name": type(layer).__name__,
                       "config": config, "registered_name": None})
    return json.dumps({"class_name": "Sequential", "config": {"name": "sequential",
                       "layers": layers}, "keras_version": "2.12.0", "backend": "tensorflow"})


def _keras2_weights(model: keras.Model, path: Path) -> Path:
    """The weights as Keras 2 `save_weights` wrote them to HDF5 (as the seed's fer.h5)."""
    full = path.with_name(f"full-{path.name}")
    model.save(full)  # a legacy HDF5 model keeps its weights in Keras 2's layout
    with h5py.File(full) as source, h5py.File(path, "w") as target:
        weights = source["model_weights"]
        target.attrs.update({**weights.attrs, "keras_version": "2.12.0"})
        for name in weights:
            source.copy(weights[name], target, name=name)
    return path


def test_loads_a_keras2_json_with_legacy_hdf5_weights(classifier, tmp_path, faces):
    architecture = tmp_path / "Facial Expression Recognition.json"
    architecture.write_text(_keras2_json(classifier.model))
    weights = _keras2_weights(classifier.model, tmp_path / "fer.h5")
    loaded = load_model(architecture, weights=weights)
    np.testing.assert_allclose(loaded.predict(faces), classifier.predict(faces), atol=1e-6)


def test_loads_a_full_legacy_hdf5_model_with_stated_preprocessing(tmp_path, faces):
    model = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(7, activation="softmax")])
    path = tmp_path / "emotion_model.hdf5"
    model.save(path)
    loaded = load_model(path, preprocessing=Preprocessing(64, "symmetric"))
    assert loaded.preprocessing.scale == "symmetric"
    x = (faces.astype(np.float32) / 127.5 - 1)[..., None]
    x = keras.ops.image.resize(x, (64, 64), antialias=True).numpy()
    np.testing.assert_allclose(loaded.predict(faces), model.predict(x, verbose=0), atol=1e-5)


def test_the_cards_framing_travels_with_the_model_and_survives_an_input_override(exported):
    card = json.loads(exported["card"].read_text())
    assert load_model(exported["keras"]).preprocessing.framing_for("mtcnn") == DEFAULT_FRAMING
    card["preprocessing"]["framing"] = {"mtcnn": {"margin": 0.05, "offset": 0.02}}
    update_card(exported["card"], {"preprocessing": card["preprocessing"]})
    loaded = load_model(exported["keras"])
    assert loaded.preprocessing.framing_for("mtcnn") == Framing(0.05, 0.02)
    assert loaded.preprocessing.framing_for("haar") == DEFAULT_FRAMING
    resized = load_model(exported["keras"], preprocessing=Preprocessing(48, "symmetric"))
    assert resized.preprocessing.scale == "symmetric"
    assert resized.preprocessing.framing_for("mtcnn") == Framing(0.05, 0.02)
    del card["preprocessing"]["framing"]  # a card written before framing travelled
    update_card(exported["card"], {"preprocessing": card["preprocessing"]})
    assert load_model(exported["keras"]).preprocessing.framing == {}


def test_weights_that_do_not_fit_say_so(exported, tmp_path):
    other = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(7)])
    wrong = tmp_path / "wrong.weights.h5"
    other.save_weights(wrong)
    with pytest.raises(ValueError, match="do not fit the architecture"):
        load_model(exported["json"], weights=wrong)


def test_missing_and_unknown_files_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path / "nothing.keras")
    odd = tmp_path / "model.onnx"
    odd.write_bytes(b"\0")
    with pytest.raises(ValueError, match="unknown model format"):
        load_model(odd)
    lonely = tmp_path / "arch.json"
    lonely.write_text("{}")
    with pytest.raises(ValueError, match="pass its weights file"):
        load_model(lonely)


def test_card_path_sits_beside_the_model(tmp_path):
    assert card_path(tmp_path / "fer_cnn.keras") == tmp_path / "fer_cnn.card.json"


def test_a_card_s_accuracy_is_said_with_what_it_means():
    card = {"validation": {"accuracy": 0.6651, "split": "PublicTest", "n": 3589}}
    assert accuracy_line(card) == ("66.5% accuracy on FER-2013's PublicTest split (3,589 faces): "
                                   "about 33% of those faces get the wrong expression")
    assert accuracy_line({}) == "no recorded accuracy (its model card has none)"
