"""The anatomy figures notebook 05 shows agree with what Keras computes."""

import numpy as np

from fer_utils import anatomy
from fer_utils.model import build_seed_cnn


def test_one_layer_keeps_its_batch_axis_and_the_head_reproduces_the_model():
    net = build_seed_cnn()
    x = np.random.default_rng(0).random((1, 48, 48, 1), np.float32)
    dense = anatomy.activations(net, x, ["head_dropout"])["head_dropout"]
    assert dense.shape == (1, 250)
    scores = anatomy.head(net, x)
    np.testing.assert_allclose(scores["softmax"], scores["model output"], atol=1e-6)
    assert scores["logit"].nunique() == 7 and abs(scores["softmax"].sum() - 1) < 1e-6
