"""Metrics against hand-computed cases, TTA, the metrics.json schema, and the CLI."""

import json
import math
from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pytest

from fer_utils import evaluation as ev
from fer_utils.artifacts import export_model
from fer_utils.cli import main
from fer_utils.data import load_fer2013_csv
from fer_utils.images import reframe
from fer_utils.labels import EMOTIONS
from fer_utils.model import FaceClassifier, build_seed_cnn

LABELS = np.array([0, 0, 1, 3])
PROBS = np.zeros((4, 7))
PROBS[0, [0, 1]] = [0.9, 0.1]  # right, confident
PROBS[1, [1, 0]] = [0.6, 0.4]  # wrong (said disgust), truth second
PROBS[2, [1, 3]] = [0.7, 0.3]  # right
PROBS[3, [0, 2, 3]] = [0.5, 0.3, 0.2]  # wrong (said angry), truth third


def test_metrics_by_hand():
    m = ev.classification_metrics(LABELS, PROBS)
    assert m["n"] == 4 and m["accuracy"] == 0.5
    # recall: angry 1/2, disgust 1/1, happy 0/1 -> balanced accuracy 0.5
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    # F1: angry p=1/2 r=1/2 -> 0.5; disgust p=1/2 r=1 -> 2/3; happy 0
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["top2_accuracy"] == 0.75
    assert m["log_loss"] == pytest.approx(-(math.log(0.9) + math.log(0.4) + math.log(0.7)
                                            + math.log(0.2)) / 4)
    # ECE with 15 bins: confidences 0.9 (right), 0.6 (wrong), 0.7 (right), 0.5 (wrong), one each
    assert m["ece"] == pytest.approx((0.1 + 0.6 + 0.3 + 0.5) / 4)
    assert m["per_class"]["disgust"] == {"precision": 0.5, "recall": 1.0,
                                         "f1": pytest.approx(2 / 3), "support": 1}


def test_the_majority_baseline_always_answers_the_commonest_training_class():
    train, test = np.array([3, 3, 3, 0, 6]), np.array([3, 0, 0, 6])
    assert ev.majority_baseline(train, test) == ("happy", 0.25)
    assert ev.majority_baseline(np.array([1, 1]), test) == ("disgust", 0.0)


def test_confusion_and_mistakes_by_hand():
    counts = ev.confusion(LABELS, PROBS)
    assert counts.loc["angry", "disgust"] == 1 and counts.loc["happy", "angry"] == 1
    assert ev.confusion(LABELS, PROBS, normalize=True).loc["angry", "angry"] == 0.5
    mistakes = ev.confident_mistakes(LABELS, PROBS)
    assert mistakes[["true", "predicted", "confidence"]].values.tolist() == [
        ["angry", "disgust", 0.6], ["happy", "angry", 0.5]]


def test_tta_views_and_switch(untrained, synthetic_csv, tmp_path):
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    views = ev.tta_views(faces, "flip+crops")
    assert len(views) == 6 and all(v.shape == faces.shape for v in views)
    np.testing.assert_array_equal(views[1], faces[:, :, ::-1])
    single = ev.predict_faces(untrained, faces)
    flipped = ev.predict_faces(untrained, faces, "flip")
    assert not np.allclose(single, flipped)  # the untrained CNN is not mirror-symmetric
    np.testing.assert_allclose(flipped, (single + untrained.predict(faces[:, :, ::-1])) / 2,
                               atol=1e-6)
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    plain = ev.evaluate(untrained, dataset, "val").metrics
    assert "tta" not in plain
    both = ev.evaluate(untrained, dataset, "val", tta="flip").metrics
    assert both["accuracy"] == plain["accuracy"] and both["tta"]["mode"] == "flip"
    part = dataset.split("val")  # the TTA figures are those of the averaged views
    flip = ev.predict_faces(untrained, part.images, "flip")
    assert both["tta"]["accuracy"] == pytest.approx((flip.argmax(1) == part.labels).mean())
    with pytest.raises(ValueError, match="tta must be one of"):
        ev.tta_views(faces, "rotate")


def test_evaluate_cli_writes_the_schema_for_a_json_weights_pair(untrained, synthetic_csv,
                                                                tmp_path):
    stem = tmp_path / "model" / "seed"
    files = export_model(untrained, stem, {})
    out = tmp_path / "eval"
    code = main(["evaluate", "--model", str(files["json"]), "--weights", str(files["weights"]),
                 "--data", str(synthetic_csv), "--split", "test", "--out", str(out),
                 "--tta", "flip"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "top2_accuracy", "log_loss", "ece",
                "n", "per_class", "tta"):
        assert key in metrics
    assert metrics["n"] == 70 and metrics["split"] == "PrivateTest" and metrics["synthetic"]
    assert set(metrics["ci95"]) == {"accuracy", "balanced_accuracy", "macro_f1"}
    for key, (low, high) in metrics["ci95"].items():
        assert low <= metrics[key] <= high
    assert metrics["bootstrap"]["resamples"] == 1000 and metrics["prior_correction"] == 0.0
    assert set(metrics["per_class"]) == set(EMOTIONS)
    assert set(metrics["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    counts = pd.read_csv(out / "confusion.csv", index_col=0)
    assert counts.values.sum() == 70 and list(counts.columns) == list(EMOTIONS)
    normalized = pd.read_csv(out / "confusion_normalized.csv", index_col=0)
    assert np.allclose(normalized.sum(axis=1)[counts.sum(axis=1) > 0], 1, atol=1e-3)
    for figure in ("confusion", "per_class", "reliability", "mistakes"):
        assert (out / f"{figure}.png").exists()
    # Reproducible: the same evaluation, into a fresh folder, writes the same metrics file.
    assert main(["evaluate", "--model", str(files["keras"]), "--data", str(synthetic_csv),
                 "--split", "test", "--out", str(tmp_path / "again"), "--tta", "flip"]) == 0
    assert (tmp_path / "again" / "metrics.json").read_text() == (out / "metrics.json").read_text()


def test_compare_models_one_row_each_and_a_paired_test_per_pair(untrained, synthetic_csv,
                                                                 tmp_path):
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    comparison = ev.compare_models({"a": untrained, "b": untrained}, dataset, "val")
    table = comparison.models
    assert list(table.index) == ["a", "b"] and "accuracy_flip_tta" in table
    assert table.loc["a", "accuracy"] == table.loc["b", "accuracy"]
    assert table.loc["a", "accuracy_ci95_low"] <= table.loc["a", "accuracy"]
    [pair] = comparison.pairs.to_dict("records")
    # The same model twice: no difference, in every resample, and nothing for McNemar.
    assert (pair["model_a"], pair["model_b"]) == ("a", "b")
    assert pair["accuracy_difference"] == pair["difference_ci95_low"] == 0.0
    assert pair["difference_ci95_high"] == 0.0 and pair["mcnemar_p"] == 1.0
    files = comparison.save(tmp_path)
    saved = json.loads(files["comparison"].read_text())
    assert set(saved["models"]) == {"a", "b"} and saved["pairs"][0]["mcnemar_p"] == 1.0
    # With `out`, the three files are committed as one set, listed in the folder's manifest.
    committed = ev.compare_models({"a": untrained, "b": untrained}, dataset, "val",
                                  out=tmp_path / "set")
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"models.csv", "pairs.csv", "comparison.json"}
    assert committed.files["pairs"] == tmp_path / "set" / "pairs.csv"
    assert committed.files["pairs"].read_text() == files["pairs"].read_text()
    # The tables a reader sees: percentages with their intervals, one row per model and pair.
    row = table.loc["a"]
    shown = (f"{100 * row['accuracy']:.1f} [{100 * row['accuracy_ci95_low']:.1f}, "
             f"{100 * row['accuracy_ci95_high']:.1f}]")
    assert comparison.table().loc["a", "accuracy % [95%]"] == shown
    assert comparison.pair_table().iloc[0]["accuracy A - B, points [95%]"] == \
        "+0.0 [+0.0, +0.0]"


def test_two_different_models_get_their_difference_and_an_exact_mcnemar_p(untrained,
                                                                           synthetic_csv):
    import keras
    from scipy.stats import binomtest

    from fer_utils.model import FaceClassifier, build_seed_cnn

    keras.utils.set_random_seed(1)
    other = FaceClassifier(build_seed_cnn(), name="other")
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    part = dataset.split("val")
    [pair] = ev.compare_models({"a": untrained, "b": other}, dataset, "val",
                               tta=None).pairs.to_dict("records")
    right_a = untrained.predict(part.images).argmax(1) == part.labels
    right_b = other.predict(part.images).argmax(1) == part.labels
    assert pair["accuracy_difference"] == pytest.approx(right_a.mean() - right_b.mean(), abs=1e-4)
    assert pair["difference_ci95_low"] <= pair["accuracy_difference"] <= \
        pair["difference_ci95_high"]
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    assert only_a + only_b > 0  # the two models disagree on some faces
    expected = binomtest(only_a, only_a + only_b, 0.5).pvalue
    assert pair["mcnemar_p"] == pytest.approx(expected, abs=1e-4)


def _scored(n: int, accuracy: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n labels over the 7 classes and probabilities whose top class is right `accuracy` of
    the time, wrong answers spread over the other classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    right = rng.random(n) < accuracy
    predicted = np.where(right, labels, (labels + rng.integers(1, 7, n)) % 7)
    return labels, np.eye(7)[predicted] * 0.7 + 0.3 / 7


def test_bootstrap_interval_holds_the_estimate_narrows_with_n_and_is_seeded():
    widths = []
    for n in (140, 2800):
        labels, probs = _scored(n, 0.65)
        point = ev.classification_metrics(labels, probs)
        ci = ev.bootstrap_ci(labels, probs, resamples=1000, seed=0)
        assert set(ci) == {"accuracy", "balanced_accuracy", "macro_f1"}
        for key, (low, high) in ci.items():
            assert low <= point[key] <= high, key
        widths.append(ci["accuracy"][1] - ci["accuracy"][0])
        assert ci == ev.bootstrap_ci(labels, probs, resamples=1000, seed=0)
        assert ci != ev.bootstrap_ci(labels, probs, resamples=1000, seed=1)
    # The width shrinks like 1/sqrt(n): 20 times the rows, about a 4.5 times narrower interval.
    assert widths[1] < widths[0] / 3


def test_share_interval_matches_the_accuracy_interval_and_counts_only_its_faces():
    labels, probs = _scored(700, 0.6, seed=3)
    correct = probs.argmax(1) == labels
    # The accuracy interval is the interval of the share of faces classified right.
    assert ev.share_ci(labels, correct) == pytest.approx(ev.bootstrap_ci(labels, probs)["accuracy"])
    among = np.arange(len(labels)) % 2 == 0
    low, high = ev.share_ci(labels, correct, among)
    assert low <= correct[among].mean() <= high
    assert ev.share_ci(labels, correct | ~among, among) == [low, high]  # others do not count
    assert ev.share_ci(labels, np.ones(len(labels), bool)) == [1.0, 1.0]


def test_scale_tta_averages_the_faces_zoomed_out_as_they_are_and_zoomed_in(untrained):
    faces = np.random.default_rng(1).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    views = ev.tta_views(faces, "scales")
    assert len(views) == len(ev.TTA_SCALES) == 3
    for view, scale in zip(views, ev.TTA_SCALES, strict=True):
        np.testing.assert_array_equal(view, reframe(faces, scale))
    np.testing.assert_array_equal(views[ev.TTA_SCALES.index(1.0)], faces)
    both = ev.tta_views(faces, "flip+scales")
    assert len(both) == 6
    for view, mirrored in zip(both[:3], both[3:], strict=True):
        np.testing.assert_array_equal(mirrored, view[:, :, ::-1])
    expected = np.mean([untrained.predict(reframe(faces, s)) for s in ev.TTA_SCALES], axis=0)
    np.testing.assert_allclose(ev.predict_faces(untrained, faces, "scales"), expected, atol=1e-6)


def test_resamples_keep_every_class_size():
    labels = np.array([0, 0, 0, 1, 2, 2, 6])
    rows = ev.stratified_resamples(labels, resamples=50, seed=0)
    assert rows.shape == (50, 7)
    for drawn in labels[rows]:
        np.testing.assert_array_equal(np.sort(drawn), np.sort(labels))


def test_headline_scores_of_many_matrices_match_the_metrics_of_each():
    labels, probs = _scored(70, 0.5, seed=2)
    rows = ev.stratified_resamples(labels, resamples=3, seed=0)
    scores = ev.headline_scores(ev.confusion_counts(labels, probs.argmax(axis=1), rows))
    for r, index in enumerate(rows):
        one = ev.classification_metrics(labels[index], probs[index])
        for key in ("accuracy", "balanced_accuracy", "macro_f1"):
            assert scores[key][r] == pytest.approx(one[key])


def test_mcnemar_exact_by_hand():
    # 2x2 table of 23 faces: both right 10, only A right 1, only B right 7, both wrong 5.
    # Discordant pairs n = 1 + 7 = 8; under H0 the count only A gets is Binomial(8, 1/2):
    # P(X <= 1) = (C(8,0) + C(8,1)) / 2^8 = 9/256, two-sided p = 2 * 9/256 = 0.0703125.
    a = np.array([True] * 10 + [True] * 1 + [False] * 7 + [False] * 5)
    b = np.array([True] * 10 + [False] * 1 + [True] * 7 + [False] * 5)
    test = ev.mcnemar_exact(a, b)
    assert (test["only_a"], test["only_b"]) == (1, 7)
    assert test["p_value"] == pytest.approx(0.0703125, abs=1e-12)
    assert ev.mcnemar_exact(b, a)["p_value"] == test["p_value"]
    # 3 against 3: P(X <= 3) = (1 + 6 + 15 + 20) / 64 = 42/64 > 1/2, so p is capped at 1.
    tied = np.array([True, True, True, False, False, False])
    assert ev.mcnemar_exact(tied, ~tied)["p_value"] == 1.0


def test_paired_interval_is_around_the_accuracy_difference():
    labels, better = _scored(700, 0.7, seed=3)
    _, worse = _scored(700, 0.5, seed=4)
    [pair] = ev.paired_tests(labels, {"better": better, "worse": worse}).to_dict("records")
    difference = ev.classification_metrics(labels, better)["accuracy"] - \
        ev.classification_metrics(labels, worse)["accuracy"]
    assert pair["accuracy_difference"] == pytest.approx(difference)
    assert 0 < pair["difference_ci95_low"] < difference < pair["difference_ci95_high"]
    assert pair["mcnemar_p"] < 1e-6 and pair["only_a_right"] > pair["only_b_right"]


def _with_prior(classifier, frequency):
    """The classifier with a model card that records this Training prior."""
    card = {"prior": {"frequency": dict(zip(EMOTIONS, frequency, strict=True))}}
    return replace(classifier, card=card, name="with_prior")


# FER-2013's Training counts: disgust is rare.
FER_PRIOR = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965]) / 28709


def test_prior_correction_of_zero_changes_nothing_and_one_favours_rare_classes(untrained):
    faces = np.random.default_rng(0).integers(0, 256, (200, 48, 48), dtype=np.uint8)
    plain = untrained.predict(faces)
    with_prior = _with_prior(untrained, FER_PRIOR)
    np.testing.assert_array_equal(with_prior.predict(faces), plain)
    corrected = replace(with_prior, prior_correction=1.0).predict(faces)
    np.testing.assert_allclose(corrected.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(corrected, plain / FER_PRIOR / (plain / FER_PRIOR).sum(
        axis=1, keepdims=True), rtol=1e-4)
    disgust = EMOTIONS.index("disgust")
    assert (corrected.argmax(axis=1) == disgust).mean() > (plain.argmax(axis=1) == disgust).mean()


def test_prior_correction_needs_a_prior_in_the_card(untrained):
    with pytest.raises(ValueError, match="card records none"):
        replace(untrained, prior_correction=0.5)
    with pytest.raises(ValueError, match="no Training images of disgust"):
        replace(_with_prior(untrained, [0.2, 0, 0.2, 0.2, 0.2, 0.1, 0.1]), prior_correction=1)


def test_record_prior_correction_writes_the_prior_and_the_tau_table(untrained, synthetic_csv,
                                                                    tmp_path):
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    files = export_model(untrained, tmp_path / "m", {"name": "m"})
    table = ev.record_prior_correction(files["keras"], dataset, "val")
    card = json.loads(files["card"].read_text())
    counts = np.bincount(dataset.split("Training").labels, minlength=7)
    assert list(card["prior"]["counts"].values()) == counts.tolist()
    assert sum(card["prior"]["frequency"].values()) == pytest.approx(1)
    assert list(table.index) == [0.0, 0.5, 1.0] and card["name"] == "m"
    assert [row["tau"] for row in card["prior_correction"]["by_tau"]] == [0.0, 0.5, 1.0]
    plain = ev.evaluate(untrained, dataset, "val").metrics
    assert table.loc[0.0, "accuracy"] == plain["accuracy"]
    assert table.loc[0.0, "disgust_recall"] == plain["per_class"]["disgust"]["recall"]


def test_evaluate_cli_compares_several_models_and_checks_their_options(untrained, synthetic_csv,
                                                                      tmp_path, capsys):
    keras.utils.set_random_seed(1)
    other = FaceClassifier(build_seed_cnn(), name="other")
    paths = [str(export_model(c, tmp_path / c.name / "m", {})["keras"])
             for c in (untrained, other)]
    data = ["--data", str(synthetic_csv), "--split", "test"]
    out = tmp_path / "compared"
    assert main(["evaluate", "--model", paths[0], "--model", paths[1], *data,
                 "--out", str(out)]) == 0
    models = pd.read_csv(out / "models.csv", index_col=0)
    assert list(models.index) == paths and "accuracy_ci95_high" in models
    [pair] = pd.read_csv(out / "pairs.csv").to_dict("records")
    assert (pair["model_a"], pair["model_b"]) == tuple(paths) and 0 <= pair["mcnemar_p"] <= 1
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["models"][paths[1]]["accuracy"] == pytest.approx(models.loc[paths[1], "accuracy"],
                                                                  abs=1e-4)
    capsys.readouterr()
    assert main(["evaluate", "--model", paths[0], "--model", paths[1], "--scale", "unit",
                 "--scale", "unit", "--scale", "unit", *data, "--out", str(out)]) == 2
    assert "--scale is given 3 times for 2 models" in capsys.readouterr().err
    assert main(["evaluate", "--model", paths[0], "--prior-correction", "1", *data,
                 "--out", str(out)]) == 2
    assert "card records none" in capsys.readouterr().err


def test_bad_csv_rows_make_the_cli_exit_non_zero(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    assert main(["evaluate", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "line 2" in capsys.readouterr().err


def test_a_verdict_says_better_only_when_the_interval_excludes_zero():
    def pair(low, high):
        return pd.Series({"model_a": "A", "model_b": "B", "accuracy_difference": (low + high) / 2,
                          "difference_ci95_low": low, "difference_ci95_high": high,
                          "mcnemar_p": 0.01})

    better = "On these faces **{}** is more accurate than {} ({:+.1f} points"
    assert ev.verdict(pair(0.01, 0.03)).startswith(better.format("A", "B", 2.0))
    assert ev.verdict(pair(-0.03, -0.01)).startswith(better.format("B", "A", -2.0))
    straddling = ev.verdict(pair(-0.01, 0.02))
    assert "cannot be told apart" in straddling and "more accurate" not in straddling
