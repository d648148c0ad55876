"""The speaker figures and their evidence against values worked out by hand on small tables."""

import numpy as np
import pandas as pd
import pytest

from fer_utils.labels import EMOTIONS
from fer_utils.speaker import (
    CAVEATS,
    EVIDENCE,
    METRICS,
    MIN_RANK_S,
    RANK_HALF_WIDTH,
    SMOOTHED,
    THIRDS,
    UNCERTAIN_BELOW,
    answer,
    confident_labels,
    feedback_card,
    rank_talks,
    ranking_answer,
    run_lengths,
    share_interval,
    span_metrics,
    speaker_metrics,
    third_bounds,
    thirds_answer,
    thirds_table,
)

STEP_S = 1.0  # one analysed frame a second, every frame analysed (step 1)
HAPPY = {"happy": 1.0}
SAD = {"sad": 1.0}
ANGRY = {"angry": 1.0}
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
    3, 4 and 6, happy throughout. Eight frames analysed (0-7), one a second."""
    return pd.concat([_rows(0, list(range(6)), [HAPPY, HAPPY, UNSURE, HAPPY, HAPPY, SAD]),
                      _rows(1, [0, 1, 3, 4, 6], [HAPPY] * 5)], ignore_index=True)


def test_uncertain_frames_are_counted_apart_and_runs_break_at_gaps(table):
    assert UNSURE["happy"] < UNCERTAIN_BELOW <= 1.0
    assert confident_labels(table[table.face_id == 0]).tolist() == [
        "happy", "happy", "uncertain", "happy", "happy", "sad"]
    assert run_lengths(np.array([1, 1, 0, 1, 1, 1], bool), np.arange(6), 1) == [2, 3]
    assert run_lengths(np.ones(5, bool), np.array([0, 1, 3, 4, 6]), 1) == [2, 2, 1]
    assert run_lengths(np.ones(3, bool), np.array([0, 4, 8]), 4) == [3]  # every 4th frame


def test_the_interval_is_wilsons():
    # Textbook values of the Wilson 95% score interval: 5 of 10 and 0 of 10.
    assert share_interval(0.5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert share_interval(0.0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    low, high = share_interval(0.5, MIN_RANK_S)
    assert (high - low) / 2 == pytest.approx(RANK_HALF_WIDTH, abs=0.005)
    assert str(RANK_HALF_WIDTH) in CAVEATS["little_face"]  # the caveat quotes its own number


def test_one_face_by_hand(table):
    face = span_metrics(table[table.face_id == 0], analysed=8, step=1, step_s=STEP_S)
    # 6 rows = 6 s = 0.1 min: enough for rates (5 s), not for ranking (10 s). Smiles: frames
    # 0-1 and 3-4; one change (to sad). Expressiveness: mean of the six rows' total-variation
    # distances from their mean (happy 4.3/6, neutral 0.25/6, sad 1.25/6, surprise 0.2/6):
    # (4 x 0.28333 + 0.41667 + 0.79167) / 6 = 0.39028. Dominant: happy in 5 of 6 (the unsure
    # frame's smoothed label is happy too).
    assert {k: face[k] for k in METRICS} == {
        "face_share": 0.75, "positive_share": 0.6667, "negative_share": 0.1667,
        "uncertain_share": 0.1667, "expressiveness": 0.3903, "smiles_per_minute": 20.0,
        "changes_per_minute": 10.0}
    assert list(face) == [*METRICS, *EVIDENCE]
    assert face["face_frames"] == 6 and face["face_seconds"] == 6.0
    assert (face["dominant"], face["dominant_share"]) == ("happy", 0.8333)
    assert (face["positive_low"], face["positive_high"]) == pytest.approx(
        share_interval(4 / 6, 6), abs=1e-4)  # one observation per second of face
    assert face["caveats"] == ["little_face"]


def test_the_video_pools_its_faces_by_hand(table):
    video = speaker_metrics(table, analysed=8, step=1, step_s=STEP_S)
    # Faces in frames 0-6 of 8; 11 rows = 11 s: 9 happy, 1 sad, 1 uncertain; face 1's smiles
    # are frames 0-1, 3-4 and 6 (1 s each is over 0.5 s): 5 smiles, 1 change in 11 s.
    # Face 1 never changes, so its rows add 0 to expressiveness: 2.34167 / 11 = 0.21288.
    assert {k: video[k] for k in METRICS} == {
        "face_share": 0.875, "positive_share": 0.8182, "negative_share": 0.0909,
        "uncertain_share": 0.0909, "expressiveness": 0.2129,
        "smiles_per_minute": pytest.approx(27.273), "changes_per_minute": pytest.approx(5.455)}
    assert video["face_frames"] == 11 and video["caveats"] == []  # 11 s: enough to rank


def test_thirds_by_hand_and_short_spans_leave_rates_empty(table):
    # Eight analysed frames: opening 0-2, middle 3-5, closing 6-7.
    thirds = speaker_metrics(table[table.face_id == 0], analysed=8, step=1,
                             step_s=STEP_S)["thirds"]
    assert list(thirds) == list(THIRDS)
    opening, middle, closing = (thirds[name] for name in THIRDS)
    assert opening["face_share"] == 1.0 and opening["positive_share"] == 0.6667
    assert opening["uncertain_share"] == 0.3333 and middle["negative_share"] == 0.3333
    # 3 s of face is under MIN_RATE_S: no rate, and a caveat saying why.
    assert opening["smiles_per_minute"] is None and middle["changes_per_minute"] is None
    assert opening["caveats"] == ["little_face", "short_for_rates"]
    assert closing == {**dict.fromkeys([*METRICS, *EVIDENCE]), "face_share": 0.0,
                       "face_frames": 0, "face_seconds": 0.0, "caveats": ["no_face"]}


def test_a_dominant_label_against_the_valence_is_qualified():
    # Happy is the commonest label (3 of 7), yet 4 of 7 frames read negative.
    rows = _rows(0, list(range(28)), [HAPPY] * 12 + [SAD] * 8 + [ANGRY] * 8)
    figures = span_metrics(rows, analysed=28, step=1, step_s=0.5)  # 14 s of face
    assert figures["dominant"] == "happy" and figures["negative_share"] > \
        figures["positive_share"]
    assert figures["caveats"] == ["mixed_valence"]
    line = answer(figures)
    assert line.startswith("happy in 43% of 28 face frames (14.0 s); positive 43% (")
    assert "another valence outnumber happy's" in line
    assert "read the shares" in feedback_card(figures).loc["dominant", "meaning"]
    agreeing = span_metrics(_rows(0, list(range(28)), [HAPPY] * 16 + [SAD] * 12), 28, 1, 0.5)
    assert agreeing["caveats"] == [] and "valence" not in answer(agreeing)


def _talk(folder: str, face_frames: int, positive: int, analysed: int) -> dict:
    """A corpus row of a talk analysed at four frames a second."""
    rows = _rows(0, list(range(face_frames)), [HAPPY] * positive + [SAD] * (face_frames - positive))
    return {"folder": folder, **span_metrics(rows, analysed, step=1, step_s=0.25)}


def test_talks_are_ranked_only_on_enough_face():
    # Two talks: 7 face frames (1.75 s, 5 happy: 71%) and 47 (11.75 s, 28 happy: 60%).
    corpus = pd.DataFrame([_talk("short", 7, 5, 25), _talk("long", 47, 28, 79),
                           {"folder": "empty", **span_metrics(_rows(0, [], []), 16, 1, 0.25)}])
    assert corpus.loc[0, "positive_share"] > corpus.loc[1, "positive_share"]
    assert rank_talks(corpus)["folder"].tolist() == ["long"]  # the short one is not ranked
    assert rank_talks(corpus, "negative_share")["folder"].tolist() == ["long"]
    with pytest.raises(ValueError, match="expressiveness"):
        rank_talks(corpus, "expressiveness")
    line = ranking_answer(corpus)
    assert line.startswith("only long has enough face to rank: positive 60% (")
    assert "on 47 face frames (11.8 s), with no other talk to compare it with;" in line
    assert line.endswith("; not ranked (under 10 s of face): short (1.8 s); no face: empty")
    assert "little_face" in corpus.loc[0, "caveats"] and corpus.loc[2, "caveats"] == ["no_face"]
    # A runner-up whose interval overlaps the leader's is named as such.
    two = pd.DataFrame([_talk("a", 60, 40, 60), _talk("b", 60, 30, 60)])
    assert ranking_answer(two).startswith("most positive: a 67% (")
    assert "ahead of b 50% (" in ranking_answer(two) and "intervals overlap" in \
        ranking_answer(two)
    apart = pd.DataFrame([_talk("a", 400, 380, 400), _talk("b", 400, 20, 400)])
    assert "overlap" not in ranking_answer(apart)
    none = pd.DataFrame([_talk("short", 7, 5, 25)])
    assert ranking_answer(none).startswith("no talk has 10 s of face: none ranked")


def test_no_face_at_all():
    figures = speaker_metrics(_rows(0, [], []), analysed=5, step=2, step_s=0.1)
    assert figures["face_share"] == 0.0 and figures["positive_share"] is None
    assert figures["caveats"] == ["no_face"] and figures["dominant"] is None
    assert figures["thirds"]["closing"]["face_share"] == 0.0
    assert answer(figures) == "no face found: nothing to measure"
    assert set(feedback_card(figures)["meaning"]) == {"no face to measure"}


def test_third_bounds_match_the_thirds_and_cards_say_what_figures_mean(table):
    assert third_bounds(8, STEP_S) == [(0.0, 3.0), (3.0, 6.0), (6.0, 8.0)]  # frames 0-2, 3-5, 6-7
    figures = speaker_metrics(table[table.face_id == 0], analysed=8, step=1, step_s=STEP_S)
    card = feedback_card(figures)
    assert list(card.index) == ["face_share", "face_seconds", *list(METRICS)[1:], "dominant"]
    assert card.loc["face_share", "meaning"] == "the face was in view in 75% of the analysed frames"
    assert card.loc["positive_share", "meaning"].endswith("(95% interval 30%-90%)")
    assert card.loc["face_seconds", "meaning"] == (
        "6.0 s of face in 6 analysed frames: too little to rank (under 10 s, a share's 95% "
        "interval is wider than ±0.26)")
    assert feedback_card(figures["thirds"]["opening"]).loc["smiles_per_minute", "meaning"] == \
        "left empty: under 5 s of face, one smile or change would already count as 12 a minute"
    assert feedback_card(figures["thirds"]["closing"]).loc["smiles_per_minute", "meaning"] == \
        "no face to measure"
    thirds = thirds_table(figures)
    assert thirds.loc["middle", "negative_share"] == 0.3333
    assert list(thirds.columns) == ["face_frames", "face_seconds", *METRICS]


def test_thirds_are_told_with_their_intervals():
    # 60 frames a quarter second apart: 20 sad, then 20 mixed, then 20 happy.
    rising = _rows(0, list(range(60)), [SAD] * 20 + [HAPPY, SAD] * 10 + [HAPPY] * 20)
    figures = speaker_metrics(rising, analysed=60, step=1, step_s=0.25)
    line = thirds_answer(figures)
    assert line.startswith("positive share by third: opening 0% (0%-") and \
        ", closing 100% (" in line
    assert line.endswith("do not overlap: a change beyond the noise")
    flat = speaker_metrics(_rows(0, list(range(12)), [HAPPY, SAD] * 6), 12, 1, 0.25)
    assert thirds_answer(flat).endswith("overlap: no clear change")
    late = speaker_metrics(_rows(0, list(range(8, 12)), [HAPPY] * 4), 12, 1, 0.25)
    assert "opening no face" in thirds_answer(late) and \
        thirds_answer(late).endswith("in both the opening and closing")
