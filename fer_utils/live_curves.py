"""Training curves that redraw in a notebook while a model trains."""

from __future__ import annotations

import keras
import pandas as pd

__all__ = ["LiveCurves"]


class LiveCurves(keras.callbacks.Callback):
    """Redraws loss and accuracy after every epoch in one notebook output."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.handle = None

    def on_epoch_end(self, epoch, logs=None):
        from IPython.display import display

        from .plots import plt, training_curves

        self.rows.append({"epoch": epoch + 1, **(logs or {})})
        fig = training_curves(pd.DataFrame(self.rows), "This run, updated after every epoch")
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)
