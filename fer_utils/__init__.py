"""fer_utils: the engine behind the FER kit's notebooks and its `fer-kit` command.

The package is flat, one module per concern, and layered: a module imports only from its
own layer or the layers above it in this list (tests/test_layers.py checks it, and that
there are no import cycles). Flat modules keep every import short for the notebooks; the
layers are what a reader needs to find the order in which the kit is built.

The public API below is imported lazily, so `import fer_utils` and `fer-kit --help` start
without TensorFlow: `from fer_utils import load_dataset, train, evaluate, analyze`.
"""

import importlib
import os

from .quiet_import import import_quietly

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) hides the kit's own messages: the
# level keeps its runtime notices out, import_quietly the lines it prints while it loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_quietly()
# FFmpeg's line per damaged packet of a video; an analysis reports the gaps in summary.json.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("quiet_import", "paths", "atomic", "options", "outputs", "labels",
                    "geometry", "images", "speaker", "plots")),
    ("data", ("data", "synth", "folders", "sources", "ferplus", "audit", "balance",
              "samples")),
    ("model input", ("pipeline",)),
    ("model", ("model", "schedules", "artifacts", "loading")),
    ("detection", ("faces",)),
    ("learning", ("training", "evaluation", "leakage", "live_curves", "peer", "framing")),
    ("video", ("tracking", "annotate", "video", "corpus")),
    ("teaching", ("anatomy",)),
    ("front ends", ("defaults", "reports", "bench", "cli")),
)

# name -> module that defines it
_API = {
    "EMOTIONS": "labels", "SHIPPED_MODEL": "paths",
    "load_dataset": "sources", "find_fer2013": "sources", "load_fer2013_csv": "data",
    "write_synthetic_csv": "synth", "fetch_samples": "samples", "sample_path": "samples",
    "duplicate_audit": "audit", "oversample": "balance",
    "build_seed_cnn": "model", "FaceClassifier": "model", "load_model": "artifacts",
    "TrainConfig": "training", "profile": "training", "train": "training",
    "evaluate": "evaluation", "compare_models": "evaluation", "leakage_lesson": "leakage",
    "FaceDetector": "faces", "faces_in_photo": "faces", "analyze": "video",
    "analyze_many": "corpus",
    "run_reports": "reports",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    """Import a public name from its module on first use."""
    if name not in _API:
        raise AttributeError(f"module 'fer_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value
