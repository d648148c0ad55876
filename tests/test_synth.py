"""Synthetic faces: deterministic, FER-2013's proportions, marked as synthetic everywhere."""

import json

import numpy as np
import pytest

from fer_utils import synth
from fer_utils.data import synthetic_sidecar
from fer_utils.sources import load_dataset


def test_same_seed_same_faces_other_seed_other_faces():
    a, b, c = synth.generate(50, 10, 10, seed=3), synth.generate(50, 10, 10, seed=3), \
        synth.generate(50, 10, 10, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_class_proportions_follow_fer2013_with_disgust_rare():
    data = synth.generate(3000, 0, 0, seed=0)
    shares = np.bincount(data.labels, minlength=7) / len(data)
    np.testing.assert_allclose(shares, synth.FER2013_PROPORTIONS, atol=0.03)
    assert shares[1] == shares.min()


def test_csv_is_byte_identical_per_seed_and_marked_synthetic(tmp_path):
    first = synth.write_synthetic_csv(tmp_path / "a.csv", 30, 5, 5, seed=2)
    second = synth.write_synthetic_csv(tmp_path / "b.csv", 30, 5, 5, seed=2)
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(synthetic_sidecar(first).read_text())["seed"] == 2
    dataset = load_dataset(first)
    assert dataset.synthetic and "SYNTHETIC" in dataset.describe()
    assert dataset.usages == ("Training", "PublicTest", "PrivateTest")


def test_faces_vary_and_classes_differ():
    data = synth.generate(700, 0, 0, seed=5)
    assert data.images.std(axis=0).mean() > 20  # not one template
    happy, sad = (data.images[data.labels == k].mean(axis=0) for k in (3, 4))
    assert np.abs(happy - sad).max() > 10  # expressions change the mean face


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_learnable_but_not_trivial():
    from sklearn.linear_model import LogisticRegression

    train, test = synth.generate(1000, 0, 0, seed=7), synth.generate(500, 0, 0, seed=8)
    model = LogisticRegression(max_iter=100).fit(train.images.reshape(1000, -1) / 255,
                                                 train.labels)
    score = model.score(test.images.reshape(500, -1) / 255, test.labels)
    majority = np.bincount(test.labels).max() / len(test)
    assert majority + 0.05 < score < 0.9
