"""The files derived from the requirements in pyproject.toml, the one list of them.

    python tools/requirements.py environment   # environment.yml, the conda route (make environment)
    python tools/requirements.py lock          # requirements.lock, exact versions (make lock)

environment.yml takes each requirement with its trailing comment from pyproject.toml.
requirements.lock pins every package pip resolves for the kit; it holds for LOCKED_FOR
(each line carries that marker, so pip skips the lock elsewhere and the ranges decide).
"""

import json
import platform
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from fer_utils.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("cpu", "dev")  # what `make`, the lock and the conda route install
LOCKED_FOR = "python_version == '3.11' and sys_platform == 'linux' and platform_machine == 'x86_64'"
ENVIRONMENT_HEADER = """\
# The conda route to the kit's environment: `conda env create -f environment.yml`,
# then `conda activate fer-kit`. Written by `make environment` from pyproject.toml:
# change the requirements there. The last line installs the kit itself.
name: fer-kit
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""
LOCK_HEADER = """\
# Exact versions for reproducible reports, installed by `make` before the kit itself.
# Written by `make lock` from the ranges in pyproject.toml: do not edit by hand.
"""


def requirements(pyproject: str) -> list[str]:
    """The kit's own requirements, then those of EXTRAS."""
    project = tomllib.loads(pyproject)["project"]
    extras = project["optional-dependencies"]
    return project["dependencies"] + [r for extra in EXTRAS for r in extras[extra]]


def comments(pyproject: str) -> dict[str, str]:
    """Each requirement line's trailing comment, by requirement."""
    return dict(re.findall(r'^\s*"([^"]+)",\s*#\s*(.+?)\s*$', pyproject, re.MULTILINE))


def environment_yml(pyproject: str) -> str:
    """environment.yml for this pyproject.toml."""
    notes = comments(pyproject)
    entries = requirements(pyproject)
    width = max(len(r) for r in entries if ";" not in r)  # lines with markers run longer
    lines = [f"      - {r.ljust(width)}  # {notes[r]}" if r in notes else f"      - {r}"
             for r in entries]
    return ENVIRONMENT_HEADER + "\n".join(lines) + f"\n      - -e .[{','.join(EXTRAS)}]\n"


def resolve() -> dict[str, str]:
    """Name -> version of every package a fresh `pip install .[EXTRAS]` would install here."""
    if (sys.version_info[:2], sys.platform, platform.machine()) != ((3, 11), "linux", "x86_64"):
        sys.exit(f"requirements.lock is for {LOCKED_FOR}: run `make lock` on such a machine")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), f"{ROOT}[{','.join(EXTRAS)}]"],
                       check=True)
        packages = [p["metadata"] for p in json.loads(report.read_text())["install"]]
    return {p["name"]: p["version"] for p in packages if p["name"] != "fer-kit"}


def requirements_lock(versions: dict[str, str]) -> str:
    """requirements.lock pinning `versions`, sorted by name."""
    lines = [f"{name}=={versions[name]} ; {LOCKED_FOR}" for name in sorted(versions, key=str.lower)]
    return LOCK_HEADER + "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) == 2 else None
    if target == "environment":
        write_text(ROOT / "environment.yml", environment_yml((ROOT / "pyproject.toml").read_text()))
    elif target == "lock":
        write_text(ROOT / "requirements.lock", requirements_lock(resolve()))
    else:
        sys.exit("usage: python tools/requirements.py environment|lock")
