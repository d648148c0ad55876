"""The speaker figures against values worked out by hand on a small frames table."""

import numpy as np
import pandas as pd
import pytest

from fer_utils.labels import EMOTIONS
from fer_utils.speaker import (
    METRICS,
    SMOOTHED,
    THIRDS,
    UNCERTAIN_BELOW,
    confident_labels,
    feedback_card,
    run_lengths,
    span_metrics,
    speaker_metrics,
    third_bounds,
    thirds_table,
)

STEP_S = 0.25  # four analysed frames a second, every frame analysed (step 1)
HAPPY = {"happy": 1.0}
SAD = {"sad": 1.0}
UNSURE = {"happy": 0.3, "neutral": 0.25, "sad": 0.25, "surprise": 0.2}  # top 0.3: uncertain


def _rows(face_id: int, frames: list[int], probs: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame([[p.get(e, 0.0) for e in EMOTIONS] for p in probs], columns=SMOOTHED)
    table.insert(0, "face_id", face_id)
    table.insert(0, "frame", frames)
    table["smoothed_label"] = [max(p, key=p.get) for p in probs]
    return table


@pytest.fixture
def table() -> pd.DataFrame:
    """Face 0 in frames 0-5: happy, happy, unsure, happy, happy, sad. Face 1 in frames 0, 1,
    3, 4 and 6, happy throughout. Eight frames analysed (0-7)."""
    return pd.concat([_rows(0, list(range(6)), [HAPPY, HAPPY, UNSURE, HAPPY, HAPPY, SAD]),
                      _rows(1, [0, 1, 3, 4, 6], [HAPPY] * 5)], ignore_index=True)


def test_uncertain_frames_are_counted_apart_and_runs_break_at_gaps(table):
    assert UNSURE["happy"] < UNCERTAIN_BELOW <= 1.0
    assert confident_labels(table[table.face_id == 0]).tolist() == [
        "happy", "happy", "uncertain", "happy", "happy", "sad"]
    assert run_lengths(np.array([1, 1, 0, 1, 1, 1], bool), np.arange(6), 1) == [2, 3]
    assert run_lengths(np.ones(5, bool), np.array([0, 1, 3, 4, 6]), 1) == [2, 2, 1]
    assert run_lengths(np.ones(3, bool), np.array([0, 4, 8]), 4) == [3]  # every 4th frame


def test_one_face_by_hand(table):
    face = span_metrics(table[table.face_id == 0], analysed=8, step=1, step_s=STEP_S)
    # 6 rows = 1.5 s = 0.025 min; smiles: frames 0-1 and 3-4 (0.5 s each); one change (to sad).
    # Expressiveness: mean of the six rows' total-variation distances from their mean
    # (happy 4.3/6, neutral 0.25/6, sad 1.25/6, surprise 0.2/6): (4 x 0.28333 + 0.41667 +
    # 0.79167) / 6 = 0.39028.
    assert face == {"face_share": 0.75, "positive_share": 0.6667, "negative_share": 0.1667,
                    "uncertain_share": 0.1667, "expressiveness": 0.3903,
                    "smiles_per_minute": 80.0, "changes_per_minute": 40.0}
    assert list(face) == list(METRICS)


def test_the_video_pools_its_faces_by_hand(table):
    video = speaker_metrics(table, analysed=8, step=1, step_s=STEP_S)
    # Faces in frames 0-6 of 8; 11 rows = 2.75 s: 9 happy, 1 sad, 1 uncertain; face 1's
    # smiles are frames 0-1 and 3-4 (frame 6 alone is 0.25 s): 4 smiles, 1 change.
    # Face 1 never changes, so its rows add 0 to expressiveness: 2.34167 / 11 = 0.21288.
    assert {k: v for k, v in video.items() if k != "thirds"} == {
        "face_share": 0.875, "positive_share": 0.8182, "negative_share": 0.0909,
        "uncertain_share": 0.0909, "expressiveness": 0.2129,
        "smiles_per_minute": pytest.approx(87.273), "changes_per_minute": pytest.approx(21.818)}


def test_thirds_by_hand(table):
    # Eight analysed frames: opening 0-2, middle 3-5, closing 6-7.
    thirds = speaker_metrics(table[table.face_id == 0], analysed=8, step=1,
                             step_s=STEP_S)["thirds"]
    assert list(thirds) == list(THIRDS)
    opening, middle, closing = (thirds[name] for name in THIRDS)
    assert opening["face_share"] == 1.0 and opening["positive_share"] == 0.6667
    assert opening["uncertain_share"] == 0.3333 and opening["changes_per_minute"] == 0.0
    assert opening["smiles_per_minute"] == 80.0  # one smile in 3 rows = 0.0125 min
    assert middle["negative_share"] == 0.3333 and middle["changes_per_minute"] == 80.0
    assert closing == {"face_share": 0.0, **{k: None for k in METRICS if k != "face_share"}}


def test_no_face_at_all():
    empty = _rows(0, [], [])
    figures = speaker_metrics(empty, analysed=5, step=2, step_s=0.1)
    assert figures["face_share"] == 0.0 and figures["positive_share"] is None
    assert figures["thirds"]["closing"]["face_share"] == 0.0


def test_third_bounds_match_the_thirds_and_cards_say_what_figures_mean(table):
    assert third_bounds(8, STEP_S) == [(0.0, 0.75), (0.75, 1.5), (1.5, 2.0)]  # frames 0-2, 3-5, 6-7
    figures = speaker_metrics(table[table.face_id == 0], analysed=8, step=1, step_s=STEP_S)
    card = feedback_card(figures)
    assert list(card.index) == list(METRICS)
    assert card.loc["face_share", "meaning"] == "the face was in view in 75% of the analysed frames"
    assert feedback_card(figures["thirds"]["closing"]).loc["smiles_per_minute", "meaning"] == \
        "no face to measure"
    assert thirds_table(figures).loc["middle", "negative_share"] == 0.3333
