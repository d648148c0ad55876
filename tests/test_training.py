"""Training: resume after a kill, determinism, several devices, checkpoints that survive."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from fer_utils.atomic import write_json
from fer_utils.data import FaceDataset, load_fer2013_csv
from fer_utils.model import FaceClassifier, build_model
from fer_utils.pipeline import Augmentation
from fer_utils.training import (
    TrainConfig,
    _load_state,
    _new_state,
    conv_dropouts,
    make_optimizer,
    profile,
    train,
)

pytestmark = pytest.mark.slow

TINY = TrainConfig(profile="test", epochs=3, batch_size=32, warmup_epochs=1,
                   augmentation=Augmentation(erase=0.2), patience=10, seed=3)


def _pattern_faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images whose class is where a bright square sits: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    images = rng.integers(0, 90, (n, 48, 48)).astype(np.uint8)
    for i, k in enumerate(labels):
        top, left = 4 + 5 * k, 6 + 4 * k
        images[i, top:top + 10, left:left + 10] = 230
    return images, labels


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    images, labels = _pattern_faces(320, seed=0)
    usage = np.where(np.arange(320) < 256, "Training", "PublicTest")
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    pd.DataFrame({"emotion": labels, "pixels": [" ".join(map(str, im.ravel())) for im in images],
                  "Usage": usage}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_csv) -> FaceDataset:
    return load_fer2013_csv(tiny_csv, cache=False)


def _weights(path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in keras.models.load_model(path, compile=False).get_weights()]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fer_utils.cli", "train", *args]


def test_same_seed_gives_the_same_weights(tiny, tmp_path):
    first = train(tiny, tmp_path / "a", TINY, verbose=0)
    second = train(tiny, tmp_path / "b", TINY, verbose=0)
    for a, b in zip(_weights(first.out / "last.keras"), _weights(second.out / "last.keras"),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    other = train(tiny, tmp_path / "c", TrainConfig(**{**TINY.__dict__, "seed": 4}), verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(
        _weights(first.out / "last.keras"), _weights(other.out / "last.keras"), strict=True))


def test_a_run_keeps_its_best_epoch_and_leaves_its_artifacts(tiny, tmp_path):
    result = train(tiny, tmp_path / "run", TINY, verbose=0)
    assert list(result.history["epoch"]) == [1, 2, 3]
    best = result.history["val_accuracy"].idxmax()
    assert result.state["finished"]
    assert result.state["best_val_accuracy"] == pytest.approx(result.history["val_accuracy"][best])
    assert result.state["best_epoch"] == result.history["epoch"][best]
    names = {p.name for p in result.out.iterdir()}
    assert {"best.keras", "last.keras", "log.csv", "state.json", "fer_cnn.keras",
            "fer_cnn.card.json", "fer_cnn.tflite", "fer_cnn.json"} <= names
    card = json.loads((result.out / "fer_cnn.card.json").read_text())
    assert card["validation"]["split"] == "PublicTest"
    assert card["validation"]["accuracy"] == pytest.approx(result.state["best_val_accuracy"],
                                                           abs=1e-6)
    assert card["data"]["sha256"] == tiny.checksum and card["training"]["seed"] == 3
    # A finished run is not trained again.
    again = train(tiny, result.out, TINY, verbose=0)
    assert len(again.history) == 3


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_does(tiny_csv, tmp_path):
    args = ["--data", str(tiny_csv), "--epochs", "4", "--batch-size", "32", "--seed", "5",
            "--verbose", "0"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", str(killed)), env=env)
    state = killed / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = json.loads(state.read_text())
    assert not interrupted["finished"] and 1 <= interrupted["epoch"] < 4
    subprocess.run(_cli(*args, "--out", str(killed)), env=env, check=True)
    straight = tmp_path / "straight"
    subprocess.run(_cli(*args, "--out", str(straight)), env=env, check=True)
    for a, b in zip(_weights(killed / "last.keras"), _weights(straight / "last.keras"),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    logs = [pd.read_csv(run / "log.csv") for run in (killed, straight)]
    assert list(logs[0]["epoch"]) == [1, 2, 3, 4]
    np.testing.assert_array_equal(logs[0]["val_accuracy"], logs[1]["val_accuracy"])


def test_two_logical_cpus_train_under_mirrored_strategy(tiny_csv, tmp_path):
    out = tmp_path / "mirrored"
    subprocess.run(_cli("--data", str(tiny_csv), "--epochs", "1", "--batch-size", "16",
                        "--cpu-devices", "2", "--verbose", "0", "--out", str(out)),
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    state = json.loads((out / "state.json").read_text())
    assert state["replicas"] == 2 and state["global_batch"] == 32
    assert state["finished"]


def test_a_full_disk_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    saves = {"n": 0}
    real_save = keras.Model.save

    def failing_save(self, path, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] > 2:  # epoch 1 writes best.keras and last.keras, then the disk is full
            Path(path).write_bytes(b"half a file")
            raise OSError(28, "No space left on device")
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", failing_save)
    out = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        train(tiny, out, TINY, verbose=0)
    monkeypatch.undo()
    assert json.loads((out / "state.json").read_text())["epoch"] == 1
    assert not list(out.glob(".partial-*"))
    keras.models.load_model(out / "last.keras", compile=False)  # intact and loadable
    assert train(tiny, out, TINY, verbose=0).state["finished"]


def test_a_different_configuration_refuses_an_existing_run(tiny, tmp_path):
    train(tiny, tmp_path / "run", TrainConfig(**{**TINY.__dict__, "epochs": 1}), verbose=0)
    with pytest.raises(ValueError, match=r"holds another run \(epochs: 1 in the folder, 3 asked\)"):
        train(tiny, tmp_path / "run", TINY, verbose=0)


def test_profiles_and_balancing_options_are_checked():
    assert profile("full").epochs > profile("quick").epochs
    assert profile("quick", epochs=2, seed=None).epochs == 2
    with pytest.raises(ValueError, match="unknown profile"):
        profile("huge")
    with pytest.raises(ValueError, match="balance must be one of"):
        TrainConfig(balance="smote")


def test_missing_data_path_is_a_clear_cli_error(tmp_path):
    result = subprocess.run(_cli("--data", str(tmp_path / "nope.csv"), "--out",
                                 str(tmp_path / "r")), capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 2
    assert "nope.csv: no such file" in result.stderr


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_weight_decay_shrinks_kernels_and_spares_batchnorm_and_biases(optimizer):
    config = TrainConfig(optimizer=optimizer, learning_rate=0.5, warmup_epochs=0, epochs=10,
                         weight_decay=0.1)
    model = build_model("seed_cnn")
    decaying = make_optimizer(config, steps=1)
    before = {v.path: np.array(v) for v in model.trainable_variables}
    # Zero gradients: momentum and Adam's moments stay 0, so only the decay moves weights.
    decaying.apply([keras.ops.zeros(v.shape) for v in model.trainable_variables],
                   model.trainable_variables)
    for v in model.trainable_variables:
        name = v.path.rsplit("/", 1)[-1]
        if name in ("gamma", "beta", "bias"):
            np.testing.assert_array_equal(np.array(v), before[v.path], err_msg=v.path)
        else:  # decoupled: kernel * (1 - learning rate * decay), at the peak rate 0.5
            assert name == "kernel"
            np.testing.assert_allclose(np.array(v), before[v.path] * (1 - 0.5 * 0.1),
                                       rtol=1e-6, err_msg=v.path)


# The full profile's recipe in small: SGD, weight decay, flips and pad-and-crop.
RECIPE = TrainConfig(profile="test", epochs=3, batch_size=32, learning_rate=0.05,
                     warmup_epochs=1, optimizer="sgd", weight_decay=1e-3, label_smoothing=0.0,
                     augmentation=Augmentation(rotation_deg=0, shift=0, zoom=0, crop_pad=4),
                     patience=10, seed=3)
EARLY = replace(RECIPE, early_dropout_epochs=1)
EMA = replace(RECIPE, ema_momentum=0.9)


class Interrupted(Exception):
    """Stands for a kill right after a checkpoint."""


class StopAfter(keras.callbacks.Callback):
    """Interrupt training once `epochs` epochs are checkpointed."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise Interrupted


class DropoutRates(keras.callbacks.Callback):
    """The conv blocks' dropout rates that each epoch's training steps ran with."""

    def __init__(self):
        super().__init__()
        self.seen, self.epoch = {}, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        self.seen[self.epoch] = [layer.rate for layer in conv_dropouts(self.model)]


def _resumed(tiny: FaceDataset, out: Path, config: TrainConfig, after: int, callbacks=()):
    """A run interrupted after `after` epochs, then resumed to the end in the same folder."""
    with pytest.raises(Interrupted):
        train(tiny, out, config, callbacks=[StopAfter(after), *callbacks], verbose=0,
              export=False)
    return train(tiny, out, config, callbacks=list(callbacks), verbose=0, export=False)


def _same_runs(a: Path, b: Path) -> None:
    for name in ("last.keras", "best.keras"):
        for x, y in zip(_weights(a / name), _weights(b / name), strict=True):
            np.testing.assert_array_equal(x, y)
    logs = [pd.read_csv(run / "log.csv").drop(columns="seconds") for run in (a, b)]
    pd.testing.assert_frame_equal(logs[0], logs[1])


@pytest.fixture(scope="module")
def recipe_run(tiny, tmp_path_factory):
    return train(tiny, tmp_path_factory.mktemp("recipe"), RECIPE, verbose=0, export=False)


@pytest.fixture(scope="module")
def early_run(tiny, tmp_path_factory):
    return train(tiny, tmp_path_factory.mktemp("early"), EARLY, verbose=0)


def test_early_dropout_changes_training_only_after_its_epochs(recipe_run, early_run):
    plain, early = recipe_run.history, early_run.history
    assert plain["loss"][0] == early["loss"][0]
    assert plain["val_accuracy"][0] == early["val_accuracy"][0]
    assert (plain["loss"][1:] != early["loss"][1:]).all()
    assert early_run.config.to_dict()["early_dropout_epochs"] == 1
    for name in ("last.keras", "best.keras", "fer_cnn.keras"):
        model = keras.models.load_model(early_run.out / name, compile=False)
        assert [layer.rate for layer in model.layers
                if isinstance(layer, keras.layers.Dropout)] == [0.25, 0.25, 0.5], name
    card = json.loads((early_run.out / "fer_cnn.card.json").read_text())
    assert card["training"]["early_dropout_epochs"] == 1
    assert card["parameters"]["total"] == 792_855


def test_resume_across_the_early_dropout_boundary_is_exact(tiny, early_run, tmp_path):
    rates = DropoutRates()
    resumed = _resumed(tiny, tmp_path / "resumed", EARLY, after=1, callbacks=[rates])
    # Epoch 1 ran before the interruption with dropout; the resumed epochs 2 and 3 without.
    assert rates.seen == {1: [0.25, 0.25], 2: [0.0, 0.0], 3: [0.0, 0.0]}
    _same_runs(resumed.out, early_run.out)


@pytest.fixture(scope="module")
def ema_run(tiny, tmp_path_factory):
    return train(tiny, tmp_path_factory.mktemp("ema"), EMA, verbose=0, export=False)


def test_ema_is_what_validation_and_the_best_checkpoint_see(tiny, recipe_run, ema_run):
    plain, ema = recipe_run.history, ema_run.history
    # The average never feeds back into training: the raw weights train exactly as without.
    np.testing.assert_array_equal(plain["loss"], ema["loss"])
    assert (plain["val_loss"] != ema["val_loss"]).all()
    best = FaceClassifier(keras.models.load_model(ema_run.best_model_path, compile=False))
    val = tiny.split("PublicTest")
    accuracy = (best.predict(val.images).argmax(axis=1) == val.labels).mean()
    assert accuracy == pytest.approx(ema_run.state["best_val_accuracy"], abs=1e-6)


def test_resume_with_ema_is_exact(tiny, ema_run, tmp_path):
    _same_runs(_resumed(tiny, tmp_path / "resumed", EMA, after=1).out, ema_run.out)


def test_ema_momentum_is_checked_and_a_run_begun_before_it_existed_still_resumes(tiny,
                                                                                 tmp_path):
    with pytest.raises(ValueError, match=r"ema_momentum must be a finite number in \[0, 1\)"):
        TrainConfig(ema_momentum=1.0)
    older = {k: v for k, v in RECIPE.to_dict().items() if k != "ema_momentum"}
    (tmp_path / "last.keras").write_bytes(b"")
    write_json(tmp_path / "state.json", {**_new_state(RECIPE, tiny), "config": older, "epoch": 1})
    assert _load_state(tmp_path, RECIPE, tiny)["epoch"] == 1
    with pytest.raises(ValueError, match="ema_momentum: 0.0 in the folder, 0.9 asked"):
        _load_state(tmp_path, EMA, tiny)
