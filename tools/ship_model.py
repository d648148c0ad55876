"""Replace the shipped model with a finished training run's, if it passes the ship rule.

    python tools/ship_model.py RUN --data data/fer2013.csv

The rule, on PublicTest's crops: the run's model is at least as accurate as the shipped one
on single crops, and the mean of its framing grid lies at most GRID_GAP under its own single
crop. A model that passes takes the place of models/fer_cnn.* with its exports, its log (to 4
significant digits; every stage, for a model trained on from another: `training_log`) and a
card naming previous/; the shipped model and its card move to models/previous/, replacing the
model kept there. Nothing changes when it fails.

models/ changes as one unit: a complete new folder is staged beside it and swapped in by two
renames; the next run finishes a swap that an interruption cut short.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pandas as pd

from fer_utils import framing
from fer_utils.artifacts import card_path, load_model, update_card
from fer_utils.atomic import write_json
from fer_utils.outputs import committed_set, sha256_file
from fer_utils.paths import MODELS_DIR
from fer_utils.sources import load_dataset
from fer_utils.training import training_log

EXPORTS = ("fer_cnn.keras", "fer_cnn.json", "fer_cnn.weights.h5", "fer_cnn.tflite",
           "fer_cnn.dr.tflite", "fer_cnn.card.json")
# The presets whose boxes choose each card's crop margins (`evaluate --record-framing`).
RECORD_DETECTORS = ("photo", "default", "haar", "reference")


def ship_verdict(grids: pd.DataFrame) -> list[str]:
    """Why the run's framing grid (column `run`) fails the rule against the shipped model's
    (column `shipped`); an empty list when it passes."""
    single, floor = grids.at["single crop", "run"], grids.at["single crop", "shipped"]
    gap = grids.at["grid mean - single crop", "run"]
    reasons = []
    if single < floor:
        reasons.append(f"its single crop, {single:.2%}, is under the shipped model's {floor:.2%}")
    if not framing.keeps_framing(gap):
        reasons.append(f"its grid mean lies {-gap:.2%} under its single crop, more than "
                       f"{framing.GRID_GAP:.1%}")
    return reasons


def run_exports(run: Path) -> dict[str, Path]:
    """Where the exported model files and the log of a finished training run are."""
    found = committed_set(run)
    if found is None or found[0].get("kind") != "training" or not set(EXPORTS) <= set(found[1]):
        raise SystemExit(f"{run}: not a finished training run (its manifest lists no exported "
                         f"model); finish it first: `fer-kit train ... --out {run}` with the "
                         "arguments that started it resumes it")
    return found[1]


def _swap_paths(models: Path) -> tuple[Path, Path]:
    return models.with_name(models.name + ".new"), models.with_name(models.name + ".old")


def finish_swap(models: Path) -> None:
    """Complete a swap of `models` that an interruption cut short, or drop its staging."""
    staged, old = _swap_paths(models)
    if staged.exists():
        if models.exists():  # interrupted before the first rename: the staging may be partial
            shutil.rmtree(staged)
        else:  # between the renames: the staging was complete
            staged.rename(models)
    if old.exists():
        shutil.rmtree(old)


def ship(run: Path, models: Path = MODELS_DIR) -> None:
    """Move the shipped model and its card to previous/, and put the run's exports, log and
    card (naming previous/) in their place; stopped part-way, leave `models` whole and say
    which model it holds."""
    finish_swap(models)
    files = run_exports(run)
    log = training_log(files["fer_cnn.keras"])
    try:
        _swap_in(files, log, models)
    except (KeyboardInterrupt, OSError) as error:
        stop = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        try:
            finish_swap(models)
        except OSError as cleanup:
            raise SystemExit(f"{stop}; finishing the swap failed too ({cleanup}): run this "
                             f"command again to finish it before using {models}") from None
        holds = ("the run's model" if sha256_file(models / "fer_cnn.keras") ==
                 sha256_file(files["fer_cnn.keras"]) else "its old model")
        raise SystemExit(f"{stop}; {models} is whole and holds {holds}") from None


def _swap_in(files: dict[str, Path], log: pd.DataFrame, models: Path) -> None:
    staged, old = _swap_paths(models)
    shutil.copytree(models, staged, ignore=shutil.ignore_patterns("previous", "fer_cnn.*"))
    (staged / "previous").mkdir()
    shutil.copy2(models / "fer_cnn.keras", staged / "previous" / "fer_cnn.keras")
    card = json.loads(card_path(models / "fer_cnn.keras").read_text())
    card.pop("previous_model", None)
    write_json(staged / "previous" / "fer_cnn.card.json",
               {**card, "files": {"keras": "fer_cnn.keras"}})
    for name in EXPORTS:
        shutil.copy2(files[name], staged / name)
    update_card(staged / "fer_cnn.card.json", {"previous_model": "previous/fer_cnn.keras"})
    log.to_csv(staged / "fer_cnn.log.csv", index=False, float_format="%.4g")
    models.rename(old)
    staged.rename(models)
    shutil.rmtree(old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a finished training run folder")
    parser.add_argument("--data", required=True, help="the FER-2013 CSV the run trained on")
    parser.add_argument("--models", type=Path, default=MODELS_DIR, help="the models folder")
    args = parser.parse_args(argv)
    finish_swap(args.models)
    files = run_exports(args.run)
    training_log(files["fer_cnn.keras"])  # a stage's missing log stops it before the grids
    dataset = load_dataset(args.data)
    if dataset.checksum != json.loads(files["fer_cnn.card.json"].read_text())["data"]["sha256"]:
        raise SystemExit(f"{args.data}: not the file {args.run} trained on (its SHA-256 differs "
                         "from the one in the run's card); pass that file")
    test = dataset.split("PublicTest")
    grids = pd.concat({name: framing.framing_grid(load_model(path), test.images, test.labels,
                                                  progress=f"framing grid, {name} model")
                       ["accuracy"]
                       for name, path in (("shipped", args.models / "fer_cnn.keras"),
                                          ("run", files["fer_cnn.keras"]))}, axis=1)
    print(f"PublicTest accuracy by framing ({len(test):,} faces), %:")
    print(grids.mul(100).round(2).to_string())
    reasons = ship_verdict(grids)
    if reasons:
        print(f"not shipped, nothing changed: {'; '.join(reasons)}", file=sys.stderr)
        return 1
    ship(args.run, args.models)
    models = [os.path.relpath(args.models / name)
              for name in ("fer_cnn.keras", "previous/fer_cnn.keras")]
    record = ["fer-kit", "evaluate", "--in-frame", "--record-framing", "--data", args.data,
              "--split", "PublicTest", "--model", models[0], "--model", models[1],
              *(flag for d in RECORD_DETECTORS for flag in ("--detector", d)),
              "--out", "runs/in-frame"]
    print(f"shipped {files['fer_cnn.keras']} as {models[0]}; the model it replaced is "
          f"{models[1]}. Next, choose both cards' crop margins:\n{shlex.join(record)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted before shipping; nothing changed")
    except (OSError, ValueError) as error:
        sys.exit(f"{error} (nothing changed)")
