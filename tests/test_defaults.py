"""Defaults and choices read from the library's source match the imported library."""

import inspect

import pytest

from fer_utils import evaluation, faces, leakage, tracking, training
from fer_utils.defaults import choices, default


def test_constants_fields_and_parameters_read_as_imported():
    assert default("tracking", "SMOOTHING_METHODS") == tracking.SMOOTHING_METHODS
    assert default("tracking", "Smoothing.alpha") == tracking.Smoothing.alpha
    assert default("training", "TrainConfig.label_smoothing") == \
        training.TrainConfig.label_smoothing
    signature = inspect.signature(evaluation.evaluate).parameters
    assert default("evaluation", "evaluate.split") == signature["split"].default
    keyword_only = inspect.signature(leakage.leakage_lesson).parameters["images"]
    assert keyword_only.kind is keyword_only.KEYWORD_ONLY
    assert default("leakage", "leakage_lesson.images") == keyword_only.default


def test_choices_are_a_dicts_keys_or_a_tuples_items():
    assert choices("faces", "PRESETS") == tuple(faces.PRESETS)
    assert choices("training", "PROFILES") == tuple(training.PROFILES)
    assert choices("evaluation", "TTA_MODES") == evaluation.TTA_MODES


def test_a_missing_or_computed_default_is_refused():
    with pytest.raises(LookupError, match="no NOPE"):
        default("tracking", "NOPE")
    with pytest.raises(LookupError, match="no default for threshold_of_nothing"):
        default("tracking", "IoUTracker.threshold_of_nothing")
    with pytest.raises(ValueError):  # a call, not a literal
        default("faces", "PRESETS")
