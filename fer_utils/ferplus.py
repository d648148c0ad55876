"""FER+ relabelling (Microsoft's `fer2013new.csv`): ten votes per FER-2013 image.

The vote columns map onto the kit's classes as anger -> angry, disgust, fear, happiness ->
happy, sadness -> sad, surprise, neutral. A row is dropped when its most-voted column is
`NF` (not a face), `unknown` or `contempt` (FER-2013 has no contempt class), or when two
emotions tie for the most votes. Soft labels are the vote shares over the seven classes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .data import DataError, FaceDataset

__all__ = ["VOTE_COLUMNS", "EXCLUDED", "read_votes", "ferplus_labels", "apply_ferplus"]

VOTE_COLUMNS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "happiness": "happy",
                "sadness": "sad", "surprise": "surprise", "neutral": "neutral"}
EXCLUDED = ("contempt", "unknown", "NF")


def read_votes(path: str | Path) -> pd.DataFrame:
    """The FER+ vote table, one row per FER-2013 row, in FER-2013's order."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; FER+ labels are Microsoft's fer2013new.csv.")
    votes = pd.read_csv(path)
    votes.columns = [c.strip() for c in votes.columns]
    missing = [c for c in (*VOTE_COLUMNS, *EXCLUDED) if c not in votes.columns]
    if missing:
        raise DataError(f"{path}: missing vote column(s) {', '.join(sorted(missing))}")
    return votes


def ferplus_labels(votes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Majority labels (-1 when dropped), soft labels (N, 7) and why each row was dropped."""
    from .labels import EMOTIONS

    counts = votes[list(VOTE_COLUMNS)].to_numpy(float)
    counts = counts[:, [list(VOTE_COLUMNS.values()).index(e) for e in EMOTIONS]]
    everything = votes[[*VOTE_COLUMNS, *EXCLUDED]].to_numpy(float)
    top = everything.max(axis=1)
    reason = pd.Series("", index=votes.index)
    for k, column in enumerate(EXCLUDED):
        reason[(everything[:, len(VOTE_COLUMNS) + k] == top) & (reason == "")] = \
            f"{column} majority"
    ties = (counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1
    reason[ties & (reason == "")] = "tie between emotions"
    reason[(counts.sum(axis=1) == 0) & (reason == "")] = "no emotion votes"
    labels = np.where(reason == "", counts.argmax(axis=1), -1)
    totals = counts.sum(axis=1, keepdims=True)
    soft = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return labels, soft.astype(np.float32), reason


def apply_ferplus(dataset: FaceDataset, path: str | Path) -> tuple[FaceDataset, pd.Series]:
    """The dataset relabelled by FER+ votes, dropped rows removed; also the drop counts."""
    votes = read_votes(path)
    if len(votes) != len(dataset):
        raise DataError(f"{path} has {len(votes):,} rows but {dataset.source} has "
                        f"{len(dataset):,}; FER+ needs the full fer2013.csv in its own order.")
    if "Usage" in votes and not (votes["Usage"].str.strip().to_numpy() == dataset.usage).all():
        raise DataError(f"{path}: its Usage column disagrees with {dataset.source}; the two "
                        "files are not in the same row order.")
    labels, soft, reason = ferplus_labels(votes)
    keep = labels >= 0
    relabelled = dataset.subset(keep)
    relabelled = replace(relabelled, labels=labels[keep].astype(np.int64), soft_labels=soft[keep],
                         source=f"{dataset.source} + FER+ labels",
                         checksum=f"{dataset.checksum}+ferplus")
    return relabelled, reason[~keep].value_counts()
