"""Tracks cleaned of fragments and ghosts and joined across gaps, a track told in stretches, and
the first fall of a smoothed probability."""

import numpy as np
import pandas as pd
import pytest

from fer_utils.labels import EMOTIONS
from fer_utils.speaker import SMOOTHED
from fer_utils.tracking import (
    Drop,
    Smoothing,
    TrackCleaning,
    clean_tracks,
    face_stretches,
    first_drop,
    smooth_rows,
    stretches,
)

NAMES = ("a", "b", "c")
STEP_S = 0.25  # four analysed frames a second


def _track(face_id: int, frames, box, label: str = "neutral") -> pd.DataFrame:
    """Rows of one track with a fixed box and one confident raw label."""
    frames = list(frames)
    probs = np.zeros((len(frames), len(EMOTIONS)))
    probs[:, EMOTIONS.index(label)] = 1.0
    table = pd.DataFrame({"frame": frames, "time_s": np.array(frames) * STEP_S,
                          "face_id": face_id, "x": box[0], "y": box[1], "w": box[2], "h": box[2]})
    table[list(EMOTIONS)] = probs
    table["label"] = label
    table[SMOOTHED] = probs
    table["smoothed_label"] = label
    return table


def _frames(*tracks: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(tracks).sort_values(["frame", "face_id"], kind="stable").reset_index(
        drop=True)


def test_a_tiny_box_inside_the_face_and_a_brief_ghost_are_dropped():
    face = _track(0, range(40), (100, 100, 200, 200))
    eye = _track(1, range(10, 13), (150, 150, 20, 20), "angry")  # 3 frames, a tenth the size
    ghost = _track(2, range(20, 24), (400, 20, 180, 180), "sad")  # 1 s elsewhere
    cleaned, counts = clean_tracks(_frames(face, eye, ghost), STEP_S)
    assert counts == {"found": 3, "joined": 0, "dropped_fragments": 1, "dropped_brief": 1,
                      "kept": 1}
    assert cleaned["face_id"].eq(0).all() and len(cleaned) == 40
    # The same small box away from any face, and long-lived, is a face of its own.
    far = _track(1, range(40), (600, 300, 20, 20))
    assert clean_tracks(_frames(face, far), STEP_S)[1]["kept"] == 2


def test_the_pieces_of_one_face_are_joined_and_ids_follow_first_appearance():
    other = _track(0, range(60), (500, 50, 150, 150))  # a second face, seen throughout
    first = _track(1, range(10, 30), (100, 100, 200, 200), "happy")
    second = _track(2, range(34, 60), (120, 110, 190, 190), "sad")  # lost 1 s, found nearby
    later = _track(3, range(80, 100), (100, 100, 200, 200))  # after a 5 s gap: someone else
    cleaned, counts = clean_tracks(_frames(other, first, second, later), STEP_S)
    assert counts == {"found": 4, "joined": 1, "dropped_fragments": 0, "dropped_brief": 0,
                      "kept": 3}
    assert cleaned.groupby("face_id")["frame"].min().tolist() == [0, 10, 80]
    assert cleaned.loc[cleaned["frame"].between(10, 59) & (cleaned["x"] < 400),
                       "face_id"].eq(1).all()
    # Smoothed along the joined face, the first 'sad' row still carries its happy past.
    smoothed = smooth_rows(cleaned, Smoothing("ema", alpha=0.4))
    row = smoothed[(smoothed["frame"] == 34) & (smoothed["face_id"] == 1)].iloc[0]
    assert row["smoothed_happy"] == pytest.approx(0.6) and row["smoothed_label"] == "happy"
    stricter = TrackCleaning(join_gap_s=0.5)  # a 1 s gap is too long now
    assert clean_tracks(_frames(other, first, second), STEP_S, stricter)[1]["joined"] == 0


def test_the_only_face_stays_however_short_and_no_face_stays_empty():
    blip = _track(0, range(3), (100, 100, 200, 200))
    assert clean_tracks(blip, STEP_S)[1] == {"found": 1, "joined": 0, "dropped_fragments": 0,
                                             "dropped_brief": 0, "kept": 1}
    empty, counts = clean_tracks(blip.iloc[:0], STEP_S)
    assert empty.empty and counts["found"] == counts["kept"] == 0
    with pytest.raises(ValueError, match="fragment_size"):
        TrackCleaning(fragment_size=1.5)


def test_short_flickers_fold_into_stretches_named_by_their_top_classes():
    times = np.arange(10) * 0.5
    labels = np.array(list("aaaabbbbba"))  # the last "a" lasts 0.5 s, shorter than 1 s
    probs = np.array([[0.9, 0.1, 0.0]] * 4 + [[0.1, 0.5, 0.4]] * 5 + [[0.8, 0.2, 0.0]])
    told = stretches(labels, times, probs, step_s=0.5, names=NAMES)
    assert [name for _, _, name in told] == ["mostly a", "b/c"]
    assert told[0][:2] == (0.0, 2.0) and told[1][:2] == (2.0, 5.0)


def test_equal_neighbours_are_joined():
    times = np.arange(6) * 1.0
    labels = np.array(list("aabbaa"))
    probs = np.array([[0.9, 0.1, 0.0]] * 6)
    assert stretches(labels, times, probs, step_s=1.0, names=NAMES) == [(0.0, 6.0, "mostly a")]


def test_every_face_is_told_in_its_own_stretches():
    frames = _frames(_track(0, range(8), (10, 10, 40), "happy"),
                     _track(1, range(8), (200, 10, 40), "sad"))
    told = face_stretches(frames, STEP_S)
    assert told == {"0": [(0.0, 2.0, "mostly happy")], "1": [(0.0, 2.0, "mostly sad")]}


def test_first_drop_finds_the_smoothed_fall_and_the_raw_lag_before_it():
    def rows(smoothed, raw):
        return pd.DataFrame({"time_s": np.arange(len(raw), dtype=float),
                             "smoothed_happy": smoothed, "happy": raw})

    # Above from 1 s, below at 5 s; the raw probability dipped at 2 s and stayed down from 4 s.
    assert first_drop(rows([0.2, 0.6, 0.7, 0.6, 0.55, 0.4, 0.3],
                           [0.2, 0.9, 0.3, 0.8, 0.45, 0.35, 0.1]), "happy") == Drop(5.0, 4.0, 1)
    assert first_drop(rows([0.6, 0.4], [0.9, 0.6]), "happy") == Drop(1.0, None, 0)  # raw still up
    assert first_drop(rows([0.2, 0.6, 0.9], [0.1, 0.9, 0.9]), "happy") == Drop(None, None, 0)
    assert first_drop(rows([0.2, 0.6], [0.1, 0.9]), "happy", threshold=0.7) == Drop(None, None, 0)
