"""The full recipe's options in small: SGD, decoupled weight decay, early dropout, the EMA."""

import json
import os
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import saved_weights

from fer_utils import training
from fer_utils.atomic import write_json
from fer_utils.data import FaceDataset
from fer_utils.model import FaceClassifier, build_model
from fer_utils.pipeline import Augmentation
from fer_utils.training import (
    TrainConfig,
    _load_state,
    _new_state,
    conv_dropouts,
    make_optimizer,
    train,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recipe")]  # shared runs


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


def _resumed(patterns: FaceDataset, out: Path, config: TrainConfig, after: int, callbacks=()):
    """A run interrupted after `after` epochs, then resumed to the end in the same folder."""
    with pytest.raises(Interrupted):
        train(patterns, out, config, callbacks=[StopAfter(after), *callbacks], verbose=0,
              export=False)
    return train(patterns, out, config, callbacks=list(callbacks), verbose=0, export=False)


def _same_runs(a: Path, b: Path) -> None:
    for name in ("last.keras", "best.keras"):
        for x, y in zip(saved_weights(a / name), saved_weights(b / name), strict=True):
            np.testing.assert_array_equal(x, y)
    logs = [pd.read_csv(run / "log.csv").drop(columns="seconds") for run in (a, b)]
    pd.testing.assert_frame_equal(logs[0], logs[1])


@pytest.fixture(scope="module")
def recipe_run(patterns, tmp_path_factory):
    return train(patterns, tmp_path_factory.mktemp("recipe"), RECIPE, verbose=0, export=False)


@pytest.fixture(scope="module")
def early_run(patterns, tmp_path_factory):
    return train(patterns, tmp_path_factory.mktemp("early"), EARLY, verbose=0)


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


def test_resume_across_the_early_dropout_boundary_is_exact(patterns, early_run, tmp_path):
    rates = DropoutRates()
    resumed = _resumed(patterns, tmp_path / "resumed", EARLY, after=1, callbacks=[rates])
    # Epoch 1 ran before the interruption with dropout; the resumed epochs 2 and 3 without.
    assert rates.seen == {1: [0.25, 0.25], 2: [0.0, 0.0], 3: [0.0, 0.0]}
    _same_runs(resumed.out, early_run.out)


@pytest.fixture(scope="module")
def ema_run(patterns, tmp_path_factory):
    return train(patterns, tmp_path_factory.mktemp("ema"), EMA, verbose=0, export=False)


def test_ema_is_what_validation_and_the_best_checkpoint_see(patterns, recipe_run, ema_run):
    plain, ema = recipe_run.history, ema_run.history
    # The average never feeds back into training: the raw weights train exactly as without.
    np.testing.assert_array_equal(plain["loss"], ema["loss"])
    assert (plain["val_loss"] != ema["val_loss"]).all()
    best = FaceClassifier(keras.models.load_model(ema_run.best_model_path, compile=False))
    val = patterns.split("PublicTest")
    accuracy = (best.predict(val.images).argmax(axis=1) == val.labels).mean()
    assert accuracy == pytest.approx(ema_run.state["best_val_accuracy"], abs=1e-6)


def test_resume_with_ema_is_exact(patterns, ema_run, tmp_path):
    _same_runs(_resumed(patterns, tmp_path / "resumed", EMA, after=1).out, ema_run.out)


def test_ema_momentum_is_checked_and_a_run_begun_before_it_existed_still_resumes(patterns,
                                                                                 tmp_path):
    with pytest.raises(ValueError, match=r"ema_momentum must be a finite number in \[0, 1\)"):
        TrainConfig(ema_momentum=1.0)
    older = {k: v for k, v in RECIPE.to_dict().items() if k != "ema_momentum"}
    (tmp_path / "last.keras").write_bytes(b"")
    # Its state.json also predates the epoch-numbered checkpoints: last.keras is its checkpoint.
    layout = ("checkpoint", "best_checkpoint", "history")
    state = {k: v for k, v in _new_state(RECIPE, patterns).items() if k not in layout}
    write_json(tmp_path / "state.json", {**state, "config": older, "epoch": 1})
    assert _load_state(tmp_path, RECIPE, patterns)["epoch"] == 1
    with pytest.raises(ValueError, match="ema_momentum: 0.0 in the folder, 0.9 asked"):
        _load_state(tmp_path, EMA, patterns)


# ------------------------------------------------------ a kill between two checkpoint writes

# Early dropout and the EMA together, over two epochs: the second improves on the first, so
# it writes every file an epoch can write.
GAPS = replace(RECIPE, epochs=2, early_dropout_epochs=1, ema_momentum=0.9)
# The points between an epoch's writes, in order: its checkpoint, its best weights, state.json
# (the commit), then the files published from the state and the pruning of older checkpoints.
WRITES = ["epoch", "best", "state", "last.keras", "best.keras", "log.csv", "pruned"]


class Killed(BaseException):
    """Stands for a SIGKILL at a pause point: nothing in the kit catches it."""


def _kill_at(monkeypatch, name: str) -> None:
    def stop(point: str) -> None:
        if point == name:
            raise Killed(point)

    monkeypatch.setattr(training, "pause_point", stop)


def _same_state(a: Path, b: Path) -> None:
    """Two runs' state.json files agree except in timings."""
    states = [json.loads((run / "state.json").read_text()) for run in (a, b)]
    for state in states:
        state.pop("train_seconds")
        for row in state["history"]:
            row.pop("seconds")
    assert states[0] == states[1]
    assert sorted(os.listdir(a / "checkpoints")) == sorted(os.listdir(b / "checkpoints"))


@pytest.fixture(scope="module")
def gaps_run(patterns, tmp_path_factory):
    run = train(patterns, tmp_path_factory.mktemp("gaps"), GAPS, verbose=0, export=False)
    assert run.state["best_epoch"] == 2  # so that epoch 2 writes its best weights too
    return run


@pytest.mark.parametrize("write", WRITES)
def test_a_kill_after_any_write_of_an_epoch_resumes_exactly(patterns, gaps_run, tmp_path,
                                                            monkeypatch, write):
    out = tmp_path / "killed"
    _kill_at(monkeypatch, f"checkpoint:2:{write}")
    with pytest.raises(Killed):
        train(patterns, out, GAPS, verbose=0, export=False)
    monkeypatch.undo()
    committed = json.loads((out / "state.json").read_text())["epoch"]
    assert committed == (1 if write in ("epoch", "best") else 2)
    resumed = train(patterns, out, GAPS, verbose=0, export=False)
    assert resumed.state["finished"]
    _same_runs(resumed.out, gaps_run.out)
    _same_state(resumed.out, gaps_run.out)


def test_a_finetuning_run_killed_in_its_first_epoch_starts_again_from_its_model(
        patterns, recipe_run, tmp_path, monkeypatch):
    config = replace(GAPS, epochs=1, init_model=str(recipe_run.out / "best.keras"))
    straight = train(patterns, tmp_path / "straight", config, verbose=0, export=False)
    _kill_at(monkeypatch, "checkpoint:1:epoch")
    with pytest.raises(Killed):
        train(patterns, tmp_path / "killed", config, verbose=0, export=False)
    monkeypatch.undo()
    _same_runs(train(patterns, tmp_path / "killed", config, verbose=0, export=False).out,
               straight.out)
