"""The leakage lesson: the seed's protocol against the honest one, on the same data and budget.

The seed oversampled the whole CSV and only then split it at random, so copies of the same
image landed on both sides of the split and its test accuracy measured memory, not skill.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .artifacts import load_model
from .audit import duplicate_audit, twin_rows, twin_share
from .balance import oversample, oversampled_index
from .data import FaceDataset, stratified_sample
from .evaluation import bootstrap_ci, percent_interval
from .paths import run_folder
from .training import TrainConfig, train

__all__ = ["SEED_EPOCHS", "LeakageLesson", "seed_protocol_split", "honest_split",
           "leakage_lesson"]

SEED_EPOCHS = 35  # the seed's own training run (Adam, learning rate 1e-4, batch 32)


@dataclass
class LeakageLesson:
    """Both protocols' test accuracy with its interval, how much of the leaky test set has a
    twin in training and how the model scores on those rows, and FER-2013's own duplicates."""

    seed_protocol_accuracy: float
    honest_accuracy: float
    seed_protocol_ci95: list[float]  # 95% stratified-bootstrap interval of the accuracy
    honest_ci95: list[float]
    seed_protocol_twin_share: float
    honest_twin_share: float
    twin_accuracy: float  # seed protocol: accuracy on its test rows with a twin in training
    other_accuracy: float  # seed protocol: accuracy on its other test rows
    whole_data_twin_share: float  # the seed protocol run on every image, as the seed ran it
    official_duplicates: pd.DataFrame
    images: int
    epochs: int
    runs: dict[str, Path]  # protocol -> the run folder that trained it

    def table(self) -> pd.DataFrame:
        """The two protocols side by side, accuracies in % with their 95% intervals."""
        return pd.DataFrame({
            "protocol": ["seed: oversample everything, then split at random",
                         "honest: official split, oversample the training split only"],
            "test accuracy % [95%]": [
                percent_interval(self.seed_protocol_accuracy, *self.seed_protocol_ci95),
                percent_interval(self.honest_accuracy, *self.honest_ci95)],
            "test rows with a twin in training %": [
                round(100 * self.seed_protocol_twin_share, 1),
                round(100 * self.honest_twin_share, 1)],
        }).set_index("protocol")

    def memorised_accuracy(self, other_accuracy: float) -> float:
        """The seed protocol's accuracy on all the data had every twin been memorised, for an
        accuracy of `other_accuracy` on the rows without one."""
        whole = self.whole_data_twin_share
        return whole + (1 - whole) * other_accuracy


def _oversample_before_splitting(dataset: FaceDataset, seed: int) -> FaceDataset:
    """THE MISTAKE, reproduced on purpose: oversample all rows, evaluation rows included."""
    return dataset.subset(oversampled_index(dataset.labels, seed))


def seed_protocol_split(dataset: FaceDataset, seed: int = 0,
                        test_share: float = 0.1) -> FaceDataset:
    """The seed's data: everything oversampled, then a random 90/10 split ignoring usage."""
    pooled = _oversample_before_splitting(dataset, seed)
    usage = np.full(len(pooled), "Training", dtype=pooled.usage.dtype)
    test = np.random.default_rng(seed).permutation(len(pooled))[:int(test_share * len(pooled))]
    usage[test] = "PublicTest"
    return replace(pooled, usage=usage, source=f"{dataset.source} (seed protocol)",
                   checksum=f"{dataset.checksum}+seed-protocol-{len(pooled)}")


def honest_split(dataset: FaceDataset, seed: int = 0) -> FaceDataset:
    """Official usage kept; only the Training split is oversampled."""
    balanced = oversample(dataset.split("Training"), seed)
    held_out = dataset.split("PublicTest")
    return replace(balanced, images=np.concatenate([balanced.images, held_out.images]),
                   labels=np.concatenate([balanced.labels, held_out.labels]),
                   usage=np.concatenate([balanced.usage, held_out.usage]),
                   source=f"{dataset.source} (honest protocol)", soft_labels=None,
                   checksum=f"{dataset.checksum}+honest-{len(balanced)}")


def leakage_lesson(dataset: FaceDataset, out: str | Path | None = None, *,
                   runs: str | Path | None = None, images: int = 3000, epochs: int = 3,
                   seed: int = 0, verbose: int = 0) -> LeakageLesson:
    """Train the seed CNN under both protocols with the same budget and compare.

    The runs go to `out/seed` and `out/honest`; with no `out`, each to a folder under `runs`
    (default runs/) named by its settings and data, so other data never meets a used folder.
    """
    official = dataset.subset(np.isin(dataset.usage, ["Training", "PublicTest"]))
    sample = stratified_sample(official, images, seed, usages=("Training", "PublicTest"))
    config = TrainConfig(profile="leakage", epochs=epochs, batch_size=32, augmentation=None,
                         label_smoothing=0.0, patience=epochs, seed=seed)
    scores, intervals, twins, correct, folders = {}, {}, {}, {}, {}
    for name, data in (("seed", seed_protocol_split(sample, seed)),
                       ("honest", honest_split(sample, seed))):
        folders[name] = (Path(out) / name if out else
                         run_folder(f"leakage-{name}", config.to_dict(), data.checksum, runs))
        result = train(data, folders[name], config, verbose=verbose, export=False)
        test = data.split("PublicTest")
        probs = load_model(result.best_model_path).predict(test.images)
        correct[name] = probs.argmax(axis=1) == test.labels
        scores[name] = float(correct[name].mean())
        intervals[name] = bootstrap_ci(test.labels, probs)["accuracy"]
        twins[name] = twin_rows(data.split("Training").images, test.images)
    leaky = seed_protocol_split(dataset, seed)
    return LeakageLesson(
        seed_protocol_accuracy=scores["seed"], honest_accuracy=scores["honest"],
        seed_protocol_ci95=intervals["seed"], honest_ci95=intervals["honest"],
        seed_protocol_twin_share=float(twins["seed"].mean()),
        honest_twin_share=float(twins["honest"].mean()),
        twin_accuracy=_share(correct["seed"][twins["seed"]]),
        other_accuracy=_share(correct["seed"][~twins["seed"]]),
        whole_data_twin_share=twin_share(leaky.split("Training").images,
                                         leaky.split("PublicTest").images),
        official_duplicates=duplicate_audit(dataset), images=len(sample), epochs=epochs,
        runs=folders)


def _share(flags: np.ndarray) -> float:
    """The share of True values; NaN for no values."""
    return float(flags.mean()) if len(flags) else float("nan")
