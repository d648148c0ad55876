"""Emotion analysis of a video, streamed frame by frame into files an app can read.

Outputs in the output folder:
- frames.csv: one row per face per analysed frame: frame, time_s, face_id, x, y, w, h, the
  seven raw probabilities (angry ... neutral), label, the seven smoothed probabilities
  (smoothed_angry ...), smoothed_label.
- timeline.csv: one row per face per second: face_id, second, frames, mean smoothed
  probability of each emotion, dominant.
- summary.json: see SUMMARY_SCHEMA.
- annotated.mp4 (H.264) and timeline.png.
- manifest.json: written last; the run that wrote the folder and each file's SHA-256.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from .annotate import VideoWriter, draw_face
from .atomic import atomic_path, write_json
from .faces import DetectorConfig, FaceDetector, FaceSearch, crop_face
from .images import to_gray
from .labels import EMOTIONS, VALENCE
from .model import FaceClassifier
from .options import check_values
from .outputs import output_set
from .tracking import IoUTracker, Smoothing, TrackSmoother

SCHEMA_VERSION = 1
SUMMARY_SCHEMA = {
    "schema_version": "int: bumped whenever a field changes meaning",
    "video": "str: the analysed file (or camera index)",
    "model": "str: the classifier's name",
    "detector": ("dict: Haar settings (scale_factor, min_neighbors, min_size, downscale, "
                 "max_width, refresh, search_margin, search_size)"),
    "smoothing": "dict: method ('ema', 'window', 'none'), alpha, window",
    "sampling": "dict: native_fps, step_frames, step_s (seconds between analysed frames)",
    "duration_s": "float: length of the analysed part of the video in seconds",
    "frames_read": "int: frames decoded",
    "frames_analysed": "int: frames passed to the detector (every step_frames-th)",
    "frames_with_face": "int: analysed frames with at least one face",
    "face_share": "float 0..1: frames_with_face / frames_analysed",
    "partial": "bool: true when the outputs miss part of the video; see error and gaps",
    "error": "str or null: why the analysis stopped early or what it skipped",
    "gaps": ("list: corrupt stretches skipped while decoding: first_frame, frames (missing), "
             "start_s, seconds"),
    "faces": ("dict by face id: frames, first_s, last_s, seconds, emotion_share (share of "
              "the face's frames per smoothed label), dominant, changes (smoothed label "
              "changes), longest_segments (per emotion: start_s, end_s, seconds), "
              "valence_share (positive, negative, neutral)"),
}
SMOOTHED = [f"smoothed_{e}" for e in EMOTIONS]
COLUMNS = ["frame", "time_s", "face_id", "x", "y", "w", "h", *EMOTIONS, "label", *SMOOTHED,
           "smoothed_label"]


@dataclass
class AnalysisResult:
    """What an analysis produced: the summary, the per-face rows and the files written."""

    summary: dict
    frames: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)


def has_display() -> bool:
    """Whether a window can be opened (cv2.imshow aborts the process without one)."""
    return sys.platform in ("win32", "darwin") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_video(source: str | int | Path) -> tuple[cv2.VideoCapture, float, int]:
    """An opened capture, its frame rate and its frame count (0 when unknown)."""
    if isinstance(source, (str, Path)) and not str(source).isdigit():
        if not Path(source).exists():
            raise FileNotFoundError(f"{source}: no such video file. Run `fer-kit data samples` "
                                    "for the sample clips.")
        capture = cv2.VideoCapture(str(source))
    else:
        capture = cv2.VideoCapture(int(source))
    if not capture.isOpened():
        raise ValueError(f"{source}: cannot open this video (not a video, corrupt, or a codec "
                         "OpenCV lacks); try converting it with ffmpeg to H.264 MP4.")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # honour rotation metadata
    native = capture.get(cv2.CAP_PROP_FPS)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    return capture, native if native and native > 0 else 25.0, max(count, 0)


# Getting past a corrupt stretch: jump ahead this far per try, for at most this long.
SKIP_S = 0.5
MAX_SKIP_S = 60.0


def _seek_past_damage(capture: cv2.VideoCapture, index: int, frame_count: int,
                      native_fps: float) -> tuple[int, np.ndarray] | None:
    """The first frame that decodes after a failed read at `index`, or None (the video ends)."""
    if index == 0 or index >= frame_count:  # nothing decodes at all, or a true end
        return None
    hop = max(1, round(native_fps * SKIP_S))
    for target in range(index + hop, min(frame_count, index + round(native_fps * MAX_SKIP_S)),
                        hop):
        capture.set(cv2.CAP_PROP_POS_FRAMES, target)
        ok, image = capture.read()
        if ok:
            return target, image
    return None


def _gap(first: int, resumed: int, native_fps: float) -> dict:
    """A stretch of frames that could not be decoded, in frames and seconds."""
    return {"first_frame": first, "frames": resumed - first,
            "start_s": round(first / native_fps, 3),
            "seconds": round((resumed - first) / native_fps, 3)}


def read_frames(capture: cv2.VideoCapture, frame_count: int, native_fps: float,
                gaps: list[dict]) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, image) of each decodable frame; seeks past corrupt stretches, noting
    each one in `gaps`, while the container says that more frames follow."""
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            resumed = _seek_past_damage(capture, index, frame_count, native_fps)
            if resumed is None:
                return
            gaps.append(_gap(index, resumed[0], native_fps))
            index, image = resumed
        yield index, image
        index += 1


def _damage(gaps: list[dict], end: int, frame_count: int, stopped_by_limit: bool) -> str | None:
    """What the outputs miss of the video (skipped stretches, a lost end), or None."""
    parts = [f"frames {g['first_frame']}-{g['first_frame'] + g['frames'] - 1} "
             f"({g['seconds']} s from {g['start_s']} s) could not be decoded and were skipped"
             for g in gaps]
    # Containers often overstate their frame count by a few frames; a tenth missing is a break.
    if frame_count and not stopped_by_limit and end < 0.9 * frame_count:
        parts.append(f"the video ended after {end} of {frame_count} frames (truncated or "
                     "corrupt file)")
    return "; ".join(parts) + "; the outputs cover what was read" if parts else None


class _Outputs:
    """The streamed output files, written into a run's staging folder."""

    def __init__(self, folder: Path, annotate: bool, fps: float):
        self.folder, self.annotate, self.fps = folder, annotate, fps
        self._file = open(folder / "frames.csv", "w", newline="")  # noqa: SIM115 (see close())
        self.rows = csv.writer(self._file)
        self.rows.writerow(COLUMNS)
        self.video: VideoWriter | None = None

    def frame(self, image: np.ndarray) -> None:
        if self.annotate:
            if self.video is None:
                self.video = VideoWriter(self.folder / "annotated.mp4", image.shape[1],
                                         image.shape[0], self.fps)
            self.video.write(image)

    def close(self) -> dict[str, Path]:
        self._file.close()
        files = {"frames": self.folder / "frames.csv"}
        if self.video is not None:
            self.video.close()
            files["annotated"] = self.folder / "annotated.mp4"
        return files


def check_sampling(fps: float | None, every: int | None, max_seconds: float | None) -> None:
    """Refuse sampling options outside their ranges, or fps and every together."""
    if fps is not None and every is not None:
        raise ValueError("give fps or every, not both")
    check_values(fps=fps, every=every, max_seconds=max_seconds)


def analyze(video: str | int | Path, classifier: FaceClassifier | None = None,
            out: str | Path | None = None, *, fps: float | None = None,
            every: int | None = None, detector: str | DetectorConfig = "default",
            smoothing: Smoothing | None = None, margin: float = 0.1, batch_frames: int = 32,
            annotate: bool = True, progress: bool = True, max_seconds: float | None = None,
            display: bool = False) -> AnalysisResult:
    """Detect, track, classify and smooth every face in a video, streaming results to `out`.

    Sample by time with `fps` (analysed frames per second) or by count with `every`
    (every Nth frame); default every frame. With `out=None` nothing is kept on disk. The
    folder `out` takes one analysis at a time, and its files are replaced only when the
    new analysis has finished.
    """
    check_sampling(fps, every, max_seconds)
    check_values(margin=margin, batch_frames=batch_frames)
    if display and not has_display():
        raise OSError("no display to show frames on; run with --no-display (outputs are "
                      "still written)")
    if classifier is None:
        from .artifacts import load_model
        from .paths import SHIPPED_MODEL

        classifier = load_model(SHIPPED_MODEL)
    with ExitStack() as stack:
        run = stack.enter_context(output_set(out, "analysis")) if out is not None else None
        folder = run.stage if run else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="fer-kit-")))
        summary, files = _analyze_into(folder, video, classifier, fps=fps, every=every,
                                       detector=detector, smoothing=smoothing or Smoothing(),
                                       margin=margin, batch_frames=batch_frames,
                                       annotate=annotate and run is not None, progress=progress,
                                       max_seconds=max_seconds, display=display)
        frames = pd.read_csv(files["frames"])
        if run is None:
            return AnalysisResult(summary=summary, frames=frames)
        return AnalysisResult(summary=summary, frames=frames,
                              files=run.commit(_write_reports(folder, frames, summary, files)))


def _write_reports(folder: Path, frames: pd.DataFrame, summary: dict,
                   files: dict[str, Path]) -> dict[str, Path]:
    """Add timeline.csv, summary.json and timeline.png to the streamed files."""
    from .plots import emotion_timeline, plt, save_figure

    files = {**files, "timeline": folder / "timeline.csv"}
    with atomic_path(files["timeline"]) as tmp:
        timeline(frames).to_csv(tmp, index=False)
    files["summary"] = write_json(folder / "summary.json", summary)
    figure = emotion_timeline(frames, summary)
    files["timeline_png"] = save_figure(figure, folder / "timeline.png")
    plt.close(figure)
    return files


def _analyze_into(folder: Path, video: str | int | Path, classifier: FaceClassifier, *,
                  fps: float | None, every: int | None, detector: str | DetectorConfig,
                  smoothing: Smoothing, margin: float, batch_frames: int, annotate: bool,
                  progress: bool, max_seconds: float | None, display: bool
                  ) -> tuple[dict, dict[str, Path]]:
    """Stream the analysis of `video` into `folder`: its summary and the files written."""
    capture, native_fps, frame_count = open_video(video)
    step = max(1, round(native_fps / fps)) if fps else max(1, int(every or 1))
    step_s = step / native_fps
    outputs = _Outputs(folder, annotate, native_fps / step)
    faces = FaceSearch(FaceDetector(detector))
    tracker, smoother = IoUTracker(max_missed=max(2, round(1 / step_s))), TrackSmoother(smoothing)
    size = classifier.preprocessing.input_size
    pending: list[tuple] = []
    counts = {"read": 0, "analysed": 0, "with_face": 0}
    gaps: list[dict] = []
    end, error = 0, None

    def flush() -> None:
        crops = [c for *_, frame_crops in pending for c in frame_crops]
        probs = classifier.predict(np.stack(crops)) if crops else np.zeros((0, 7))
        k = 0
        for index, time_s, image, boxes, ids, _ in pending:
            for box, face_id in zip(boxes, ids, strict=True):
                smooth = smoother.update(face_id, probs[k])
                outputs.rows.writerow([
                    index, round(time_s, 4), face_id, *map(int, box),
                    *np.round(probs[k], 5), EMOTIONS[int(np.argmax(probs[k]))],
                    *np.round(smooth, 5), EMOTIONS[int(np.argmax(smooth))]])
                if image is not None:
                    draw_face(image, box, face_id, smooth)
                k += 1
            if image is not None:
                outputs.frame(image)
                if display:
                    cv2.imshow("fer-kit", image)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        raise KeyboardInterrupt
        pending.clear()

    total = (frame_count + step - 1) // step if frame_count else None
    bar = tqdm(total=total, unit="frame", desc="analysing", disable=not progress)
    try:
        for index, image in read_frames(capture, frame_count, native_fps, gaps):
            counts["read"] += 1
            end = index + 1
            if index % step:
                continue
            time_s = index / native_fps
            if max_seconds is not None and time_s >= max_seconds:
                break
            gray = to_gray(image)
            boxes = faces(gray)
            ids = tracker.update(boxes)
            counts["analysed"] += 1
            counts["with_face"] += bool(len(boxes))
            keep = image if (outputs.annotate or display) else None
            pending.append((index, time_s, keep, boxes, ids,
                            [crop_face(gray, b, size, margin) for b in boxes]))
            if len(pending) >= (1 if display else batch_frames):
                flush()
            bar.update()
        flush()
    except KeyboardInterrupt:
        flush()
    except (cv2.error, ValueError, OSError) as e:
        error = f"stopped at frame {end}: {e}"
        pending.clear()
    finally:
        bar.close()
        capture.release()
        if display:
            cv2.destroyAllWindows()
        files = outputs.close()
    if counts["read"] == 0:
        raise ValueError(f"{video}: no frame could be decoded (empty, truncated at the start, "
                         "or not a video); any earlier results in the output folder are kept.")
    stopped_by_limit = max_seconds is not None and end / native_fps >= max_seconds
    error = error or _damage(gaps, end, frame_count, stopped_by_limit)
    summary = summarize(pd.read_csv(files["frames"]), counts, step, native_fps, error)
    summary.update(video=str(video), model=classifier.name, detector=asdict(faces.detector.config),
                   smoothing=asdict(smoothing), gaps=gaps)
    return {key: summary[key] for key in SUMMARY_SCHEMA}, files


def timeline(frames: pd.DataFrame) -> pd.DataFrame:
    """Per face and second: frames seen, mean smoothed probabilities, dominant emotion."""
    if frames.empty:
        return pd.DataFrame(columns=["face_id", "second", "frames", *EMOTIONS, "dominant"])
    per_second = frames.assign(second=frames["time_s"].astype(int)).groupby(
        ["face_id", "second"])
    table = per_second[SMOOTHED].mean().round(5)
    table.columns = list(EMOTIONS)
    table.insert(0, "frames", per_second.size())
    table["dominant"] = table[list(EMOTIONS)].idxmax(axis=1)
    return table.reset_index()


def _segments(labels: np.ndarray, times: np.ndarray, step_s: float) -> dict[str, dict]:
    """The longest run of each smoothed label: start, end and length in seconds."""
    longest: dict[str, dict] = {}
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            seconds = round(float(times[i - 1] - times[start] + step_s), 3)
            if seconds > longest.get(labels[start], {}).get("seconds", 0):
                longest[labels[start]] = {"start_s": round(float(times[start]), 3),
                                          "end_s": round(float(times[i - 1] + step_s), 3),
                                          "seconds": seconds}
            start = i
    return longest


def summarize(frames: pd.DataFrame, counts: dict[str, int], step: int, native_fps: float,
              error: str | None) -> dict:
    """The summary.json figures from the per-face rows and the frame counts."""
    step_s = step / native_fps
    faces = {}
    for face_id, rows in frames.groupby("face_id"):
        labels = rows["smoothed_label"].to_numpy()
        share = {e: round(float((labels == e).mean()), 4) for e in EMOTIONS}
        times = rows["time_s"].to_numpy()
        faces[str(face_id)] = {
            "frames": len(rows), "first_s": round(float(times[0]), 3),
            "last_s": round(float(times[-1]), 3), "seconds": round(len(rows) * step_s, 3),
            "emotion_share": share, "dominant": max(share, key=share.get),
            "changes": int((labels[1:] != labels[:-1]).sum()),
            "longest_segments": _segments(labels, times, step_s),
            "valence_share": {v: round(sum(share[e] for e in group), 4)
                              for v, group in VALENCE.items()},
        }
    analysed = counts["analysed"]
    return {
        "schema_version": SCHEMA_VERSION,
        "sampling": {"native_fps": round(native_fps, 3), "step_frames": step,
                     "step_s": round(step_s, 4)},
        "duration_s": round(counts["read"] / native_fps, 3),
        "frames_read": counts["read"], "frames_analysed": analysed,
        "frames_with_face": counts["with_face"],
        "face_share": round(counts["with_face"] / analysed, 4) if analysed else 0.0,
        "partial": error is not None, "error": error, "faces": faces,
    }


def summary_table(summary: dict) -> pd.DataFrame:
    """Per face: seconds on screen, dominant emotion, changes and valence shares."""
    rows = [{"face": face_id, "seconds": f["seconds"], "dominant": f["dominant"],
             "changes": f["changes"], **{f"{v} share": s for v, s in f["valence_share"].items()}}
            for face_id, f in summary["faces"].items()]
    return pd.DataFrame(rows, columns=["face", "seconds", "dominant", "changes",
                                       *(f"{v} share" for v in VALENCE)]).set_index("face")
