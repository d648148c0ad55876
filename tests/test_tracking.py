"""A track told in stretches of its smoothed label."""

import numpy as np

from fer_utils.tracking import stretches

NAMES = ("a", "b", "c")


def test_short_flickers_fold_into_stretches_named_by_their_top_classes():
    times = np.arange(10) * 0.5
    labels = np.array(list("aaaabbbbba"))  # the last "a" lasts 0.5 s, shorter than 1 s
    probs = np.array([[0.9, 0.1, 0.0]] * 4 + [[0.1, 0.5, 0.4]] * 5 + [[0.8, 0.2, 0.0]])
    told = stretches(labels, times, probs, step_s=0.5, names=NAMES)
    assert [name for _, _, name in told] == ["mostly a", "b/c"]
    assert told[0][:2] == (0.0, 2.0) and told[1][:2] == (2.0, 5.0)


def test_equal_neighbours_are_joined():
    times = np.arange(6) * 1.0
    labels = np.array(list("aabbaa"))
    probs = np.array([[0.9, 0.1, 0.0]] * 6)
    assert stretches(labels, times, probs, step_s=1.0, names=NAMES) == [(0.0, 6.0, "mostly a")]
