"""Speaker feedback figures from a video's per-face rows (the frames.csv table).

Every figure is defined here, once: summary.json (for the video, each face and each third)
and corpus.csv read them all from `speaker_metrics`. The rows need the columns frame,
face_id, smoothed_label and the seven smoothed probabilities (SMOOTHED).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .labels import EMOTIONS, VALENCE

__all__ = [
    "SMOOTHED", "UNCERTAIN", "UNCERTAIN_BELOW", "SMILE_MIN_S", "THIRDS", "METRICS",
    "THIRDS_DOC", "confident_labels", "changes", "run_lengths", "smiles", "expressiveness",
    "span_metrics", "third_of", "speaker_metrics", "third_bounds", "PLAIN", "feedback_card",
    "thirds_table",
]

SMOOTHED = [f"smoothed_{e}" for e in EMOTIONS]
UNCERTAIN = "uncertain"
UNCERTAIN_BELOW = 0.4  # a frame whose top smoothed probability is below this is uncertain
SMILE_MIN_S = 0.5  # happy held at least this long is a smile
THIRDS = ("opening", "middle", "closing")
METRICS: dict[str, str] = {
    "face_share": "float 0..1: share of the analysed frames with this face (any face, for "
                  "the video)",
    "positive_share": "float 0..1 or null: share of face frames confidently labelled happy or "
                      "surprise (null without face frames; the same for every share below)",
    "negative_share": "float 0..1 or null: share of face frames confidently labelled angry, "
                      "disgust, fear or sad",
    "uncertain_share": f"float 0..1 or null: share of face frames whose top smoothed "
                       f"probability is below {UNCERTAIN_BELOW}; they count as no label",
    "expressiveness": "float 0..1 or null: mean total-variation distance of each frame's "
                      "smoothed probabilities from the face's mean over the span: 0 for an "
                      "unchanging expression, towards 1 for swings between confident, "
                      "different ones",
    "smiles_per_minute": f"float or null: runs of consecutive analysed frames confidently "
                         f"labelled happy lasting at least {SMILE_MIN_S} s, per minute of face "
                         f"on screen",
    "changes_per_minute": "float or null: changes of the smoothed label between consecutive "
                          "rows of a face, per minute of face on screen",
}
THIRDS_DOC = ("dict opening, middle, closing: the figures above for each third of the "
              "analysed frames, each third measured on its own rows")


def confident_labels(rows: pd.DataFrame) -> np.ndarray:
    """Each row's smoothed label, or 'uncertain' when its top smoothed probability is low."""
    top = rows[SMOOTHED].to_numpy(float).max(axis=1) if len(rows) else np.zeros(0)
    return np.where(top < UNCERTAIN_BELOW, UNCERTAIN, rows["smoothed_label"].to_numpy(str))


def changes(labels: np.ndarray) -> int:
    """How often a face's label differs from the one in its previous row."""
    return int((labels[1:] != labels[:-1]).sum())


def run_lengths(mask: np.ndarray, frames: np.ndarray, step: int) -> list[int]:
    """Lengths, in analysed frames, of the runs of True over consecutive analysed frames."""
    lengths, length = [], 0
    for i, on in enumerate(mask):
        if on and length and frames[i] - frames[i - 1] == step:
            length += 1
            continue
        if length:
            lengths.append(length)
        length = int(on)
    return lengths + [length] if length else lengths


def smiles(rows: pd.DataFrame, step: int, step_s: float) -> int:
    """Smiles of one face: happy held at least SMILE_MIN_S over consecutive analysed frames."""
    happy = confident_labels(rows) == "happy"
    return sum(n * step_s >= SMILE_MIN_S - 1e-9
               for n in run_lengths(happy, rows["frame"].to_numpy(), step))


def expressiveness(rows: pd.DataFrame) -> float | None:
    """Mean total-variation distance of each row's smoothed probabilities from its face's mean."""
    if rows.empty:
        return None
    probs = rows[SMOOTHED].astype(float)
    centred = probs - probs.groupby(rows["face_id"]).transform("mean")
    return round(float(0.5 * centred.abs().sum(axis=1).mean()), 4)


def _share(count: float, total: float) -> float | None:
    return round(float(count) / total, 4) if total else None


def span_metrics(rows: pd.DataFrame, analysed: int, step: int, step_s: float) -> dict:
    """The METRICS of face rows spread over `analysed` frames taken every `step` frames."""
    labels = confident_labels(rows)
    minutes = len(rows) * step_s / 60
    per_face = [face for _, face in rows.groupby("face_id")]
    smile_count = sum(smiles(face, step, step_s) for face in per_face)
    change_count = sum(changes(face["smoothed_label"].to_numpy(str)) for face in per_face)
    return {
        "face_share": _share(rows["frame"].nunique(), analysed),
        "positive_share": _share(np.isin(labels, VALENCE["positive"]).sum(), len(rows)),
        "negative_share": _share(np.isin(labels, VALENCE["negative"]).sum(), len(rows)),
        "uncertain_share": _share((labels == UNCERTAIN).sum(), len(rows)),
        "expressiveness": expressiveness(rows),
        "smiles_per_minute": round(smile_count / minutes, 3) if minutes else None,
        "changes_per_minute": round(change_count / minutes, 3) if minutes else None,
    }


def third_of(frames: np.ndarray, analysed: int, step: int) -> np.ndarray:
    """Which third (0, 1, 2) of `analysed` frames, taken every `step`, each frame falls in."""
    return np.minimum(3 * (np.asarray(frames, int) // step) // max(analysed, 1), 2)


def speaker_metrics(rows: pd.DataFrame, analysed: int, step: int, step_s: float) -> dict:
    """The METRICS of face rows, plus the same for the opening, middle and closing thirds."""
    third = third_of(rows["frame"].to_numpy(), analysed, step)
    in_third = np.bincount(third_of(np.arange(analysed) * step, analysed, step), minlength=3)
    return {**span_metrics(rows, analysed, step, step_s),
            "thirds": {name: span_metrics(rows[third == i], int(in_third[i]), step, step_s)
                       for i, name in enumerate(THIRDS)}}


def third_bounds(analysed: int, step_s: float) -> list[tuple[float, float]]:
    """Start and end, in seconds, of the opening, middle and closing thirds (see third_of)."""
    starts = [-(-i * analysed // 3) * step_s for i in range(3)]
    return list(zip(starts, [*starts[1:], analysed * step_s], strict=True))


PLAIN: dict[str, str] = {
    "face_share": "the face was in view in {:.0%} of the analysed frames",
    "positive_share": "the face read as happy or surprised {:.0%} of the time it was seen",
    "negative_share": "the face read as angry, disgusted, afraid or sad {:.0%} of the time",
    "uncertain_share": "the model could not tell {:.0%} of the time (no label given)",
    "expressiveness": "{:.2f} on a scale from 0 (one unchanging expression) to 1 (marked, "
                      "frequent changes)",
    "smiles_per_minute": "{:.1f} smiles of half a second or more per minute on screen",
    "changes_per_minute": "the expression read changed {:.1f} times a minute",
}


def feedback_card(figures: dict) -> pd.DataFrame:
    """The speaker figures of a summary (or one face, or one third) with what each means."""
    return pd.DataFrame(
        [{"figure": name, "value": figures[name],
          "meaning": "no face to measure" if figures[name] is None else
          PLAIN[name].format(figures[name])} for name in METRICS]).set_index("figure")


def thirds_table(figures: dict) -> pd.DataFrame:
    """The speaker figures by third: one row each for opening, middle and closing."""
    return pd.DataFrame(figures["thirds"]).T[list(METRICS)]
