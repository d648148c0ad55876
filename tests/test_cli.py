"""The fer-kit commands that the other tests do not reach."""

import argparse
import inspect
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pandas as pd

from fer_utils.cli import main, parser
from fer_utils.faces import faces_in_photo
from fer_utils.images import read_image


def test_data_synth_and_audit(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    assert main(["data", "synth", "--out", str(csv), "--train", "30", "--val", "7",
                 "--test", "7"]) == 0
    usage = pd.read_csv(csv)["Usage"].value_counts().to_dict()
    assert usage == {"Training": 30, "PublicTest": 7, "PrivateTest": 7}
    assert main(["data", "audit", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "twin_in" in out


def test_predict_prints_one_json_line_per_face(samples, untrained, tmp_path, capsys):
    model = tmp_path / "m.keras"
    untrained.model.save(model)
    assert main(["predict", "--model", str(model), str(samples["single_face.jpg"]),
                 str(samples["Image_with_alpha.png"])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first, *others = lines
    assert first["file"].endswith("single_face.jpg") and len(first["box"]) == 4
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-3
    assert first["label"] in first["probabilities"]
    # One line per face: the photo of one face gives one, the other photo one per face found.
    assert all(line["file"].endswith("Image_with_alpha.png") for line in others)
    boxes, _, _ = faces_in_photo(read_image(str(samples["Image_with_alpha.png"])), untrained)
    assert len(others) == max(1, len(boxes)) and ("faces" in others[0]) == (len(boxes) == 0)


def test_train_s_augmentation_and_selection_flags_reach_the_recipe(tmp_path, monkeypatch,
                                                                   capsys):
    from fer_utils import sources, training

    configs = []

    def record(dataset, out, config, verbose):
        configs.append(config)
        state = {"best_val_accuracy": 0.5, "best_epoch": 1, "epoch": 1, "train_seconds": 60,
                 "history": [{"val_accuracy": 0.5, "val_framed_accuracy": 0.45}]}
        return SimpleNamespace(state=state, out=out)

    monkeypatch.setattr(sources, "load_dataset", lambda *args, **kwargs: SimpleNamespace(
        describe=lambda: "faces"))
    monkeypatch.setattr(training, "train", record)
    assert main(["train", "--profile", "robust", "--zoom", "0.25", "--rotation", "15",
                 "--crop-pad", "6", "--select", "framed", "--out", str(tmp_path / "run")]) == 0
    [config] = configs
    assert (config.augmentation.zoom, config.augmentation.rotation_deg) == (0.25, 15)
    assert config.augmentation.crop_pad == 6 and config.epochs == training.PROFILES["robust"].epochs
    assert config.select == "framed"
    assert ("epoch 1 of 1, best by the mean of PublicTest accuracy on its crops and on a framed "
            "copy: PublicTest accuracy 0.5000, framed copy 0.4500") in capsys.readouterr().out


def test_an_unknown_model_format_is_refused(samples, tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    assert main(["predict", "--model", str(model), str(samples["single_face.jpg"])]) == 2
    assert "unknown model format" in capsys.readouterr().err


def test_an_unreadable_image_gets_its_own_line_and_the_others_go_on(samples, untrained,
                                                                     tmp_path, capsys):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"nope")
    model = tmp_path / "m.keras"
    untrained.model.save(model)
    assert main(["predict", "--model", str(model), str(junk),
                 str(samples["single_face.jpg"])]) == 2
    captured = capsys.readouterr()
    broken, face = (json.loads(line) for line in captured.out.splitlines())
    assert broken["file"] == str(junk) and "junk.jpg" in broken["error"]
    assert face["file"].endswith("single_face.jpg") and "probabilities" in face
    assert "1 of 2 images could not be read" in captured.err


def test_predict_with_a_prior_correction_divides_out_the_cards_prior(samples, capsys):
    import numpy as np

    from fer_utils.artifacts import load_model
    from fer_utils.model import correct_for_prior
    from fer_utils.paths import SHIPPED_MODEL

    face = str(samples["15-f13-anc-ph.jpg"])  # an uncertain face: sad 0.51, fear 0.28
    probs = {}
    for tau in ("0", "1"):
        assert main(["predict", face, "--prior-correction", tau]) == 0
        line = json.loads(capsys.readouterr().out.splitlines()[0])
        probs[tau] = np.array(list(line["probabilities"].values()))
    prior = load_model(SHIPPED_MODEL).prior
    np.testing.assert_allclose(probs["1"], correct_for_prior(probs["0"][None], prior, 1)[0],
                               atol=2e-3)
    assert np.abs(probs["1"] - probs["0"]).max() > 0.01  # more than the printed rounding


def _subcommands(p=None, path=()) -> dict:
    """Every (sub)command's parser by its words: {("data", "synth"): parser, ...}."""
    found = {path: p or parser()}
    for action in found[path]._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= _subcommands(child, (*path, name))
    return found


def test_every_commands_help_starts_without_tensorflow():
    commands = [list(words) for words in _subcommands()]
    code = ("import json, sys; from fer_utils.cli import main\n"
            f"for words in {commands!r}:\n"
            "    try:\n        main([*words, '--help'])\n    except SystemExit:\n        pass\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'cv2', 'pandas'))))")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    assert "usage: fer-kit data synth" in shown and "usage: fer-kit predict" in shown
    assert json.loads(shown.splitlines()[-1]) == []


def _library_defaults() -> dict:
    """The library's value for every CLI option that has a default, by (command, option)."""
    from fer_utils import corpus, evaluation, faces, leakage, paths, synth, video
    from fer_utils.tracking import Smoothing
    from fer_utils.training import TrainConfig

    def parameter(function, name):
        return inspect.signature(function).parameters[name].default

    smoothing = {"smoothing": Smoothing.method, "alpha": Smoothing.alpha,
                 "window": Smoothing.window, "detector": parameter(video.analyze, "detector")}
    return {
        ("train", "profile"): TrainConfig.profile,
        ("data", "synth", "train"): synth.SPLIT_SIZES["Training"],
        ("data", "synth", "val"): synth.SPLIT_SIZES["PublicTest"],
        ("data", "synth", "test"): synth.SPLIT_SIZES["PrivateTest"],
        ("data", "synth", "seed"): parameter(synth.write_synthetic_csv, "seed"),
        ("evaluate", "split"): parameter(evaluation.evaluate, "split"),
        ("leakage", "images"): parameter(leakage.leakage_lesson, "images"),
        ("leakage", "epochs"): parameter(leakage.leakage_lesson, "epochs"),
        ("analyze", "workers"): parameter(corpus.analyze_many, "workers"),
        **{("analyze", k): v for k, v in smoothing.items()},
        **{("live", k): v for k, v in smoothing.items()},
        ("predict", "detector"): parameter(faces.faces_in_photo, "detector"),
        ("report", "out"): paths.REPORTS_DIR,
        ("bench", "out"): paths.BENCH_DIR,
    }


# Defaults that only the command line has: how it prints, which device it opens.
CLI_ONLY = {("train", "verbose"), ("data", "audit", "show"), ("live", "source")}


def test_every_default_of_the_cli_is_the_librarys_and_its_help_shows_it():
    library = _library_defaults()
    seen = set()
    for words, p in _subcommands().items():
        for action in p._actions:
            value = action.default
            if value is None or value is False or value == [] or value is argparse.SUPPRESS:
                continue
            key = (*words, action.dest)
            seen.add(key)
            if key not in CLI_ONLY:
                assert key in library, f"{key} has a default the test does not know: {value!r}"
                assert value == library[key], key
                assert f"(default: {value})" in " ".join(p.format_help().split()), key
    assert seen == set(library) | CLI_ONLY


def test_the_model_options_leave_unset_values_to_the_library():
    from fer_utils.cli import _model_spec
    from fer_utils.loading import ModelSpec
    from fer_utils.paths import SHIPPED_MODEL
    from fer_utils.pipeline import Preprocessing

    spec = _model_spec(parser().parse_args(["predict", "x.jpg"]))
    assert spec == ModelSpec(str(SHIPPED_MODEL.resolve()))
    spec = _model_spec(parser().parse_args(["predict", "x.jpg", "--input-size", "64"]))
    assert spec.preprocessing == Preprocessing(input_size=64)
    assert spec.prior_correction == ModelSpec.prior_correction


def test_a_successful_command_prints_only_its_own_output(samples):
    # oneDNN on, as it is by default on recent Intel CPUs: its start-up lines are the ones
    # that TF_CPP_MIN_LOG_LEVEL does not silence.
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run([sys.executable, "-m", "fer_utils.cli", "predict",
                           str(samples["single_face.jpg"])], capture_output=True, text=True,
                          env=env, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["file"].endswith("single_face.jpg")


def test_choices_are_the_librarys_constants():
    from fer_utils import bench, evaluation, faces, pipeline, tracking, training

    actions = {a.dest: a for sub in parser()._subparsers._group_actions
               for p in sub.choices.values() for a in p._actions}
    assert list(actions["profile"].choices) == list(training.PROFILES)
    assert list(actions["balance"].choices) == list(training.BALANCING)
    assert list(actions["optimizer"].choices) == list(training.OPTIMIZERS)
    assert list(actions["scale"].choices) == list(pipeline.SCALES)
    assert list(actions["detector"].choices) == list(faces.PRESETS)
    assert list(actions["smoothing"].choices) == list(tracking.SMOOTHING_METHODS)
    assert list(actions["tta"].choices) == list(evaluation.TTA_MODES)
    assert list(actions["only"].choices) == list(bench.SECTIONS)
    assert "full" in actions["profile"].choices and "bogus" not in actions["profile"].choices


def test_every_option_of_analyze_and_live_says_what_it_does():
    commands = parser()._subparsers._group_actions[0].choices
    for name in ("analyze", "live"):
        silent = [a.option_strings or a.dest for a in commands[name]._actions if not a.help]
        assert silent == [], f"{name}: options without help text: {silent}"
    assert "corpus.csv" in commands["analyze"]._option_string_actions["--out"].help
