"""Run folders the kit picks itself are named by settings and data; a named one refuses others.
Report runs share an out, keep their runs apart by data, and headline what the data allows."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from fer_utils import reports
from fer_utils.cli import parser
from fer_utils.data import load_fer2013_csv, synthetic_sidecar
from fer_utils.paths import RUNS_DIR, SHIPPED_MODEL, run_folder
from fer_utils.pipeline import Augmentation
from fer_utils.reports import ReportResult
from fer_utils.synth import write_synthetic_csv
from fer_utils.training import TrainConfig, train

pytestmark = pytest.mark.xdist_group("report runs")  # the tests share one module fixture

# Small values, so that one report run of 03 takes seconds.
SMALL = {"leakage_images": 200, "leakage_epochs": 1, "tta": None, "previous_model": False}


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


def test_leakage_takes_no_out_by_default():  # its folders are then named by run_folder
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


def _report(data: Path, out: Path) -> tuple[ReportResult, list[Path]]:
    """Run 03 on `data` into `out`: its result and the run folders it says it used."""
    [result] = reports.run_reports(["03_evaluate"], SMALL, out, data=str(data))
    assert result.error is None, result.error
    return result, [Path(folder) for folder in result.summary["runs"]]


def _trained(folders: list[Path]) -> list[Path]:
    """The state.json and log.csv of each training run among `folders`."""
    return [f for folder in folders for f in (folder / "state.json", folder / "log.csv")
            if f.exists()]


def _full_format_csv(folder: Path) -> Path:
    """A CSV in the full fer2013.csv format (Training, PublicTest, PrivateTest) that the kit
    reads as real data: synthetic faces without the sidecar that marks them synthetic."""
    csv = write_synthetic_csv(folder / "fer2013.csv", n_train=300, n_val=100, n_test=120)
    synthetic_sidecar(csv).unlink()
    return csv


@pytest.fixture(scope="module")
def report_runs(tmp_path_factory) -> dict:
    """Into one out: 03 on synthetic data, then on a CSV in the full three-split format. Right
    after each: its result, executed notebook, run folders and the training runs' files."""
    folder = tmp_path_factory.mktemp("reports")
    csvs = {"synthetic": write_synthetic_csv(folder / "a.csv", 280, 70, 70, seed=1),
            "three splits": _full_format_csv(folder)}
    out = folder / "out"
    runs = {}
    for key, data in (("first", "synthetic"), ("second", "three splits")):
        result, folders = _report(csvs[data], out)
        runs[key] = {"result": result, "folders": folders, "trained": _trained(folders),
                     "notebook": json.loads((out / "03_evaluate.ipynb").read_text())}
    return {"out": out, "csvs": csvs, **runs}


@pytest.mark.slow
def test_report_runs_on_two_datasets_share_an_out_and_keep_their_runs_apart(report_runs):
    first, second = report_runs["first"], report_runs["second"]
    out = report_runs["out"]
    names = sorted(f.name.rsplit("-", 1)[0] for f in first["folders"])
    assert names == ["evaluate", "leakage-honest", "leakage-seed"]
    assert all(f.parent == out.resolve() / "runs" for f in first["folders"] + second["folders"])
    assert not set(first["folders"]) & set(second["folders"])
    assert len(first["trained"]) == 4  # state and log of both leakage runs
    assert set((out / "runs").iterdir()) == set(first["folders"] + second["folders"])
    # Rerun on the same data, the folders are the same ones (the names follow settings and
    # data, see above) and a finished run is not trained again (test_training.py).
    index = (out / "index.html").read_text()
    assert all(f"runs/{folder.name}" in index for folder in second["folders"])


@pytest.mark.slow
def test_with_all_three_splits_03_headlines_the_shipped_model_on_privatetest(report_runs):
    plan = reports.report_parameters(str(report_runs["csvs"]["three splits"]),
                                     report_runs["out"])
    assert plan["03_evaluate"]["model"] == str(SHIPPED_MODEL)
    assert plan["02_train"]["max_train_images"] == 6000  # real data: 02 is a demonstration
    second = report_runs["second"]
    result = second["result"]
    assert result.summary["headline"].startswith("shipped model: PrivateTest accuracy")
    assert "SYNTHETIC" not in result.summary["data"] and "PrivateTest 120" in result.summary["data"]
    outputs = json.dumps([c.get("outputs") for c in second["notebook"]["cells"]])
    assert "synthetic cartoons" not in outputs  # the cartoon caveat is for synthetic data only
