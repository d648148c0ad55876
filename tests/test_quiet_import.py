"""TensorFlow's native start-up lines are dropped; every other line on stderr still shows."""

import importlib
import os
import sys

from fer_utils import quiet_import
from fer_utils.quiet_import import filtered_native_stderr

STARTUP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796418201.387432   16396 port.cc:153] oneDNN custom operations are on.\n"
    "W0000 00:00:1796418201.614199   16396 cpu_feature_guard.cc:227] This TensorFlow binary\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow\n"
)
KEPT = "E0000 00:00:1796418201.700000   16396 real.cc:1] a real error\nwarning: the kit's own\n"


def test_startup_lines_written_to_the_descriptor_are_dropped_and_the_rest_kept(capfd):
    with filtered_native_stderr():
        os.write(2, (STARTUP + KEPT).encode())
    assert capfd.readouterr().err == KEPT


def test_stderr_is_restored_after_an_error_in_the_block(capfd):
    try:
        with filtered_native_stderr():
            os.write(2, b"I0000 noise\nbefore the error\n")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before the error\nafter\n"


def test_a_quiet_module_is_loaded_through_the_filter_by_its_own_loader(tmp_path, monkeypatch,
                                                                        capfd):
    (tmp_path / "noisy_native.py").write_text(
        f"import os\nos.write(2, {(STARTUP + KEPT).encode()!r})\nLOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(quiet_import, "QUIET_MODULES", ("noisy_native",))
    monkeypatch.delitem(sys.modules, "noisy_native", raising=False)
    quiet_import.import_quietly()  # installed when fer_utils was imported: not a second time
    assert sum(type(f).__name__ == "_QuietFinder" for f in sys.meta_path) == 1
    module = importlib.import_module("noisy_native")
    assert module.LOADED and type(module.__loader__).__name__ == "SourceFileLoader"
    assert capfd.readouterr().err == KEPT
