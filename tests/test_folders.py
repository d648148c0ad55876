"""The image-folder release: any size or colour, official usage from file names."""

import cv2
import numpy as np
import pytest

from fer_utils.data import DataError
from fer_utils.folders import load_image_folders
from fer_utils.sources import load_dataset


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def test_folders_with_official_names_keep_their_usage(tmp_path):
    rng = np.random.default_rng(0)
    for name, shape in (("train/happy/Training_1.jpg", (48, 48)),
                        ("train/Sad/Training_2.png", (96, 80, 3)),
                        ("test/angry/PrivateTest_3.png", (30, 30, 4)),
                        ("test/angry/PublicTest_4.jpg", (48, 48))):
        _write(tmp_path / name, rng.integers(0, 255, shape, np.uint8))
    dataset = load_dataset(tmp_path)
    assert dataset.images.shape == (4, 48, 48) and dataset.images.dtype == np.uint8
    assert sorted(dataset.usage) == ["PrivateTest", "PublicTest", "Training", "Training"]
    assert sorted(dataset.labels) == [0, 0, 3, 4]
    assert not dataset.own_split and not dataset.notes


def test_a_16_bit_image_keeps_its_grey_levels(tmp_path):
    _write(tmp_path / "train" / "happy" / "deep.png", np.full((48, 48), 128 * 257, np.uint16))
    _write(tmp_path / "test" / "happy" / "PublicTest_1.png", np.zeros((48, 48), np.uint8))
    dataset = load_image_folders(tmp_path)
    assert dataset.split("Training").images.max() == 128  # not clipped to white


def test_plain_names_split_test_into_public_and_private(tmp_path):
    for i in range(8):
        _write(tmp_path / "train" / "fear" / f"{i}.jpg", np.full((48, 48), i * 20, np.uint8))
        _write(tmp_path / "test" / "fear" / f"{i}.jpg", np.full((48, 48), i * 20, np.uint8))
    dataset = load_image_folders(tmp_path)
    assert (dataset.usage == "Training").sum() == 8
    assert (dataset.usage == "PublicTest").sum() == 4
    assert (dataset.usage == "PrivateTest").sum() == 4
    assert dataset.own_split and "split 50/50" in dataset.describe()


def test_the_checksum_follows_the_images(tmp_path):
    for root, value in (("a", 10), ("b", 10), ("c", 11)):
        _write(tmp_path / root / "train" / "fear" / "0.png", np.full((48, 48), value, np.uint8))
        _write(tmp_path / root / "test" / "happy" / "PublicTest_1.png",
               np.zeros((48, 48), np.uint8))
    a, b, c = (load_image_folders(tmp_path / root).checksum for root in "abc")
    assert len(a) == 64 and a == b != c


def test_unreadable_images_are_named(tmp_path):
    _write(tmp_path / "train" / "happy" / "ok.png", np.zeros((48, 48), np.uint8))
    broken = tmp_path / "train" / "happy" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        load_image_folders(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(load_image_folders(tmp_path, skip_unreadable=True)) == 1
    with pytest.raises(DataError, match="no images found"):
        load_image_folders(tmp_path / "train" / "happy")


def test_a_folder_that_is_no_emotion_or_split_is_named(tmp_path):
    _write(tmp_path / "train" / "happiness" / "0.png", np.zeros((48, 48), np.uint8))
    with pytest.raises(DataError, match=r"happiness.0\.png: unknown emotion 'happiness'; use"):
        load_image_folders(tmp_path)
    (tmp_path / "train").rename(tmp_path / "training")
    (tmp_path / "training" / "happiness").rename(tmp_path / "training" / "happy")
    with pytest.raises(DataError, match="0.png: expected train/ or test/"):
        load_image_folders(tmp_path)
