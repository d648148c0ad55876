"""Faces in frames: how much of a model's accuracy on the dataset's own crops survives the path
a face in a photo or video takes (detection, a crop with a margin, a resize), and how it
stands up to framing that differs from the dataset's (zoom, shift, rotation).

The benchmark places a class-balanced, seeded subset of a split's faces in frames: each face
enlarged 3x (bicubic) and centred on a canvas of its own edge colour. A detector preset finds
it (or misses it), the kit crops the box as the model's card says for that detector (or with a
margin given) and the model classifies the crop.
Select and tune (a margin, a detector) on PublicTest only; PrivateTest is reported, never
tuned on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from .artifacts import card_path, update_card
from .atomic import atomic_path, write_json
from .data import FaceDataset
from .evaluation import predict_faces, share_ci
from .faces import PHOTO_PRESET, FaceDetector, crop_face, detector_config
from .geometry import iou
from .images import reframe
from .labels import EMOTIONS, NUM_CLASSES, usage_name
from .model import FaceClassifier
from .options import check_values
from .outputs import output_set
from .peer import fer_in_frames, fer_missing
from .pipeline import Framing

__all__ = [
    "UPSCALE", "FRAME_SIZE", "PER_CLASS", "DETECTORS", "MARGINS", "MATCH_IOU", "GRID", "GRID_GAP",
    "keeps_framing", "framed_copy", "FER_PATH", "balanced_subset", "place_in_frame", "Frames",
    "faces_in_frames", "matched_box", "detect_placed", "framed_crops", "in_frame_scores",
    "framing_grid", "InFrame", "in_frame_benchmark", "best_margins", "FRAMING_RULE",
    "require_publictest", "framing_choice", "record_framing",
]

UPSCALE = 3  # each face is enlarged this many times (bicubic): 48 px -> 144 px
FRAME_SIZE = 256  # onto a square canvas this wide, filled with the face's edge colour
PER_CLASS = 100  # faces drawn per class (all of them where a class has fewer)
# The detector presets the benchmark runs: predict's, the video default's, full-size Haar.
DETECTORS = (PHOTO_PRESET, "default", "reference")
MARGINS = (-0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2)  # crop margins of the margin curve
MATCH_IOU = 0.3  # a detection is the placed face when their boxes overlap at least this much
# The framing grid: each cell reframes the dataset crops about their centre (images.reframe).
GRID: dict[str, dict] = {
    "scale 0.8": {"scale": 0.8}, "scale 0.9": {"scale": 0.9},
    "scale 1.1": {"scale": 1.1}, "scale 1.2": {"scale": 1.2},
    "shift right 4 px": {"shift": (4, 0)}, "shift left 4 px": {"shift": (-4, 0)},
    "shift down 4 px": {"shift": (0, 4)}, "shift up 4 px": {"shift": (0, -4)},
    "rotate +10°": {"rotation": 10.0}, "rotate -10°": {"rotation": -10.0},
}
GRID_GAP = 0.015  # a model robust to framing keeps the grid's mean this close to its single crop
FER_PATH = "fer (its own path)"  # the model name of fer's row: its Haar, crop and model


def balanced_subset(labels: np.ndarray, per_class: int = PER_CLASS, seed: int = 0) -> np.ndarray:
    """Sorted row indices of up to `per_class` faces of each class, drawn with `seed`."""
    check_values(per_class=per_class)
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    drawn = [rng.permutation(np.flatnonzero(labels == k))[:per_class] for k in range(NUM_CLASSES)]
    return np.sort(np.concatenate(drawn))


def place_in_frame(face: np.ndarray, upscale: int = UPSCALE,
                   size: int = FRAME_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A face enlarged `upscale` times (bicubic) and centred on a size x size canvas of its
    edge colour (the median of its outermost pixels); the frame and the face's box x, y, w, h."""
    height, width = face.shape
    w, h = width * upscale, height * upscale
    if max(w, h) > size:
        raise ValueError(f"a {width}x{height} face enlarged {upscale}x does not fit a {size}px "
                         "frame; use a larger frame or a smaller upscale")
    ring = np.concatenate([face[0], face[-1], face[1:-1, 0], face[1:-1, -1]])
    frame = np.full((size, size), np.median(ring), np.uint8)
    x, y = (size - w) // 2, (size - h) // 2
    frame[y:y + h, x:x + w] = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC)
    return frame, np.array([x, y, w, h])


@dataclass
class Frames:
    """A split's faces placed in frames: the frames, each face's box and label, the dataset
    crops they were made from and their rows in the split."""

    frames: np.ndarray  # (N, FRAME_SIZE, FRAME_SIZE) uint8
    boxes: np.ndarray  # (N, 4) where each face was placed, x, y, w, h
    labels: np.ndarray
    crops: np.ndarray  # (N, 48, 48) the dataset's own crops
    rows: np.ndarray
    split: str
    seed: int


def faces_in_frames(dataset: FaceDataset, split: str = "PublicTest", per_class: int = PER_CLASS,
                    seed: int = 0) -> Frames:
    """The class-balanced subset of a split drawn with `seed`, each face placed in a frame."""
    part = dataset.split(split)
    rows = balanced_subset(part.labels, per_class, seed)
    if not len(rows):
        raise ValueError(f"{dataset.source}: the {usage_name(split)} split has no faces to "
                         "place in frames; choose a split that has some")
    placed = [place_in_frame(face) for face in part.images[rows]]
    return Frames(frames=np.stack([frame for frame, _ in placed]),
                  boxes=np.stack([box for _, box in placed]), labels=part.labels[rows],
                  crops=part.images[rows], rows=rows, split=usage_name(split), seed=seed)


def matched_box(found: np.ndarray, placed: np.ndarray) -> int:
    """Which box of `found` (K, 4) is the placed face: the one that overlaps its box most, if
    by at least MATCH_IOU (intersection over union); -1 for a miss."""
    if len(found):
        overlap = iou(np.asarray(found).reshape(-1, 4), np.asarray(placed)[None])[:, 0]
        if overlap.max() >= MATCH_IOU:
            return int(overlap.argmax())
    return -1


def detect_placed(frames: Frames, detector: str, progress: str | None = None) -> np.ndarray:
    """Per frame, the box a detector preset (by name) finds on the placed face; -1s for a miss;
    a progress bar over the frames labelled `progress` if given."""
    detect = FaceDetector(detector).detect
    boxes = np.full((len(frames.frames), 4), -1)
    pairs = zip(frames.frames, frames.boxes, strict=True)
    for i, (frame, placed) in enumerate(tqdm(pairs, desc=progress, total=len(boxes),
                                             unit="frame", disable=progress is None,
                                             leave=False)):
        found = detect(frame)
        if (match := matched_box(found, placed)) >= 0:
            boxes[i] = found[match]
    return boxes


def framed_crops(frames: Frames, boxes: np.ndarray, size: int, framing: Framing) -> np.ndarray:
    """The kit's size x size crop of each face found (rows of `boxes` that are not -1s), the
    box widened by `framing.margin` of its side on each side (a negative margin cuts into it)
    and moved down by `framing.offset` of it."""
    found = boxes[:, 2] > 0
    crops = [crop_face(frame, box, size, framing)
             for frame, box in zip(frames.frames[found], boxes[found], strict=True)]
    return np.array(crops, np.uint8).reshape(-1, size, size)


def in_frame_scores(labels: np.ndarray, found: np.ndarray, predicted: np.ndarray,
                    resamples: int = 1000, seed: int = 0) -> dict:
    """Detection rate, accuracy on the faces found and accuracy with a miss counted wrong,
    each with its 95% stratified-bootstrap interval (`predicted`: a label per face found)."""
    labels, found = np.asarray(labels), np.asarray(found, bool)
    correct = np.zeros(len(labels), bool)
    correct[found] = np.asarray(predicted) == labels[found]
    scores = {"faces": len(labels), "found": int(found.sum())}
    for key, hits, among in (("detection_rate", found, None),
                             ("accuracy_on_found", correct, found),
                             ("accuracy_misses_wrong", correct, None)):
        counted = len(labels) if among is None else among.sum()
        low, high = share_ci(labels, hits, among, resamples, seed)
        scores.update({key: float(hits.sum() / counted) if counted else float("nan"),
                       f"{key}_ci95_low": low, f"{key}_ci95_high": high})
    return scores


def framing_grid(classifier: FaceClassifier, images: np.ndarray, labels: np.ndarray,
                 tta: str | None = None, progress: str | None = None) -> pd.DataFrame:
    """Accuracy on the dataset crops as they are ("single crop") and reframed by each cell of
    GRID, then the grid's mean and its gap to the single crop; a progress bar over the cells
    labelled `progress` if given."""
    accuracy = {"single crop": float((predict_faces(classifier, images, tta).argmax(1)
                                      == labels).mean())}
    for cell, change in tqdm(GRID.items(), desc=progress, unit="cell", disable=progress is None,
                             leave=False):
        probs = predict_faces(classifier, reframe(images, **change), tta)
        accuracy[cell] = float((probs.argmax(1) == labels).mean())
    mean = float(np.mean([accuracy[cell] for cell in GRID]))
    accuracy.update({"grid mean": mean, "grid mean - single crop": mean - accuracy["single crop"]})
    return pd.DataFrame({"accuracy": accuracy}).rename_axis("framing")


def keeps_framing(gap: float) -> bool:
    """Whether a framing grid's mean, `gap` (a fraction) from its single crop, lies at most
    GRID_GAP under it: the robustness half of the rule that ships a model."""
    return gap >= -GRID_GAP


def framed_copy(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The faces each reframed by one cell of GRID, the cells dealt out in equal shares in an
    order drawn with `seed`: one pass over it estimates the grid's mean at the cost of a
    single crop (training's `select="framed"` scores every epoch on it)."""
    images = np.asarray(images)
    cells = np.random.default_rng(seed).permutation(len(images)) % len(GRID)
    framed = images.copy()
    for k, change in enumerate(GRID.values()):
        if (cells == k).any():
            framed[cells == k] = reframe(images[cells == k], **change)
    return framed


def _fer_row(frames: Frames, resamples: int, seed: int) -> dict:
    """fer's own path on the frames (its Haar, its crop, its model), in a child process."""
    found, probs = [], []
    for placed, faces in zip(frames.boxes, fer_in_frames(frames.frames), strict=True):
        match = matched_box(np.array([face["box"] for face in faces]), placed)
        found.append(match >= 0)
        if match >= 0:
            probs.append([faces[match]["emotions"][e] for e in EMOTIONS])
    predicted = np.asarray(probs).reshape(-1, NUM_CLASSES).argmax(1)
    return {"model": FER_PATH, "detector": "fer's Haar (1.1/5, full size)",
            "margin": "fer's 10 px", "tta": "none",
            **in_frame_scores(frames.labels, np.array(found), predicted, resamples, seed),
            "crops_accuracy": float("nan")}


@dataclass
class InFrame:
    """The faces-in-frames benchmark: one row per path (model x detector x TTA, and fer's own),
    the margin curve per model and detector, the framing grid per model, and the frames with
    each detector's boxes."""

    table: pd.DataFrame
    margins: pd.DataFrame
    grid: pd.DataFrame
    settings: dict
    frames: Frames
    boxes: dict[str, np.ndarray]  # detector -> the box found on each frame, -1s for a miss
    files: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """The table as text in %, each figure with its 95% interval, for reading."""
        table = self.table
        summary = table[["model", "detector", "margin", "tta"]].copy()
        summary["margin"] = [f"{m:g}" if isinstance(m, float) else m for m in table["margin"]]
        for key, title in (("detection_rate", "faces found"),
                           ("accuracy_on_found", "accuracy on faces found"),
                           ("accuracy_misses_wrong", "accuracy, a miss counted wrong")):
            summary[f"{title} % [95%]"] = [
                f"{100 * r[key]:.1f} [{100 * r[f'{key}_ci95_low']:.1f}, "
                f"{100 * r[f'{key}_ci95_high']:.1f}]" for _, r in table.iterrows()]
        summary["on the crops %"] = [f"{100 * v:.1f}" if pd.notna(v) else "" for v in
                                     table["crops_accuracy"]]
        return summary

    def grid_table(self) -> pd.DataFrame:
        """The framing grid with one column per model and its rows in grid order."""
        grid = self.grid.pivot(index="framing", columns="model", values="accuracy")
        return grid.loc[self.grid["framing"].unique(), self.grid["model"].unique()]

    def save(self, out: Path) -> dict[str, Path]:
        """in_frame.csv, margins.csv, grid.csv and in_frame.json (settings and all three)."""
        files = {}
        for name, table in (("in_frame", self.table), ("margins", self.margins),
                            ("grid", self.grid)):
            with atomic_path(out / f"{name}.csv") as tmp:
                table.to_csv(tmp, index=False)
            files[name] = out / f"{name}.csv"
        files["json"] = write_json(out / "in_frame.json", {
            "settings": self.settings, "best_margins": best_margins(self.margins).to_dict(
                "records"),
            **{name: _records(table) for name, table in (
                ("in_frame", self.table), ("margins", self.margins), ("grid", self.grid))}})
        return files


def _records(table: pd.DataFrame) -> list[dict]:
    """A table's rows as JSON-ready dicts, NaN as null."""
    return table.astype(object).where(table.notna(), None).to_dict("records")


def best_margins(margins: pd.DataFrame) -> pd.DataFrame:
    """Per model and detector, the margin of the curve with the highest accuracy on the faces
    found (the first of equals), with that accuracy and the number of faces found."""
    rows = []
    for (model, detector), curve in margins.groupby(["model", "detector"], sort=False):
        best = curve.loc[curve["accuracy_on_found"].idxmax()]
        rows.append({"model": model, "detector": detector, "best_margin": best["margin"],
                     "accuracy_on_found": best["accuracy_on_found"], "found": best["found"]})
    return pd.DataFrame(rows, columns=["model", "detector", "best_margin", "accuracy_on_found",
                                       "found"])


FRAMING_RULE = ("per detector kind, the margin with the highest accuracy on the faces found, "
                "pooled over the kind's presets (the smallest of equal margins), on the "
                "faces-in-frames benchmark of PublicTest; the offset is left at 0 (not tuned)")


def require_publictest(split: str) -> None:
    """Refuse to choose a crop on any split but PublicTest (aliases allowed)."""
    if usage_name(split) != "PublicTest":
        raise ValueError(f"a crop margin is chosen on PublicTest only, not on {split}: "
                         "add --split PublicTest")


def framing_choice(margins: pd.DataFrame, model: str, split: str, faces: int, seed: int,
                   command: str) -> tuple[dict, dict]:
    """The crop a model's card should record for each detector kind, chosen by FRAMING_RULE
    from its margin curves (`margins` of an in-frame benchmark), and the record of the choice:
    (preprocessing framing, framing_choice). idxmax takes the first, so the smallest, of
    equal margins."""
    require_publictest(split)
    curves = margins[margins["model"] == model].copy()
    curves["kind"] = [detector_config(d).kind for d in curves["detector"]]
    curves["correct"] = (curves["accuracy_on_found"] * curves["found"]).round().astype(int)
    framing, presets, found, by_margin = {}, {}, {}, {}
    for kind, curve in curves.groupby("kind", sort=True):
        # The same faces are found at every margin, so the counts of right answers compare.
        pooled = curve.groupby("margin")[["correct", "found"]].sum().sort_index()
        if not pooled["found"].any():
            continue  # this kind found no face: nothing to choose from
        framing[kind] = {"margin": float(pooled["correct"].idxmax()), "offset": 0.0}
        presets[kind] = sorted(curve["detector"].unique())
        found[kind] = int(pooled["found"].iloc[0])
        by_margin[kind] = {f"{m:g}": round(c / f, 4) for m, c, f in pooled.itertuples()}
    return framing, {"rule": FRAMING_RULE, "command": command, "split": split, "faces": faces,
                     "seed": seed, "presets": presets, "faces_found": found,
                     "accuracy_on_found_by_margin": by_margin}


def record_framing(model: str | Path, result: InFrame, name: str, command: str) -> dict:
    """Write into the card beside `model` the crop chosen from its curves in `result` (where
    it is named `name`), with the record of the choice; the crop by detector kind."""
    card = card_path(model)
    if not card.exists():
        raise FileNotFoundError(f"{card}: no model card beside {model} to record its crop in; "
                                "cards are written when the kit trains or exports a model")
    settings = result.settings
    framing, choice = framing_choice(result.margins, name, settings["split"], settings["faces"],
                                     settings["seed"], command)
    preprocessing = {**json.loads(card.read_text()).get("preprocessing", {}), "framing": framing}
    update_card(card, {"preprocessing": preprocessing, "framing_choice": choice})
    return framing


def in_frame_benchmark(classifiers: dict[str, FaceClassifier], dataset: FaceDataset,
                       split: str = "PublicTest",
                       detectors: tuple[str, ...] = DETECTORS, per_class: int = PER_CLASS,
                       seed: int = 0, margin: float | None = None,
                       margins: tuple[float, ...] = MARGINS, tta: tuple[str, ...] = (),
                       fer: bool = True, grid: bool = True, resamples: int = 1000,
                       out: str | Path | None = None, progress: bool = False) -> InFrame:
    """The faces-in-frames benchmark for each model (name -> classifier) and detector preset:
    the table with each model's own crop for the detector (its card's framing, as `predict`
    and `analyze` crop) or at `margin` (single view, then each TTA mode of `tta`), fer's own
    path on the same frames when `fer` is set and the package is installed, the margin curve
    over `margins` (at the card's offset), and the framing grid of every model on the whole
    split; with `progress`, a progress bar for each detector's frames and each grid.

    The files replace those of an earlier run in `out` only once all are written.
    """
    for value in (margin, *margins):
        check_values(margin=value)
    frames = faces_in_frames(dataset, split, per_class, seed)
    on_crops = {(name, mode): float((predict_faces(classifier, frames.crops, mode).argmax(1)
                                     == frames.labels).mean())
                for name, classifier in classifiers.items() for mode in (None, *tta)}
    table, curve, found_by = [], [], {}
    for detector in detectors:
        boxes = found_by[detector] = detect_placed(frames, detector,
                                                   f"{detector} detector" if progress else None)
        found = boxes[:, 2] > 0
        kind = detector_config(detector).kind
        for name, classifier in classifiers.items():
            size = classifier.preprocessing.input_size
            own = classifier.preprocessing.framing_for(kind)
            framing = own if margin is None else replace(own, margin=margin)
            for mode in (None, *tta):
                probs = predict_faces(classifier, framed_crops(frames, boxes, size, framing),
                                      mode)
                table.append({"model": name, "detector": detector, "margin": framing.margin,
                              "tta": mode or "none",
                              **in_frame_scores(frames.labels, found, probs.argmax(1),
                                                resamples, seed),
                              "crops_accuracy": on_crops[name, mode]})
            for value in sorted({*margins, framing.margin}):  # the table's margin too
                probs = predict_faces(classifier, framed_crops(frames, boxes, size,
                                                               replace(own, margin=value)))
                scores = in_frame_scores(frames.labels, found, probs.argmax(1), resamples, seed)
                curve.append({"model": name, "detector": detector, "margin": value,
                              **{k: v for k, v in scores.items() if "on_found" in k},
                              "found": scores["found"]})
    skipped = fer_missing() if fer else "not asked for"
    if not skipped:
        table.append(_fer_row(frames, resamples, seed))
    part = dataset.split(split)
    grids = [framing_grid(classifier, part.images, part.labels,
                          progress=f"framing grid, {name}" if progress else None).reset_index()
             .assign(model=name) for name, classifier in classifiers.items()] if grid else []
    settings = {"data": dataset.source, "sha256": dataset.checksum,
                "synthetic": dataset.synthetic, "split": frames.split,
                "faces": len(frames.labels), "per_class": per_class, "seed": seed,
                "upscale": UPSCALE, "frame_size": FRAME_SIZE, "match_iou": MATCH_IOU,
                "detectors": list(detectors), "margin": "model card" if margin is None else margin,
                "margins": list(margins),
                "tta": list(tta), "fer_path": skipped or "run",
                "grid_faces": len(part.labels) if grid else 0, "resamples": resamples}
    result = InFrame(
        table=pd.DataFrame(table), margins=pd.DataFrame(curve),
        grid=(pd.concat(grids, ignore_index=True)[["model", "framing", "accuracy"]] if grids
              else pd.DataFrame(columns=["model", "framing", "accuracy"])),
        settings=settings, frames=frames, boxes=found_by)
    if out is not None:
        with output_set(out, "in-frame") as run:
            result.files = run.commit(result.save(run.stage))
    return result
