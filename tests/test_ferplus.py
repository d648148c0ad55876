"""FER+ votes: majority labels, soft labels and the documented exclusions."""

import numpy as np
import pandas as pd
import pytest

from fer_utils.data import DataError, FaceDataset
from fer_utils.ferplus import apply_ferplus

HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger",
          "disgust", "fear", "contempt", "unknown", "NF"]
ROWS = [
    ["Training", "a.png", 2, 8, 0, 0, 0, 0, 0, 0, 0, 0],  # happy
    ["Training", "b.png", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # not a face
    ["Training", "c.png", 0, 0, 5, 0, 0, 0, 5, 0, 0, 0],  # tie surprise/fear
    ["PublicTest", "d.png", 1, 0, 0, 0, 3, 0, 0, 6, 0, 0],  # contempt majority
    ["PublicTest", "e.png", 3, 0, 0, 6, 1, 0, 0, 0, 0, 0],  # sad
]


def test_majority_and_soft_labels_with_exclusions(tmp_path):
    path = tmp_path / "fer2013new.csv"
    pd.DataFrame(ROWS, columns=HEADER).to_csv(path, index=False)
    dataset = FaceDataset(images=np.zeros((5, 48, 48), np.uint8), labels=np.zeros(5, np.int64),
                          usage=np.array([r[0] for r in ROWS]), source="fer2013.csv")
    relabelled, dropped = apply_ferplus(dataset, path)
    assert relabelled.labels.tolist() == [3, 4]  # happy, sad
    np.testing.assert_allclose(relabelled.soft_labels[1][[4, 6, 0]], [0.6, 0.3, 0.1])
    assert dropped.to_dict() == {"NF majority": 1, "tie between emotions": 1,
                                 "contempt majority": 1}
    with pytest.raises(DataError, match="5 rows but"):
        apply_ferplus(dataset.subset(slice(0, 4)), path)
