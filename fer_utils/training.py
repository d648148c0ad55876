"""Training that checkpoints every epoch, resumes exactly, and records what it did.

A run folder holds `last.keras` (weights and optimizer state after the last finished epoch),
`best.keras` (the best epoch on PublicTest, as `select` says), `log.csv`, `state.json` and,
when done, the exported model `fer_cnn.*` with its model card and `manifest.json`. One run
writes a folder at a time.

An epoch is committed as one unit, so that a kill between any two writes resumes exactly:
its checkpoint goes to `checkpoints/epoch-NNN.keras` (and, when it is the best so far, its
weights to `checkpoints/best-NNN.keras`), then `state.json` is replaced in one move, naming
those files, the dropout layers' random states and the log rows. Only then are `last.keras`
and `best.keras` (links to the named checkpoints) and `log.csv` brought up to date and older
checkpoints removed; a resumed run reads `state.json` alone and redoes these steps first.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .artifacts import card_path, export_model, load_model, model_card, save_keras
from .atomic import atomic_path, pause_point, write_json
from .balance import class_weights, oversample
from .data import FaceDataset
from .evaluation import classification_metrics, record_prior_correction
from .framing import framed_copy
from .model import FaceClassifier, build_model
from .options import check_fields
from .outputs import STATE, output_lock, sha256_file, visible_files, write_manifest
from .pipeline import (
    Augmentation,
    Preprocessing,
    eval_dataset,
    preprocess,
    steps_per_epoch,
    training_dataset,
)
from .schedules import WarmupCosine

__all__ = [
    "BALANCING", "OPTIMIZERS", "SELECTION", "NO_DECAY", "TrainConfig", "PROFILES", "profile",
    "make_deterministic", "distribution_strategy", "split_cpu", "make_optimizer",
    "calibrate_batchnorm", "start_from", "conv_dropouts", "EarlyDropout", "swap_ema_weights",
    "ema_weights", "EMAValidation", "FramedValidation", "selection_score", "CHECKPOINTS",
    "publish", "Checkpoint", "TrainResult", "train", "split_protocol", "training_log",
]

BALANCING = ("none", "class_weight", "oversample")
OPTIMIZERS = ("adam", "sgd")
# What picks the best epoch on PublicTest. "framed" (framing.framed_copy) is for a model that
# must also take the crops a face detector makes.
SELECTION = {"single": "accuracy on PublicTest",
             "framed": "the mean of PublicTest accuracy on its crops and on a framed copy"}
# Variables that decoupled weight decay leaves alone: BatchNorm scale and shift, and biases.
NO_DECAY = ("gamma", "beta", "bias")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's result."""

    profile: str = "quick"
    architecture: str = "seed_cnn"
    epochs: int = 6
    batch_size: int = 64  # per device; multiplied by the number of replicas
    learning_rate: float = 1e-3  # peak, reached after warmup, then cosine decay to 0
    warmup_epochs: int = 1
    optimizer: str = "adam"  # adam | sgd (SGD with Nesterov momentum)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0  # decoupled; BatchNorm gamma/beta and biases are exempt
    early_dropout_epochs: int = 0  # conv blocks' Dropout only for the first N epochs; 0: always
    ema_momentum: float = 0.0  # EMA of the weights for validation, best checkpoint, export; 0: off
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    balance: str = "none"  # none | class_weight | oversample (training split only)
    label_smoothing: float = 0.1
    patience: int = 8  # epochs without a better selection score before stopping
    seed: int = 0
    init_model: str | None = None  # start from this trained model's weights; None: from scratch
    select: str = "single"  # single | framed: what picks the best epoch (see SELECTION)

    def __post_init__(self) -> None:
        if self.balance not in BALANCING:
            raise ValueError(f"balance must be one of {', '.join(BALANCING)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.select not in SELECTION:
            raise ValueError(f"select must be one of {', '.join(SELECTION)}")
        check_fields(self, ("epochs", "batch_size", "learning_rate", "warmup_epochs", "momentum",
                            "weight_decay", "early_dropout_epochs", "label_smoothing", "patience",
                            "ema_momentum"))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        aug = values.get("augmentation")
        return cls(**{**values, "augmentation": Augmentation(**aug) if aug else None})


PROFILES: dict[str, TrainConfig] = {
    # Minutes on 2 cores: the default for the report run and the notebooks.
    "quick": TrainConfig(profile="quick", epochs=6, batch_size=32, patience=6),
    # The previously shipped recipe (2 to 8 hours on 2 cores, by machine): SGD with Nesterov
    # momentum and decoupled weight decay (Khaireddin & Chen 2021), flips plus pad-and-crop,
    # and the conv blocks' dropout only in the first sixth (early dropout, Liu et al. 2023),
    # because the seed CNN underfits FER-2013.
    "full": TrainConfig(profile="full", epochs=90, batch_size=128, learning_rate=0.02,
                        warmup_epochs=2, optimizer="sgd", weight_decay=1e-3,
                        early_dropout_epochs=15, label_smoothing=0.0, patience=30,
                        augmentation=Augmentation(rotation_deg=0, shift=0, zoom=0, crop_pad=4)),
    # The shipped model's first stage: `full` with scale jitter and rotations, since a detector's
    # box never frames a face exactly as the dataset's crops do, a third longer (the `full` run
    # ended 13 points above validation in training accuracy: room for harder augmentation),
    # and the epoch picked on crops and a framed copy (5 to 13 hours on 2 idle cores, by
    # machine; the run resumes exactly across sessions).
    "robust": TrainConfig(profile="robust", epochs=120, batch_size=128, learning_rate=0.02,
                          warmup_epochs=2, optimizer="sgd", weight_decay=1e-3,
                          early_dropout_epochs=20, label_smoothing=0.0, patience=40,
                          augmentation=Augmentation(rotation_deg=10, shift=0, zoom=0.15,
                                                    crop_pad=4), select="framed"),
    # Its second stage: that model (--init) trained on for 10 epochs at a tenth of the learning
    # rate with wider scale jitter (25 to 30 minutes); conv dropout only in the warm-up epoch.
    "finetune": TrainConfig(profile="finetune", epochs=10, batch_size=128, learning_rate=0.002,
                            warmup_epochs=1, optimizer="sgd", weight_decay=1e-3,
                            early_dropout_epochs=1, label_smoothing=0.0, patience=20,
                            augmentation=Augmentation(rotation_deg=10, shift=0, zoom=0.25,
                                                      crop_pad=4), select="framed"),
}


_AUGMENTATION_FIELDS = {f.name for f in fields(Augmentation)}


def profile(name: str, *, augment: bool = True, **overrides) -> TrainConfig:
    """A named profile with settings changed by name, each a field of TrainConfig or of its
    Augmentation (`zoom`, `crop_pad`, ...; None values are ignored); `augment=False` trains
    without augmentation."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    changes = {k: given.pop(k) for k in _AUGMENTATION_FIELDS & given.keys()}
    config = replace(PROFILES[name], **given)
    if name == "finetune" and not config.init_model:
        raise ValueError("the finetune profile trains on from a trained model: name it with "
                         "--init (for example models/fer_cnn.keras)")
    if not augment or config.augmentation is None:
        if changes:
            raise ValueError(f"augmentation settings ({', '.join(sorted(changes))}) given for a "
                             "run without augmentation (--no-augment); drop one or the other")
        return replace(config, augmentation=None)
    return replace(config, augmentation=replace(config.augmentation, **changes))


def make_deterministic(seed: int) -> None:
    """Seed Python, NumPy and TF and make TF ops deterministic (same seed -> same weights)."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over several GPUs or logical CPUs, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    devices = gpus if len(gpus) > 1 else cpus if not gpus and len(cpus) > 1 else []
    if devices:
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    return tf.distribute.get_strategy()


def split_cpu(devices: int) -> None:
    """Expose the CPU as several logical devices (call before TensorFlow starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])


def make_optimizer(config: TrainConfig, steps: int) -> keras.optimizers.Optimizer:
    """The configured optimizer on the warmup-cosine schedule, weight decay set up."""
    schedule = WarmupCosine(config.learning_rate, config.warmup_epochs * steps,
                            config.epochs * steps)
    decay = config.weight_decay or None
    ema = {"use_ema": bool(config.ema_momentum), "ema_momentum": config.ema_momentum}
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum, nesterov=True,
                                         weight_decay=decay, **ema)
    else:
        optimizer = keras.optimizers.Adam(schedule, weight_decay=decay, **ema)
    if decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
    return optimizer


def calibrate_batchnorm(model: keras.Model, images: np.ndarray, spec: Preprocessing,
                        count: int = 512) -> None:
    """Start each BatchNormalization layer's running mean and variance from real activations.

    Keras starts them at 0 and 1, and with momentum 0.99 they need several hundred steps to
    forget that; until then a short run is judged (in inference mode) with wrong statistics.
    """
    h = preprocess(images[:count], spec)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(tf.reduce_mean(h, axis=[0, 1, 2]))
            layer.moving_variance.assign(tf.math.reduce_variance(h, axis=[0, 1, 2]))
        h = layer(h, training=False)


def start_from(model: keras.Model, path: str, spec: Preprocessing) -> None:
    """Copy a trained model's weights into `model` (same architecture and input) to train on."""
    trained = load_model(path)
    # The crop around a detector's boxes is chosen for each model after training (its card's
    # framing); the dataset crops a run feeds depend only on the input size and scaling.
    if replace(trained.preprocessing, framing=spec.framing) != spec:
        raise ValueError(f"{path} takes {trained.preprocessing}, but this run feeds "
                         f"{spec}; start from a model trained on the same input.")
    try:
        model.set_weights(trained.model.get_weights())
    except ValueError as e:
        raise ValueError(f"{path} is not a {model.name} like the one this run trains ({e}); "
                         "start from a model of the same architecture.") from e


def _seed_states(model: keras.Model) -> dict[str, list]:
    """The dropout layers' random-generator states, which a checkpoint must carry."""
    return {layer.name: layer.seed_generator.state.numpy().tolist()
            for layer in model.layers if hasattr(layer, "seed_generator")}


def _restore_seed_states(model: keras.Model, states: dict[str, list]) -> None:
    for layer in model.layers:
        if layer.name in states:
            layer.seed_generator.state.assign(np.array(states[layer.name]))


def conv_dropouts(model: keras.Model) -> list[keras.layers.Dropout]:
    """The Dropout layers inside the conv blocks (not the head's)."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.Dropout) and layer.name.startswith("block")]


class EarlyDropout(keras.callbacks.Callback):
    """Conv dropout for the first `epochs` epochs only; saved models keep the seed's rates.

    Dropout reads its rate when the train step is traced, so the rate is set to 0 at the start
    of every later epoch, the step is traced anew once, and the rate is put back at the end
    of the epoch, before any checkpoint is written.
    """

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs, self.rates, self.retraced = epochs, {}, False

    def on_epoch_begin(self, epoch, logs=None):
        if epoch < self.epochs:
            return
        for layer in conv_dropouts(self.model):
            self.rates[layer.name] = layer.rate
            layer.rate = 0.0
        if not self.retraced:
            self.model.make_train_function(force=True)
            self.retraced = True

    def on_epoch_end(self, epoch, logs=None):
        for layer in conv_dropouts(self.model):
            layer.rate = self.rates.get(layer.name, layer.rate)


def swap_ema_weights(model: keras.Model) -> None:
    """Exchange the model's trainable weights with the optimizer's moving averages, bit-exact.

    keras.callbacks.SwapEMAWeights swaps through sums and differences on TensorFlow, which
    rounds, and an exact resume needs the raw weights back unchanged.
    """
    optimizer = model.optimizer
    for weight, average in zip(optimizer._trainable_variables,
                               optimizer._model_variables_moving_average, strict=True):
        raw = keras.ops.convert_to_numpy(weight)
        weight.assign(average)
        average.assign(raw)


@contextmanager
def ema_weights(model: keras.Model) -> Iterator[None]:
    """Inside the block the model holds the EMA weights, when its optimizer keeps them."""
    if not model.optimizer.use_ema:
        yield
        return
    swap_ema_weights(model)
    try:
        yield
    finally:
        swap_ema_weights(model)


class EMAValidation(keras.callbacks.Callback):
    """Validate with the EMA weights, then hand the raw weights back to training."""

    def on_test_begin(self, logs=None):
        swap_ema_weights(self.model)

    def on_test_end(self, logs=None):
        swap_ema_weights(self.model)


class FramedValidation(keras.callbacks.Callback):
    """After each epoch, accuracy on PublicTest's framed copy (with the EMA weights, when kept)
    as `val_framed_accuracy` in the epoch's logs, for the callbacks after it."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, spec: Preprocessing):
        super().__init__()
        self.data = eval_dataset(framed_copy(images), labels, batch_size=256, spec=spec)

    def on_epoch_end(self, epoch, logs=None):
        with ema_weights(self.model):
            scores = self.model.evaluate(self.data, verbose=0, return_dict=True)
        logs["val_framed_accuracy"] = float(scores["accuracy"])


def selection_score(log: dict | pd.DataFrame, select: str) -> float | pd.Series:
    """What picks the best epoch from an epoch's log row (or a whole log): PublicTest accuracy,
    averaged with the framed copy's accuracy when `select` is "framed"."""
    if select == "framed":
        return (log["val_accuracy"] + log["val_framed_accuracy"]) / 2
    return log["val_accuracy"]


CHECKPOINTS = "checkpoints"  # the epoch-numbered checkpoints that state.json names


def _link(source: Path, path: Path) -> None:
    """Make `path` the same file as `source` in one move (a hard link, else a copy)."""
    with atomic_path(path) as tmp:
        try:
            os.link(source, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(source, tmp)


def publish(out: Path, state: dict) -> None:
    """Bring last.keras, best.keras and log.csv up to the epoch that state.json records, and
    remove the checkpoints it no longer names; safe to repeat after a kill."""
    number = state["epoch"]
    _link(out / state["checkpoint"], out / "last.keras")
    pause_point(f"checkpoint:{number}:last.keras")
    if state.get("best_checkpoint"):
        _link(out / state["best_checkpoint"], out / "best.keras")
        pause_point(f"checkpoint:{number}:best.keras")
    with atomic_path(out / "log.csv") as tmp:
        pd.DataFrame(state["history"]).to_csv(tmp, index=False)
    pause_point(f"checkpoint:{number}:log.csv")
    named = {Path(state["checkpoint"]).name, Path(state.get("best_checkpoint") or "").name}
    for old in sorted((out / CHECKPOINTS).glob("*.keras")):
        if old.name not in named:
            old.unlink()
    pause_point(f"checkpoint:{number}:pruned")


class Checkpoint(keras.callbacks.Callback):
    """After each epoch: its checkpoint committed with state.json as one unit (see the module's
    docstring), the published files, and early stopping.

    With EMA, the best checkpoint holds the EMA weights and the epoch's checkpoint the raw ones
    (the optimizer's averages travel in its state), so that a resumed run continues exactly.
    """

    def __init__(self, out: Path, state: dict, patience: int, select: str):
        super().__init__()
        self.out, self.state, self.patience, self.select = out, state, patience, select
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        number, seconds = epoch + 1, time.perf_counter() - self.started
        lr = self.model.optimizer.learning_rate
        row = {"epoch": number, **{k: float(v) for k, v in logs.items()},
               "learning_rate": float(lr.numpy() if hasattr(lr, "numpy") else lr),
               "seconds": round(seconds, 2)}
        state = self.state
        checkpoint = f"{CHECKPOINTS}/epoch-{number:03d}.keras"
        save_keras(self.model, self.out / checkpoint)
        pause_point(f"checkpoint:{number}:epoch")
        record = state["best_epoch"] and state["history"][state["best_epoch"] - 1]
        if not record or selection_score(logs, self.select) > selection_score(record, self.select):
            best = f"{CHECKPOINTS}/best-{number:03d}.keras"
            with ema_weights(self.model):
                save_keras(self.model, self.out / best)
            pause_point(f"checkpoint:{number}:best")
            state.update(best_val_accuracy=logs["val_accuracy"], best_epoch=number,
                         best_checkpoint=best, wait=0)
        else:
            state["wait"] += 1
        state.update(epoch=number, checkpoint=checkpoint,
                     history=[*state["history"][:epoch], row],
                     train_seconds=state["train_seconds"] + seconds,
                     seed_states=_seed_states(self.model))
        if state["wait"] >= self.patience:
            state["stopped_early"] = True
            self.model.stop_training = True
        write_json(self.out / STATE, state)  # the epoch is committed
        pause_point(f"checkpoint:{number}:state")
        publish(self.out, state)


@dataclass
class TrainResult:
    """What a finished run left behind."""

    out: Path
    config: TrainConfig
    history: pd.DataFrame
    state: dict

    @property
    def best_model_path(self) -> Path:
        return self.out / "best.keras"


def _new_state(config: TrainConfig, dataset: FaceDataset) -> dict:
    init = config.init_model and {"path": config.init_model,
                                  "sha256": sha256_file(Path(config.init_model))}
    return {"config": config.to_dict(), "data": {"source": dataset.source,
            "sha256": dataset.checksum, "synthetic": dataset.synthetic}, "init": init,
            "epoch": 0, "best_val_accuracy": -1.0, "best_epoch": 0, "wait": 0,
            "checkpoint": None, "best_checkpoint": None, "history": [],
            "train_seconds": 0.0, "stopped_early": False, "finished": False}


def _setting_differences(saved: dict, asked: dict, prefix: str = "") -> list[str]:
    """'name: X in the folder, Y asked' for every setting that differs (nested ones dotted)."""
    found = []
    for key in sorted(saved.keys() | asked.keys()):
        old, new = saved.get(key), asked.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += _setting_differences(old, new, f"{prefix}{key}.")
        elif old != new or (key in saved) != (key in asked):
            shown = [repr(values[key]) if key in values else "unset" for values in (saved, asked)]
            found.append(f"{prefix}{key}: {shown[0]} in the folder, {shown[1]} asked")
    return found


def _data_identity(source: str, checksum: str) -> str:
    """A dataset as a person tells it apart: its source and the head of its checksum."""
    digest, plus, rest = checksum.partition("+")
    return f"{source} (sha256 {digest[:12]}…{plus}{rest})"


def _load_state(out: Path, config: TrainConfig, dataset: FaceDataset) -> dict:
    """The saved state of a run in `out`, or a fresh one; refuses to mix different runs and
    says which settings or data differ."""
    path = out / STATE
    if not path.exists():
        return _new_state(config, dataset)
    state = json.loads(path.read_text())
    if "history" not in state:  # a run begun before epochs were committed with state.json
        log = pd.read_csv(out / "log.csv") if (out / "log.csv").exists() else pd.DataFrame()
        state.update(checkpoint="last.keras", best_checkpoint="best.keras",
                     history=log.head(state["epoch"]).to_dict("records"))
    # Read back as a config first, so that a field added since the run began takes its default.
    saved_config = TrainConfig.from_dict(state["config"]).to_dict()
    differences = _setting_differences(saved_config, config.to_dict())
    if state["data"]["sha256"] != dataset.checksum:
        saved = _data_identity(state["data"]["source"], state["data"]["sha256"])
        differences.append(f"data: {saved} in the folder, "
                           f"{_data_identity(dataset.source, dataset.checksum)} asked")
    if differences:
        raise ValueError(f"{out} holds another run ({'; '.join(differences)}); pass another "
                         "output folder, or delete it to start over.")
    if state["epoch"] and not (out / state["checkpoint"]).exists():
        raise FileNotFoundError(f"{out}/{STATE} names {state['checkpoint']}, which is missing; "
                                "delete the folder to start over.")
    return state


def train(dataset: FaceDataset, out: str | Path, config: TrainConfig | None = None, *,
          callbacks: list[keras.callbacks.Callback] | tuple = (), verbose: int | str = "auto",
          export: bool = True) -> TrainResult:
    """Train on the Training split, select on PublicTest; resumes a run left in `out`.

    With `export`, the best checkpoint is written as fer_cnn.* with its model card; `verbose`
    is Keras's progress display and never lets the converters' listings through.
    """
    config = config or PROFILES["quick"]
    out = Path(out)
    with output_lock(out, "training") as run:
        state = _load_state(out, config, dataset)
        if state["epoch"] and not state["finished"]:
            publish(out, state)  # a kill may have come between state.json and these files
            if verbose:
                print(f"resuming {out} after epoch {state['epoch']} of {config.epochs} (best so "
                      f"far: epoch {state['best_epoch']}, PublicTest accuracy "
                      f"{state['best_val_accuracy']:.2%})")
        if not state["finished"]:
            _fit(dataset, out, config, state, list(callbacks), verbose, export)
            write_manifest(out, visible_files(out), run, "training")
    history = pd.read_csv(out / "log.csv")
    return TrainResult(out=out, config=config, history=history, state=state)


def _fit(dataset: FaceDataset, out: Path, config: TrainConfig, state: dict,
         callbacks: list, verbose: int | str, export: bool) -> None:
    make_deterministic(config.seed)
    train_set, val_set = dataset.split("Training"), dataset.split("PublicTest")
    weights = None
    if config.balance == "oversample":
        train_set = oversample(train_set, config.seed)
    elif config.balance == "class_weight":
        weights = class_weights(train_set)[train_set.labels]
    strategy = distribution_strategy()
    batch = config.batch_size * strategy.num_replicas_in_sync
    steps = steps_per_epoch(len(train_set), batch)
    spec = Preprocessing(input_size=train_set.images.shape[1])
    state.update(replicas=strategy.num_replicas_in_sync, global_batch=batch)
    with strategy.scope():
        model = build_model(config.architecture, input_size=spec.input_size)
        model.compile(optimizer=make_optimizer(config, steps),
                      loss=keras.losses.CategoricalCrossentropy(
                          label_smoothing=config.label_smoothing),
                      metrics=["accuracy"])
        if state["epoch"]:
            # Weights, optimizer slots and step count from the last epoch; the optimizer is
            # built first so its weight-decay exclusions (not saved in files) hold.
            model.optimizer.build(model.trainable_variables)
            model.load_weights(out / state["checkpoint"])
            _restore_seed_states(model, state["seed_states"])
        elif config.init_model:
            start_from(model, config.init_model, spec)
        else:
            calibrate_batchnorm(model, train_set.images, spec)
    # EarlyDropout restores the seed's rates, and FramedValidation adds its score, before
    # Checkpoint saves the epoch.
    callbacks = [*([EarlyDropout(config.early_dropout_epochs)] if config.early_dropout_epochs
                   else []), *([EMAValidation()] if config.ema_momentum else []),
                 *([FramedValidation(val_set.images, val_set.labels, spec)]
                   if config.select == "framed" else []),
                 Checkpoint(out, state, config.patience, config.select), *callbacks]
    if state["epoch"] < config.epochs and state["wait"] < config.patience:
        data = training_dataset(train_set.images, train_set.labels, batch_size=batch,
                                seed=config.seed, epochs=config.epochs, spec=spec,
                                start_epoch=state["epoch"], augmentation=config.augmentation,
                                sample_weights=weights)
        val = eval_dataset(val_set.images, val_set.labels, batch_size=256, spec=spec)
        model.fit(data, epochs=config.epochs, initial_epoch=state["epoch"],
                  steps_per_epoch=steps, validation_data=val, verbose=verbose, shuffle=False,
                  callbacks=callbacks)
    if export:
        _export(dataset, out, config, state, spec)
    state["finished"] = True
    write_json(out / STATE, state)


def split_protocol(dataset: FaceDataset, select: str) -> str:
    """Where the splits came from and how a run used them, for its model card."""
    splits = ("synthetic faces in FER-2013's three splits" if dataset.synthetic else
              "the kit's own seeded split (the data had none)" if dataset.own_split else
              "official FER-2013 usage")
    return (f"{splits}: trained on Training, checkpoint chosen by {SELECTION[select]}; "
            "PrivateTest never touched")


def _export(dataset: FaceDataset, out: Path, config: TrainConfig, state: dict,
            spec: Preprocessing) -> None:
    """Score the best checkpoint on PublicTest and export it with its model card, which also
    records the Training class prior and the prior correction's effect on PublicTest."""
    best = keras.models.load_model(out / state["best_checkpoint"], compile=False)
    classifier = FaceClassifier(model=best, preprocessing=spec, name="fer_cnn")
    val_set = dataset.split("PublicTest")
    metrics = classification_metrics(val_set.labels, classifier.predict(val_set.images))
    card = model_card(
        classifier,
        data={**state["data"], "train_images": int((dataset.usage == "Training").sum()),
              "validation_images": len(val_set)},
        split_protocol=split_protocol(dataset, config.select),
        validation={"split": "PublicTest", **metrics},
        training={**config.to_dict(), "epochs_run": state["epoch"],
                  "best_epoch": state["best_epoch"], "stopped_early": state["stopped_early"],
                  "replicas": state["replicas"], "global_batch": state["global_batch"],
                  "init": state.get("init"),
                  "train_seconds": round(state["train_seconds"], 1)})
    files = export_model(classifier, out / "fer_cnn", card)
    record_prior_correction(files["keras"], dataset)


def training_log(model: str | Path) -> pd.DataFrame:
    """The whole training log of a model a run exported: the log.csv beside it, after the logs
    of the runs it trained on from (its card's `training.init`, each checked against the
    checksum the card records); `stage` numbers the runs from 1, `profile` names their recipes
    and `epoch` counts on across them. A shipped model's log (`fer_cnn.log.csv`) is whole."""
    model = Path(model)
    kept = model.with_name(f"{model.stem}.log.csv")
    if kept.exists():
        return pd.read_csv(kept)
    if not (model.parent / "log.csv").exists():
        raise FileNotFoundError(f"{model}: no training log beside it (log.csv, or {kept.name}); "
                                "name a model exported by a training run")
    training = json.loads(card_path(model).read_text())["training"]
    earlier = []
    if training.get("init"):
        start = Path(training["init"]["path"])
        if not start.exists() or sha256_file(start) != training["init"]["sha256"]:
            raise FileNotFoundError(f"{model} was trained on from {start}, which is gone or has "
                                    "changed since; its log is part of this model's: restore "
                                    "that run folder as it was")
        earlier = [training_log(start)]
    before = earlier[0].iloc[-1] if earlier else {"epoch": 0, "stage": 0}
    log = pd.read_csv(model.parent / "log.csv")
    log = log.assign(epoch=log["epoch"] + int(before["epoch"]), stage=int(before["stage"]) + 1,
                     profile=training["profile"])
    return pd.concat([*earlier, log], ignore_index=True)
