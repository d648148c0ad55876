"""Figures: the chapters' titles and axes name expressions, which is what a face shows."""

import matplotlib.pyplot as plt
import numpy as np
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
