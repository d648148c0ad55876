"""Run folders the kit picks itself are named by settings and data; a named one refuses others."""

from dataclasses import replace
from pathlib import Path

import pytest

from fer_utils import reports
from fer_utils.cli import parser
from fer_utils.data import load_fer2013_csv
from fer_utils.paths import RUNS_DIR, run_folder
from fer_utils.pipeline import Augmentation
from fer_utils.synth import write_synthetic_csv
from fer_utils.training import TrainConfig, train

# The notebooks' small stored values, so one report run of 02 and 03 takes tens of seconds.
SMALL = {"epochs": 1, "max_train_images": 200, "leakage_images": 200, "leakage_epochs": 1,
         "tta": None}


@pytest.fixture(scope="module")
def two_csvs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("data")
    return tuple(write_synthetic_csv(folder / f"{name}.csv", 280, 70, 70, seed=seed)
                 for name, seed in (("a", 1), ("b", 2)))


def test_the_folder_follows_the_settings_and_the_data(tmp_path):
    settings = {"epochs": 6, "augmentation": {"flip": True}}
    first = run_folder("quick", settings, "ab12", tmp_path)
    assert first == run_folder("quick", dict(reversed(settings.items())), "ab12", tmp_path)
    assert first.parent == tmp_path and first.name.startswith("quick-")
    others = {run_folder("quick", {**settings, "epochs": 7}, "ab12", tmp_path),
              run_folder("quick", settings, "cd34", tmp_path),
              run_folder("video", settings, "ab12", tmp_path)}
    assert first not in others and len(others) == 3
    assert run_folder("quick", settings, "ab12").parent == RUNS_DIR


def test_leakage_takes_no_out_and_then_names_its_own_folders():
    assert parser().parse_args(["leakage"]).out is None


@pytest.mark.slow
def test_a_named_folder_refuses_another_run_and_says_what_differs(two_csvs, tmp_path):
    a, b = (load_fer2013_csv(csv, cache=False) for csv in two_csvs)
    config = TrainConfig(profile="test", epochs=1, batch_size=32,
                         augmentation=Augmentation(erase=0.0), patience=1)
    train(a, tmp_path, config, verbose=0, export=False)
    with pytest.raises(ValueError, match=r"epochs: 1 in the folder, 2 asked"):
        train(a, tmp_path, replace(config, epochs=2), verbose=0)
    with pytest.raises(ValueError, match=r"augmentation\.erase: 0\.0 in the folder, 0\.2 asked"):
        train(a, tmp_path, replace(config, augmentation=Augmentation(erase=0.2)), verbose=0)
    with pytest.raises(ValueError, match=r"data: \S+a\.csv \(sha256 \w{12}…\) in the folder, "
                                         r"\S+b\.csv \(sha256 \w{12}…\) asked"):
        train(b, tmp_path, config, verbose=0)


def _report(data: Path, out: Path) -> list[Path]:
    """Run 02 and 03 on `data` into `out`; the run folders they say they used."""
    results = reports.run_reports(["02_train", "03_evaluate"], SMALL, out, data=str(data))
    assert [r.error for r in results] == [None, None]
    return [Path(folder) for r in results for folder in r.summary["runs"]]


def _trained(folders: list[Path]) -> dict[Path, int]:
    """Each training run's state.json and log.csv with their modification times."""
    return {f: f.stat().st_mtime_ns for folder in folders
            for f in (folder / "state.json", folder / "log.csv") if f.exists()}


@pytest.mark.slow
def test_report_runs_on_two_datasets_share_an_out_and_reuse_their_runs(two_csvs, tmp_path):
    first = _report(two_csvs[0], tmp_path)
    trained = _trained(first)
    second = _report(two_csvs[1], tmp_path)
    names = sorted(f.name.rsplit("-", 1)[0] for f in first)
    assert names == ["evaluate", "leakage-honest", "leakage-seed", "quick"]
    assert all(f.parent == tmp_path.resolve() / "runs" for f in first + second)
    assert not set(first) & set(second)
    assert len(trained) == 6  # state and log of the 02 run and of both leakage runs
    folders = set((tmp_path / "runs").iterdir())
    again = _report(two_csvs[0], tmp_path)
    assert again == first and set((tmp_path / "runs").iterdir()) == folders
    assert _trained(again) == trained  # not trained again: state and log untouched
    index = (tmp_path / "index.html").read_text()
    assert all(f"runs/{folder.name}" in index for folder in again)
