"""The learning-rate schedule: a linear warmup, then a cosine to zero at the end of the run."""

import numpy as np
import pytest

from fer_utils.schedules import WarmupCosine


def test_the_rate_climbs_linearly_then_falls_along_a_cosine_to_zero():
    rates = np.asarray(WarmupCosine(0.1, warmup_steps=10, total_steps=110)(np.arange(110)))
    np.testing.assert_allclose(rates[:10], 0.1 * np.arange(1, 11) / 10, rtol=1e-6)
    assert rates[10] == pytest.approx(0.1) and rates[60] == pytest.approx(0.05)  # half-way down
    assert rates[-1] == pytest.approx(0.05 * (1 + np.cos(np.pi * 0.99)), rel=1e-4)
    assert rates[-1] < 1e-4 and np.all(np.diff(rates[10:]) <= 0)


def test_without_warmup_the_first_step_is_at_the_peak():
    rates = np.asarray(WarmupCosine(0.02, warmup_steps=0, total_steps=4)(np.arange(4)))
    np.testing.assert_allclose(rates, 0.01 * (1 + np.cos(np.pi * np.arange(4) / 4)), rtol=1e-5)
