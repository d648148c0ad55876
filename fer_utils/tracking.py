"""Stable face ids across frames by greedy IoU matching, and per-track smoothing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import iou
from .options import check_fields

__all__ = ["IoUTracker", "SMOOTHING_METHODS", "Smoothing", "TrackSmoother", "stretches"]


@dataclass
class IoUTracker:
    """Gives each face the id of the track it overlaps most; new faces get new ids."""

    threshold: float = 0.3  # minimum IoU to continue a track
    max_missed: int = 10  # analysed frames a track may go unseen before it ends
    _boxes: dict[int, np.ndarray] = field(default_factory=dict)
    _missed: dict[int, int] = field(default_factory=dict)
    _next: int = 0

    def update(self, boxes: np.ndarray) -> list[int]:
        """Ids for this frame's boxes (in the same order)."""
        ids = [-1] * len(boxes)
        track_ids = list(self._boxes)
        if track_ids and len(boxes):
            overlap = iou(boxes, np.stack([self._boxes[t] for t in track_ids]))
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                i, j = np.unravel_index(flat, overlap.shape)
                if overlap[i, j] < self.threshold:
                    break
                if ids[i] == -1 and track_ids[j] not in ids:
                    ids[i] = track_ids[j]
        for i, box in enumerate(boxes):
            if ids[i] == -1:
                ids[i], self._next = self._next, self._next + 1
            self._boxes[ids[i]], self._missed[ids[i]] = np.asarray(box), 0
        for t in track_ids:
            if t not in ids:
                self._missed[t] += 1
                if self._missed[t] > self.max_missed:
                    del self._boxes[t], self._missed[t]
        return ids


SMOOTHING_METHODS = ("ema", "window", "none")


@dataclass(frozen=True)
class Smoothing:
    """Temporal smoothing of a track's probabilities: 'ema', 'window' or 'none'."""

    method: str = "ema"
    alpha: float = 0.4  # weight of the newest frame (ema)
    window: int = 5  # frames in the moving average (window)

    def __post_init__(self) -> None:
        if self.method not in SMOOTHING_METHODS:
            raise ValueError(f"smoothing must be one of {', '.join(SMOOTHING_METHODS)}, "
                             f"not {self.method!r}")
        check_fields(self, ("alpha", "window"))


@dataclass
class TrackSmoother:
    """Keeps each track's recent probabilities and returns their smoothed value."""

    smoothing: Smoothing = field(default_factory=Smoothing)
    _state: dict[int, np.ndarray] = field(default_factory=dict)
    _history: dict[int, list[np.ndarray]] = field(default_factory=dict)

    def update(self, track: int, probs: np.ndarray) -> np.ndarray:
        """Smoothed probabilities for this track after seeing `probs`."""
        method = self.smoothing.method
        if method == "ema":
            previous = self._state.get(track)
            a = self.smoothing.alpha
            self._state[track] = probs if previous is None else a * probs + (1 - a) * previous
            return self._state[track]
        if method == "window":
            recent = self._history.setdefault(track, [])
            recent.append(probs)
            del recent[:-self.smoothing.window]
            return np.mean(recent, axis=0)
        return probs


def stretches(labels: np.ndarray, times: np.ndarray, probs: np.ndarray, step_s: float,
              names: tuple[str, ...], shortest: float = 1.0) -> list[tuple[float, float, str]]:
    """A track told in stretches (start s, end s, name): runs of its smoothed label at least
    `shortest` seconds long, named by their one or two most probable classes (the second when
    at least half as probable as the first), equal neighbours joined."""
    starts = [0]
    for i in range(1, len(labels)):
        if labels[i] != labels[i - 1] and times[i] - times[starts[-1]] >= shortest:
            starts.append(i)
    if len(starts) > 1 and times[-1] + step_s - times[starts[-1]] < shortest:
        starts.pop()  # a short last run folds into the one before it
    told: list[tuple[float, float, str]] = []
    for start, end in zip(starts, [*starts[1:], len(labels)], strict=True):
        means = probs[start:end].mean(axis=0)
        first, second = np.argsort(means)[::-1][:2]
        name = (f"{names[first]}/{names[second]}" if means[second] >= 0.5 * means[first]
                else f"mostly {names[first]}")
        begin = told.pop()[0] if told and told[-1][2] == name else float(times[start])
        told.append((begin, float(times[end - 1] + step_s), name))
    return told
