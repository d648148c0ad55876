"""The leakage lesson: the seed's protocol scores higher on the same data, through copies."""

import numpy as np
import pytest

from fer_utils.data import load_fer2013_csv
from fer_utils.leakage import honest_split, leakage_lesson, seed_protocol_split

pytestmark = pytest.mark.slow


def test_the_seed_protocol_puts_copies_on_both_sides(synthetic_csv):
    dataset = load_fer2013_csv(synthetic_csv, cache=False).subset(slice(0, 350))
    leaky = seed_protocol_split(dataset, seed=0)
    honest = honest_split(dataset, seed=0)
    assert len(leaky) > len(dataset)  # oversampled before splitting
    assert set(leaky.usage) == {"Training", "PublicTest"}
    np.testing.assert_array_equal(honest.split("PublicTest").images,
                                  dataset.split("PublicTest").images)


def test_the_leaky_protocol_scores_higher_on_the_same_data(synthetic_csv, tmp_path):
    dataset = load_fer2013_csv(synthetic_csv, cache=False)
    lesson = leakage_lesson(dataset, tmp_path, images=250, epochs=3)
    assert lesson.seed_protocol_twin_share > 0.3 and lesson.whole_data_twin_share > 0.3
    assert lesson.honest_twin_share == 0.0
    assert lesson.seed_protocol_accuracy > lesson.honest_accuracy
    for accuracy, (low, high) in ((lesson.seed_protocol_accuracy, lesson.seed_protocol_ci95),
                                  (lesson.honest_accuracy, lesson.honest_ci95)):
        assert low <= accuracy <= high and high - low > 0.01
    # The leaky accuracy is the twin rows' and the other rows' accuracies, weighed by share.
    share = lesson.seed_protocol_twin_share
    assert lesson.seed_protocol_accuracy == pytest.approx(
        share * lesson.twin_accuracy + (1 - share) * lesson.other_accuracy)
    assert list(lesson.table().columns) == ["test accuracy % [95%]",
                                            "test rows with a twin in training %"]
    assert lesson.table().iloc[1, 0].startswith(f"{100 * lesson.honest_accuracy:.1f} [")
