"""The seed CNN taken apart: shapes and parameters by formula, receptive fields, activations,
train-versus-inference behaviour and Grad-CAM."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .labels import EMOTIONS

__all__ = [
    "layer_table", "receptive_fields", "activations", "train_versus_inference", "head",
    "grad_cam",
]


def _by_formula(layer: keras.layers.Layer, shape: tuple) -> tuple[tuple, int, str]:
    """A layer's output shape and parameter count from its input shape, with the formula."""
    if isinstance(layer, keras.layers.Conv2D):
        (h, w, c), k, f = shape, layer.kernel_size[0], layer.filters
        if layer.padding == "valid":
            h, w = h - k + 1, w - k + 1
        return (h, w, f), k * k * c * f + f, f"{k}x{k}x{c}x{f} + {f}; {layer.padding} padding"
    if isinstance(layer, keras.layers.BatchNormalization):
        return shape, 4 * shape[-1], f"4 x {shape[-1]} (gamma, beta; mean, variance fixed)"
    if isinstance(layer, keras.layers.MaxPooling2D):
        p = layer.pool_size[0]
        return (shape[0] // p, shape[1] // p, shape[2]), 0, f"floor(size / {p})"
    if isinstance(layer, keras.layers.Flatten):
        return (int(np.prod(shape)),), 0, " x ".join(map(str, shape))
    if isinstance(layer, keras.layers.Dense):
        return (layer.units,), shape[0] * layer.units + layer.units, \
            f"{shape[0]} x {layer.units} + {layer.units}"
    return shape, 0, "shape unchanged, no weights"


def layer_table(model: keras.Model) -> pd.DataFrame:
    """Every layer's output shape and parameters computed by formula next to Keras's figures."""
    shape = tuple(model.input_shape[1:])
    rows = []
    for layer in model.layers:
        shape, params, formula = _by_formula(layer, shape)
        keras_shape = tuple(layer.output.shape[1:])
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "shape (formula)": shape, "shape (Keras)": keras_shape,
                     "parameters (formula)": params, "parameters (Keras)": layer.count_params(),
                     "formula": formula,
                     "match": shape == keras_shape and params == layer.count_params()})
    return pd.DataFrame(rows)


def receptive_fields(model: keras.Model) -> pd.DataFrame:
    """How many input pixels (per side) one unit of each conv or pool layer sees."""
    field, jump, rows = 1, 1, []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            field += (layer.kernel_size[0] - 1) * jump
        elif isinstance(layer, keras.layers.MaxPooling2D):
            field += (layer.pool_size[0] - 1) * jump
            jump *= layer.strides[0]
        else:
            continue
        rows.append({"layer": layer.name, "receptive field (px)": field, "stride (px)": jump})
    return pd.DataFrame(rows)


def activations(model: keras.Model, x: np.ndarray, names: list[str],
                training: bool = False) -> dict[str, np.ndarray]:
    """The outputs of the named layers for model input x, batch axis kept."""
    # Named outputs: a list of one output would come back as a bare tensor, not a list.
    probe = keras.Model(model.inputs[0], {n: model.get_layer(n).output for n in names})
    outputs = probe(x, training=training)
    return {n: np.asarray(outputs[n]) for n in names}


def train_versus_inference(model: keras.Model, x: np.ndarray) -> pd.DataFrame:
    """What BatchNormalization and Dropout do with training=True versus False, in numbers."""
    names = ["block1_conv", "block1_bn", "block1_relu", "block1_dropout"]
    rows = []
    for training in (True, False):
        outs = activations(model, x, names, training=training)
        for name in names:
            rows.append({"mode": "training" if training else "inference", "layer": name,
                         "mean": outs[name].mean(), "std": outs[name].std(),
                         "share of zeros": (outs[name] == 0).mean()})
    return pd.DataFrame(rows).round(4)


def head(model: keras.Model, x: np.ndarray) -> pd.DataFrame:
    """The output layer's logits for one face and the softmax that turns them into probabilities."""
    dense = activations(model, x, ["head_dropout"])["head_dropout"]
    kernel, bias = model.get_layer("predictions").get_weights()
    logits = (dense @ kernel + bias)[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    return pd.DataFrame({"logit": logits, "softmax": probs,
                         "model output": np.asarray(model(x, training=False))[0]},
                        index=list(EMOTIONS))


def grad_cam(model: keras.Model, x: np.ndarray, layer: str = "block5_conv",
             class_index: int | None = None) -> tuple[np.ndarray, int]:
    """Grad-CAM heat map (input size, 0..1) for a class (default: the predicted one)."""
    split = [layer_.name for layer_ in model.layers].index(layer) + 1
    maps = tf.convert_to_tensor(x)
    for part in model.layers[:split]:
        maps = part(maps, training=False)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        probs = maps
        for part in model.layers[split:]:
            probs = part(probs, training=False)
        if class_index is None:
            class_index = int(tf.argmax(probs[0]))
        score = probs[:, class_index]
    grads = tape.gradient(score, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.reduce_sum(maps * weights[:, None, None, :], axis=-1))[0]
    cam = tf.image.resize(cam[..., None], np.shape(x)[1:3])[..., 0].numpy()
    return cam / cam.max() if cam.max() > 0 else cam, class_index
