"""Figures the notebooks and reports show; each function returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .atomic import atomic_path

sns.set_theme(context="notebook", style="whitegrid")


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically and return its path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def face_grid(images: np.ndarray, titles: list[str] | None = None, cols: int = 8,
              size: float = 1.2) -> plt.Figure:
    """Grayscale faces in a grid, with optional titles."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * (size + 0.25)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            if titles:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
