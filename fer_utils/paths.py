"""Where the kit keeps its data, models, runs, reports and benchmark results."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = [
    "ROOT", "DATA_DIR", "CACHE_DIR", "SAMPLES_DIR", "MODELS_DIR", "RUNS_DIR", "REPORTS_DIR",
    "BENCH_DIR", "NOTEBOOKS_DIR", "SHIPPED_MODEL", "SHIPPED_LOG", "PREVIOUS_MODEL", "run_folder",
]


def _kit_root() -> Path:
    """The checkout holding this package, or the working directory for an installed copy."""
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").exists():
        return here
    return Path(os.environ.get("FER_KIT_HOME", Path.cwd()))


ROOT = _kit_root()
DATA_DIR = ROOT / "data"
# Parsed datasets; move them with FER_KIT_CACHE (for example to a private or faster disk).
CACHE_DIR = Path(os.environ.get("FER_KIT_CACHE") or DATA_DIR / "cache")
SAMPLES_DIR = DATA_DIR / "samples"
MODELS_DIR = ROOT / "models"
RUNS_DIR = ROOT / "runs"
REPORTS_DIR = ROOT / "reports"
BENCH_DIR = ROOT / "benchmarks" / "results"  # bench.json and bench.md
NOTEBOOKS_DIR = ROOT / "notebooks"
SHIPPED_MODEL = MODELS_DIR / "fer_cnn.keras"
SHIPPED_LOG = MODELS_DIR / "fer_cnn.log.csv"  # its training log, epoch by epoch
PREVIOUS_MODEL = MODELS_DIR / "previous" / "fer_cnn.keras"


def run_folder(kind: str, settings: dict, data: str, root: str | Path | None = None) -> Path:
    """`root/<kind>-<hash of settings and data checksum>`: the same run finds its folder again,
    any other setting or data gets its own (root defaults to runs/)."""
    key = json.dumps([settings, data], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return Path(root or RUNS_DIR) / f"{kind}-{digest}"
