"""Speaker feedback figures from a video's per-face rows (the frames.csv table), each with its
evidence.

Every figure is defined here, once: summary.json (for the video, each face and each third)
and corpus.csv read them all from `speaker_metrics`; the one-line answers (`answer`,
`ranking_answer`) and the ranking of talks (`rank_talks`) read them back. The rows need the
columns frame, face_id, smoothed_label and the seven smoothed probabilities (SMOOTHED).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .labels import EMOTIONS, VALENCE

__all__ = [
    "SMOOTHED", "UNCERTAIN", "UNCERTAIN_BELOW", "SMILE_MIN_S", "THIRDS", "SECONDS_PER_OBSERVATION",
    "MIN_RATE_S", "MIN_RANK_S", "Z95", "share_interval", "observations", "RANK_HALF_WIDTH",
    "METRICS", "EVIDENCE", "CAVEATS", "INTERVALS", "THIRDS_DOC", "confident_labels", "changes",
    "run_lengths", "smiles", "expressiveness", "label_shares", "valence_of", "mixed_valence",
    "span_metrics", "third_of", "speaker_metrics", "third_bounds", "interval_text", "answer",
    "thirds_answer", "rank_talks", "ranking_answer", "PLAIN", "feedback_card", "thirds_table",
]

SMOOTHED = [f"smoothed_{e}" for e in EMOTIONS]
UNCERTAIN = "uncertain"
UNCERTAIN_BELOW = 0.4  # a frame whose top smoothed probability is below this is uncertain
SMILE_MIN_S = 0.5  # happy held at least this long is a smile
THIRDS = ("opening", "middle", "closing")
# Frames closer together than this show the same expression (an expression, and the
# smoothing, last about a second): an interval counts one observation per second of face,
# or one per frame when frames are further apart. A judgement, not a fitted value.
SECONDS_PER_OBSERVATION = 1.0
MIN_RATE_S = 5.0  # per-minute rates need this much face: below it one smile is 12+ a minute
MIN_RANK_S = 10.0  # talks are ranked, and a dominant label stated plainly, on this much face
Z95 = 1.959964  # standard normal quantile of a two-sided 95% interval


def share_interval(share: float, count: float) -> tuple[float, float]:
    """Wilson 95% score interval of a share measured on `count` independent observations."""
    spread = Z95 ** 2 / count
    centre = (share + spread / 2) / (1 + spread)
    half = Z95 * math.sqrt(share * (1 - share) / count + spread / (4 * count)) / (1 + spread)
    return max(0.0, centre - half), min(1.0, centre + half)


def observations(face_frames: int, step_s: float) -> float:
    """How many independent observations `face_frames` rows `step_s` apart count as."""
    return face_frames * min(step_s, SECONDS_PER_OBSERVATION) / SECONDS_PER_OBSERVATION


# Half the width of a 50% share's interval on MIN_RANK_S seconds of face: below MIN_RANK_S
# every share's interval is at least this wide on each side.
RANK_HALF_WIDTH = round(float(np.diff(share_interval(0.5, MIN_RANK_S))[0]) / 2, 2)

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
                         f"on screen; null with less than {MIN_RATE_S:g} s of face",
    "changes_per_minute": f"float or null: changes of the smoothed label between consecutive "
                          f"rows of a face, per minute of face on screen; null with less than "
                          f"{MIN_RATE_S:g} s of face",
}
EVIDENCE: dict[str, str] = {
    "face_frames": "int: face rows the shares are counted over (a frame with two faces counts "
                   "twice)",
    "face_seconds": "float: face_frames times the seconds between analysed frames",
    "positive_low": f"float or null: lower end of positive_share's 95% interval (Wilson score "
                    f"interval counting {SECONDS_PER_OBSERVATION:g} s of face as one "
                    f"observation, as nearby frames show the same expression)",
    "positive_high": "float or null: upper end of positive_share's 95% interval",
    "negative_low": "float or null: lower end of negative_share's 95% interval",
    "negative_high": "float or null: upper end of negative_share's 95% interval",
    "dominant": "str or null: the smoothed label of the most face frames (every frame counts, "
                "uncertain ones too)",
    "dominant_share": "float or null: the share of face frames with the dominant label",
    "caveats": "list of str: the CAVEATS that qualify these figures (empty: none)",
}
CAVEATS: dict[str, str] = {
    "no_face": "no face was found: nothing is measured",
    "little_face": f"less than {MIN_RANK_S:g} s of face: a share's 95% interval is wider than "
                   f"±{RANK_HALF_WIDTH:.2f}, too wide to rank the talk or to trust its dominant "
                   f"label",
    "short_for_rates": f"less than {MIN_RATE_S:g} s of face: the per-minute rates are left "
                       f"empty, as a single smile would already count as {60 / MIN_RATE_S:g} a "
                       f"minute",
    "mixed_valence": "frames of another valence outnumber those of the dominant label's own "
                     "(for example happy is the commonest label, yet more frames read negative "
                     "than positive): read the shares, not the label",
}
INTERVALS = {"positive_share": ("positive_low", "positive_high"),
             "negative_share": ("negative_low", "negative_high")}
THIRDS_DOC = ("dict opening, middle, closing: the figures and their evidence above for each "
              "third of the analysed frames, each third measured on its own rows")


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


def label_shares(rows: pd.DataFrame) -> dict[str, float]:
    """Share of the rows per smoothed label (every row, no uncertainty threshold)."""
    labels = rows["smoothed_label"].to_numpy(str)
    return {e: round(float((labels == e).mean()), 4) if len(labels) else 0.0 for e in EMOTIONS}


def valence_of(label: str) -> str:
    """The valence group (positive, negative, neutral) a label belongs to."""
    return next(group for group, labels in VALENCE.items() if label in labels)


def mixed_valence(dominant: str, shares: dict[str, float]) -> bool:
    """Whether another valence's share of confident frames beats the dominant label's own."""
    own = valence_of(dominant)
    return any(share > shares[own] for group, share in shares.items() if group != own)


def _share(count: float, total: float) -> float | None:
    return round(float(count) / total, 4) if total else None


def _interval(name: str, share: float | None, count: float) -> dict[str, float | None]:
    low, high = share_interval(share, count) if share is not None else (None, None)
    return {f"{name}_low": None if low is None else round(low, 4),
            f"{name}_high": None if high is None else round(high, 4)}


def span_metrics(rows: pd.DataFrame, analysed: int, step: int, step_s: float) -> dict:
    """The METRICS and EVIDENCE of face rows spread over `analysed` frames taken every `step`."""
    labels, n = confident_labels(rows), len(rows)
    seconds = n * step_s
    rated = seconds >= MIN_RATE_S - 1e-9
    per_face = [face for _, face in rows.groupby("face_id")]
    smile_count = sum(smiles(face, step, step_s) for face in per_face)
    change_count = sum(changes(face["smoothed_label"].to_numpy(str)) for face in per_face)
    valence = {group: _share(np.isin(labels, members).sum(), n)
               for group, members in VALENCE.items()}
    shares = label_shares(rows)
    dominant = max(shares, key=shares.get) if n else None
    caveats = ["no_face"] if not n else [
        name for name, applies in (("little_face", seconds < MIN_RANK_S - 1e-9),
                                   ("short_for_rates", not rated),
                                   ("mixed_valence", mixed_valence(dominant, valence)))
        if applies]
    count = observations(n, step_s)
    return {
        "face_share": _share(rows["frame"].nunique(), analysed),
        "positive_share": valence["positive"], "negative_share": valence["negative"],
        "uncertain_share": _share((labels == UNCERTAIN).sum(), n),
        "expressiveness": expressiveness(rows),
        "smiles_per_minute": round(smile_count / (seconds / 60), 3) if rated else None,
        "changes_per_minute": round(change_count / (seconds / 60), 3) if rated else None,
        "face_frames": n, "face_seconds": round(seconds, 3),
        **_interval("positive", valence["positive"], count),
        **_interval("negative", valence["negative"], count),
        "dominant": dominant, "dominant_share": shares[dominant] if n else None,
        "caveats": caveats,
    }


def third_of(frames: np.ndarray, analysed: int, step: int) -> np.ndarray:
    """Which third (0, 1, 2) of `analysed` frames, taken every `step`, each frame falls in."""
    return np.minimum(3 * (np.asarray(frames, int) // step) // max(analysed, 1), 2)


def speaker_metrics(rows: pd.DataFrame, analysed: int, step: int, step_s: float) -> dict:
    """The figures of face rows (span_metrics), plus the same for each third."""
    third = third_of(rows["frame"].to_numpy(), analysed, step)
    in_third = np.bincount(third_of(np.arange(analysed) * step, analysed, step), minlength=3)
    return {**span_metrics(rows, analysed, step, step_s),
            "thirds": {name: span_metrics(rows[third == i], int(in_third[i]), step, step_s)
                       for i, name in enumerate(THIRDS)}}


def third_bounds(analysed: int, step_s: float) -> list[tuple[float, float]]:
    """Start and end, in seconds, of the opening, middle and closing thirds (see third_of)."""
    starts = [-(-i * analysed // 3) * step_s for i in range(3)]
    return list(zip(starts, [*starts[1:], analysed * step_s], strict=True))


def interval_text(figures: dict | pd.Series, share: str) -> str:
    """A share with its 95% interval, as '59% (38%-78%)'."""
    low, high = INTERVALS[share]
    return f"{figures[share]:.0%} ({figures[low]:.0%}-{figures[high]:.0%})"


def answer(figures: dict) -> str:
    """One line: the dominant label with its evidence (face frames and seconds, positive and
    negative shares with 95% intervals) and the caveats that qualify it."""
    if "no_face" in figures["caveats"]:
        return "no face found: nothing to measure"
    text = (f"{figures['dominant']} in {figures['dominant_share']:.0%} of "
            f"{figures['face_frames']} face frames ({figures['face_seconds']:.1f} s); positive "
            f"{interval_text(figures, 'positive_share')}, negative "
            f"{interval_text(figures, 'negative_share')} (95% intervals)")
    if "mixed_valence" in figures["caveats"]:
        text += (f"; but frames of another valence outnumber {figures['dominant']}'s: read the "
                 "shares, not the label")
    if "little_face" in figures["caveats"]:
        text += f"; under {MIN_RANK_S:g} s of face: too little to rank"
    return text


def thirds_answer(figures: dict, share: str = "positive_share") -> str:
    """One line: a share in the opening, middle and closing thirds with their 95% intervals,
    and whether the opening and closing intervals are apart (a change beyond the noise)."""
    thirds = figures["thirds"]
    parts = [f"{name} " + ("no face" if thirds[name]["face_frames"] == 0
                           else interval_text(thirds[name], share)) for name in THIRDS]
    text = f"{share.replace('_', ' ')} by third: " + ", ".join(parts)
    opening, closing = thirds[THIRDS[0]], thirds[THIRDS[-1]]
    if opening["face_frames"] == 0 or closing["face_frames"] == 0:
        return text + "; no change can be read without a face in both the opening and closing"
    low, high = INTERVALS[share]
    apart = opening[low] > closing[high] or closing[low] > opening[high]
    return text + ("; the opening and closing intervals do not overlap: a change beyond the "
                   "noise" if apart else "; the opening and closing intervals overlap: no "
                   "clear change")


def rank_talks(corpus: pd.DataFrame, figure: str = "positive_share") -> pd.DataFrame:
    """The talks of a corpus table with at least MIN_RANK_S s of face, highest `figure` first."""
    if figure not in INTERVALS:
        raise ValueError(f"talks are ranked on {' or '.join(INTERVALS)}, not {figure!r}")
    enough = corpus["face_seconds"].ge(MIN_RANK_S - 1e-9) & corpus[figure].notna()
    return corpus[enough].sort_values(figure, ascending=False, kind="stable")


def ranking_answer(corpus: pd.DataFrame, figure: str = "positive_share") -> str:
    """One line: the top talk by `figure` with its interval and evidence, whether the runner-up
    can be told apart, and the talks with too little face, or none, to rank."""
    ranked = rank_talks(corpus, figure)
    word = figure.removesuffix("_share")
    if ranked.empty:
        text = f"no talk has {MIN_RANK_S:g} s of face: none ranked by {word} share"
    else:
        top = ranked.iloc[0]
        evidence = (f"{interval_text(top, figure)} on {int(top['face_frames'])} face frames "
                    f"({top['face_seconds']:.1f} s)")
        text = (f"most {word}: {top['folder']} {evidence}" if len(ranked) > 1 else
                f"only {top['folder']} has enough face to rank: {word} {evidence}, with no "
                "other talk to compare it with")
        if len(ranked) > 1:
            second = ranked.iloc[1]
            apart = top[INTERVALS[figure][0]] > second[INTERVALS[figure][1]]
            text += (f", ahead of {second['folder']} {interval_text(second, figure)}"
                     + ("" if apart else ": the 95% intervals overlap, so the order is not clear"))
    short = corpus[corpus["face_seconds"].lt(MIN_RANK_S - 1e-9) & corpus["face_frames"].gt(0)]
    if len(short):
        text += (f"; not ranked (under {MIN_RANK_S:g} s of face): "
                 + ", ".join(f"{r.folder} ({r.face_seconds:.1f} s)" for r in short.itertuples()))
    faceless = corpus[corpus["face_frames"].eq(0)]
    if len(faceless):
        text += "; no face: " + ", ".join(faceless["folder"])
    return text


PLAIN: dict[str, str] = {
    "face_share": "the face was in view in {face_share:.0%} of the analysed frames",
    "face_seconds": "{face_seconds:.1f} s of face in {face_frames} analysed frames",
    "positive_share": "the face read as happy or surprised {positive_share:.0%} of the time it "
                      "was seen (95% interval {positive_low:.0%}-{positive_high:.0%})",
    "negative_share": "the face read as angry, disgusted, afraid or sad {negative_share:.0%} of "
                      "the time (95% interval {negative_low:.0%}-{negative_high:.0%})",
    "uncertain_share": "the model could not tell {uncertain_share:.0%} of the time (no label "
                       "given)",
    "expressiveness": "{expressiveness:.2f} on a scale from 0 (one unchanging expression) to 1 "
                      "(marked, frequent changes)",
    "smiles_per_minute": "{smiles_per_minute:.1f} smiles of half a second or more per minute "
                         "on screen",
    "changes_per_minute": "the expression read changed {changes_per_minute:.1f} times a minute",
    "dominant": "the label shown most, in {dominant_share:.0%} of the face frames",
}


def _meaning(name: str, figures: dict) -> str:
    """What one row of a feedback card means, with the caveats that bear on it."""
    caveats = figures["caveats"]
    if "no_face" in caveats:
        return "no face to measure"
    if figures[name] is None:  # a rate over too little face
        return (f"left empty: under {MIN_RATE_S:g} s of face, one smile or change would "
                f"already count as {60 / MIN_RATE_S:g} a minute")
    text = PLAIN[name].format(**figures)
    if name == "face_seconds":
        text += (f": too little to rank (under {MIN_RANK_S:g} s, a share's 95% interval is "
                 f"wider than ±{RANK_HALF_WIDTH:.2f})" if "little_face" in caveats
                 else f": enough to rank (at least {MIN_RANK_S:g} s)")
    if name == "dominant" and "mixed_valence" in caveats:
        text += "; but frames of another valence outnumber it: read the shares, not the label"
    return text


def feedback_card(figures: dict) -> pd.DataFrame:
    """The speaker figures of a summary (or one face, or one third), with their evidence and
    what each means."""
    names = ["face_share", "face_seconds", *list(METRICS)[1:], "dominant"]
    return pd.DataFrame([{"figure": name, "value": figures[name],
                          "meaning": _meaning(name, figures)} for name in names]
                        ).set_index("figure")


def thirds_table(figures: dict) -> pd.DataFrame:
    """The speaker figures by third, with their face frames and seconds: one row per third."""
    return pd.DataFrame(figures["thirds"]).T[["face_frames", "face_seconds", *METRICS]]
