"""The tf.data pipeline: reproducible per epoch, resumable, and augmentation that is sane."""

import numpy as np
import pytest
import tensorflow as tf

from fer_utils.pipeline import (
    SCALES,
    Augmentation,
    Preprocessing,
    augment,
    pad_crop,
    preprocess,
    training_dataset,
)


def _batches(images, labels, **kwargs):
    data = training_dataset(images, labels, batch_size=8, spec=Preprocessing(), **kwargs)
    return [x.numpy() for x, _ in data]


def test_epochs_are_reproducible_and_resume_exactly(faces_and_labels):
    images, labels = faces_and_labels
    aug = Augmentation(erase=0.5)
    full = _batches(images, labels, seed=1, epochs=3, augmentation=aug)
    again = _batches(images, labels, seed=1, epochs=3, augmentation=aug)
    resumed = _batches(images, labels, seed=1, epochs=3, start_epoch=2, augmentation=aug)
    assert len(full) == 9  # 21 images in batches of 8: 3 per epoch
    for a, b in zip(full, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(full[6:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[3])  # another epoch, another order


def test_preprocessing_scales_and_resizes():
    faces = np.full((2, 48, 48), 255, np.uint8)
    assert float(preprocess(faces, Preprocessing()).numpy().max()) == 1.0
    wide = preprocess(faces, Preprocessing(64, "symmetric")).numpy()
    assert wide.shape == (2, 64, 64, 1) and np.allclose(wide, 1.0)


def test_an_unknown_scale_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=f"scale must be one of {', '.join(SCALES)}, not 'x'"):
        Preprocessing(scale="x")


def test_flip_mirrors_and_augmentation_keeps_shape_and_range(faces_and_labels):
    images, _ = faces_and_labels
    x = preprocess(images[:8], Preprocessing())
    flipped = augment(x, Augmentation(flip=True, rotation_deg=0, shift=0, zoom=0),
                      tf.constant([0, 0]))
    for original, out in zip(x.numpy(), flipped.numpy(), strict=True):
        assert np.array_equal(out, original) or np.array_equal(out, original[:, ::-1])
    moved = augment(x, Augmentation(erase=0.5), tf.constant([1, 2])).numpy()
    assert moved.shape == x.shape and moved.dtype == np.float32
    assert moved.min() >= 0.0 and moved.max() <= 1.0 and not np.array_equal(moved, x.numpy())


def _windows(image: np.ndarray, pad: int) -> list[np.ndarray]:
    """Every window of the image's size in the image reflect-padded by `pad` pixels."""
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    size = image.shape[0]
    return [padded[top:top + size, left:left + size]
            for top in range(2 * pad + 1) for left in range(2 * pad + 1)]


def test_pad_and_crop_keeps_shapes_is_seeded_and_moves_content_at_most_pad_pixels(
        faces_and_labels):
    images, _ = faces_and_labels
    x = preprocess(images, Preprocessing())
    out = pad_crop(x, 3, tf.constant([4, 5])).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, pad_crop(x, 3, tf.constant([4, 5])).numpy())
    assert not np.array_equal(out, pad_crop(x, 3, tf.constant([4, 6])).numpy())
    moved = 0
    for original, cropped in zip(x.numpy(), out, strict=True):
        matches = [np.array_equal(cropped, w) for w in _windows(original, 3)]
        assert any(matches)  # a shift of at most 3 pixels each way, edges reflected
        moved += not matches[len(matches) // 2]  # the middle window is no shift at all
    assert moved > len(out) // 2  # 48 of 49 offsets move the image
    through = augment(x, Augmentation(flip=False, rotation_deg=0, shift=0, zoom=0, crop_pad=3),
                      tf.constant([4, 5])).numpy()
    assert through.shape == x.shape
    assert all(any(np.array_equal(c, w) for w in _windows(o, 3))
               for o, c in zip(x.numpy(), through, strict=True))
