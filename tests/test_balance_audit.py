"""Balancing on training data only, and the duplicate audit."""

import numpy as np
import pytest

from fer_utils.audit import (
    duplicate_audit,
    duplicate_groups,
    group_summary,
    twin_rows,
    twin_share,
)
from fer_utils.balance import LeakageError, class_weights, oversample
from fer_utils.data import FaceDataset


def _dataset(labels, usage, images=None) -> FaceDataset:
    labels = np.asarray(labels)
    if images is None:
        images = np.arange(len(labels), dtype=np.uint8)[:, None, None] * np.ones((1, 48, 48),
                                                                               np.uint8)
    return FaceDataset(images=images, labels=labels, usage=np.asarray(usage), source="test")


def test_class_weights_on_a_hand_case():
    data = _dataset([0, 0, 0, 1], ["Training"] * 4)
    weights = class_weights(data)
    assert weights[0] == pytest.approx(4 / (2 * 3)) and weights[1] == pytest.approx(4 / 2)
    assert weights[2:].sum() == 0


def test_oversampling_equalises_classes_and_is_seeded():
    data = _dataset([0] * 6 + [1] * 2 + [3], ["Training"] * 9)
    balanced = oversample(data, seed=1)
    assert np.bincount(balanced.labels, minlength=7)[[0, 1, 3]].tolist() == [6, 6, 6]
    np.testing.assert_array_equal(balanced.images, oversample(data, seed=1).images)


@pytest.mark.parametrize("usage", ["PublicTest", "PrivateTest"])
def test_balancing_evaluation_data_is_refused(usage):
    data = _dataset([0, 1, 1], ["Training", usage, "Training"])
    for balance in (oversample, class_weights):
        with pytest.raises(LeakageError, match="leak|copies images into both sides"):
            balance(data)


def test_duplicate_audit_counts_twins_per_split_pair():
    images = np.zeros((6, 48, 48), np.uint8)
    images[:, 0, 0] = [1, 1, 2, 3, 3, 4]  # rows 0,1 twins (train); 3 (train) and 4 (test) twins
    data = _dataset([0, 1, 2, 3, 3, 4], ["Training"] * 4 + ["PublicTest"] * 2, images)
    table = duplicate_audit(data).set_index(["split", "twin_in"])
    audit = table["with_twin"]
    assert audit[("Training", "Training")] == 2
    assert audit[("PublicTest", "Training")] == 1 and audit[("Training", "PublicTest")] == 1
    assert audit[("PublicTest", "PublicTest")] == 0
    assert table.loc[("PublicTest", "Training"), "percent"] == 50.0  # 1 of 2 test images
    assert table.loc[("Training", "PublicTest"), "percent"] == 25.0
    groups = duplicate_groups(data)
    assert sorted(map(sorted, groups["rows"])) == [[0, 1], [3, 4]]
    assert groups["labels_disagree"].tolist() == [True, False]
    assert twin_share(images[:4], images[4:]) == 0.5
    assert twin_rows(images[:4], images[4:]).tolist() == [True, False]


def test_duplicate_groups_read_largest_first_with_counts_not_lists():
    images = np.zeros((9, 48, 48), np.uint8)
    images[:, 0, 0] = [1, 1, 2, 2, 2, 2, 2, 2, 3]  # a pair, a group of six, a single image
    data = _dataset([0, 1, 3, 3, 3, 3, 3, 4, 0], ["Training"] * 7 + ["PublicTest"] * 2, images)
    summary = group_summary(duplicate_groups(data))
    assert summary.to_dict("records") == [
        {"images": 6, "splits": "Training 5, PublicTest 1", "labels": "happy 5, sad 1",
         "labels disagree": True, "rows": "2, 3, 4 and 3 more"},
        {"images": 2, "splits": "Training 2", "labels": "angry 1, disgust 1",
         "labels disagree": True, "rows": "0, 1"}]
