"""Shared fixtures: small synthetic data, learnable pattern faces, the sample media and a tilted
copy of the sample talk, an untrained classifier; the order and grouping of tests on the xdist
workers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def write_fer_csv(path: Path, labels, images, usage=None, columns=("emotion", "pixels", "Usage"),
                  compression=None) -> Path:
    """A FER-2013-style CSV from arrays (usage None: no Usage column)."""
    data = {columns[0]: labels, columns[1]: [" ".join(map(str, im.ravel())) for im in images]}
    if usage is not None:
        data[columns[2]] = usage
    pd.DataFrame(data).to_csv(path, index=False, compression=compression)
    return path


def saved_weights(path: Path) -> list[np.ndarray]:
    """The weights of a saved .keras model, as arrays."""
    import keras

    return [np.asarray(w) for w in keras.models.load_model(path, compile=False).get_weights()]


def pattern_faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images whose class is where a bright square sits: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    images = rng.integers(0, 90, (n, 48, 48)).astype(np.uint8)
    for i, k in enumerate(labels):
        top, left = 4 + 5 * k, 6 + 4 * k
        images[i, top:top + 10, left:left + 10] = 230
    return images, labels


@pytest.fixture(scope="session")
def pattern_csv(tmp_path_factory) -> Path:
    """320 pattern faces: 256 Training, 64 PublicTest."""
    images, labels = pattern_faces(320, seed=0)
    usage = np.where(np.arange(320) < 256, "Training", "PublicTest")
    return write_fer_csv(tmp_path_factory.mktemp("patterns") / "patterns.csv", labels, images,
                         usage)


@pytest.fixture(scope="session")
def patterns(pattern_csv):
    """The pattern faces as a FaceDataset."""
    from fer_utils.data import load_fer2013_csv

    return load_fer2013_csv(pattern_csv, cache=False)


@pytest.fixture
def faces_and_labels():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (21, 48, 48), dtype=np.uint8), np.arange(21) % 7


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory) -> Path:
    from fer_utils.synth import write_synthetic_csv

    return write_synthetic_csv(tmp_path_factory.mktemp("synth") / "synth.csv", 280, 70, 70, seed=1)


@pytest.fixture(scope="session")
def samples() -> dict[str, Path]:
    from fer_utils.samples import fetch_samples

    try:
        return fetch_samples()
    except OSError as e:
        pytest.skip(f"sample media unavailable: {e}")


@pytest.fixture(scope="session")
def tilted_clip(samples, tmp_path_factory) -> Path:
    """The sample talk with the head tilted: every frame turned 15 degrees about its centre and
    zoomed 1.5x, same frame size, reflected border (samples.tilted_copy)."""
    from fer_utils.samples import tilted_copy

    return tilted_copy(samples["WolfgangLanger_Pexels.mp4"],
                       tmp_path_factory.mktemp("tilted") / "tilted.mp4", 15, 1.5)


@pytest.fixture(scope="session")
def untrained():
    import keras

    from fer_utils.model import FaceClassifier, build_seed_cnn

    keras.utils.set_random_seed(0)
    return FaceClassifier(build_seed_cnn(), name="untrained")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """For `--dist loadgroup`: each notebook's cells stay together and in order on one worker
    (a module whose tests share a costly module fixture marks itself with `xdist_group`), and
    tests marked slow start first, so the quick ones fill the gaps at the end."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config):
    """Before the workers start: the fer-kit kernel the notebooks name is registered. (The
    default data is written atomically, so workers that make it at once cannot spoil it.)"""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has done it
        return
    from fer_utils.reports import kernel_name

    kernel_name()
