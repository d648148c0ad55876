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
from conftest import saved_weights

from fer_utils.artifacts import card_path, update_card
from fer_utils.pipeline import Augmentation
from fer_utils.training import TrainConfig, profile, train

pytestmark = pytest.mark.slow

TINY = TrainConfig(profile="test", epochs=3, batch_size=32, warmup_epochs=1,
                   augmentation=Augmentation(erase=0.2), patience=10, seed=3)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fer_utils.cli", "train", *args]


def test_same_seed_gives_the_same_weights(patterns, tmp_path):
    config = replace(TINY, epochs=1)
    first, second, other = (train(patterns, tmp_path / name, replace(config, seed=seed),
                                  verbose=0, export=False).out
                            for name, seed in (("a", 3), ("b", 3), ("c", 4)))
    for a, b in zip(saved_weights(first / "last.keras"), saved_weights(second / "last.keras"),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(
        saved_weights(first / "last.keras"), saved_weights(other / "last.keras"), strict=True))


def test_a_run_keeps_its_best_epoch_and_leaves_its_artifacts(patterns, tmp_path, capfd):
    result = train(patterns, tmp_path / "run", TINY, verbose=2)
    printed = capfd.readouterr().out
    assert printed.count("val_accuracy") == 3  # one line per epoch
    assert "Saved artifact" not in printed and "TensorSpec" not in printed  # no export listing
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
    assert card["data"]["sha256"] == patterns.checksum and card["training"]["seed"] == 3
    # A finished run is not trained again: its checkpoints and log are left as they were.
    kept = ("last.keras", "best.keras", "log.csv", "state.json", "fer_cnn.keras")
    stamps = [(result.out / name).stat().st_mtime_ns for name in kept]
    again = train(patterns, result.out, TINY, verbose=0)
    assert [(result.out / name).stat().st_mtime_ns for name in kept] == stamps
    assert again.history.equals(result.history)


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_does(pattern_csv, patterns,
                                                                 tmp_path, capsys):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli("--data", str(pattern_csv), "--epochs", "2", "--batch-size",
                                 "32", "--seed", "5", "--verbose", "0", "--out", str(killed)),
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    state = killed / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["epoch"] >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted = json.loads(state.read_text())
    assert not interrupted["finished"] and interrupted["epoch"] == 1
    # Resumed here by `train` with the settings the command recorded, as rerunning the
    # command does; then the same run straight through, for comparison.
    config = TrainConfig.from_dict(interrupted["config"])
    train(patterns, killed, config, verbose=2, export=False)
    assert f"resuming {killed} after epoch 1 of 2 (best so far: epoch 1," in capsys.readouterr().out
    straight = train(patterns, tmp_path / "straight", config, verbose=0, export=False).out
    for a, b in zip(saved_weights(killed / "last.keras"), saved_weights(straight / "last.keras"),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    logs = [pd.read_csv(run / "log.csv") for run in (killed, straight)]
    assert list(logs[0]["epoch"]) == [1, 2]
    np.testing.assert_array_equal(logs[0]["val_accuracy"], logs[1]["val_accuracy"])


def test_two_logical_cpus_train_under_mirrored_strategy(pattern_csv, tmp_path):
    out = tmp_path / "mirrored"
    subprocess.run(_cli("--data", str(pattern_csv), "--epochs", "1", "--batch-size", "16",
                        "--cpu-devices", "2", "--verbose", "0", "--out", str(out)),
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    state = json.loads((out / "state.json").read_text())
    assert state["replicas"] == 2 and state["global_batch"] == 32
    assert state["finished"]


def test_a_full_disk_keeps_the_last_good_checkpoint(patterns, tmp_path, monkeypatch):
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
        train(patterns, out, TINY, verbose=0, export=False)
    monkeypatch.undo()
    assert json.loads((out / "state.json").read_text())["epoch"] == 1
    assert not list(out.glob(".partial-*"))
    keras.models.load_model(out / "last.keras", compile=False)  # intact and loadable
    assert train(patterns, out, TINY, verbose=0, export=False).state["finished"]


def test_a_different_configuration_refuses_an_existing_run(patterns, tmp_path):
    train(patterns, tmp_path / "run", replace(TINY, epochs=1), verbose=0, export=False)
    with pytest.raises(ValueError, match=r"holds another run \(epochs: 1 in the folder, 3 asked\)"):
        train(patterns, tmp_path / "run", TINY, verbose=0)


def test_profiles_and_balancing_options_are_checked():
    assert profile("full").epochs > profile("quick").epochs
    assert profile("quick", epochs=2, seed=None).epochs == 2
    with pytest.raises(ValueError, match="unknown profile"):
        profile("huge")
    with pytest.raises(ValueError, match="balance must be one of"):
        TrainConfig(balance="smote")


def test_framed_selection_keeps_the_epoch_best_on_both_framings(patterns, tmp_path):
    from fer_utils.artifacts import load_model
    from fer_utils.framing import framed_copy
    from fer_utils.training import selection_score

    result = train(patterns, tmp_path / "run", replace(TINY, select="framed"), verbose=0)
    log = result.history
    assert log["val_framed_accuracy"].between(0, 1).all() and len(log) == 3
    best = selection_score(log, "framed").idxmax()
    assert result.state["best_epoch"] == log["epoch"][best]
    assert result.state["best_val_accuracy"] == pytest.approx(log["val_accuracy"][best])
    # The logged score is the exported model's accuracy on PublicTest's framed copy.
    val = patterns.split("PublicTest")
    framed = load_model(result.out / "fer_cnn.keras").predict(framed_copy(val.images))
    assert (framed.argmax(1) == val.labels).mean() == pytest.approx(
        log["val_framed_accuracy"][best], abs=1e-6)
    card = json.loads((result.out / "fer_cnn.card.json").read_text())
    assert card["training"]["select"] == "framed" and "framed copy" in card["split_protocol"]


def test_the_card_says_where_the_splits_came_from(patterns):
    from fer_utils.training import split_protocol

    official = split_protocol(patterns, "single")
    assert official.startswith("official FER-2013 usage") and "framed" not in official
    assert split_protocol(replace(patterns, synthetic=True), "single").startswith("synthetic")
    assert split_protocol(replace(patterns, own_split=True), "framed").startswith(
        "the kit's own seeded split")


def test_the_selection_score_can_prefer_a_later_epoch():
    from fer_utils.training import selection_score

    log = pd.DataFrame({"val_accuracy": [0.60, 0.58], "val_framed_accuracy": [0.50, 0.56]})
    assert selection_score(log, "single").idxmax() == 0
    assert selection_score(log, "framed").idxmax() == 1
    assert selection_score(log.iloc[1], "framed") == pytest.approx(0.57)
    with pytest.raises(ValueError, match="select must be one of single, framed"):
        TrainConfig(select="grid")


def test_a_profile_s_augmentation_can_be_widened_one_setting_at_a_time():
    wide = profile("robust", zoom=0.25, rotation_deg=15, crop_pad=6)
    assert (wide.augmentation.zoom, wide.augmentation.rotation_deg) == (0.25, 15)
    assert wide.augmentation.crop_pad == 6 and wide.augmentation.flip
    assert replace(wide, augmentation=profile("robust").augmentation) == profile("robust")
    assert profile("robust", augment=False).augmentation is None
    with pytest.raises(ValueError, match=r"augmentation settings \(zoom\) given for a run "
                                         "without augmentation"):
        profile("robust", augment=False, zoom=0.25)


def test_the_robust_recipe_is_full_with_framing_jitter_longer_then_finetuned_wider():
    full, robust, tune = profile("full"), profile("robust"), profile("finetune", init_model="m")
    assert robust.augmentation.zoom == 0.15 and robust.augmentation.rotation_deg == 10
    assert tune.augmentation == replace(robust.augmentation, zoom=0.25) != full.augmentation
    assert robust.epochs > full.epochs and robust.init_model is None
    assert robust.select == tune.select == "framed" != full.select
    assert tune.learning_rate == robust.learning_rate / 10 and tune.epochs == 10
    same = ("batch_size", "learning_rate", "optimizer", "weight_decay", "momentum", "balance")
    assert all(getattr(robust, k) == getattr(full, k) for k in same)


def test_finetuning_starts_from_the_given_model_and_records_it(patterns, tmp_path):
    base = train(patterns, tmp_path / "base", replace(TINY, epochs=1), verbose=0)
    start = str(base.out / "fer_cnn.keras")
    # A shipped model's card also names its crop around detector boxes, chosen after training.
    framing = {"haar": {"margin": 0.05, "offset": 0.0}}
    update_card(card_path(start), {"preprocessing": {"input_size": 48, "scale": "unit",
                                                     "framing": framing}})
    tuned = train(patterns, tmp_path / "tuned", replace(TINY, epochs=1, init_model=start,
                                                       learning_rate=1e-9, warmup_epochs=0),
                  verbose=0)
    # At a vanishing learning rate the tuned weights are the starting ones (BatchNorm's moving
    # statistics still follow the data, so compare the trainable kernels only).
    first, after = saved_weights(Path(start)), saved_weights(tuned.out / "fer_cnn.keras")
    assert np.allclose(first[0], after[0], atol=1e-6)
    card = json.loads((tuned.out / "fer_cnn.card.json").read_text())
    assert card["training"]["init"]["path"] == start
    assert len(card["training"]["init"]["sha256"]) == 64
    assert card["preprocessing"]["framing"] == {}


def test_finetuning_refuses_a_model_of_another_input_and_needs_init(patterns, tmp_path):
    from fer_utils.model import build_seed_cnn

    other = tmp_path / "wide.keras"
    build_seed_cnn(input_size=64).save(other)
    with pytest.raises(ValueError, match="wide.keras takes .*input_size=64.*same input"):
        train(patterns, tmp_path / "run", replace(TINY, init_model=str(other)), verbose=0)
    with pytest.raises(ValueError, match="finetune profile trains on from a trained model"):
        profile("finetune")
    assert profile("finetune", init_model=str(other)).augmentation.zoom > 0
