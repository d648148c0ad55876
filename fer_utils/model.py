"""CNN architectures by name, and the classifier object that pairs a model with its input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from .labels import EMOTIONS, NUM_CLASSES
from .options import check
from .pipeline import Preprocessing, preprocess

__all__ = [
    "SEED_BLOCKS", "build_seed_cnn", "ARCHITECTURES", "build_model", "parameter_counts",
    "check_face_model", "correct_for_prior", "predict_in_batches", "FaceClassifier",
]

# One FaceClassifier per loaded model compiles its own function; TensorFlow's retracing
# warnings about that are noise for the kit's users.
tf.get_logger().setLevel("ERROR")

# (filters, padding, what follows the ReLU) for the seed's five blocks, as its code built them.
SEED_BLOCKS: tuple[tuple[int, str, str], ...] = (
    (32, "valid", "dropout"),
    (64, "same", "pool"),
    (64, "valid", "dropout"),
    (128, "same", "pool"),
    (128, "valid", "pool"),
)


def build_seed_cnn(input_size: int = 48, num_classes: int = NUM_CLASSES,
                   dropout: float = 0.25, head_dropout: float = 0.5,
                   dense_units: int = 250) -> keras.Sequential:
    """The seed's 5-block CNN (792,855 parameters at 48x48), blocks named `block1`..`block5`."""
    layers: list[keras.layers.Layer] = [keras.Input((input_size, input_size, 1), name="face")]
    for i, (filters, padding, after) in enumerate(SEED_BLOCKS, start=1):
        layers += [
            keras.layers.Conv2D(filters, 3, padding=padding, name=f"block{i}_conv"),
            keras.layers.BatchNormalization(name=f"block{i}_bn"),
            keras.layers.Activation("relu", name=f"block{i}_relu"),
            keras.layers.Dropout(dropout, name=f"block{i}_dropout") if after == "dropout"
            else keras.layers.MaxPooling2D(2, name=f"block{i}_pool"),
        ]
    layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(dense_units, activation="relu", name="dense"),
        keras.layers.Dropout(head_dropout, name="head_dropout"),
        keras.layers.Dense(num_classes, activation="softmax", name="predictions"),
    ]
    return keras.Sequential(layers, name="seed_cnn")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {"seed_cnn": build_seed_cnn}


def build_model(name: str = "seed_cnn", **kwargs) -> keras.Model:
    """Build a registered architecture by name."""
    try:
        return ARCHITECTURES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; "
                         f"choose from {', '.join(ARCHITECTURES)}") from None


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts."""
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    frozen = int(sum(np.prod(w.shape) for w in model.non_trainable_weights))
    return {"total": trainable + frozen, "trainable": trainable, "non_trainable": frozen}


def check_face_model(model: keras.Model, source: str) -> None:
    """Raise a clear error unless the model maps square grayscale images to 7 emotions."""
    shape_in, shape_out = tuple(model.input_shape), tuple(model.output_shape)
    if len(shape_in) != 4 or shape_in[1] != shape_in[2] or shape_in[3] != 1:
        raise ValueError(f"{source}: input shape {shape_in} is not a square grayscale image "
                         "(None, S, S, 1); the kit needs a face model like the seed CNN.")
    if shape_out[-1] != NUM_CLASSES:
        raise ValueError(f"{source}: output has {shape_out[-1]} classes, not the "
                         f"{NUM_CLASSES} FER-2013 emotions ({', '.join(EMOTIONS)}).")


def correct_for_prior(probs: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """Logit adjustment (Menon et al. 2021): log p - tau * log prior, renormalised per row.

    Computed in log space (a softmax of the adjusted logits), so that every tau the options
    allow gives finite probabilities that sum to 1.
    """
    with np.errstate(divide="ignore"):  # a probability that underflowed to 0 stays 0
        logits = np.log(np.asarray(probs, np.float64)) - tau * np.log(np.asarray(prior,
                                                                                  np.float64))
    adjusted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (adjusted / adjusted.sum(axis=1, keepdims=True)).astype(np.float32)


def predict_in_batches(forward: Callable[[tf.Tensor], np.ndarray], faces: np.ndarray,
                       spec: Preprocessing, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, 7) of uint8 faces, preprocessed and run `batch_size` at a time."""
    faces = np.asarray(faces)
    out = [forward(preprocess(faces[i:i + batch_size], spec))
           for i in range(0, len(faces), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, NUM_CLASSES),
                                                                       np.float32)


@dataclass
class FaceClassifier:
    """A Keras model together with the preprocessing it was trained with.

    With `prior_correction` tau > 0, predictions divide out the Training class prior that the
    model card records, raised to tau: rare classes such as disgust are predicted more often.
    """

    model: keras.Model
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    name: str = "model"
    card: dict = field(default_factory=dict)
    prior_correction: float = 0.0

    def __post_init__(self) -> None:
        check_face_model(self.model, self.name)
        size = self.model.input_shape[1]
        if size is not None and size != self.preprocessing.input_size:
            raise ValueError(f"{self.name} takes {size}x{size} faces, but the input size given "
                             f"is {self.preprocessing.input_size}; leave --input-size out (the "
                             f"model says its own) or pass {size}.")
        check("prior_correction", self.prior_correction)
        if self.prior_correction and self.prior is None:
            raise ValueError(
                f"{self.name}: a prior correction needs the Training class frequencies, and "
                "this model's card records none. Add them with fer_utils.artifacts.add_prior "
                "(card file, training data), or use a prior correction of 0.")
        if self.prior_correction and not (self.prior > 0).all():
            missing = ", ".join(e for e, f in zip(EMOTIONS, self.prior, strict=True) if f == 0)
            raise ValueError(f"{self.name}: its card's prior has no Training images of "
                             f"{missing}, so no prior correction is defined; use 0.")
        self._forward = tf.function(lambda x: self.model(x, training=False),
                                    reduce_retracing=True)

    @property
    def prior(self) -> np.ndarray | None:
        """The Training class frequencies from the model card, in EMOTIONS order, if recorded."""
        frequency = self.card.get("prior", {}).get("frequency")
        return None if frequency is None else np.array([frequency[e] for e in EMOTIONS])

    def predict(self, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, 7) for uint8 grayscale faces (N, H, W), prior-corrected."""
        probs = predict_in_batches(lambda x: self._forward(x).numpy(), faces,
                                   self.preprocessing, batch_size)
        if self.prior_correction:
            return correct_for_prior(probs, self.prior, self.prior_correction)
        return probs
