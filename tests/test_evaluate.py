"""Metrics against hand-computed cases, TTA, the metrics.json schema, and the CLI."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from fer_utils import evaluate as ev
from fer_utils.artifacts import export_model
from fer_utils.cli import main
from fer_utils.data import load_fer2013_csv
from fer_utils.labels import EMOTIONS

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
    assert set(metrics["per_class"]) == set(EMOTIONS)
    assert set(metrics["per_class"]["happy"]) == {"precision", "recall", "f1", "support"}
    counts = pd.read_csv(out / "confusion.csv", index_col=0)
    assert counts.values.sum() == 70 and list(counts.columns) == list(EMOTIONS)
    normalized = pd.read_csv(out / "confusion_normalized.csv", index_col=0)
    assert np.allclose(normalized.sum(axis=1)[counts.sum(axis=1) > 0], 1, atol=1e-3)
    for figure in ("confusion", "per_class", "reliability", "mistakes"):
        assert (out / f"{figure}.png").exists()
    # Reproducible: the same evaluation writes the same metrics file.
    first = (out / "metrics.json").read_text()
    main(["evaluate", "--model", str(files["keras"]), "--data", str(synthetic_csv), "--split",
          "test", "--out", str(out), "--tta", "flip"])
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == json.loads(first)[
        "accuracy"]


def test_compare_models_one_row_each(untrained, synthetic_csv):
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    table = ev.compare_models({"a": untrained, "b": untrained}, dataset, "val")
    assert list(table.index) == ["a", "b"] and "accuracy_flip_tta" in table
    assert table.loc["a", "accuracy"] == table.loc["b", "accuracy"]


def test_bad_csv_rows_make_the_cli_exit_non_zero(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n0,1 2 3,Training\n")
    assert main(["evaluate", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "line 2" in capsys.readouterr().err
