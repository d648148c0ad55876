"""Many videos at once: one output folder per video and a corpus.csv row each, on Dask.

Each video is one task that runs `video.analyze` into `out/<name>/` and writes
`complete.json` (its corpus row, the settings and the video file's size and time) last,
atomically. A re-run with the same settings skips the unchanged videos that have it and
redoes the rest, so a killed batch resumes. Settings are compared with their defaults filled
in, so `fer-kit analyze` and a notebook that ask for the same analysis share the folders. A
video that fails becomes a `failed` row and the batch goes on. One worker without a
scheduler runs in this process; more run on a Dask cluster, local or remote, where each
worker loads the model once from its path (a Keras model is never sent over the wire).
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .atomic import atomic_path, write_json
from .loading import ModelSpec, cached_classifier
from .options import check
from .paths import SHIPPED_MODEL
from .speaker import EVIDENCE, METRICS
from .video import ANNOTATED, analyze

__all__ = [
    "VIDEO_SUFFIXES", "COMPLETE", "CORPUS_COLUMNS", "RESULT_OPTIONS", "ANALYZE_DEFAULTS",
    "video_paths", "output_folders", "settings_key", "video_stamp", "status", "corpus_row",
    "failed_row", "completed_row", "analyze_one", "write_corpus", "analyze_many",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
COMPLETE = "complete.json"
CORPUS_COLUMNS = ["video", "folder", "status", "error", "duration_s", "frames_analysed",
                  *METRICS, *EVIDENCE]


def video_paths(specs: Iterable[str | Path]) -> list[Path]:
    """The videos named by files, folders (their video files) and globs, in order, each once.

    A named file that does not exist is kept: the batch records it as failed.
    """
    found: list[Path] = []
    for spec in map(str, specs):
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        elif glob.has_magic(spec):
            matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        else:
            matches = [path]
        if not matches:
            raise ValueError(f"{spec}: no video file here (looked for {', '.join(VIDEO_SUFFIXES)});"
                             " name the files, a folder holding them, or a glob like 'talks/*.mp4'")
        found += [p for p in matches if p not in found]
    return found


def output_folders(videos: list[Path], out: Path) -> dict[Path, Path]:
    """Each video's output folder under `out`: its name without suffix, made unique when two
    videos share one (a short hash of the full path is appended)."""
    stems = [v.stem for v in videos]
    return {v: out / (v.stem if stems.count(v.stem) == 1 else
                      f"{v.stem}-{hashlib.sha1(str(v.resolve()).encode()).hexdigest()[:6]}")
            for v in videos}


# `video.analyze`'s options that change its results (`annotate` only adds a file), and its
# defaults.
RESULT_OPTIONS = ("fps", "every", "detector", "smoothing", "cleaning", "framing", "max_seconds")
ANALYZE_DEFAULTS = {name: p.default for name, p in inspect.signature(analyze).parameters.items()}


def settings_key(model: ModelSpec, options: dict) -> str:
    """The model and the analysis's settings, defaults filled in, as one string: a completed
    video is reused only when the re-run asks for the same analysis."""
    settings = {name: options.get(name, ANALYZE_DEFAULTS[name]) for name in RESULT_OPTIONS}
    plain = {"model": asdict(model),
             **{k: asdict(v) if is_dataclass(v) else v for k, v in settings.items()}}
    return json.dumps(plain, sort_keys=True, default=str)


def status(summary: dict) -> str:
    """A finished analysis's status: partial (the video broke off), no_face, or ok."""
    if summary["partial"]:
        return "partial"
    return "ok" if summary["frames_with_face"] else "no_face"


def corpus_row(video: Path, folder: Path, summary: dict) -> dict:
    """One video's corpus.csv row from its summary (caveats joined by '; ')."""
    return {"video": str(video), "folder": folder.name, "status": status(summary),
            "error": summary["error"], "duration_s": summary["duration_s"],
            "frames_analysed": summary["frames_analysed"],
            **{name: summary[name] for name in [*METRICS, *EVIDENCE]},
            "caveats": "; ".join(summary["caveats"])}


def failed_row(video: Path, folder: Path, error: BaseException) -> dict:
    """The corpus.csv row of a video whose analysis failed."""
    row = dict.fromkeys(CORPUS_COLUMNS)
    return {**row, "video": str(video), "folder": folder.name, "status": "failed",
            "error": f"{type(error).__name__}: {error}"}


def video_stamp(video: Path) -> list[int] | None:
    """A video file's size and modification time (None if it cannot be read): a finished
    folder serves only the file it was made from."""
    try:
        stat = video.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def completed_row(folder: Path, video: Path, settings: str, annotate: bool = True) -> dict | None:
    """The row a finished analysis of this very `video` left in `folder` with these settings
    (and its annotated video, when `annotate` asks for one), else None."""
    marker = folder / COMPLETE
    if not marker.exists() or (annotate and not (folder / ANNOTATED).exists()):
        return None
    done = json.loads(marker.read_text())
    same = done.get("settings") == settings and done.get("video") == video_stamp(video)
    return done["row"] if same else None


def analyze_one(video: Path, folder: Path, model: ModelSpec, options: dict,
                progress: bool = False) -> dict:
    """One batch task: analyse a video into its folder, mark it complete, return its row.
    Any failure becomes a `failed` row instead of stopping the batch."""
    (folder / COMPLETE).unlink(missing_ok=True)  # stale once the folder's files change
    stamp = video_stamp(video)
    try:
        result = analyze(video, cached_classifier(model), folder, progress=progress, **options)
    except Exception as error:  # noqa: BLE001 (one bad video must not stop the others)
        return failed_row(video, folder, error)
    row = corpus_row(video, folder, result.summary)
    write_json(folder / COMPLETE, {"row": row, "settings": settings_key(model, options),
                                   "video": stamp})
    return row


def _in_process(todo: list[Path], folders: dict[Path, Path], model: ModelSpec, options: dict,
                progress: bool) -> Iterator[tuple[Path, dict]]:
    for video in todo:
        yield video, analyze_one(video, folders[video], model, options, progress)


def _on_dask(todo: list[Path], folders: dict[Path, Path], model: ModelSpec, options: dict,
             workers: int, scheduler: str | None, progress: bool) -> Iterator[tuple[Path, dict]]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None if scheduler else LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR)
    try:
        with Client(scheduler or cluster) as client:
            if progress:  # live feedback, like the progress bar
                print(f"Dask dashboard: {client.dashboard_link}", flush=True)
            futures = {client.submit(analyze_one, video, folders[video], model, options,
                                     pure=False): video for video in todo}
            for future in as_completed(futures):
                video = futures[future]
                try:
                    yield video, future.result()
                except Exception as error:  # noqa: BLE001 (a worker died on this video)
                    yield video, failed_row(video, folders[video], error)
    finally:
        if cluster is not None:
            cluster.close()


def write_corpus(out: Path, rows: list[dict]) -> Path:
    """out/corpus.csv: one row per video, in the order given."""
    path = out / "corpus.csv"
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=CORPUS_COLUMNS).to_csv(tmp, index=False)
    return path


def analyze_many(paths: Iterable[str | Path], out: str | Path, workers: int = 1,
                 scheduler: str | None = None, model: ModelSpec | None = None,
                 progress: bool = True, **options) -> pd.DataFrame:
    """Analyse many videos (files, folders, globs) into `out/<name>/` and `out/corpus.csv`.

    `options` go to `video.analyze` (fps, every, detector, smoothing, max_seconds, annotate).
    `workers` > 1 starts a local Dask cluster; `scheduler` ("tcp://host:8786") uses a
    running one. Returns the corpus table.
    """
    check("workers", workers)
    out, model = Path(out), model or ModelSpec()
    if scheduler is None and not Path(model.path).exists():  # remote workers check their own
        raise FileNotFoundError(f"{model.path}: no such model file; the shipped one is "
                                f"{SHIPPED_MODEL}")
    videos = video_paths(paths)
    folders = output_folders(videos, out)
    settings = settings_key(model, options)
    annotate = options.get("annotate", ANALYZE_DEFAULTS["annotate"])
    rows = {video: completed_row(folders[video], video, settings, annotate) for video in videos}
    todo = [video for video in videos if rows[video] is None]
    results = (_in_process(todo, folders, model, options, progress)
               if workers == 1 and scheduler is None else
               _on_dask(todo, folders, model, options, workers, scheduler, progress))
    out.mkdir(parents=True, exist_ok=True)
    # Closed however the loop ends, so that an interrupt's message starts a line of its own.
    with tqdm(total=len(videos), initial=len(videos) - len(todo), unit="video",
              desc="videos", disable=not progress) as bar:
        for video, row in results:
            rows[video] = row
            write_corpus(out, [r for r in rows.values() if r is not None])
            bar.update()
    write_corpus(out, list(rows.values()))
    return pd.read_csv(out / "corpus.csv")
