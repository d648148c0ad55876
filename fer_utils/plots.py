"""Figures the notebooks and reports show; each function returns a matplotlib Figure."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .atomic import atomic_path
from .labels import COLOURS, EMOTIONS
from .speaker import INTERVALS, METRICS, MIN_RATE_S, THIRDS, third_bounds

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "figure_title", "save_figure", "face_grid", "emotion_timeline", "confusion_heatmap",
    "per_class_bars", "reliability_diagram", "mistakes_grid", "training_curves",
    "learning_rate_curve", "accuracy_bars", "class_distribution", "samples_per_class",
    "mean_faces", "filter_grid", "feature_maps", "grad_cam_overlay", "share_bars",
    "feedback_timeline", "compare_talks", "thirds_by_talk", "framed_faces", "margin_curve",
    "framing_grid_bars",
]

sns.set_theme(context="notebook", style="whitegrid")


def figure_title(fig: plt.Figure) -> str:
    """What a figure says it shows: its overall title, else its panels' titles."""
    if fig.get_suptitle():
        return fig.get_suptitle()
    return "; ".join(t for ax in fig.axes if (t := ax.get_title() or ax.get_title("left")))


def _png_with_alt_text(fig: plt.Figure) -> tuple[str, dict]:
    """A figure as PNG for IPython, with its title as the image's alt text."""
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", bbox_inches="tight", base64=True), {"alt": figure_title(fig)}


def _show_figures_with_alt_text() -> None:
    """In an IPython kernel, every figure carries its title as alt text into the report."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        # Load the kernel's backend first: loading it later registers its own PNG printer.
        plt.switch_backend(plt.get_backend())
        shell.display_formatter.formatters["image/png"].for_type(plt.Figure, _png_with_alt_text)


_show_figures_with_alt_text()


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically and return its path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def face_grid(images: np.ndarray, titles: list[str] | None = None, cols: int = 8,
              size: float = 1.2, title: str = "") -> plt.Figure:
    """Grayscale faces in a grid, with optional titles per face and for the whole grid."""
    rows = max(1, -(-len(images) // cols))
    height = size * images.shape[1] / images.shape[2]  # cells keep the images' aspect ratio
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * (height + 0.45)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            if titles:
                ax.set_title(titles[i], fontsize=8 if size < 3 else 12)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def emotion_timeline(frames: pd.DataFrame, summary: dict | None = None) -> plt.Figure:
    """Smoothed probabilities of each expression over time, one panel per tracked face."""
    ids = sorted(frames["face_id"].unique()) if len(frames) else []
    fig, axes = plt.subplots(max(1, len(ids)), 1, figsize=(10, 2.4 * max(1, len(ids))),
                             squeeze=False, sharex=True)
    for ax, face_id in zip(axes[:, 0], ids, strict=False):
        rows = frames[frames["face_id"] == face_id]
        ax.stackplot(rows["time_s"], *(rows[f"smoothed_{e}"] for e in EMOTIONS),
                     labels=EMOTIONS, colors=[np.array(COLOURS[e][::-1]) / 255 for e in EMOTIONS])
        ax.set_ylabel(f"face {face_id}")
        ax.set_ylim(0, 1)
    if ids:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    else:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center",
                        transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    if summary:
        axes[0, 0].set_xlim(0, summary["duration_s"])  # the whole video, faces or not
        fig.suptitle(f"{Path(summary['video']).name}: face in {summary['face_share']:.0%} "
                     "of analysed frames")
    fig.tight_layout()
    return fig


def confusion_heatmap(matrix: pd.DataFrame) -> plt.Figure:
    """A row-normalised confusion matrix (DataFrame, true x predicted) as a heatmap."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    sns.heatmap(matrix, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, ax=ax,
                cbar_kws={"label": "share of the true class"})
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (rows: true class)")
    fig.tight_layout()
    return fig


def per_class_bars(per_class: dict) -> plt.Figure:
    """Precision, recall and F1 per expression, side by side."""
    import pandas as pd

    table = pd.DataFrame(per_class).T[["precision", "recall", "f1"]]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    table.plot.bar(ax=ax, rot=0, width=0.8)
    ax.set(ylim=(0, 1), ylabel="score", title="Precision, recall and F1 per expression")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def reliability_diagram(bins: pd.DataFrame, ece: float) -> plt.Figure:
    """Accuracy against confidence per bin, with its count; the diagonal is perfect calibration."""
    used = bins[bins["count"] > 0]
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    ax.bar((used["low"] + used["high"]) / 2, used["accuracy"], width=used["high"] - used["low"],
           edgecolor="black", alpha=0.7, label="accuracy in bin")
    ax.plot(used["confidence"], used["accuracy"], "o", color="black", ms=3)
    for row in used.itertuples():
        ax.annotate(f"{row.count}", ((row.low + row.high) / 2, row.accuracy), ha="center",
                    va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="confidence", ylabel="accuracy",
           title=f"Reliability (ECE {ece:.3f}); faces per bin above the bars")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.15), ncols=2, fontsize=8)
    fig.tight_layout()
    return fig


def mistakes_grid(mistakes: pd.DataFrame, images: np.ndarray, limit: int = 24) -> plt.Figure:
    """The most confident mistakes, titled true -> predicted (confidence)."""
    top = mistakes.sort_values("confidence", ascending=False, kind="stable").head(limit)
    titles = [f"{r.true}->{r.predicted}\n{r.confidence:.0%}" for r in top.itertuples()]
    return face_grid(images[top["index"].to_numpy()], titles, cols=8, size=1.3,
                     title="The most confident mistakes: true -> predicted (confidence)")


def training_curves(history: pd.DataFrame, title: str = "Training curves") -> plt.Figure:
    """Loss and accuracy per epoch, training and validation, legend below the panels; where a
    log has several stages (`training.training_log`), a dashed line where each begins."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    starts = history.groupby("stage").head(1).iloc[1:] if "stage" in history else history[:0]
    for ax, metric in ((left, "loss"), (right, "accuracy")):
        ax.plot(history["epoch"], history[metric], marker=".", label="training")
        ax.plot(history["epoch"], history[f"val_{metric}"], marker=".",
                label="validation (PublicTest)")
        ax.set(xlabel="epoch", ylabel=metric)
        for start in starts.itertuples():
            ax.axvline(start.epoch - 0.5, color="grey", linestyle="--", linewidth=1)
            ax.annotate(f" {start.profile}", (start.epoch - 0.5, 1),
                        xycoords=("data", "axes fraction"), va="top", fontsize=9, color="grey")
    fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncols=2,
               bbox_to_anchor=(0.5, -0.04))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def learning_rate_curve(rates: np.ndarray, steps_per_epoch: int) -> plt.Figure:
    """A learning-rate schedule, one value per training step, drawn against epochs."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(np.arange(len(rates)) / steps_per_epoch, rates)
    ax.set(xlabel="epoch", ylabel="learning rate", ylim=(0, None),
           title="Learning rate: linear warmup, then cosine decay")
    fig.tight_layout()
    return fig


def accuracy_bars(values: dict[str, float], title: str = "") -> plt.Figure:
    """Labelled bars of a few shares (accuracies, twin shares) from 0 to 1."""
    fig, ax = plt.subplots(figsize=(6, 3))
    bars = ax.barh(list(values), list(values.values()), color=sns.color_palette()[:len(values)])
    ax.bar_label(bars, labels=[f"{v:.1%}" for v in values.values()], padding=3)
    ax.set_xlim(0, 1.1)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def class_distribution(counts: pd.DataFrame) -> plt.Figure:
    """Images per expression and usage (counts is expression x usage)."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    counts.plot.bar(ax=ax, rot=0)
    ax.set(ylabel="images", title="Images per expression and split")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def samples_per_class(dataset, per_class: int = 8, seed: int = 0) -> plt.Figure:
    """A row of random training faces for each expression."""
    rng = np.random.default_rng(seed)
    picks, titles = [], []
    for k, name in enumerate(EMOTIONS):
        rows = np.flatnonzero(dataset.labels == k)
        chosen = rng.choice(rows, min(per_class, len(rows)), replace=False) if len(rows) else []
        picks += list(chosen) + [None] * (per_class - len(chosen))
        titles += [name] * per_class
    blank = np.full(dataset.images.shape[1:], 255, np.uint8)
    images = np.stack([dataset.images[i] if i is not None else blank for i in picks])
    return face_grid(images, titles, cols=per_class,
                     title=f"{per_class} random training faces per expression")


def mean_faces(dataset) -> plt.Figure:
    """The average face of each expression."""
    means = [dataset.images[dataset.labels == k].mean(axis=0) if (dataset.labels == k).any()
             else np.zeros(dataset.images.shape[1:]) for k in range(len(EMOTIONS))]
    return face_grid(np.stack(means).astype(np.uint8), list(EMOTIONS), cols=7, size=1.6,
                     title="The average face of each expression")


def filter_grid(kernel: np.ndarray) -> plt.Figure:
    """First-layer convolution filters (k, k, 1, F) on one diverging scale centred on zero."""
    filters = np.moveaxis(kernel[:, :, 0, :], -1, 0)
    limit = float(np.abs(filters).max()) or 1.0
    cols = 8
    rows = -(-len(filters) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 1, rows * 1.05), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(filters):
            image = ax.imshow(filters[i], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(str(i), fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(f"First-layer filters ({filters.shape[1]}x{filters.shape[2]} weights)")
    return fig


def feature_maps(maps: dict[str, np.ndarray], per_layer: int = 8) -> plt.Figure:
    """The first channels of each layer's output for one face, one row per layer and scale."""
    fig, axes = plt.subplots(len(maps), per_layer, figsize=(per_layer * 1.2 + 1, len(maps) * 1.5),
                             squeeze=False)
    for row, (name, out) in zip(axes, maps.items(), strict=True):
        channels = out[0, :, :, :per_layer]
        for c, ax in enumerate(row):
            ax.axis("off")
            if c < channels.shape[-1]:
                image = ax.imshow(channels[:, :, c], cmap="viridis", vmin=channels.min(),
                                  vmax=channels.max())
        fig.colorbar(image, ax=list(row), shrink=0.9, pad=0.01)
        row[0].set_title(f"{name} {out.shape[1]}x{out.shape[2]}x{out.shape[3]}", fontsize=8,
                         loc="left")
    fig.suptitle(f"Feature maps: first {per_layer} channels per layer (colour: activation)")
    return fig


def grad_cam_overlay(face: np.ndarray, cam: np.ndarray, title: str) -> plt.Figure:
    """A face, its Grad-CAM map, and the two overlaid."""
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.8), layout="constrained")
    axes[0].imshow(face, cmap="gray")
    heat = axes[1].imshow(cam, cmap="jet", vmin=0, vmax=1)
    axes[2].imshow(face, cmap="gray")
    axes[2].imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    for ax, name in zip(axes, ("face", "Grad-CAM", "overlay"), strict=True):
        ax.set_title(name)
        ax.axis("off")
    fig.colorbar(heat, ax=axes, shrink=0.8, label="share of the peak")
    fig.suptitle(title)
    return fig


def share_bars(shares: dict[str, float], title: str = "") -> plt.Figure:
    """Share of time per emotion as horizontal bars."""
    fig, ax = plt.subplots(figsize=(6, 3))
    names = list(shares)
    ax.barh(names, [shares[n] for n in names],
            color=[np.array(COLOURS[n][::-1]) / 255 for n in names])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of time")
    ax.set_title(title)
    ax.invert_yaxis()
    fig.tight_layout()
    return fig


def feedback_timeline(frames: pd.DataFrame, summary: dict) -> plt.Figure:
    """A talk's expression timeline with its opening, middle and closing thirds marked by
    dashed lines (the bands keep the legend's colours)."""
    fig = emotion_timeline(frames, summary)
    bounds = third_bounds(summary["frames_analysed"], summary["sampling"]["step_s"])
    for ax in fig.axes:  # one panel per face
        for name, (start, end) in zip(THIRDS, bounds, strict=True):
            if start > 0:
                ax.axvline(start, color="black", ls="--", lw=1)
            ax.text((start + end) / 2, 1.02, name, ha="center", va="bottom", fontsize=9,
                    transform=ax.get_xaxis_transform())
    return fig


def _label(name: str) -> str:
    """A summary field's name as words: positive_share -> positive share."""
    return name.replace("_", " ")


def compare_talks(corpus: pd.DataFrame) -> plt.Figure:
    """The talks of a corpus table with a face side by side, labelled with their seconds of
    face: shares (0..1, with the 95% intervals of the positive and negative shares) and rates
    per minute; legends below the panels."""
    table = corpus[corpus["face_frames"].fillna(0) > 0].set_index("folder")
    names = [f"{folder}\n({seconds:.1f} s of face)" for folder, seconds in
             table["face_seconds"].items()]
    groups = ([m for m in METRICS if not m.endswith("per_minute")],
              [m for m in METRICS if m.endswith("per_minute")])
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.9 * max(len(table), 1) + 2.4),
                             gridspec_kw={"width_ratios": [2, 1]})
    for ax, figures in zip(axes, groups, strict=True):
        height = 0.8 / len(figures)
        for k, name in enumerate(figures):
            values = table[name].astype(float).to_numpy()
            error = None
            if name in INTERVALS:
                low, high = (table[c].astype(float).to_numpy() for c in INTERVALS[name])
                error = np.vstack([values - low, high - values])
            ax.barh(np.arange(len(table)) - 0.4 + (k + 0.5) * height, values, height,
                    xerr=error, capsize=2, label=_label(name))
        ax.set_yticks(np.arange(len(table)), names)
        ax.invert_yaxis()
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=3)
    axes[0].set(xlim=(0, 1), xlabel="share (0 to 1); whiskers: 95% intervals",
                title="Shares and expressiveness")
    axes[1].set(xlabel="per minute of face on screen",
                title=f"Rates per minute (left empty under {MIN_RATE_S:g} s of face)")
    axes[1].set_yticklabels([])
    fig.tight_layout()
    return fig


def thirds_by_talk(summaries: dict[str, dict], figure: str = "positive_share") -> plt.Figure:
    """One speaker figure across the opening, middle and closing thirds, a line per talk with
    a face, with its 95% intervals where the figure has them."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    dodge = 0.08  # talks side by side at each third, so their whiskers do not hide each other
    for i, (name, summary) in enumerate(summaries.items()):
        thirds = [summary["thirds"][t] for t in THIRDS]
        values = np.array([np.nan if t[figure] is None else t[figure] for t in thirds])
        if np.isnan(values).all():
            continue  # no face in any third: no line, so no legend entry either
        error = None
        if figure in INTERVALS:
            low, high = (np.array([np.nan if t[c] is None else t[c] for t in thirds])
                         for c in INTERVALS[figure])
            error = np.vstack([values - low, high - values])
        ax.errorbar(np.arange(3) + dodge * (i - (len(summaries) - 1) / 2), values, yerr=error,
                    marker="o", capsize=3, label=name)
    ax.set_xticks(np.arange(3), THIRDS)
    ax.set_ylabel(_label(figure))
    ax.set_title(f"{_label(figure).capitalize()} by third of each talk"
                 + (" (whiskers: 95% intervals)" if figure in INTERVALS else ""))
    if ax.lines:
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def framed_faces(frames: np.ndarray, placed: np.ndarray, found: np.ndarray,
                 titles: list[str], cols: int = 6) -> plt.Figure:
    """Frames with the box each face was placed in (dashed) and the detector's box (solid,
    absent where it missed)."""
    from matplotlib.patches import Rectangle

    fig = face_grid(frames, titles, cols=cols, size=2.0,
                    title="Faces in frames: where each face was put (dashed) and what the "
                          "detector found (solid)")
    for ax, put, box in zip(fig.axes, placed, found, strict=False):
        ax.add_patch(Rectangle(put[:2], *put[2:], fill=False, ls="--", ec="white", lw=1))
        if box[2] > 0:
            ax.add_patch(Rectangle(box[:2], *box[2:], fill=False, ec="orange", lw=1.5))
    return fig


def margin_curve(curve: pd.DataFrame, own: dict) -> plt.Figure:
    """Accuracy on the faces found against the crop margin: one panel per detector, one line
    (and 95% band) per model in the colours of the framing grid; the margin each model crops
    with for that detector (`own`, by (model, detector): its card's) ringed."""
    detectors, models = curve["detector"].unique(), curve["model"].unique()
    colours = dict(zip(models, sns.color_palette(), strict=False))
    fig, axes = plt.subplots(1, len(detectors), figsize=(3.6 * len(detectors) + 2.4, 3.6),
                             sharey=True, squeeze=False)
    for ax, detector in zip(axes[0], detectors, strict=True):
        for model in models:
            line = curve[(curve["model"] == model) & (curve["detector"] == detector)]
            colour = colours[model]
            ax.plot(line["margin"], line["accuracy_on_found"], marker="o", color=colour,
                    label=model)
            ax.fill_between(line["margin"], line["accuracy_on_found_ci95_low"],
                            line["accuracy_on_found_ci95_high"], color=colour, alpha=0.12)
            at = line[line["margin"] == own[model, detector]]
            ax.plot(at["margin"], at["accuracy_on_found"], "o", ms=13, mfc="none", mec=colour)
        ax.set(title=f"detector: {detector}", xlabel="crop margin")
    axes[0, 0].set_ylabel("accuracy on the faces found")
    axes[0, -1].plot([], [], "o", ms=13, mfc="none", mec="grey",
                     label="the margin the model crops with")
    axes[0, -1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.suptitle("Crop margin (share of the box's side added on each side): accuracy on the "
                 "faces found, with 95% intervals")
    fig.tight_layout()
    return fig


def framing_grid_bars(cells: pd.DataFrame, single: pd.Series) -> plt.Figure:
    """Accuracy per framing-grid cell and model (DataFrame: cells x models), each model's
    single-crop accuracy (Series by model) as a dashed line of its colour."""
    fig, ax = plt.subplots(figsize=(10, 3.8))
    cells.plot.bar(ax=ax, rot=30, width=0.8)
    for colour, model in zip(sns.color_palette(), cells.columns, strict=False):
        ax.axhline(single[model], ls="--", color=colour, lw=1)
    low = float(min(np.nanmin(cells.to_numpy()), np.nanmin(single.to_numpy())))
    ax.set(ylim=(max(0.0, low - 0.1), None), xlabel="", ylabel="accuracy",
           title="Framing grid: each model on reframed crops (dashed: its single crop)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig
