"""Honest evaluation: metrics, calibration, test-time augmentation, mistakes, comparisons."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from .labels import EMOTIONS, NUM_CLASSES
from .outputs import output_set


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(gap)


def top_k_accuracy(labels: np.ndarray, probs: np.ndarray, k: int = 2) -> float:
    """Share of faces whose true class is among the k most probable."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, macro F1, top-2, log loss, ECE and per-class figures."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    predicted = probs.argmax(axis=1)
    classes = list(range(NUM_CLASSES))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0)
    present = support > 0
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "top2_accuracy": top_k_accuracy(labels, probs, 2),
        "log_loss": float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean()),
        "ece": expected_calibration_error(labels, probs),
        "per_class": {
            name: {"precision": float(precision[k]), "recall": float(recall[k]),
                   "f1": float(f1[k]), "support": int(support[k])}
            for k, name in enumerate(EMOTIONS)},
    }


TTA_MODES = ("flip", "flip+crops")


def tta_views(faces: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views test-time augmentation averages: the faces, mirrored, and shifted crops."""
    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, not {mode!r}")
    views = [faces, faces[:, :, ::-1]]
    if mode == "flip+crops":
        import cv2

        size = faces.shape[1]
        cut = max(1, size // 12)
        for top, left in ((0, 0), (0, 2 * cut), (2 * cut, 0), (2 * cut, 2 * cut)):
            crop = faces[:, top:size - 2 * cut + top, left:size - 2 * cut + left]
            views.append(np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR)
                                   for c in crop]))
    return views


def predict_faces(classifier, faces: np.ndarray, tta: str | None = None) -> np.ndarray:
    """Class probabilities, averaged over the TTA views when `tta` is set."""
    if tta is None:
        return classifier.predict(faces)
    return np.mean([classifier.predict(view) for view in tta_views(faces, tta)], axis=0)


def confusion(labels: np.ndarray, probs: np.ndarray, normalize: bool = False):
    """Confusion matrix as a DataFrame (rows: true emotion, columns: predicted)."""
    import pandas as pd

    matrix = skm.confusion_matrix(labels, probs.argmax(axis=1), labels=list(range(NUM_CLASSES)))
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0).round(4)
    frame = pd.DataFrame(matrix, index=list(EMOTIONS), columns=list(EMOTIONS))
    frame.index.name, frame.columns.name = "true", "predicted"
    return frame


def confident_mistakes(labels: np.ndarray, probs: np.ndarray, per_pair: int = 1):
    """The most confident wrong predictions per (true, predicted) pair, most confident first."""
    import pandas as pd

    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    table = pd.DataFrame({"index": wrong, "true": np.array(EMOTIONS)[labels[wrong]],
                          "predicted": np.array(EMOTIONS)[predicted[wrong]],
                          "confidence": probs[wrong, predicted[wrong]].round(4)})
    table = table.sort_values(["confidence", "index"], ascending=[False, True], kind="stable")
    return table.groupby(["true", "predicted"]).head(per_pair).reset_index(drop=True)


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = 15):
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram)."""
    import pandas as pd

    confidence = probs.max(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    correct = probs.argmax(axis=1) == labels
    rows = [{"low": edges[b], "high": edges[b + 1], "count": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()) if (which == b).any() else np.nan,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else np.nan}
            for b in range(bins)]
    return pd.DataFrame(rows)


@dataclass
class Evaluation:
    """A model's predictions and figures on one split, and where they were written."""

    metrics: dict
    labels: np.ndarray
    probs: np.ndarray
    images: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)


def evaluate(classifier, dataset, split: str = "PublicTest", out: str | Path | None = None,
             tta: str | None = None) -> Evaluation:
    """Metrics (single crop, and TTA beside it), confusion tables and figures for one split.

    The files replace those of an earlier evaluation in `out` only once all are written.
    """
    from .labels import usage_name

    part = dataset.split(split)
    probs = predict_faces(classifier, part.images)
    metrics = {"model": classifier.name, "data": dataset.source, "sha256": dataset.checksum,
               "synthetic": dataset.synthetic, "split": usage_name(split),
               **classification_metrics(part.labels, probs)}
    if tta:
        tta_probs = predict_faces(classifier, part.images, tta)
        tta_metrics = classification_metrics(part.labels, tta_probs)
        metrics["tta"] = {"mode": tta, **{k: v for k, v in tta_metrics.items()
                                          if k != "per_class"}}
    result = Evaluation(metrics=metrics, labels=part.labels, probs=probs, images=part.images)
    if out is None:
        return result
    with output_set(out, "evaluation") as run:
        result.files = run.commit(_write_evaluation(run.stage, metrics, part, probs))
    return result


def _write_evaluation(out: Path, metrics: dict, part, probs: np.ndarray) -> dict[str, Path]:
    """metrics.json, the confusion tables and the figures of one evaluation, in `out`."""
    from . import plots
    from .atomic import atomic_path, write_json

    files = {"metrics": write_json(out / "metrics.json", metrics)}
    for name, normalize in (("confusion", False), ("confusion_normalized", True)):
        with atomic_path(out / f"{name}.csv") as tmp:
            confusion(part.labels, probs, normalize).to_csv(tmp)
        files[name] = out / f"{name}.csv"
    figures = {
        "confusion_png": plots.confusion_heatmap(confusion(part.labels, probs, True)),
        "per_class_png": plots.per_class_bars(metrics["per_class"]),
        "reliability_png": plots.reliability_diagram(reliability(part.labels, probs),
                                                     metrics["ece"]),
        "mistakes_png": plots.mistakes_grid(confident_mistakes(part.labels, probs), part.images),
    }
    for key, fig in figures.items():
        files[key] = plots.save_figure(fig, out / f"{key.removesuffix('_png')}.png")
        plots.plt.close(fig)
    return files


def compare_models(classifiers: dict, dataset, split: str = "PublicTest",
                   tta: str | None = "flip"):
    """Several models on the same split, one row each (single crop, plus TTA accuracy)."""
    import pandas as pd

    rows = []
    for name, classifier in classifiers.items():
        metrics = evaluate(classifier, dataset, split, tta=tta).metrics
        row = {"model": name, "input": f"{classifier.preprocessing.input_size}px "
                                       f"{classifier.preprocessing.scale}",
               **{k: metrics[k] for k in ("accuracy", "balanced_accuracy", "macro_f1",
                                          "top2_accuracy", "log_loss", "ece", "n")}}
        if tta:
            row[f"accuracy_{tta}_tta"] = metrics["tta"]["accuracy"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("model").round(4)


def metrics_table(metrics: dict):
    """Headline metrics as a one-column table, with the TTA figures beside when present."""
    import pandas as pd

    keys = ("n", "accuracy", "balanced_accuracy", "macro_f1", "top2_accuracy", "log_loss", "ece")
    table = pd.DataFrame({"single crop": [metrics[k] for k in keys]}, index=list(keys))
    if "tta" in metrics:
        table[f"{metrics['tta']['mode']} TTA"] = [metrics["tta"][k] for k in keys]
    return table.round(4)
