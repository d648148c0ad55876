"""TensorFlow imported without the lines its native libraries print on stderr as they load.

As TensorFlow loads, its C++ code writes absl's "before InitializeLog" warning, oneDNN's
notice and the CPU-feature notice straight to file descriptor 2; on CPUs where oneDNN is on
by default, TF_CPP_MIN_LOG_LEVEL does not silence them. `fer_utils` therefore imports
TensorFlow, whenever anything first imports it, with that descriptor pointed at a temporary
file, puts it back, and writes on every captured line that is not start-up noise: errors,
Python warnings and the kit's own messages still show.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["QUIET_MODULES", "STARTUP_NOISE", "filtered_native_stderr", "import_quietly"]

QUIET_MODULES = ("tensorflow",)
# absl's banner, info and warning lines (I0000/W0000 ...), the CPU notice's second line, and
# the notice TFLite prints when an interpreter takes its default CPU delegate.
STARTUP_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|[IW]\d{4} |"
                           r"To enable the following instructions|"
                           r"INFO: Created TensorFlow Lite XNNPACK delegate)")


@contextmanager
def filtered_native_stderr(noise: re.Pattern = STARTUP_NOISE) -> Iterator[None]:
    """Capture what anything writes to file descriptor 2 in the block, then pass on to stderr
    every line that does not match `noise`."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to protect
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not noise.match(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's own loader inside filtered_native_stderr."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # as if loaded directly
        with filtered_native_stderr():
            self.loader.exec_module(module)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds each of QUIET_MODULES once, through the other finders, with a quiet loader."""

    def find_spec(self, name: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if name not in QUIET_MODULES:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def import_quietly() -> None:
    """From now on, the first import of each of QUIET_MODULES filters its start-up lines."""
    if not any(isinstance(finder, _QuietFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
