"""The files written from pyproject.toml (environment.yml, requirements.lock) agree with it;
the Makefile's targets start as the user who runs them."""

import os
import runpy
import subprocess
import tomllib
from pathlib import Path

import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
TOOL = runpy.run_path(str(ROOT / "tools" / "requirements.py"))
PYPROJECT = (ROOT / "pyproject.toml").read_text()
LOCKED_PLATFORM = {"python_version": "3.11", "sys_platform": "linux", "platform_machine": "x86_64"}


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _locked() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(pin.name): pin for pin in pins}


def test_environment_yml_is_written_from_pyproject():
    assert (ROOT / "environment.yml").read_text() == TOOL["environment_yml"](PYPROJECT), \
        "environment.yml is out of date: run `make environment`"


def test_environment_yml_installs_what_pyproject_requires():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pip == [*TOOL["requirements"](PYPROJECT), "-e .[cpu,dev]"]
    assert "python=3.11" in environment["dependencies"]


def test_requirements_lock_pins_a_version_in_every_range_of_pyproject():
    locked = _locked()
    for requirement in map(Requirement, TOOL["requirements"](PYPROJECT)):
        if requirement.marker and not requirement.marker.evaluate(LOCKED_PLATFORM):
            continue
        pin = locked.get(canonicalize_name(requirement.name))
        assert pin, f"{requirement.name} is missing from requirements.lock: run `make lock`"
        version = next(iter(pin.specifier)).version
        assert requirement.specifier.contains(version), \
            f"requirements.lock pins {pin.name} {version}, outside {requirement}: run `make lock`"


def test_every_pin_holds_only_on_the_locked_platform():
    marker = Marker(TOOL["LOCKED_FOR"])
    assert marker.evaluate(LOCKED_PLATFORM)
    assert not marker.evaluate({**LOCKED_PLATFORM, "python_version": "3.12"})
    assert all(pin.marker == marker and str(pin.specifier).startswith("==")
               for pin in _locked().values())


def test_one_tensorflow_wheel_whichever_extra():
    project = tomllib.loads(PYPROJECT)["project"]
    extras = project["optional-dependencies"]
    assert not _names(project["dependencies"]) & {"tensorflow", "tensorflow-cpu"}
    assert _names(extras["gpu"]) == {"tensorflow"} and "and-cuda" in extras["gpu"][0]
    assert _names(extras["cpu"]) == {"tensorflow", "tensorflow-cpu"}
    linux = {"sys_platform": "linux", "platform_machine": "x86_64"}
    assert [Requirement(r).marker.evaluate(linux) for r in extras["cpu"]] == [True, False]


def test_opencv_stays_below_5():
    opencv = next(Requirement(r) for r in TOOL["requirements"](PYPROJECT)
                  if r.startswith("opencv-python"))
    assert not opencv.specifier.contains("5.0")


def _lab_command(tmp_path: Path, uid: int) -> str:
    """The command `make lab` would run for a user with this id (a stand-in `id` on PATH)."""
    fake = tmp_path / str(uid)
    fake.mkdir()
    (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (fake / "id").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["make", "-n", "-o", ".venv/.installed-stamp", "lab"], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=True).stdout


def test_make_lab_starts_jupyter_as_root_too(tmp_path):
    assert "jupyter lab notebooks/ --allow-root" in _lab_command(tmp_path, 0)
    assert "--allow-root" not in _lab_command(tmp_path, 1000)
