"""Learning-rate schedules, saved with a model's optimizer and needed to load it again."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["WarmupCosine"]


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to the peak rate, then cosine decay to zero; a pure function of the step."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1) / max(self.warmup_steps, 1)
        progress = (step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1)
        cosine = 0.5 * self.peak * (1 + tf.cos(np.pi * tf.clip_by_value(progress, 0.0, 1.0)))
        return tf.where(step < self.warmup_steps, warm, cosine)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}
