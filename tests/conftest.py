"""Shared fixtures: small synthetic data, the sample media, an untrained classifier."""

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
def untrained():
    import keras

    from fer_utils.model import FaceClassifier, build_seed_cnn

    keras.utils.set_random_seed(0)
    return FaceClassifier(build_seed_cnn(), name="untrained")


def pytest_configure(config):
    """Before the workers start: the fer-kit kernel the notebooks name is registered, and the
    default data is written and cached once (notebooks on parallel workers would race)."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has done it
        return
    from fer_utils import load_dataset
    from fer_utils.reports import kernel_name

    kernel_name()
    load_dataset()  # FER-2013 when it is found, else the kit's synthetic faces
