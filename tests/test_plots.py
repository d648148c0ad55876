"""Figures: the chapters' titles and axes name expressions, which is what a face shows."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fer_utils import plots
from fer_utils.evaluation import classification_metrics
from fer_utils.synth import generate


@pytest.fixture(scope="module")
def faces():
    return generate(n_train=70, n_val=14, n_test=0, seed=0)


def _words(fig: plt.Figure) -> str:
    """Every title and axis label of a figure."""
    texts = [fig.get_suptitle()]
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " ".join(texts).lower()


def test_the_data_and_evaluation_figures_say_expression_not_emotion(faces):
    validation = faces.split("PublicTest")
    probs = np.eye(7)[validation.labels]
    per_class = classification_metrics(validation.labels, probs)["per_class"]
    figures = [plots.class_distribution(faces.counts()), plots.samples_per_class(faces, 2),
               plots.mean_faces(faces), plots.per_class_bars(per_class)]
    for fig in figures:
        words = _words(fig)
        assert "expression" in words and "emotion" not in words, words
        plt.close(fig)


def test_the_margin_curves_give_each_detector_a_panel_and_each_model_one_colour():
    rows = [{"model": model, "detector": detector, "margin": margin,
             "accuracy_on_found": 0.5 + margin, "accuracy_on_found_ci95_low": 0.4,
             "accuracy_on_found_ci95_high": 0.7}
            for model in ("shipped", "previous") for detector in ("photo", "haar")
            for margin in (0.0, 0.1)]
    own = {("shipped", "photo"): 0.0, ("shipped", "haar"): 0.1, ("previous", "photo"): 0.1,
           ("previous", "haar"): 0.0}
    fig = plots.margin_curve(pd.DataFrame(rows), own)
    assert [ax.get_title() for ax in fig.axes] == ["detector: photo", "detector: haar"]
    colours = None
    for ax in fig.axes:
        lines = {line.get_label(): line.get_color() for line in ax.lines
                 if line.get_label() in ("shipped", "previous")}
        assert len(set(lines.values())) == 2 and colours in (None, lines)  # same in each panel
        colours = lines
        rings = [line.get_markeredgecolor() for line in ax.lines if line.get_markersize() == 13
                 and line.get_label().startswith("_")]
        assert sorted(map(str, rings)) == sorted(map(str, lines.values()))  # in their colour
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == [
        "shipped", "previous", "the margin the model crops with"]
    plt.close(fig)


def test_training_curves_mark_where_each_later_stage_of_a_log_begins():
    log = pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "stage": [1, 1, 1, 2, 2],
                        "profile": ["robust"] * 3 + ["finetune"] * 2,
                        "loss": [2.0, 1.5, 1.2, 1.1, 1.0], "val_loss": [1.9, 1.6, 1.4, 1.3, 1.3],
                        "accuracy": [0.3, 0.5, 0.6, 0.62, 0.64],
                        "val_accuracy": [0.35, 0.5, 0.58, 0.6, 0.61]})
    fig = plots.training_curves(log)
    for ax in fig.axes:
        [boundary] = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert list(boundary.get_xdata()) == [3.5, 3.5]
        assert [t.get_text().strip() for t in ax.texts] == ["finetune"]
    plt.close(fig)
    fig = plots.training_curves(log.drop(columns=["stage", "profile"]))
    assert not any(ax.texts for ax in fig.axes)
    plt.close(fig)
