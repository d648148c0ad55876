"""The fer-kit commands that the other tests do not reach."""

import json
import os
import subprocess
import sys

from fer_utils.cli import main, parser


def test_data_synth_and_audit(tmp_path, capsys):
    csv = tmp_path / "s.csv"
    assert main(["data", "synth", "--out", str(csv), "--train", "30", "--val", "7",
                 "--test", "7"]) == 0
    assert main(["data", "audit", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "twin_in" in out


def test_predict_prints_one_json_line_per_face(samples, untrained, tmp_path, capsys):
    model = tmp_path / "m.keras"
    untrained.model.save(model)
    assert main(["predict", "--model", str(model), str(samples["single_face.jpg"]),
                 str(samples["Image_with_alpha.png"])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    first = lines[0]
    assert first["file"].endswith("single_face.jpg") and len(first["box"]) == 4
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-3
    assert first["label"] in first["probabilities"]
    assert lines[-1]["file"].endswith("Image_with_alpha.png")


def test_unreadable_image_and_unknown_model(tmp_path, capsys):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"nope")
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    assert main(["predict", "--model", str(model), str(junk)]) == 2
    assert "unknown model format" in capsys.readouterr().err


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


def test_help_starts_without_tensorflow():
    code = ("import sys; from fer_utils.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    assert shown.strip().endswith("False")


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
