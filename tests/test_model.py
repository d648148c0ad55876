"""The seed CNN as its code built it, and the checks on foreign models."""

import keras
import pytest

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
        for part in ("conv", "bn", "relu"):
            assert model.get_layer(f"block{block}_{part}") is not None


def test_build_model_rejects_unknown_architectures():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet")


def test_check_face_model_names_the_problem():
    rgb = keras.Sequential([keras.Input((48, 48, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(7)])
    with pytest.raises(ValueError, match="not a square grayscale image"):
        check_face_model(rgb, "rgb.keras")
    five = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(5)])
    with pytest.raises(ValueError, match="5 classes"):
        check_face_model(five, "five.keras")
