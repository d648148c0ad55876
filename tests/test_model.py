"""The seed CNN as its code built it, and the checks on foreign models."""

import keras
import pytest

from fer_utils.artifacts import load_model
from fer_utils.model import build_model, build_seed_cnn, check_face_model, parameter_counts


def test_seed_cnn_has_the_seeds_parameter_counts():
    counts = parameter_counts(build_seed_cnn())
    assert counts == {"total": 792_855, "trainable": 792_023, "non_trainable": 832}


def test_seed_cnn_shapes_follow_the_seeds_paddings():
    model = build_seed_cnn()
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["block1_dropout"] == (46, 46, 32)
    assert shapes["block2_pool"] == (23, 23, 64)
    assert shapes["block3_dropout"] == (21, 21, 64)
    assert shapes["block4_pool"] == (10, 10, 128)
    assert shapes["block5_pool"] == (4, 4, 128)
    assert shapes["flatten"] == (2048,)
    assert shapes["predictions"] == (7,)


def test_every_block_is_addressable_by_name():
    model = build_seed_cnn()
    for block in range(1, 6):
        for part, kind in (("conv", "Conv2D"), ("bn", "BatchNormalization"),
                           ("relu", "Activation")):
            assert type(model.get_layer(f"block{block}_{part}")).__name__ == kind


def test_build_model_rejects_unknown_architectures():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet")


@pytest.mark.parametrize(("input_shape", "classes", "problem"), [
    ((48, 48, 3), 7, r"input shape \(None, 48, 48, 3\) is not a square grayscale image"),
    ((48, 40, 1), 7, r"input shape \(None, 48, 40, 1\) is not a square grayscale image"),
    ((48, 48, 1), 5, "output has 5 classes, not the 7 FER-2013 emotions"),
], ids=["colour", "not-square", "five-classes"])
def test_a_model_that_is_not_a_face_model_is_refused(input_shape, classes, problem, tmp_path):
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(classes)])
    with pytest.raises(ValueError, match=rf"^given\.keras: {problem}"):
        check_face_model(model, "given.keras")
    path = tmp_path / "wrong.keras"
    model.save(path)
    with pytest.raises(ValueError, match=problem) as refused:
        load_model(path)
    assert str(path) in str(refused.value)
