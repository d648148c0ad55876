"""Emotion analysis of a video, streamed frame by frame into files an app can read.

`analyze` chains six steps, each a function or small class here, that `fer_utils.corpus`
reuses for many videos: (1) open and decode (`open_video`, `FrameReader`), (2) detect and
track (`FaceTracks`; once the video is done, `tracking.clean_tracks` drops fragments and
ghosts and joins the pieces of one face), (3) classify in batches (`classify`), (4) smooth
(`smooth`), (5) summarise (`summarize`), (6) write the outputs (`FrameOutputs` while
streaming, `annotate_video` and `write_outputs` at the end).

Outputs in the output folder:
- frames.csv: one row per face per analysed frame: frame, time_s, face_id, x, y, w, h, the
  seven raw probabilities (angry ... neutral), label, the seven smoothed probabilities
  (smoothed_angry ...), smoothed_label.
- timeline.csv: one row per face per second: face_id, second, frames, mean smoothed
  probability of each emotion, dominant.
- summary.json: see SUMMARY_SCHEMA.
- annotated.mp4 (H.264; at most ANNOTATED_MAX_WIDTH wide), drawn as the frames stream, and
  drawn again from the cleaned tracks in a second pass over the file when cleaning changed
  them (from a camera, the streamed one stays, with the tracker's own ids); and timeline.png.
- manifest.json: written last; the run that wrote the folder and each file's SHA-256.

The folder takes one analysis at a time: files are staged privately and replace the
previous analysis's only once the new one has finished.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from .annotate import VideoWriter, draw_face
from .artifacts import load_model
from .atomic import atomic_path, write_json
from .faces import DetectorConfig, FaceDetector, FaceSearch, crop_face
from .images import to_gray
from .labels import EMOTIONS, NUM_CLASSES
from .model import FaceClassifier
from .options import check_values
from .outputs import output_set
from .paths import SHIPPED_MODEL
from .pipeline import Framing, Preprocessing
from .plots import emotion_timeline, plt, save_figure
from .speaker import (
    EVIDENCE,
    METRICS,
    SMOOTHED,
    THIRDS_DOC,
    changes,
    label_shares,
    speaker_metrics,
)
from .tracking import IoUTracker, Smoothing, TrackCleaning, TrackSmoother, clean_tracks, smooth_rows

__all__ = [
    "SCHEMA_VERSION", "SUMMARY_SCHEMA", "COLUMNS", "AnalysisResult", "has_display",
    "is_camera", "open_video", "Sampling", "check_sampling", "sampling", "read_ahead",
    "MAX_SKIP_S", "GAP_S", "FrameReader", "AnalysedFrame", "ANNOTATED", "ANNOTATED_MAX_WIDTH",
    "FaceTracks", "classify", "smooth", "frame_rows", "FrameOutputs", "batched", "stream",
    "analyze", "annotate_video", "write_outputs", "timeline", "summarize", "SUMMARY_TABLE",
    "summary_table",
]

SCHEMA_VERSION = 3
SUMMARY_SCHEMA = {
    "schema_version": ("int: bumped whenever a field changes meaning (3: a face's valence_share, "
                       "every smoothed label counted, is gone; positive_share, counted over "
                       "confident labels, is the one positive share; every set of figures "
                       "carries its evidence and caveats, a face's frames, seconds and "
                       "dominant became face_frames, face_seconds and dominant among them, and "
                       "tracks says how the faces were cleaned)"),
    "video": "str: the analysed file (or camera index)",
    "model": "str: the classifier's name",
    "detector": ("dict: detector settings (kind: haar or mtcnn, scale_factor, min_neighbors, "
                 "thresholds, min_size, downscale, max_width, refresh, search_margin, "
                 "search_size, carry, carry_score, carry_size)"),
    "framing": ("dict: the crop around each box: margin (share of the box's side added on "
                "each side) and offset (share moved down); the model card's for this detector"),
    "smoothing": "dict: method ('ema', 'window', 'none'), alpha, window",
    "sampling": "dict: native_fps, step_frames, step_s (seconds between analysed frames)",
    "duration_s": "float: length of the analysed part of the video in seconds",
    "frames_read": "int: frames decoded",
    "frames_analysed": "int: frames passed to the detector (every step_frames-th)",
    "frames_with_face": "int: analysed frames with at least one face",
    **METRICS,
    **EVIDENCE,
    "thirds": THIRDS_DOC,
    "tracks": ("dict: found (tracks the tracker started), joined (found again after a gap and "
               "joined to an earlier track of the same face), dropped_fragments (boxes on part "
               "of a larger face: an eye, a mouth), dropped_brief (ghosts seen too briefly "
               "beside a longer face), kept (the faces below), and the cleaning rules"),
    "partial": "bool: true when the outputs miss part of the video; see error and gaps",
    "error": "str or null: why the analysis stopped early or what it skipped",
    "gaps": ("list: corrupt stretches skipped while decoding: first_frame, frames (missing), "
             "start_s, seconds"),
    "faces": ("dict by face id (0, 1, ... by first appearance, after cleaning): first_s, "
              "last_s, emotion_share (share of the face's frames per smoothed label), changes "
              "(smoothed label changes), longest_segments (per emotion, its longest run over "
              "consecutive analysed frames: start_s, end_s, seconds), and the face's own "
              "speaker figures and their evidence: "
              f"{', '.join([*METRICS, *EVIDENCE])}, thirds"),
}
T = TypeVar("T")
_DONE = object()  # what read_ahead's producer returns once the items run out
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


def is_camera(source: str | int | Path) -> bool:
    """Whether a video source is a camera index rather than a file."""
    return not isinstance(source, (str, Path)) or str(source).isdigit()


def open_video(source: str | int | Path) -> tuple[cv2.VideoCapture, float, int]:
    """An opened capture, its frame rate and its frame count (0 when unknown)."""
    if not is_camera(source):
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


@dataclass(frozen=True)
class Sampling:
    """Which frames are analysed: every `step`-th frame of a video at `native_fps`."""

    native_fps: float
    step: int = 1

    @property
    def step_s(self) -> float:
        """Seconds between analysed frames."""
        return self.step / self.native_fps

    def describe(self) -> dict:
        """The summary's `sampling` field."""
        return {"native_fps": round(self.native_fps, 3), "step_frames": self.step,
                "step_s": round(self.step_s, 4)}


def check_sampling(fps: float | None, every: int | None) -> None:
    """Refuse fps and every together, or either outside its range."""
    if fps is not None and every is not None:
        raise ValueError("give fps or every, not both")
    check_values(fps=fps, every=every)


def sampling(native_fps: float, fps: float | None = None, every: int | None = None) -> Sampling:
    """Sampling by time (`fps` analysed frames per second) or by count (`every` Nth frame)."""
    check_sampling(fps, every)
    return Sampling(native_fps, max(1, round(native_fps / fps)) if fps else max(1, int(every or 1)))


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """The same items, produced by a background thread up to `depth` ahead of the reader."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="fer-kit-decode")
    try:
        ahead = deque(pool.submit(next, items, _DONE) for _ in range(max(depth, 1)))
        while (item := ahead.popleft().result()) is not _DONE:
            ahead.append(pool.submit(next, items, _DONE))
            yield item
    finally:
        pool.shutdown(cancel_futures=True)


# Getting past a corrupt stretch: every failed read skips at least one damaged packet, and the
# reader goes on with the first one that decodes again, as ffmpeg does; it gives up after this
# many seconds' worth of failed reads in a row (at a true end they fail at once). The decoder
# may also skip a damaged stretch without failing a read: the timestamps of consecutive frames
# then jump by more than GAP_S, and the frames in between were lost, unless every frame the
# container states was read (a variable-frame-rate video's own pause).
MAX_SKIP_S = 60.0
GAP_S = 0.25


class FrameReader:
    """Step 1, open and decode: every analysed frame of a capture as (index, time_s, image),
    stopping at `max_seconds`, decoded `ahead` frames ahead in a background thread (0: in
    the caller's); reads on past corrupt stretches while the container says that more frames
    follow, noting each in `gaps`; counts the frames read and analysed. `live`: a camera."""

    def __init__(self, capture: cv2.VideoCapture, rate: Sampling, frame_count: int = 0,
                 max_seconds: float | None = None, ahead: int = 16, live: bool = False):
        self.capture, self.rate, self.frame_count = capture, rate, frame_count
        self.max_seconds, self.ahead, self.live = max_seconds, ahead, live
        self.read = self.analysed = self.end = 0  # end: index after the last frame read
        self.jumps: list[dict] = []  # where the timestamps jumped ahead: first_frame, frames, ...
        self.stopped_by_limit = False
        # Frames are read in a background thread while another may release the capture.
        self._lock, self.closed = threading.Lock(), False

    @property
    def gaps(self) -> list[dict]:
        """The stretches of frames lost: first_frame, frames, start_s, seconds."""
        return self.jumps if self.read < self.frame_count else []

    def close(self) -> None:
        """Release the capture once no read is under way; reads after it find the end."""
        with self._lock:
            self.closed = True
            self.capture.release()

    def __iter__(self) -> Iterator[tuple[int, float, np.ndarray]]:
        return read_ahead(self.decode(), self.ahead) if self.ahead else self.decode()

    def decode(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """The analysed frames, decoded in order; skipped frames are grabbed, not converted."""
        while self._next():
            index, self.end = self.end, self.end + 1
            self.read += 1
            if index % self.rate.step:
                continue
            time_s = index / self.rate.native_fps
            if self.max_seconds is not None and time_s >= self.max_seconds:
                self.stopped_by_limit = True
                return
            with self._lock:
                ok, image = (False, None) if self.closed else self.capture.retrieve()
            if not ok:
                return
            self.analysed += 1
            yield index, time_s, image

    def _position(self) -> int:
        """The frame index of the frame just grabbed, from its timestamp."""
        return round(self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 * self.rate.native_fps)

    def _next(self) -> bool:
        """Grab the next frame, unless the capture was closed."""
        with self._lock:
            return not self.closed and self._grab()

    def _grab(self) -> bool:
        """Grab the next frame, reading on past damaged packets. A frame whose timestamp jumps
        ahead is numbered by it and the jump noted; stray frames from inside the last jump
        that the decoder returns in the second after it are dropped."""
        fps = self.rate.native_fps
        while self.capture.grab() or self._read_on():
            if self.live:
                return True
            position = self._position()
            resumed = self.jumps[-1]["first_frame"] + self.jumps[-1]["frames"] if self.jumps else 0
            if position < resumed and self.end < resumed + fps:
                continue
            if position - self.end > GAP_S * fps:
                self.jumps.append({"first_frame": self.end, "frames": position - self.end,
                                  "start_s": round(self.end / fps, 3),
                                  "seconds": round((position - self.end) / fps, 3)})
                self.end = position
            return True
        return False

    def _read_on(self) -> bool:
        """After a failed read inside the stated length, read on until a frame decodes."""
        if self.live or self.end >= self.frame_count:  # a camera stopped, or a true end
            return False
        return any(self.capture.grab() for _ in range(round(self.rate.native_fps * MAX_SKIP_S)))

    def damage(self) -> str | None:
        """What the outputs miss of the video (skipped stretches, a lost end), or None."""
        parts = [f"frames {g['first_frame']}-{g['first_frame'] + g['frames'] - 1} "
                 f"({g['seconds']} s from {g['start_s']} s) could not be decoded and were "
                 "skipped" for g in self.gaps]
        # Containers often overstate their frame count by a few frames; a tenth missing is a
        # break.
        if self.frame_count and not self.stopped_by_limit and self.end < 0.9 * self.frame_count:
            parts.append(f"the video ended after {self.end} of {self.frame_count} frames "
                         "(truncated or corrupt file)")
        return "; ".join(parts) + "; the outputs cover what was read" if parts else None


@dataclass
class AnalysedFrame:
    """One analysed frame's faces: boxes, track ids and crops (and the image, if drawn on)."""

    index: int
    time_s: float
    boxes: np.ndarray
    ids: list[int]
    crops: list[np.ndarray]
    image: np.ndarray | None = None
    scale: float = 1.0  # the image's pixels per pixel of the video frame


# Frames wider than this are scaled down before they are kept for drawing, so that the frames
# waiting to be drawn, and the encoder, stay within bounded memory: a 4K talk's annotated
# video is full HD.
ANNOTATED = "annotated.mp4"
ANNOTATED_MAX_WIDTH = 1920


def _for_drawing(image: np.ndarray) -> tuple[np.ndarray, float]:
    """A frame to draw on, at most ANNOTATED_MAX_WIDTH wide, and its scale."""
    scale = min(1.0, ANNOTATED_MAX_WIDTH / image.shape[1])
    if scale == 1.0:
        return image, scale
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), scale


class FaceTracks:
    """Step 2, detect and track: each frame's faces with stable ids and their model crops, cut
    as the model expects for this detector (or with `framing`)."""

    def __init__(self, detector: str | DetectorConfig, rate: Sampling,
                 preprocessing: Preprocessing, framing: Framing | None = None):
        self.search = FaceSearch(FaceDetector(detector))
        self.tracker = IoUTracker(max_missed=max(2, round(1 / rate.step_s)))
        self.crop_size = preprocessing.input_size
        self.framing = framing or preprocessing.framing_for(self.search.detector.config.kind)

    def __call__(self, index: int, time_s: float, image: np.ndarray,
                 keep_image: bool = False) -> AnalysedFrame:
        """The faces of one decoded frame."""
        gray = to_gray(image)
        boxes = self.search(gray, image)
        crops = [crop_face(gray, box, self.crop_size, self.framing) for box in boxes]
        frame = AnalysedFrame(index, time_s, boxes, self.tracker.update(boxes), crops)
        if keep_image:
            frame.image, frame.scale = _for_drawing(image)
        return frame


def classify(classifier: FaceClassifier, batch: list[AnalysedFrame]) -> list[np.ndarray]:
    """Step 3, classify: each frame's face probabilities (faces, 7), one model call per batch."""
    crops = [crop for frame in batch for crop in frame.crops]
    probs = classifier.predict(np.stack(crops)) if crops else np.zeros((0, NUM_CLASSES))
    return np.split(probs, np.cumsum([len(frame.crops) for frame in batch])[:-1])


def smooth(frame: AnalysedFrame, probs: np.ndarray, smoother: TrackSmoother) -> np.ndarray:
    """Step 4, smooth: each face's probabilities averaged along its track (faces, 7)."""
    return np.array([smoother.update(face_id, p) for face_id, p in
                     zip(frame.ids, probs, strict=True)]).reshape(-1, NUM_CLASSES)


def frame_rows(frame: AnalysedFrame, probs: np.ndarray, smoothed: np.ndarray) -> list[list]:
    """The frames.csv rows (COLUMNS) of one frame's faces."""
    return [[frame.index, round(frame.time_s, 4), face_id, *map(int, box), *np.round(p, 5),
             EMOTIONS[int(np.argmax(p))], *np.round(s, 5), EMOTIONS[int(np.argmax(s))]]
            for box, face_id, p, s in zip(frame.boxes, frame.ids, probs, smoothed, strict=True)]


class FrameOutputs:
    """Step 6 while streaming: frames.csv, the annotated video and the window, written into
    a run's private staging folder."""

    def __init__(self, folder: Path, annotate: bool, fps: float, display: bool = False):
        self.folder, self.annotate, self.fps, self.display = folder, annotate, fps, display
        self._file = open(folder / "frames.csv", "w", newline="")  # noqa: SIM115 (see close())
        self.rows = csv.writer(self._file)
        self.rows.writerow(COLUMNS)
        self.video: VideoWriter | None = None
        self.stopped = False  # the viewer pressed q
        self.written, self.end = 0, 0  # frames written, and the index after the last one

    @property
    def draws(self) -> bool:
        """Whether frames are drawn on (annotated video or window)."""
        return self.annotate or self.display

    def write(self, frame: AnalysedFrame, probs: np.ndarray, smoothed: np.ndarray) -> None:
        """One analysed frame's rows, and its annotated image when drawing."""
        self.rows.writerows(frame_rows(frame, probs, smoothed))
        self.written, self.end = self.written + 1, frame.index + 1
        if frame.image is None:
            return
        for box, face_id, s in zip(frame.boxes, frame.ids, smoothed, strict=True):
            draw_face(frame.image, np.asarray(box) * frame.scale, face_id, s)
        if self.annotate:
            if self.video is None:
                self.video = VideoWriter(self.folder / ANNOTATED,
                                         frame.image.shape[1], frame.image.shape[0], self.fps)
            self.video.write(frame.image)
        if self.display:
            cv2.imshow("fer-kit", frame.image)
            self.stopped = cv2.waitKey(1) & 0xFF == ord("q")

    def close(self) -> dict[str, Path]:
        """Finish the files; returns them by name."""
        self._file.close()
        if self.display:
            cv2.destroyAllWindows()
        files = {"frames": self.folder / "frames.csv"}
        if self.video is not None:
            self.video.close()
            files["annotated"] = self.folder / ANNOTATED
        return files


def batched(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one may be shorter)."""
    while batch := list(islice(items, size)):
        yield batch


def stream(reader: FrameReader, faces: FaceTracks, classifier: FaceClassifier,
           smoother: TrackSmoother, outputs: FrameOutputs, batch_frames: int = 32,
           progress: bool = True, total: int | None = None) -> str | None:
    """Steps 1 to 4 over the whole video, written as they go; why it stopped early, if so.

    Decoding runs in one background thread, detection and tracking of the next batches in
    another (not for a live view, which must not lag), classifying and writing in this one.
    An interrupt (Ctrl-C) stops a video file's analysis and propagates, so that nothing of
    it is kept; for a camera, which has no end, it ends the recording, as q in the window does.
    """
    frames = iter(reader)
    located = (faces(index, time_s, image, keep_image=outputs.draws)
               for index, time_s, image in frames)
    batches = batched(located, 1 if outputs.display else batch_frames)
    if not outputs.display:
        batches = read_ahead(batches, 2)
    bar = tqdm(total=total, unit="frame", desc="analysing", disable=not progress)
    try:
        for batch in batches:
            for frame, probs in zip(batch, classify(classifier, batch), strict=True):
                outputs.write(frame, probs, smooth(frame, probs, smoother))
                if outputs.stopped:
                    return None if reader.live else f"stopped in the window at frame {frame.index}"
            bar.update(len(batch))
    except KeyboardInterrupt:
        if not reader.live:
            raise
    except (cv2.error, ValueError, OSError) as e:
        where = f"after frame {outputs.end - 1}" if outputs.written else "before its first frame"
        return f"stopped {where}: {e}"
    finally:
        batches.close()  # stops detecting ahead,
        frames.close()  # then decoding ahead, before the capture is released
        bar.close()
    return None


def analyze(video: str | int | Path, classifier: FaceClassifier | None = None,
            out: str | Path | None = None, *, fps: float | None = None,
            every: int | None = None, detector: str | DetectorConfig = "default",
            smoothing: Smoothing = Smoothing(), cleaning: TrackCleaning = TrackCleaning(),
            framing: Framing | None = None, batch_frames: int = 32, annotate: bool = True,
            progress: bool = True, max_seconds: float | None = None,
            display: bool = False) -> AnalysisResult:
    """Detect, track, classify and smooth every face in a video, streaming results to `out`.

    Sample by time with `fps` (analysed frames per second) or by count with `every`
    (every Nth frame); default every frame. Faces are cropped as the model's card says for
    the detector, unless `framing` is given. With `out=None` nothing is kept on disk. The
    folder `out` takes one analysis at a time, and its files are replaced only when the
    new analysis has finished. `cleaning` sets the rules that drop face fragments and ghosts
    and join the pieces of one face once the video is done.
    """
    check_sampling(fps, every)
    check_values(max_seconds=max_seconds, batch_frames=batch_frames)
    if display and not has_display():
        raise OSError("no display to show frames on; run with --no-display (outputs are "
                      "still written)")
    classifier = classifier or load_model(SHIPPED_MODEL)
    capture, native_fps, frame_count = open_video(video)
    reader = FrameReader(capture, sampling(native_fps, fps, every), frame_count, max_seconds,
                         ahead=1 if display else 16,  # a live view must not lag
                         live=is_camera(video))
    with ExitStack() as stack:
        stack.callback(reader.close)
        run = stack.enter_context(output_set(out, "analysis")) if out is not None else None
        folder = run.stage if run else Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="fer-kit-")))
        summary, files = _stream_into(folder, video, reader, classifier,
                                      detector=detector, smoothing=smoothing,
                                      cleaning=cleaning, framing=framing,
                                      batch_frames=batch_frames, progress=progress,
                                      annotate=annotate and run is not None,
                                      display=display)
        frames = pd.read_csv(files["frames"])
        if run is None:
            return AnalysisResult(summary=summary, frames=frames)
        files = {**files, **write_outputs(folder, frames, summary)}
        return AnalysisResult(summary=summary, frames=frames, files=run.commit(files))


def _stream_into(folder: Path, video: str | int | Path, reader: FrameReader,
                 classifier: FaceClassifier, *, detector: str | DetectorConfig,
                 smoothing: Smoothing, cleaning: TrackCleaning, framing: Framing | None,
                 batch_frames: int, progress: bool, annotate: bool,
                 display: bool) -> tuple[dict, dict[str, Path]]:
    """Steps 1 to 5 into `folder`: the summary and the streamed files, the tracks cleaned."""
    rate, frame_count = reader.rate, reader.frame_count
    faces = FaceTracks(detector, rate, classifier.preprocessing, framing)  # may refuse first
    outputs = FrameOutputs(folder, annotate, rate.native_fps / rate.step, display)
    total = -(-frame_count // rate.step) if frame_count else None
    try:
        error = stream(reader, faces, classifier, TrackSmoother(smoothing), outputs,
                       batch_frames, progress, total)
    finally:
        files = outputs.close()
    if reader.read == 0:
        raise ValueError(f"{video}: no frame could be decoded (empty, truncated at the start, "
                         "or not a video); any earlier results in the output folder are kept.")
    end, read, analysed = reader.end, reader.read, reader.analysed
    if error:  # decoding and detection ran ahead of the last frame written
        end, read, analysed = outputs.end, min(read, outputs.end), outputs.written
    found = pd.read_csv(files["frames"])
    frames, tracks = clean_tracks(found, rate.step_s, cleaning)
    if tracks["joined"]:  # a joined face is smoothed along all of its rows
        frames = smooth_rows(frames, smoothing)
    if not frames.equals(found):  # tracks dropped, joined or renumbered
        with atomic_path(files["frames"]) as tmp:
            frames.to_csv(tmp, index=False)
        if "annotated" in files and not is_camera(video):  # a camera cannot be read twice
            annotate_video(video, frames, rate, files["annotated"], analysed)
    summary = summarize(frames, rate, end, read, analysed, error or reader.damage())
    summary.update(video=str(video), model=classifier.name, gaps=reader.gaps,
                   detector=faces.search.detector.config.describe(), framing=asdict(faces.framing),
                   smoothing=asdict(smoothing), tracks={**tracks, "rules": asdict(cleaning)})
    return {key: summary[key] for key in SUMMARY_SCHEMA}, files


def annotate_video(video: str | Path, frames: pd.DataFrame, rate: Sampling, path: Path,
                   analysed: int) -> Path | None:
    """annotated.mp4 from a second pass over a video file: its first `analysed` analysed frames
    with their faces' boxes, ids and smoothed labels as `frames` (frames.csv) holds them; None
    when no frame decodes."""
    capture, _, frame_count = open_video(video)
    faces = dict(tuple(frames.groupby("frame")))
    decoded = iter(FrameReader(capture, rate, frame_count))
    writer = None
    try:
        for index, _, image in islice(decoded, analysed):
            image, scale = _for_drawing(image)
            for row in faces[index].itertuples(index=False) if index in faces else ():
                draw_face(image, np.array([row.x, row.y, row.w, row.h]) * scale, row.face_id,
                          np.array([getattr(row, name) for name in SMOOTHED]))
            if writer is None:
                writer = VideoWriter(path, image.shape[1], image.shape[0],
                                     rate.native_fps / rate.step)
            writer.write(image)
    finally:
        decoded.close()
        capture.release()
        if writer is not None:
            writer.close()
    return path if writer is not None else None


def write_outputs(folder: Path, frames: pd.DataFrame, summary: dict) -> dict[str, Path]:
    """Step 6 at the end: timeline.csv, summary.json and timeline.png."""
    files = {"timeline": folder / "timeline.csv"}
    with atomic_path(files["timeline"]) as tmp:
        timeline(frames).to_csv(tmp, index=False)
    files["summary"] = write_json(folder / "summary.json", summary)
    figure = emotion_timeline(frames, summary)
    files["timeline_png"] = save_figure(figure, folder / "timeline.png")
    plt.close(figure)
    return files


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
    """The longest run of each smoothed label over consecutive analysed frames (a frame
    without the face ends a run): start, end and length in seconds."""
    longest: dict[str, dict] = {}
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start] or \
                times[i] - times[i - 1] > 1.5 * step_s:
            seconds = round(float(times[i - 1] - times[start] + step_s), 3)
            if seconds > longest.get(labels[start], {}).get("seconds", 0):
                longest[labels[start]] = {"start_s": round(float(times[start]), 3),
                                          "end_s": round(float(times[i - 1] + step_s), 3),
                                          "seconds": seconds}
            start = i
    return longest


def summarize(frames: pd.DataFrame, rate: Sampling, end: int, frames_read: int,
              frames_analysed: int, error: str | None) -> dict:
    """Step 5, summarise: the summary.json figures from the per-face rows and frame counts."""
    step_s = rate.step_s
    faces = {}
    for face_id, rows in frames.groupby("face_id"):
        labels = rows["smoothed_label"].to_numpy()
        share = label_shares(rows)
        times = rows["time_s"].to_numpy()
        faces[str(face_id)] = {
            "first_s": round(float(times[0]), 3), "last_s": round(float(times[-1]), 3),
            "emotion_share": share, "changes": changes(labels),
            "longest_segments": _segments(labels, times, step_s),
            **speaker_metrics(rows, frames_analysed, rate.step, step_s),
        }
    return {
        "schema_version": SCHEMA_VERSION, "sampling": rate.describe(),
        "duration_s": round(end / rate.native_fps, 3),
        "frames_read": frames_read, "frames_analysed": frames_analysed,
        "frames_with_face": frames["frame"].nunique(),
        **speaker_metrics(frames, frames_analysed, rate.step, step_s),
        "partial": error is not None, "error": error, "faces": faces,
    }


SUMMARY_TABLE = ["face_seconds", "face_frames", "dominant", "dominant_share", "positive_share",
                 "positive_low", "positive_high", "negative_share", "negative_low",
                 "negative_high", "uncertain_share", "changes", "caveats"]


def summary_table(summary: dict) -> pd.DataFrame:
    """Per face, its answer with the evidence beside it, under the summary.json names: seconds
    and frames of face, dominant label and its share, the speaker shares with the 95% intervals
    of the positive and negative ones, label changes and caveats ('none' when there are none)."""
    rows = [{"face": face_id, **{k: f[k] for k in SUMMARY_TABLE},
             "caveats": "; ".join(f["caveats"]) or "none"}
            for face_id, f in summary["faces"].items()]
    return pd.DataFrame(rows, columns=["face", *SUMMARY_TABLE]).set_index("face")
