"""tools/ship_model.py: the ship rule, and models/ replaced as one unit or left as it was."""

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fer_utils import framing
from fer_utils.outputs import write_manifest
from fer_utils.paths import MODELS_DIR, ROOT

_spec = importlib.util.spec_from_file_location("ship_model", ROOT / "tools" / "ship_model.py")
ship_model = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ship_model)

LOG = ("epoch,accuracy,loss,val_accuracy,val_loss,learning_rate,seconds\n"
       "1,0.6681528687477112,0.888500452041626,0.6433547139167786,1.1257712841033936,"
       "0.004999999888241291,2484.91\n")


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _first_stage(folder: Path) -> None:
    """The shipped model and its card in `folder`, the card made that of a model trained
    from scratch with the full profile (the shipped one may name a model it started from)."""
    shutil.copy(MODELS_DIR / "fer_cnn.keras", folder / "fer_cnn.keras")
    card = json.loads((MODELS_DIR / "fer_cnn.card.json").read_text())
    card["training"].update(profile="full", init=None, init_model=None)
    (folder / "fer_cnn.card.json").write_text(json.dumps(card))


def _grids(shipped: float, run: float, gap: float) -> pd.DataFrame:
    return pd.DataFrame({"shipped": {"single crop": shipped, "grid mean - single crop": -0.03},
                         "run": {"single crop": run, "grid mean - single crop": gap}})


@pytest.fixture
def models_and_run(tmp_path) -> tuple[Path, Path]:
    """A copy of models/, and a finished run whose model is a copy of the shipped one with
    a first stage's card and a log; its other exports are stand-in bytes."""
    models = shutil.copytree(MODELS_DIR, tmp_path / "models")
    run = tmp_path / "run"
    run.mkdir()
    _first_stage(run)
    for name in ship_model.EXPORTS:
        if not name.endswith((".keras", ".card.json")):
            (run / name).write_bytes(f"the run's {name}".encode())
    (run / "log.csv").write_text(LOG)
    write_manifest(run, [*ship_model.EXPORTS, "log.csv"], "run-1", "training")
    return models, run


def test_the_rule_asks_for_the_shipped_accuracy_and_a_grid_mean_within_1_5_points():
    assert ship_model.ship_verdict(_grids(0.665, 0.665, -0.015)) == []
    [too_low] = ship_model.ship_verdict(_grids(0.665, 0.6647, -0.01))
    assert "66.47%" in too_low and "66.50%" in too_low
    [brittle] = ship_model.ship_verdict(_grids(0.665, 0.67, -0.0151))
    assert "1.51%" in brittle
    assert len(ship_model.ship_verdict(_grids(0.665, 0.6, -0.05))) == 2


def test_shipping_moves_the_shipped_model_to_previous_and_puts_the_runs_in_its_place(
        models_and_run):
    models, run = models_and_run
    before = _tree(models)
    (run / "fer_cnn.keras").write_bytes(b"the run's model")
    ship_model.ship(run, models)
    after = _tree(models)
    assert set(after) == set(before)
    assert after["previous/fer_cnn.keras"] == before["fer_cnn.keras"]
    previous_card = json.loads(after["previous/fer_cnn.card.json"])
    assert previous_card["files"] == {"keras": "fer_cnn.keras"}
    assert "previous_model" not in previous_card
    shipped_card = json.loads(before["fer_cnn.card.json"])
    assert previous_card["validation"] == shipped_card["validation"]
    for name in ship_model.EXPORTS[:-1]:
        assert after[name] == (run / name).read_bytes(), name
    card = json.loads(after["fer_cnn.card.json"])
    assert card["previous_model"] == "previous/fer_cnn.keras"
    assert after["README.md"] == before["README.md"]
    assert after["fer_cnn.log.csv"].decode().splitlines()[1] == \
        "1,0.6682,0.8885,0.6434,1.126,0.005,2485,1,full"
    assert sorted(p.name for p in models.parent.iterdir()) == ["models", "run"]


def test_a_model_trained_on_from_another_ships_the_log_of_every_stage(models_and_run):
    models, run = models_and_run
    base = run.with_name("base")
    base.mkdir()
    _first_stage(base)
    (base / "log.csv").write_text(LOG + LOG.splitlines()[1].replace("1,", "2,", 1) + "\n")
    start = str(base / "fer_cnn.keras")
    card = json.loads((run / "fer_cnn.card.json").read_text())
    card["training"].update(profile="finetune", init={
        "path": start, "sha256": hashlib.sha256(Path(start).read_bytes()).hexdigest()})
    (run / "fer_cnn.card.json").write_text(json.dumps(card))
    ship_model.ship(run, models)
    log = pd.read_csv(models / "fer_cnn.log.csv")
    assert list(log["epoch"]) == [1, 2, 3] and list(log["stage"]) == [1, 1, 2]
    assert list(log["profile"]) == ["full", "full", "finetune"]
    assert log["val_accuracy"].tolist() == [0.6434] * 3


def test_a_model_whose_starting_model_changed_is_not_shipped(models_and_run):
    models, run = models_and_run
    card = json.loads((run / "fer_cnn.card.json").read_text())
    card["training"]["init"] = {"path": str(run / "fer_cnn.keras"), "sha256": "0" * 64}
    (run / "fer_cnn.card.json").write_text(json.dumps(card))
    before = _tree(models)
    with pytest.raises(FileNotFoundError, match="trained on from .*run/fer_cnn.keras, which is "
                                                "gone or has changed since"):
        ship_model.ship(run, models)
    assert _tree(models) == before


def test_an_unfinished_run_is_refused_and_nothing_changes(models_and_run):
    models, run = models_and_run
    before = _tree(models)
    (run / "manifest.json").unlink()
    with pytest.raises(SystemExit, match="not a finished training run.*--out"):
        ship_model.ship(run, models)
    assert _tree(models) == before
    assert sorted(p.name for p in models.parent.iterdir()) == ["models", "run"]


def test_a_ship_stopped_part_way_leaves_the_folder_whole_and_says_which_model_it_holds(
        models_and_run, monkeypatch):
    models, run = models_and_run
    (run / "fer_cnn.keras").write_bytes(b"the run's model")
    before = _tree(models)

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ship_model, "update_card", interrupt)  # while staging
    with pytest.raises(SystemExit, match="interrupted; .*models is whole and holds its old model"):
        ship_model.ship(run, models)
    assert _tree(models) == before
    assert sorted(p.name for p in models.parent.iterdir()) == ["models", "run"]
    monkeypatch.undo()

    rmtree = shutil.rmtree

    def full_disk_once(path, *args, **kwargs):  # after both renames, removing the old folder
        monkeypatch.setattr(shutil, "rmtree", rmtree)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "rmtree", full_disk_once)
    with pytest.raises(SystemExit, match="No space left .* holds the run's model"):
        ship_model.ship(run, models)
    assert _tree(models)["fer_cnn.keras"] == b"the run's model"
    assert _tree(models)["previous/fer_cnn.keras"] == before["fer_cnn.keras"]
    assert sorted(p.name for p in models.parent.iterdir()) == ["models", "run"]

    def full_disk(path, *args, **kwargs):  # the old folder cannot be removed, not even after
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "rmtree", full_disk)
    with pytest.raises(SystemExit, match="No space left .*failed too.*run this command again"):
        ship_model.ship(run, models)  # the run's model again, over itself
    monkeypatch.undo()
    ship_model.finish_swap(models)  # the run the message asks for
    assert _tree(models)["fer_cnn.keras"] == _tree(models)["previous/fer_cnn.keras"] == \
        b"the run's model"
    assert sorted(p.name for p in models.parent.iterdir()) == ["models", "run"]


def test_a_swap_cut_short_is_finished_between_the_renames_and_dropped_before_them(tmp_path):
    models, staged, old = tmp_path / "models", tmp_path / "models.new", tmp_path / "models.old"
    for folder, text in ((old, "old"), (staged, "new")):
        folder.mkdir()
        (folder / "fer_cnn.keras").write_text(text)
    ship_model.finish_swap(models)  # cut between the two renames
    assert _tree(models) == {"fer_cnn.keras": b"new"} and not staged.exists() and not old.exists()
    staged.mkdir()  # cut while staging
    (staged / "README.md").write_text("partial")
    ship_model.finish_swap(models)
    assert _tree(models) == {"fer_cnn.keras": b"new"} and not staged.exists()


@pytest.mark.slow
def test_main_scores_both_models_and_ships_only_when_the_rule_holds(
        models_and_run, synthetic_csv, monkeypatch, capsys):
    models, run = models_and_run
    card = json.loads((run / "fer_cnn.card.json").read_text())
    card["data"]["sha256"] = hashlib.sha256(synthetic_csv.read_bytes()).hexdigest()
    (run / "fer_cnn.card.json").write_text(json.dumps(card))
    write_manifest(run, [*ship_model.EXPORTS, "log.csv"], "run-1", "training")
    argv = [str(run), "--data", str(synthetic_csv), "--models", str(models)]
    before = _tree(models)

    monkeypatch.setattr(framing, "GRID_GAP", -1.0)  # a grid mean 100 points over: never
    assert ship_model.main(argv) == 1
    out, err = capsys.readouterr()
    assert "single crop" in out and "shipped" in out and "run" in out
    assert "not shipped, nothing changed: its grid mean" in err
    assert _tree(models) == before

    monkeypatch.setattr(framing, "GRID_GAP", 1.0)  # the same model as the shipped: passes
    assert ship_model.main(argv) == 0
    out, _ = capsys.readouterr()
    assert "--record-framing" in out and "--detector reference" in out
    assert _tree(models)["previous/fer_cnn.keras"] == before["fer_cnn.keras"]

    other = models.parent / "another.csv"
    other.write_text(synthetic_csv.read_text() + "\n")
    with pytest.raises(SystemExit, match="not the file .* trained on"):
        ship_model.main([str(run), "--data", str(other), "--models", str(models)])
