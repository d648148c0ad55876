"""The two routes to the environment (pip via pyproject.toml, conda) list the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name_and_range(requirement: str) -> tuple[str, str]:
    spec = requirement.split(";")[0].split("#")[0].strip()
    match = re.match(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)", spec)
    return match.group(1).lower(), match.group(3).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    pairs = [_name_and_range(r) for r in requirements]
    # The CPU-only wheel and the full one are the same package for this comparison.
    return {("tensorflow" if n == "tensorflow-cpu" else n): r for n, r in pairs}


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return dict(_name_and_range(r) for r in pip if not r.startswith("-e"))


def test_environment_yml_matches_pyproject():
    assert _environment() == _pyproject()


def test_environment_yml_uses_python_311_and_installs_the_kit():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip


def test_opencv_stays_below_5():
    assert _pyproject()["opencv-python"].endswith("<5")
