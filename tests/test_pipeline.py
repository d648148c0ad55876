"""The tf.data pipeline: reproducible per epoch, resumable, and augmentation that is sane."""

import numpy as np
import tensorflow as tf

from fer_utils.pipeline import Augmentation, Preprocessing, augment, preprocess, training_dataset


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
