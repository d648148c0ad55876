"""The FER-2013 CSV loader: formats, splits, lookup, cache and every kind of bad row."""

import gzip
import os

import numpy as np
import pytest
from conftest import write_fer_csv

from fer_utils import data, sources
from fer_utils.data import DataError, load_fer2013_csv, read_fer2013_csv


def test_reads_images_labels_and_usage(tmp_path, faces_and_labels):
    images, labels = faces_and_labels
    usage = np.array(["Training"] * 14 + ["PublicTest"] * 7)
    dataset = read_fer2013_csv(write_fer_csv(tmp_path / "f.csv", labels, images, usage))
    assert dataset.images.dtype == np.uint8 and dataset.images.shape == (21, 48, 48)
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.usages == ("Training", "PublicTest") and len(dataset.split("val")) == 7


def test_reads_gzip_and_the_icml_variant(tmp_path, faces_and_labels):
    images, labels = faces_and_labels
    usage = ["PrivateTest"] * 21
    gz = write_fer_csv(tmp_path / "f.csv.gz", labels, images, usage, compression="gzip")
    assert read_fer2013_csv(gz).usages == ("PrivateTest",)
    icml = tmp_path / "icml_face_data.csv"
    import pandas as pd

    pd.DataFrame({"emotion": labels, " Usage": usage,
                  " pixels": [" ".join(map(str, im.ravel())) for im in images]}).to_csv(
        icml, index=False)
    dataset = read_fer2013_csv(icml)
    np.testing.assert_array_equal(dataset.images, images)
    assert dataset.usages == ("PrivateTest",)


def test_no_usage_column_gets_a_seeded_stratified_split(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (140, 48, 48), dtype=np.uint8)
    labels = np.arange(140) % 7
    path = write_fer_csv(tmp_path / "f.csv", labels, images)
    first, second = read_fer2013_csv(path), read_fer2013_csv(path)
    np.testing.assert_array_equal(first.usage, second.usage)
    assert first.counts()["Training"].tolist() == [16] * 7
    assert set(first.usages) == {"Training", "PublicTest", "PrivateTest"}
    assert first.own_split and "no Usage column: split 80/10/10" in first.describe()


def test_the_cache_keeps_how_the_data_was_split(tmp_path, faces_and_labels, monkeypatch):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    images, labels = faces_and_labels
    for usage in (None, ["Training"] * 21):
        path = write_fer_csv(tmp_path / f"{usage is None}.csv", labels, images, usage)
        parsed, cached = load_fer2013_csv(path), load_fer2013_csv(path)
        assert (cached.own_split, cached.notes) == (parsed.own_split, parsed.notes)
        assert cached.own_split == (usage is None) and len(cached.notes) == (usage is None)


@pytest.mark.parametrize("pixels, label, usage, message", [
    ("1 2 3", "0", "Training", "3 pixels instead of 2304"),
    (" ".join(["7"] * 2303 + ["x"]), "0", "Training", "pixel value 'x'"),
    (" ".join(["256"] * 2304), "0", "Training", "pixel value '256'"),
    (" ".join(["1"] * 2304), "9", "Training", "emotion '9'"),
    (" ".join(["1"] * 2304), "0", "Validation", "usage 'Validation'"),
])
def test_bad_rows_are_named_by_line(tmp_path, faces_and_labels, pixels, label, usage, message):
    images, labels = faces_and_labels
    path = write_fer_csv(tmp_path / "f.csv", labels, images, ["Training"] * 21)
    lines = path.read_text().splitlines()
    lines[3] = f"{label},{pixels},{usage}"  # the header is line 1, so this is line 4
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        read_fer2013_csv(path)
    assert "line 4" in str(error.value) and message in str(error.value)
    assert "1 bad row(s)" in str(error.value) and str(path) in str(error.value)
    with pytest.warns(UserWarning, match="skipped 1 bad row"):
        kept = read_fer2013_csv(path, skip_bad_rows=True)
    assert len(kept) == 20 and kept.skipped_rows == 1


def test_the_one_pass_parse_reads_clean_files_and_refuses_anything_else(tmp_path,
                                                                        faces_and_labels):
    images, labels = faces_and_labels
    text = write_fer_csv(tmp_path / "f.csv", labels, images, ["Training"] * 21).read_bytes()
    for variant in (text, text.replace(b"\n", b"\r\n"), gzip.compress(text)):
        parsed_labels, parsed_images, usage = data._parse_fast(variant)
        np.testing.assert_array_equal(parsed_images, images)
        np.testing.assert_array_equal(parsed_labels, labels)
        assert set(usage) == {"Training"}
    # Irregular spacing is refused by the fast parse and read row by row instead.
    spaced = tmp_path / "spaced.csv"
    spaced.write_bytes(text.replace(b" ", b"  "))
    assert data._parse_fast(spaced.read_bytes()) is None
    np.testing.assert_array_equal(read_fer2013_csv(spaced).images, images)
    # One pixel moved from line 2 to line 3: the total count is right, each row is wrong.
    lines = text.split(b"\n")
    lines[1] = lines[1].replace(b",Training", b"").rsplit(b" ", 1)[0] + b",Training"
    lines[2] = lines[2].replace(b",Training", b" 7,Training")
    shifted = b"\n".join(lines)
    assert len(shifted.split()) == len(text.split()) and data._parse_fast(shifted) is None
    path = tmp_path / "shifted.csv"
    path.write_bytes(shifted)
    with pytest.raises(DataError, match=r"2 bad row\(s\)[\s\S]*line 2[\s\S]*line 3"):
        read_fer2013_csv(path)


def test_many_bad_rows_show_the_first_and_the_count(tmp_path, faces_and_labels):
    images, labels = faces_and_labels
    path = write_fer_csv(tmp_path / "f.csv", labels, images, ["Training"] * 21)
    lines = path.read_text().splitlines()
    for i in range(1, 9):
        lines[i] = "0,1 2,Training"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"8 bad row\(s\)[\s\S]*line 2[\s\S]*and 3 more"):
        read_fer2013_csv(path)


def test_empty_header_only_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_fer2013_csv(empty)
    header = tmp_path / "header.csv"
    header.write_text("emotion,pixels,Usage\n")
    with pytest.raises(DataError, match="no rows"):
        read_fer2013_csv(header)
    with pytest.raises(DataError, match="no such file"):
        load_fer2013_csv(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        read_fer2013_csv(wrong)


def test_cache_is_reused_until_the_content_changes(tmp_path, faces_and_labels, monkeypatch):
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    images, labels = faces_and_labels
    path = write_fer_csv(tmp_path / "f.csv", labels, images, ["Training"] * 21)
    first = load_fer2013_csv(path)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    calls = []
    monkeypatch.setattr(data, "_parse_csv", lambda *a, **k: calls.append(1))
    cached = load_fer2013_csv(path)
    assert not calls and cached.checksum == first.checksum
    np.testing.assert_array_equal(cached.images, first.images)
    monkeypatch.undo()
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    write_fer_csv(path, labels[::-1], images, ["Training"] * 21)
    os.utime(path, ns=(1, 1))
    np.testing.assert_array_equal(load_fer2013_csv(path).labels, labels[::-1])


def test_splits_by_usage_and_alias(tmp_path, faces_and_labels):
    images, labels = faces_and_labels
    usage = ["Training"] * 7 + ["PublicTest"] * 7 + ["PrivateTest"] * 7
    dataset = read_fer2013_csv(write_fer_csv(tmp_path / "f.csv", labels, images, usage))
    for alias, name in (("train", "Training"), ("VAL", "PublicTest"), ("test", "PrivateTest")):
        assert set(dataset.split(alias).usage) == {name}
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        dataset.split("dev")


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "DATA_DIR", tmp_path)
    monkeypatch.delenv("FER2013_CSV", raising=False)
    assert sources.find_fer2013() is None
    (tmp_path / "fer2013.csv.gz").write_bytes(b"")
    assert sources.find_fer2013() == tmp_path / "fer2013.csv.gz"
    monkeypatch.setenv("FER2013_CSV", "/elsewhere/fer.csv")
    assert str(sources.find_fer2013()) == "/elsewhere/fer.csv"
    assert str(sources.find_fer2013("given.csv")) == "given.csv"


def test_stratified_sample_keeps_other_splits(synthetic_csv):
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    sample = data.stratified_sample(dataset, 140, seed=0)
    assert abs(len(sample.split("Training")) - 140) <= 7
    assert len(sample.split("PublicTest")) == 70 and sample.checksum != dataset.checksum


@pytest.mark.fer2013
def test_real_fer2013_counts():
    path = os.environ.get("FER2013_CSV")
    if not path:
        pytest.skip("set FER2013_CSV to the FER-2013 CSV to run this test")
    dataset = load_fer2013_csv(path)
    counts = dataset.counts()
    assert counts["Training"].tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert counts["PublicTest"].tolist() == [467, 56, 496, 895, 653, 415, 607]
