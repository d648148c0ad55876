"""Stable face ids across frames by greedy IoU matching, tracks cleaned of fragments and
ghosts once the video is done, and per-track smoothing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .geometry import iou
from .labels import EMOTIONS
from .options import check_fields
from .speaker import SMOOTHED

__all__ = ["IoUTracker", "TrackCleaning", "inside_share", "clean_tracks", "SMOOTHING_METHODS",
           "Smoothing", "TrackSmoother", "smooth_rows", "stretches", "face_stretches", "Drop",
           "first_drop"]


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


@dataclass(frozen=True)
class TrackCleaning:
    """Which tracks of a finished video are fragments of a face or brief ghosts (dropped), and
    which are pieces of one face (joined into one)."""

    # A track narrower than this share of another track, with its centre inside that track's
    # box, is a fragment of that face (a box on an eye or a mouth).
    fragment_size: float = 0.6
    # A track seen for less than this many seconds, beside a longer one, is a ghost.
    min_track_s: float = 1.5
    # A track that starts at most `join_gap_s` after another ended, within `join_shift` face
    # widths of where it ended and at a similar size (ratio at least fragment_size), is the
    # same face found again.
    join_gap_s: float = 3.0
    join_shift: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self, ("fragment_size", "min_track_s", "join_gap_s", "join_shift"))


def _centres(rows: pd.DataFrame) -> np.ndarray:
    boxes = rows[["x", "y", "w", "h"]].to_numpy(float)
    return boxes[:, :2] + boxes[:, 2:] / 2


def inside_share(small: pd.DataFrame, large: pd.DataFrame) -> float:
    """Share of one track's rows whose box centre lies inside another track's box at the
    nearest frame where that track was seen."""
    frames, wanted = large["frame"].to_numpy(), small["frame"].to_numpy()
    after = np.searchsorted(frames, wanted).clip(0, len(frames) - 1)
    before = (after - 1).clip(0)
    nearest = np.where(np.abs(frames[before] - wanted) <= np.abs(frames[after] - wanted),
                       before, after)
    x, y, w, h = large[["x", "y", "w", "h"]].to_numpy(float)[nearest].T
    cx, cy = _centres(small).T
    return float(((cx >= x) & (cx <= x + w) & (cy >= y) & (cy <= y + h)).mean())


def _same_face(last: pd.DataFrame, first: pd.DataFrame, rules: TrackCleaning) -> bool:
    """Whether a track whose first row is `first` continues the face whose last row is `last`."""
    (x0, y0), (x1, y1) = _centres(last)[0], _centres(first)[0]
    w0, w1 = float(last["w"].iloc[0]), float(first["w"].iloc[0])
    gap = float(first["time_s"].iloc[0] - last["time_s"].iloc[0])
    return (0 < gap <= rules.join_gap_s + 1e-9
            and np.hypot(x1 - x0, y1 - y0) <= rules.join_shift * max(w0, w1)
            and min(w0, w1) >= rules.fragment_size * max(w0, w1))


def clean_tracks(frames: pd.DataFrame, step_s: float, rules: TrackCleaning | None = None
                 ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The frames table (frames.csv) without fragment and ghost tracks, with the pieces of one
    face joined and face ids renumbered by first appearance; and how many tracks were found,
    joined into another, dropped as fragments, dropped as brief, and kept."""
    rules = rules or TrackCleaning()
    tracks = dict(tuple(frames.groupby("face_id", sort=True)))
    width = {t: float(rows["w"].median()) for t, rows in tracks.items()}
    fragments = {t for t in tracks for face in tracks
                 if width[t] < rules.fragment_size * width[face]
                 and len(tracks[face]) >= len(tracks[t])
                 and inside_share(tracks[t], tracks[face]) > 0.5}
    root: dict[int, int] = {}  # track -> the first track of its face
    last: dict[int, pd.DataFrame] = {}  # face -> its last row so far
    for t in sorted(set(tracks) - fragments, key=lambda t: tracks[t]["frame"].iloc[0]):
        fits = [face for face, row in last.items()
                if _same_face(row, tracks[t].iloc[:1], rules)]
        root[t] = max(fits, key=lambda face: last[face]["frame"].iloc[0]) if fits else t
        last[root[t]] = tracks[t].iloc[-1:]
    rows = dict.fromkeys(last, 0)
    for t, face in root.items():
        rows[face] += len(tracks[t])
    longest = max(rows, key=rows.get, default=None)
    brief = {face for face, n in rows.items()
             if n * step_s < rules.min_track_s - 1e-9 and face != longest}
    kept = [face for face in last if face not in brief]  # in order of first appearance
    new_id = {t: kept.index(face) for t, face in root.items() if face in kept}
    cleaned = frames[frames["face_id"].isin(list(new_id))].copy()
    cleaned["face_id"] = cleaned["face_id"].map(new_id)
    counts = {"found": len(tracks), "joined": len(root) - len(last),
              "dropped_fragments": len(fragments), "dropped_brief": len(brief),
              "kept": len(kept)}
    return cleaned.reset_index(drop=True), counts


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


def smooth_rows(frames: pd.DataFrame, smoothing: Smoothing) -> pd.DataFrame:
    """The frames table with its smoothed columns recomputed along each face's rows, in order."""
    smoother = TrackSmoother(smoothing)
    raw = frames[list(EMOTIONS)].to_numpy(float)
    smoothed = np.array([smoother.update(face_id, probs) for face_id, probs in
                         zip(frames["face_id"], raw, strict=True)]).reshape(-1, len(EMOTIONS))
    resmoothed = frames.copy()
    resmoothed[SMOOTHED] = smoothed.round(5)
    resmoothed["smoothed_label"] = np.array(EMOTIONS)[smoothed.argmax(axis=1)]
    return resmoothed


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


def face_stretches(frames: pd.DataFrame, step_s: float,
                   shortest: float = 1.0) -> dict[str, list[tuple[float, float, str]]]:
    """Every face of frames.csv told in stretches (`stretches`), by face id."""
    return {str(face_id): stretches(rows["smoothed_label"].to_numpy(), rows["time_s"].to_numpy(),
                                    rows[SMOOTHED].to_numpy(), step_s, EMOTIONS, shortest)
            for face_id, rows in frames.groupby("face_id")}


@dataclass(frozen=True)
class Drop:
    """Where a face's smoothed probability of an expression first falls from at least a
    threshold to below it, and what its raw probability did in the run that fall ends."""

    time_s: float | None  # the first frame below after one at or above; None: no fall
    raw_below_s: float | None  # where the raw probability went below for good; None: not yet
    flickers: int  # earlier frames of the run where the raw probability dipped below


def first_drop(rows: pd.DataFrame, emotion: str, threshold: float = 0.5) -> Drop:
    """The first fall of one face's smoothed `emotion` probability below `threshold` (rows of
    frames.csv, in time order), set beside its raw probability: how far smoothing lagged, and
    how many brief dips it ignored."""
    times = rows["time_s"].to_numpy()
    smoothed, raw = rows[f"smoothed_{emotion}"].to_numpy(), rows[emotion].to_numpy()
    above = smoothed >= threshold
    falls = np.flatnonzero(above[:-1] & ~above[1:]) + 1
    if not len(falls):
        return Drop(None, None, 0)
    end = falls[0]
    start = end - np.argmin(above[end - 1::-1]) if not above[:end].all() else 0
    run_raw = raw[start:end + 1]
    last_above = np.flatnonzero(run_raw >= threshold)
    first_below = last_above[-1] + 1 if len(last_above) else 0
    dips = int((run_raw[:first_below] < threshold).sum())
    raw_below = float(times[start + first_below]) if first_below < len(run_raw) else None
    return Drop(float(times[end]), raw_below, dips)
