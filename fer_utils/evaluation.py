"""Honest evaluation: metrics with bootstrap intervals, calibration, test-time augmentation,
mistakes, paired comparisons of models, and the prior correction's trade-off."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .artifacts import add_prior, card_path, load_model, update_card
from .atomic import atomic_path, write_json
from .data import FaceDataset
from .images import reframe
from .labels import EMOTIONS, NUM_CLASSES, usage_name
from .model import FaceClassifier
from .outputs import output_set

__all__ = [
    "reliability", "expected_calibration_error", "top_k_accuracy", "confusion_counts",
    "per_class_scores", "HEADLINE", "headline_scores", "majority_baseline",
    "classification_metrics",
    "stratified_resamples", "bootstrap_ci", "share_ci", "mcnemar_exact", "paired_tests",
    "TTA_MODES", "TTA_SCALES", "tta_views", "predict_faces", "confusion", "confident_mistakes",
    "Evaluation", "evaluate", "percent_interval",
    "Comparison", "compare_models", "verdict", "PRIOR_TAUS", "prior_correction_table",
    "record_prior_correction", "metrics_table",
]


def reliability(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> pd.DataFrame:
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram)."""
    confidence = probs.max(axis=1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    correct = probs.argmax(axis=1) == labels
    rows = [{"low": edges[b], "high": edges[b + 1], "count": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()) if (which == b).any() else np.nan,
             "accuracy": float(correct[which == b].mean()) if (which == b).any() else np.nan}
            for b in range(bins)]
    return pd.DataFrame(rows)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted."""
    table = reliability(labels, probs, bins).dropna()
    gaps = (table["accuracy"] - table["confidence"]).abs()
    return float((table["count"] / len(labels) * gaps).sum())


def top_k_accuracy(labels: np.ndarray, probs: np.ndarray, k: int = 2) -> float:
    """Share of faces whose true class is among the k most probable."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_counts(labels: np.ndarray, predicted: np.ndarray,
                     rows: np.ndarray | None = None) -> np.ndarray:
    """Confusion matrix (7, 7), or one per row of `rows` (R, 7, 7): index sets into the faces."""
    codes = np.asarray(labels) * NUM_CLASSES + np.asarray(predicted)
    cells = NUM_CLASSES * NUM_CLASSES
    if rows is None:
        return np.bincount(codes, minlength=cells).reshape(NUM_CLASSES, NUM_CLASSES)
    offsets = cells * np.arange(len(rows))[:, None]
    counts = np.bincount((codes[rows] + offsets).ravel(), minlength=cells * len(rows))
    return counts.reshape(len(rows), NUM_CLASSES, NUM_CLASSES)


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, and 0 where b is 0."""
    return np.divide(a, b, out=np.zeros(np.shape(a)), where=b > 0)


def per_class_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class of confusion matrices (..., 7, 7).

    A class never predicted has precision 0; a class with no faces has recall and F1 0.
    """
    hits = np.diagonal(counts, axis1=-2, axis2=-1).astype(np.float64)
    support, said = counts.sum(axis=-1), counts.sum(axis=-2)
    return {"precision": _ratio(hits, said), "recall": _ratio(hits, support),
            "f1": _ratio(2 * hits, support + said), "support": support}


# The figures every evaluation, comparison and summary leads with, in this order.
HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1", "top2_accuracy", "log_loss", "ece")


def headline_scores(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy and macro F1 (over classes present) of confusion matrices."""
    scores = per_class_scores(counts)
    present = scores["support"] > 0
    classes = present.sum(axis=-1)
    hits = np.diagonal(counts, axis1=-2, axis2=-1).sum(axis=-1)
    return {"accuracy": hits / counts.sum(axis=(-2, -1)),
            "balanced_accuracy": (scores["recall"] * present).sum(axis=-1) / classes,
            "macro_f1": (scores["f1"] * present).sum(axis=-1) / classes}


def majority_baseline(train_labels: np.ndarray, test_labels: np.ndarray) -> tuple[str, float]:
    """The commonest training class, and the accuracy of always answering it on the test labels."""
    commonest = int(np.bincount(train_labels, minlength=NUM_CLASSES).argmax())
    return EMOTIONS[commonest], float((np.asarray(test_labels) == commonest).mean())


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, macro F1, top-2, log loss, ECE and per-class figures."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    counts = confusion_counts(labels, probs.argmax(axis=1))
    per_class = per_class_scores(counts)
    return {
        "n": int(len(labels)),
        **{k: float(v) for k, v in headline_scores(counts).items()},
        "top2_accuracy": top_k_accuracy(labels, probs, 2),
        "log_loss": float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean()),
        "ece": expected_calibration_error(labels, probs),
        "per_class": {
            name: {"precision": float(per_class["precision"][k]),
                   "recall": float(per_class["recall"][k]), "f1": float(per_class["f1"][k]),
                   "support": int(per_class["support"][k])}
            for k, name in enumerate(EMOTIONS)},
    }


# --------------------------------------------------------------------------- statistics


def stratified_resamples(labels: np.ndarray, resamples: int = 1000,
                         seed: int = 0) -> np.ndarray:
    """Bootstrap row indices (resamples, n), each class's rows drawn from that class only."""
    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    return np.concatenate([rows[rng.integers(0, len(rows), (resamples, len(rows)))]
                           for rows in classes], axis=1)


def _interval(values: np.ndarray) -> list[float]:
    """The central 95% of bootstrap values, [low, high]."""
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def bootstrap_ci(labels: np.ndarray, probs: np.ndarray, resamples: int = 1000,
                 seed: int = 0) -> dict[str, list[float]]:
    """95% stratified-bootstrap intervals [low, high] of accuracy, balanced accuracy, macro F1."""
    rows = stratified_resamples(np.asarray(labels), resamples, seed)
    scores = headline_scores(confusion_counts(labels, np.asarray(probs).argmax(axis=1), rows))
    return {name: _interval(values) for name, values in scores.items()}


def share_ci(labels: np.ndarray, hits: np.ndarray, among: np.ndarray | None = None,
             resamples: int = 1000, seed: int = 0) -> list[float]:
    """95% stratified-bootstrap interval [low, high] of the share of faces `among` (default:
    all) that are `hits`, such as the accuracy on the faces a detector found."""
    hits = np.asarray(hits, bool)
    among = np.ones_like(hits) if among is None else np.asarray(among, bool)
    rows = stratified_resamples(np.asarray(labels), resamples, seed)
    return _interval(_ratio((hits & among)[rows].sum(axis=1), among[rows].sum(axis=1)))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test: a two-sided binomial(n, 1/2) test on the faces only one model gets.

    Returns how many faces only A and only B classify right, and the p-value.
    """
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    n = only_a + only_b
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return {"only_a": only_a, "only_b": only_b, "p_value": min(1.0, 2 * tail)}


def paired_tests(labels: np.ndarray, probs: dict[str, np.ndarray], resamples: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """For every pair of models scored on the same faces: the accuracy difference A - B with
    its 95% paired stratified-bootstrap interval, and the exact McNemar test."""
    labels = np.asarray(labels)
    rows = stratified_resamples(labels, resamples, seed)
    correct = {name: p.argmax(axis=1) == labels for name, p in probs.items()}
    table = []
    for a, b in itertools.combinations(correct, 2):
        differences = correct[a][rows].mean(axis=1) - correct[b][rows].mean(axis=1)
        test = mcnemar_exact(correct[a], correct[b])
        low, high = _interval(differences)
        table.append({"model_a": a, "model_b": b,
                      "accuracy_difference": float(correct[a].mean() - correct[b].mean()),
                      "difference_ci95_low": low, "difference_ci95_high": high,
                      "only_a_right": test["only_a"], "only_b_right": test["only_b"],
                      "mcnemar_p": test["p_value"]})
    columns = ["model_a", "model_b", "accuracy_difference", "difference_ci95_low",
               "difference_ci95_high", "only_a_right", "only_b_right", "mcnemar_p"]
    return pd.DataFrame(table, columns=columns)


TTA_MODES = ("flip", "flip+crops", "scales", "flip+scales")
TTA_SCALES = (0.9, 1.0, 1.1)  # zoom about the centre: out, none, in


def tta_views(faces: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views test-time augmentation averages: the faces, mirrored, shifted crops, or
    rescaled about the centre (each mirrored too with flip+scales)."""
    if mode not in TTA_MODES:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, not {mode!r}")
    if mode.endswith("scales"):
        views = [reframe(faces, scale) for scale in TTA_SCALES]
        return views + [view[:, :, ::-1] for view in views] if mode == "flip+scales" else views
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


def predict_faces(classifier: FaceClassifier, faces: np.ndarray,
                  tta: str | None = None) -> np.ndarray:
    """Class probabilities, averaged over the TTA views when `tta` is set."""
    if tta is None:
        return classifier.predict(faces)
    return np.mean([classifier.predict(view) for view in tta_views(faces, tta)], axis=0)


def confusion(labels: np.ndarray, probs: np.ndarray, normalize: bool = False) -> pd.DataFrame:
    """Confusion matrix as a DataFrame (rows: true emotion, columns: predicted)."""
    matrix = confusion_counts(labels, probs.argmax(axis=1))
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0).round(4)
    frame = pd.DataFrame(matrix, index=list(EMOTIONS), columns=list(EMOTIONS))
    frame.index.name, frame.columns.name = "true", "predicted"
    return frame


def confident_mistakes(labels: np.ndarray, probs: np.ndarray,
                       per_pair: int = 1) -> pd.DataFrame:
    """The most confident wrong predictions per (true, predicted) pair, most confident first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    table = pd.DataFrame({"index": wrong, "true": np.array(EMOTIONS)[labels[wrong]],
                          "predicted": np.array(EMOTIONS)[predicted[wrong]],
                          "confidence": probs[wrong, predicted[wrong]].round(4)})
    table = table.sort_values(["confidence", "index"], ascending=[False, True], kind="stable")
    return table.groupby(["true", "predicted"]).head(per_pair).reset_index(drop=True)


@dataclass
class Evaluation:
    """A model's predictions and figures on one split, and where they were written."""

    metrics: dict
    labels: np.ndarray
    probs: np.ndarray
    images: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)


def evaluate(classifier: FaceClassifier, dataset: FaceDataset, split: str = "PublicTest",
             out: str | Path | None = None,
             tta: str | None = None, resamples: int = 1000, seed: int = 0) -> Evaluation:
    """Metrics with bootstrap intervals (single crop, and TTA beside it), confusion tables and
    figures for one split.

    The files replace those of an earlier evaluation in `out` only once all are written.
    """
    part = dataset.split(split)
    probs = predict_faces(classifier, part.images)
    metrics = {"model": classifier.name, "data": dataset.source, "sha256": dataset.checksum,
               "synthetic": dataset.synthetic, "split": usage_name(split),
               "prior_correction": getattr(classifier, "prior_correction", 0.0),
               **classification_metrics(part.labels, probs),
               "ci95": bootstrap_ci(part.labels, probs, resamples, seed),
               "bootstrap": {"resamples": resamples, "seed": seed,
                             "stratified": "rows resampled within each true class"}}
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


def percent_interval(value: float, low: float, high: float, sign: bool = False) -> str:
    """A share and its interval in percent, like '62.9 [61.5, 64.4]'."""
    form = "+.1f" if sign else ".1f"
    return f"{100 * value:{form}} [{100 * low:{form}}, {100 * high:{form}}]"


@dataclass
class Comparison:
    """Models scored on the same faces: one row each, and paired tests for every pair."""

    models: pd.DataFrame
    pairs: pd.DataFrame
    metrics: dict[str, dict]
    files: dict[str, Path] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per model: its input and headline scores in % with 95% intervals."""
        rows = self.models
        table = pd.DataFrame({"input": rows["input"]}, index=rows.index)
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            table[f"{key} % [95%]"] = [percent_interval(r[key], r[f"{key}_ci95_low"],
                                                         r[f"{key}_ci95_high"])
                                       for _, r in rows.iterrows()]
        for column in (c for c in rows.columns if c.endswith("_tta")):
            table[f"{column} %"] = (100 * rows[column]).round(1)
        return table

    def pair_table(self) -> pd.DataFrame:
        """One row per pair: the accuracy difference in points with its 95% paired interval,
        the faces only one of the two gets right, and McNemar's p."""
        pairs = self.pairs
        return pd.DataFrame({
            "A": pairs["model_a"], "B": pairs["model_b"],
            "accuracy A - B, points [95%]": [
                percent_interval(r["accuracy_difference"], r["difference_ci95_low"],
                                  r["difference_ci95_high"], sign=True)
                for _, r in pairs.iterrows()],
            "only A right": pairs["only_a_right"], "only B right": pairs["only_b_right"],
            "McNemar p": pairs["mcnemar_p"].map(lambda v: f"{v:.2g}")})

    def _repr_html_(self) -> str:
        return self.table().to_html() + self.pair_table().to_html(index=False)

    def save(self, out: str | Path) -> dict[str, Path]:
        """Write models.csv, pairs.csv and comparison.json (every model's full metrics)."""
        out = Path(out)
        files = {}
        for name, table in (("models", self.models), ("pairs", self.pairs)):
            with atomic_path(out / f"{name}.csv") as tmp:
                table.to_csv(tmp, index=name == "models")
            files[name] = out / f"{name}.csv"
        files["comparison"] = write_json(out / "comparison.json", {
            "models": self.metrics, "pairs": self.pairs.to_dict("records")})
        return files


def compare_models(classifiers: dict[str, FaceClassifier], dataset: FaceDataset,
                   split: str = "PublicTest",
                   tta: str | None = "flip", resamples: int = 1000,
                   seed: int = 0, out: str | Path | None = None) -> Comparison:
    """Several models on the same split: one row each with 95% bootstrap intervals, plus the
    paired accuracy-difference interval and exact McNemar test for every pair. With `out`,
    its files are committed there as one set (`Comparison.save`)."""
    rows, metrics, probs = [], {}, {}
    for name, classifier in classifiers.items():
        result = evaluate(classifier, dataset, split, tta=tta, resamples=resamples, seed=seed)
        metrics[name], probs[name] = result.metrics, result.probs
        row = {"model": name, "input": f"{classifier.preprocessing.input_size}px "
                                       f"{classifier.preprocessing.scale}",
               **{k: result.metrics[k] for k in (*HEADLINE, "n")}}
        for key, (low, high) in result.metrics["ci95"].items():
            row.update({f"{key}_ci95_low": low, f"{key}_ci95_high": high})
        if tta:
            row[f"accuracy_{tta}_tta"] = result.metrics["tta"]["accuracy"]
        rows.append(row)
    labels = dataset.split(split).labels
    result = Comparison(models=pd.DataFrame(rows).set_index("model").round(4),
                        pairs=paired_tests(labels, probs, resamples, seed), metrics=metrics)
    if out is not None:
        with output_set(out, "evaluation") as run:
            result.files = run.commit(result.save(run.stage))
    return result


def verdict(pair: pd.Series) -> str:
    """One sentence on a row of `paired_tests` that says only what its interval shows."""
    a, b = pair["model_a"], pair["model_b"]
    points = [100 * pair[k] for k in ("accuracy_difference", "difference_ci95_low",
                                      "difference_ci95_high")]
    figures = (f"{points[0]:+.1f} points, 95% interval {points[1]:+.1f} to {points[2]:+.1f}; "
               f"McNemar p = {pair['mcnemar_p']:.2g}")
    if pair["difference_ci95_low"] > 0:
        return f"On these faces **{a}** is more accurate than {b} ({figures})."
    if pair["difference_ci95_high"] < 0:
        return f"On these faces **{b}** is more accurate than {a} ({figures})."
    return f"On these faces {a} and {b} cannot be told apart in accuracy ({figures})."


PRIOR_TAUS = (0.0, 0.5, 1.0)


def prior_correction_table(classifier: FaceClassifier, dataset: FaceDataset,
                           split: str = "PublicTest",
                           taus: tuple[float, ...] = PRIOR_TAUS) -> pd.DataFrame:
    """Accuracy, balanced accuracy, macro F1 and disgust recall at each prior correction tau."""
    part = dataset.split(split)
    rows = []
    for tau in taus:
        scores = classification_metrics(
            part.labels, replace(classifier, prior_correction=tau).predict(part.images))
        rows.append({"tau": tau, **{k: scores[k] for k in ("accuracy", "balanced_accuracy",
                                                            "macro_f1")},
                     "disgust_recall": scores["per_class"]["disgust"]["recall"]})
    return pd.DataFrame(rows).set_index("tau")


def record_prior_correction(model_path: str | Path, dataset: FaceDataset,
                            split: str = "PublicTest") -> pd.DataFrame | None:
    """Write the Training prior of `dataset` into the model's card and, when every class has
    Training images, the tau table on `split` too; returns that table."""
    add_prior(card_path(model_path), dataset)
    classifier = load_model(model_path)
    if not (classifier.prior > 0).all():
        return None
    table = prior_correction_table(classifier, dataset, split)
    update_card(card_path(model_path), {"prior_correction": {
        "split": usage_name(split), "by_tau": table.reset_index().to_dict("records")}})
    return table


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Headline metrics as a one-column table, with the TTA figures beside when present."""
    keys = ("n", *HEADLINE)
    table = pd.DataFrame({"single crop": [metrics[k] for k in keys]}, index=list(keys))
    if "tta" in metrics:
        table[f"{metrics['tta']['mode']} TTA"] = [metrics["tta"][k] for k in keys]
    return table.round(4)
