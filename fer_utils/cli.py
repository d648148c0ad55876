"""`fer-kit`: everything the notebooks do, on files, from a shell."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .atomic import explain_os_error, write_text
from .defaults import choices, default
from .options import WORKER_MEMORY_GB, argument_type
from .paths import BENCH_DIR, REPORTS_DIR, ROOT, SHIPPED_MODEL

__all__ = ["PARTIAL", "choice_of", "PER_MODEL", "IN_FRAME", "COMMANDS", "KEPT", "Interrupted",
           "parser", "main"]

# Exit codes: 0 done, 1 a bug (traceback logged) or a notebook that failed under `report`
# (its error on stderr), 2 an error in the input or options,
# PARTIAL outputs written that miss part of the input (a broken video, a failed talk),
# 128 + the signal (130 Ctrl-C, 143 SIGTERM) interrupted, every output as it was or whole.
PARTIAL = 3


def choice_of(module: str, constant: str, help: str) -> dict:
    """add_argument keywords for one of a library constant's names, listed in the help."""
    return {"choices": choices(module, constant), "metavar": constant.removesuffix("S"),
            "help": f"{help}: %(choices)s"}


class _HelpFormatter(argparse.HelpFormatter):
    """Help that ends an option's text with its default, when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        unset = action.default is None or action.default is False or action.default == [] \
            or action.default is argparse.SUPPRESS
        if unset or "%(default)" in (action.help or ""):
            return action.help
        return f"{action.help or ''} (default: %(default)s)".lstrip()


class _Parser(argparse.ArgumentParser):
    """An argument parser (and subcommand parsers) whose help shows the defaults and that
    refuses an option on one line, saying where the usage is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_HelpFormatter, **kwargs)

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def _train(args: argparse.Namespace) -> int:
    if args.cpu_devices:
        from .training import split_cpu

        split_cpu(args.cpu_devices)
    from .sources import load_dataset
    from .training import SELECTION, profile, train

    config = profile(args.profile, augment=not args.no_augment, erase=args.erase,
                     crop_pad=args.crop_pad, zoom=args.zoom, rotation_deg=args.rotation,
                     epochs=args.epochs, batch_size=args.batch_size,
                     learning_rate=args.lr, balance=args.balance,
                     label_smoothing=args.label_smoothing, seed=args.seed,
                     optimizer=args.optimizer, momentum=args.momentum,
                     weight_decay=args.weight_decay,
                     early_dropout_epochs=args.early_dropout_epochs,
                     ema_momentum=args.ema_momentum, select=args.select,
                     init_model=args.init and str(Path(args.init).resolve()))
    dataset = load_dataset(args.data, skip_bad_rows=args.skip_bad_rows)
    print(dataset.describe())
    result = train(dataset, args.out, config, verbose=args.verbose)
    state = result.state
    framed = state["history"][state["best_epoch"] - 1].get("val_framed_accuracy")
    print(f"epoch {state['best_epoch']} of {state['epoch']}, best by {SELECTION[config.select]}: "
          f"PublicTest accuracy {state['best_val_accuracy']:.4f}"
          + (f", framed copy {framed:.4f}" if framed is not None else "")
          + f"; {state['train_seconds'] / 60:.1f} min; model and card in {result.out}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (resumes a run left in --out)")
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: lookup, else synthetic)")
    p.add_argument("--profile", default=default("training", "TrainConfig.profile"),
                   **choice_of("training", "PROFILES", "training recipe"))
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, model)")
    p.add_argument("--epochs", type=argument_type("epochs"))
    p.add_argument("--batch-size", type=argument_type("batch_size"))
    p.add_argument("--lr", type=argument_type("learning_rate"), help="peak learning rate")
    p.add_argument("--balance", **choice_of("training", "BALANCING", "class balancing"))
    p.add_argument("--label-smoothing", type=argument_type("label_smoothing"))
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--erase", type=argument_type("erase"), help="random-erasing probability")
    p.add_argument("--crop-pad", type=argument_type("crop_pad"),
                   help="pad-and-crop augmentation: reflect-pad N pixels, crop at random")
    p.add_argument("--zoom", type=argument_type("zoom"),
                   help="scale jitter: zoom each face by a random factor in [1 - Z, 1 + Z]")
    p.add_argument("--rotation", type=argument_type("rotation_deg"),
                   help="turn each face by a random angle of up to this many degrees")
    p.add_argument("--optimizer",
                   **choice_of("training", "OPTIMIZERS", "optimizer (sgd: Nesterov momentum)"))
    p.add_argument("--momentum", type=argument_type("momentum"), help="SGD momentum")
    p.add_argument("--weight-decay", type=argument_type("weight_decay"),
                   help="decoupled weight decay (BatchNorm gamma/beta and biases exempt)")
    p.add_argument("--early-dropout-epochs", type=argument_type("early_dropout_epochs"),
                   help="conv blocks' dropout only for the first N epochs (0: always)")
    p.add_argument("--ema-momentum", type=argument_type("ema_momentum"),
                   help="validate, keep as best checkpoint and export an exponential moving "
                   "average of the weights with this momentum, e.g. 0.999 (0: off)")
    p.add_argument("--select", **choice_of(
        "training", "SELECTION", "what picks the best epoch: PublicTest accuracy on its crops, "
        "or its mean with the accuracy on a framed copy (for faces a detector crops)"))
    p.add_argument("--init", help="start from this trained model's weights (fine-tuning; "
                   "the finetune profile needs it)")
    p.add_argument("--seed", type=int)
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--cpu-devices", type=argument_type("cpu_devices"),
                   help="split the CPU into N logical devices (MirroredStrategy; default: "
                   "one device)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                   help="0 silent, 1 progress bar, 2 one line per epoch and the export logs")
    p.set_defaults(handler=_train)


def _data(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        from .synth import write_synthetic_csv

        path = write_synthetic_csv(args.out, args.train, args.val, args.test, args.seed)
        print(f"wrote {args.train + args.val + args.test:,} synthetic faces to {path}")
    elif args.data_command == "audit":
        from .audit import duplicate_audit, duplicate_groups
        from .sources import load_dataset

        dataset = load_dataset(args.file, skip_bad_rows=args.skip_bad_rows)
        print(dataset.describe())
        print(duplicate_audit(dataset).to_string(index=False))
        groups = duplicate_groups(dataset)
        print(f"\n{len(groups)} groups of identical images, "
              f"{int(groups['labels_disagree'].sum())} with disagreeing labels; first ones:")
        print(groups.head(args.show).to_string(index=False))
    else:
        from .samples import fetch_samples

        for name, path in fetch_samples().items():
            print(f"{name:28s} {path}")
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make synthetic data, audit a dataset, fetch sample media")
    data = p.add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write synthetic faces as a FER-2013 CSV")
    synth.add_argument("--out", type=Path, required=True)
    sizes = default("synth", "SPLIT_SIZES")
    synth.add_argument("--train", type=argument_type("n_train"), default=sizes["Training"],
                       help="Training faces")
    synth.add_argument("--val", type=argument_type("n_val"), default=sizes["PublicTest"],
                       help="PublicTest faces")
    synth.add_argument("--test", type=argument_type("n_test"), default=sizes["PrivateTest"],
                       help="PrivateTest faces")
    synth.add_argument("--seed", type=int, default=default("synth", "write_synthetic_csv.seed"),
                       help="random seed of the drawing")
    audit = data.add_parser("audit", help="duplicate images within and across splits")
    audit.add_argument("file", help="FER-2013 CSV or image folder")
    audit.add_argument("--show", type=int, default=10, help="duplicate groups to list")
    audit.add_argument("--skip-bad-rows", action="store_true")
    data.add_parser("samples", help="fetch the sample videos and photos into data/samples")
    p.set_defaults(handler=_data)


def _model_spec(args: argparse.Namespace):
    from .loading import ModelSpec
    from .pipeline import Preprocessing

    given = {name: getattr(args, name, None) for name in ("input_size", "scale")}
    given = {name: value for name, value in given.items() if value is not None}
    weights = getattr(args, "weights", None)
    prior_correction = getattr(args, "prior_correction", None)
    # Absolute paths: the spec keys the model cache and travels to Dask workers.
    return ModelSpec(str(Path(args.model or SHIPPED_MODEL).resolve()),
                     weights and str(Path(weights).resolve()),
                     Preprocessing(**given) if given else None,
                     ModelSpec.prior_correction if prior_correction is None else prior_correction)


def _classifier(args: argparse.Namespace):
    from .loading import cached_classifier

    return cached_classifier(_model_spec(args))


PER_MODEL = ("weights", "scale", "input_size", "prior_correction")


def _classifiers(args: argparse.Namespace) -> dict:
    """One classifier per --model, named by its file; each other model option is given once
    for all models or once per --model, in the same order."""
    models = args.model or [None]
    values = {}
    for option in PER_MODEL:
        given = getattr(args, option) or [None]
        if len(given) not in (1, len(models)):
            raise ValueError(f"--{option.replace('_', '-')} is given {len(given)} times for "
                             f"{len(models)} models: give it once for all of them or once "
                             "per --model, in the same order")
        values[option] = given * len(models) if len(given) == 1 else given
    classifiers = {}
    for i, model in enumerate(models):
        one = argparse.Namespace(model=model, **{k: v[i] for k, v in values.items()})
        name = (model or str(SHIPPED_MODEL.relative_to(ROOT))) + (
            f" (prior correction {one.prior_correction})" if one.prior_correction else "")
        if name in classifiers:
            raise ValueError(f"--model {name} is given twice; give each model once")
        classifiers[name] = _classifier(one)
    return classifiers


def _model_options(p: argparse.ArgumentParser, several: bool = False) -> None:
    each = {"action": "append"} if several else {}
    p.add_argument("--model", **each, help="model file (.keras, .h5, or .json with --weights); "
                   f"default: the shipped {SHIPPED_MODEL.relative_to(ROOT)}"
                   + ("; repeat it to compare models on the same faces" if several else ""))
    p.add_argument("--weights", **each, help="weights for a .json architecture")
    stated = "default: the model card's, else"
    p.add_argument("--scale", **each, **choice_of(
        "pipeline", "SCALES", "pixel scaling the model expects (unit: /255, symmetric: [-1, 1]; "
        f"{stated} {default('pipeline', 'Preprocessing.scale')})"))
    p.add_argument("--input-size", **each, type=argument_type("input_size"),
                   help=f"the model's square input size ({stated} "
                   f"{default('pipeline', 'Preprocessing.input_size')})")
    p.add_argument("--prior-correction", **each, type=argument_type("prior_correction"),
                   metavar="TAU",
                   help="divide out the Training class prior (from the model card) to the "
                   "power TAU: 0 off, 1 full logit adjustment, more rare-class labels (default: "
                   f"{default('loading', 'ModelSpec.prior_correction'):g})")


def _video_options(p: argparse.ArgumentParser) -> None:
    _model_options(p)
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fps", type=argument_type("fps"), help="analysed frames per second")
    rate.add_argument("--every", type=argument_type("every"), help="analyse every Nth frame")
    p.add_argument("--detector", default=default("video", "analyze.detector"),
                   **choice_of("faces", "PRESETS", "face detector preset"))
    p.add_argument("--smoothing", default=default("tracking", "Smoothing.method"),
                   **choice_of("tracking", "SMOOTHING_METHODS", "smoothing along each track"))
    p.add_argument("--alpha", type=argument_type("alpha"),
                   default=default("tracking", "Smoothing.alpha"),
                   help="ema weight of the newest frame")
    p.add_argument("--window", type=argument_type("window"),
                   default=default("tracking", "Smoothing.window"),
                   help="frames in the moving window")
    p.add_argument("--max-seconds", type=argument_type("max_seconds"),
                   help="stop after this much video")


def _analysis_options(args: argparse.Namespace) -> dict:
    from .tracking import Smoothing

    return {"fps": args.fps, "every": args.every, "detector": args.detector,
            "max_seconds": args.max_seconds,
            "smoothing": Smoothing(args.smoothing, args.alpha, args.window)}


def _analysis(args: argparse.Namespace, source, display: bool) -> int:
    import json

    from .speaker import answer
    from .video import analyze

    result = analyze(source, _classifier(args), args.out, display=display,
                     **_analysis_options(args))
    summary = result.summary
    print(json.dumps({k: summary[k] for k in ("video", "frames_analysed", "face_share",
                                              "partial", "error")}))
    for name, path in result.files.items():
        print(f"{name:12s} {path}")
    faces = len(summary["faces"])
    print(f"answer: {faces} face{'s' * (faces != 1)}; {answer(summary)}")
    return PARTIAL if summary["partial"] else 0


def _batch(args: argparse.Namespace) -> int:
    from .corpus import analyze_many
    from .speaker import ranking_answer

    table = analyze_many(args.videos, args.out, workers=args.workers, scheduler=args.scheduler,
                         model=_model_spec(args), **_analysis_options(args))
    print(table[["folder", "status", "duration_s", "face_seconds", "positive_share",
                 "negative_share", "dominant", "caveats", "error"]].to_string(index=False))
    print(f"corpus.csv   {args.out / 'corpus.csv'}")
    print(f"answer: {ranking_answer(table)}")
    return PARTIAL if table["status"].isin(["partial", "failed"]).any() else 0


def _analyze(args: argparse.Namespace) -> int:
    import glob

    from .samples import DEFAULT_CLIP, sample_path

    many = len(args.videos) > 1 or args.workers > 1 or args.scheduler or any(
        Path(v).is_dir() or glob.has_magic(v) for v in args.videos)
    if many:
        return _batch(args)
    return _analysis(args, args.videos[0] if args.videos else sample_path(DEFAULT_CLIP), False)


def _live(args: argparse.Namespace) -> int:
    return _analysis(args, args.source, not args.no_display)


def _predict(args: argparse.Namespace) -> int:
    import json

    from .faces import faces_in_photo
    from .images import read_image, to_gray
    from .labels import EMOTIONS

    classifier = _classifier(args)
    failed = 0
    for image_path in args.images:
        try:
            image = read_image(image_path)
            to_gray(image)  # refuses arrays that are not images
        except (ValueError, OSError) as e:  # one bad image does not stop the others
            print(json.dumps({"file": image_path, "error": str(e)}))
            failed += 1
            continue
        boxes, _, probs = faces_in_photo(image, classifier, args.detector)
        if not len(boxes):
            print(json.dumps({"file": image_path, "faces": 0}))
        for box, p in zip(boxes, probs, strict=True):
            print(json.dumps({"file": image_path, "box": [int(v) for v in box],
                              "probabilities": {e: round(float(v), 4)
                                                for e, v in zip(EMOTIONS, p, strict=True)},
                              "label": EMOTIONS[int(p.argmax())]}))
    if failed:
        print(f"fer-kit predict: {failed} of {len(args.images)} images could not be read; "
              "see the lines with an 'error' field.", file=sys.stderr)
    return 2 if failed else 0


def _add_video(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="emotion timeline of a video, or of many: CSV, JSON, "
                       "MP4, PNG, and corpus.csv")
    p.add_argument("videos", nargs="*", help="video files, folders or globs (default: the "
                   "sample clip); several, a folder or a glob: one folder each under --out")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder (frames.csv, timeline.csv, summary.json, annotated.mp4, "
                   "timeline.png); for several videos, one folder each under it and corpus.csv")
    p.add_argument("--workers", type=argument_type("workers"),
                   default=default("corpus", "analyze_many.workers"),
                   help="videos analysed at once on a local Dask cluster (1: in this process; "
                   f"at most one per core and per {WORKER_MEMORY_GB:g} GB of memory)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://HOST:8786)")
    _video_options(p)
    p.set_defaults(handler=_analyze)
    p = sub.add_parser("live", help="annotated webcam (or file) frames in a window")
    p.add_argument("--source", default="0", help="camera index or video file")
    p.add_argument("--no-display", action="store_true", help="run headless, write outputs")
    p.add_argument("--out", type=Path, help="also write the outputs here")
    _video_options(p)
    p.set_defaults(handler=_live)
    p = sub.add_parser("predict", help="one JSON line per face found in each image (a line "
                       "with an 'error' field for an image that cannot be read)")
    p.add_argument("images", nargs="+")
    p.add_argument("--detector", default=default("faces", "PHOTO_PRESET"),
                   **choice_of("faces", "PRESETS", "face detector preset"))
    _model_options(p)
    p.set_defaults(handler=_predict)


# options that go with --in-frame
IN_FRAME = ("detector", "per_class", "margin", "seed", "record_framing")


def _in_frame(args: argparse.Namespace) -> int:
    import shlex

    from .artifacts import card_path
    from .framing import (
        DETECTORS,
        best_margins,
        in_frame_benchmark,
        record_framing,
        require_publictest,
    )
    from .sources import load_dataset

    if args.record_framing:
        require_publictest(args.split)  # before any work
    classifiers = _classifiers(args)
    dataset = load_dataset(args.data, skip_bad_rows=args.skip_bad_rows)
    print(dataset.describe())
    given = {k: getattr(args, k) for k in ("per_class", "margin", "seed")
             if getattr(args, k) is not None}
    result = in_frame_benchmark(classifiers, dataset, args.split,
                                tuple(args.detector or DETECTORS),
                                tta=(args.tta,) if args.tta else (), out=args.out,
                                progress=True, **given)
    print(result.summary().to_string(index=False))
    if result.settings["fer_path"] != "run":
        print(f"fer's own path: not run ({result.settings['fer_path']})")
    print("\nBest crop margin on the faces found:")
    print(best_margins(result.margins).round(4).to_string(index=False))
    print("\nFraming grid (accuracy on the split's crops):")
    print(result.grid_table().round(4).to_string())
    print(f"in_frame.csv, margins.csv, grid.csv and in_frame.json in {args.out}")
    if args.record_framing:
        command = "fer-kit " + shlex.join(args.argv)
        for model, name in zip(args.model or [str(SHIPPED_MODEL)], classifiers, strict=True):
            crops = record_framing(model, result, name, command)
            print(f"crop recorded in {card_path(model)}: " + ", ".join(
                f"{kind} margin {crop['margin']:g}" for kind, crop in crops.items()))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from .evaluation import HEADLINE, compare_models, evaluate
    from .sources import load_dataset

    if args.in_frame:
        return _in_frame(args)
    stray = [f"--{k.replace('_', '-')}" for k in IN_FRAME if getattr(args, k) not in (None, False)]
    if stray:
        raise ValueError(f"{', '.join(stray)}: only with --in-frame; add --in-frame or leave "
                         "the option out")
    classifiers = _classifiers(args)
    dataset = load_dataset(args.data, skip_bad_rows=args.skip_bad_rows)
    print(dataset.describe())
    if len(classifiers) > 1:
        comparison = compare_models(classifiers, dataset, args.split, tta=args.tta,
                                    out=args.out)
        print(comparison.models.to_string())
        print(comparison.pairs.round(4).to_string(index=False))
        print(f"models.csv, pairs.csv and comparison.json in {args.out}")
        return 0
    [classifier] = classifiers.values()
    result = evaluate(classifier, dataset, args.split, args.out, tta=args.tta)
    metrics = result.metrics
    print(json.dumps({k: metrics[k] for k in ("split", "n", *HEADLINE, "ci95")}))
    if args.tta:
        print(json.dumps({"tta": metrics["tta"]["mode"], "accuracy": metrics["tta"]["accuracy"]}))
    print(f"metrics, confusion tables and figures in {args.out}")
    return 0


def _leakage(args: argparse.Namespace) -> int:
    from .leakage import leakage_lesson
    from .sources import load_dataset

    dataset = load_dataset(args.data)
    print(dataset.describe())
    lesson = leakage_lesson(dataset, args.out, images=args.images, epochs=args.epochs)
    print(lesson.table().to_string())
    print("\nRun folders: " + ", ".join(f"{name} {path}" for name, path in lesson.runs.items()))
    print("\nDuplicates in the dataset's own splits:")
    print(lesson.official_duplicates.to_string(index=False))
    return 0


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics, confusion, calibration and mistakes on a split; "
                       "with several --model, paired comparisons")
    _model_options(p, several=True)
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: lookup, else synthetic)")
    p.add_argument("--split", default=default("evaluation", "evaluate.split"),
                   help="Training, PublicTest or PrivateTest (or train, val, test)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tta", **choice_of("evaluation", "TTA_MODES", "also report TTA figures"))
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--in-frame", action="store_true",
                   help="the faces-in-frames benchmark instead: a class-balanced subset of the "
                   "split placed in frames, then detection, crop and classification per model "
                   "and detector, the crop-margin curve, the framing grid, and fer's own path "
                   "when fer is installed: in_frame.csv, margins.csv, grid.csv, in_frame.json")
    p.add_argument("--detector", action="append", **choice_of(
        "faces", "PRESETS", "with --in-frame, repeatable: detector preset (default: each of "
        "fer_utils.framing.DETECTORS)"))
    p.add_argument("--per-class", type=argument_type("per_class"),
                   help="with --in-frame: faces per class (default: fer_utils.framing.PER_CLASS)")
    p.add_argument("--margin", type=argument_type("margin"),
                   help="with --in-frame: crop margin of the table, a share of the box's side "
                   "on each side (default: each model's own, from its card, for each detector)")
    p.add_argument("--seed", type=int, help="with --in-frame: seed of the faces drawn "
                   "(default: that of fer_utils.framing.in_frame_benchmark)")
    p.add_argument("--record-framing", action="store_true", help="with --in-frame on "
                   "PublicTest: write into each model's card the crop margin its curves choose "
                   "per detector kind (fer_utils.framing.FRAMING_RULE), which predict, analyze "
                   "and live then use")
    p.set_defaults(handler=_evaluate)
    p = sub.add_parser("leakage", help="the seed's leaky protocol against the honest one")
    p.add_argument("--data")
    p.add_argument("--images", type=argument_type("images"),
                   default=default("leakage", "leakage_lesson.images"),
                   help="rows sampled for the lesson")
    p.add_argument("--epochs", type=argument_type("epochs"),
                   default=default("leakage", "leakage_lesson.epochs"),
                   help="epochs per protocol")
    p.add_argument("--out", type=Path, help="the runs go to OUT/seed and OUT/honest (default: "
                   "one folder each under runs/, named by settings and data)")
    p.set_defaults(handler=_leakage)


def _report(args: argparse.Namespace) -> int:
    import yaml

    from .reports import run_reports

    values = {key: yaml.safe_load(value) for key, value in args.parameter}
    results = run_reports(args.names or None, values, args.out, data=args.data)
    failed = [r for r in results if r.error]
    print(f"{len(results) - len(failed)} of {len(results)} reports rendered; "
          f"index: {args.out / 'index.html'}")
    for r in failed:
        page = f"this run's page: {r.html}" if r.html else "no page was written"
        kept = "; its last good page is kept" if (args.out / f"{r.name}.html").exists() else ""
        print(f"fer-kit report: {r.name} failed at {' '.join(r.error.split())} ({page}{kept})",
              file=sys.stderr)
    return 1 if failed else 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run notebooks with papermill into HTML reports + index")
    p.add_argument("names", nargs="*", help="notebooks to run (default: all, in order)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                   metavar=("KEY", "VALUE"), help="override a parameter (YAML value)")
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: lookup, else synthetic)")
    p.add_argument("--out", type=Path, default=REPORTS_DIR,
                   help="folder of the reports, the index and their run folders")
    p.set_defaults(handler=_report)


def _bench(args: argparse.Namespace) -> int:
    import json

    from .bench import run_benchmarks

    figures = run_benchmarks(args.out, tiny=args.tiny, only=args.only)
    print(json.dumps(figures, indent=2))
    print(f"written: {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks against baselines: bench.json and bench.md")
    p.add_argument("--out", type=Path, default=BENCH_DIR,
                   help="folder of bench.json and bench.md")
    p.add_argument("--tiny", action="store_true", help="seconds-long run on tiny inputs")
    p.add_argument("--only", nargs="+", **choice_of("bench", "SECTIONS", "sections to run"))
    p.set_defaults(handler=_bench)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_data, _add_train, _add_evaluate, _add_video, _add_report, _add_bench]


def _add_debug(p: argparse.ArgumentParser, default: object = False) -> None:
    """--debug on a parser and every subcommand below it."""
    p.add_argument("--debug", action="store_true", default=default,
                   help="show the full traceback of an error")
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_debug(child, argparse.SUPPRESS)  # keeps a --debug given before it


def parser() -> argparse.ArgumentParser:
    """The fer-kit argument parser with every subcommand."""
    p = _Parser(prog="fer-kit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    _add_debug(p)
    return p


# What an interrupted command leaves behind, for its one line.
KEPT = {"analyze": "finished results in --out are kept as they were (a batch keeps its "
                   "finished videos and resumes when run again)",
        "evaluate": "earlier results in --out are kept as they were",
        "train": "the run folder keeps its last finished epoch; run the same command to resume",
        "report": "the pages of earlier runs are kept",
        "leakage": "its training runs keep their last finished epoch; run the same command to "
                   "resume",
        "bench": "bench.json and bench.md are as they were; the sections measured so far are "
                 "in bench.partial.json",
        "data": "every file written is whole (samples fetched so far are kept)"}


class Interrupted(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that a run stops the same way."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def _interrupts() -> Iterator[None]:
    """SIGTERM interrupts a command as Ctrl-C (SIGINT) does: its cleanup runs, so that every
    output keeps its last complete state."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show warnings as `warning: message`, without Python's file and source line."""
    shown = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    try:
        yield
    finally:
        warnings.formatwarning = shown


def _user_message(error: ValueError | OSError) -> str:
    """The one line an expected error prints: the kit's own message, or the OS error explained."""
    if isinstance(error, OSError) and error.errno is not None:
        return explain_os_error(error)
    return str(error)


def _report_bug(command: str, argv: list[str]) -> Path:
    """Write the current exception's traceback to a log file in the temp folder; its path."""
    log = Path(tempfile.gettempdir()) / f"fer-kit-{command}-{time.strftime('%Y%m%d-%H%M%S')}-" \
                                        f"{os.getpid()}.log"
    return write_text(log, f"fer-kit {' '.join(argv)}\n\n{traceback.format_exc()}")


def main(argv: list[str] | None = None) -> int:
    """Run a fer-kit command. An error about the user's input prints one line and exits 2;
    anything else is a bug: one line and a traceback file, exit 1 (--debug: the traceback)."""
    args = parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # as typed, for records
    try:
        with _one_line_warnings(), _interrupts():
            return int(args.handler(args) or 0)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"fer-kit {args.command}: interrupted ({signal.Signals(signum).name}); "
              f"{KEPT.get(args.command, 'nothing was written')}.", file=sys.stderr)
        return 128 + signum
    except (ValueError, OSError) as e:
        if args.debug:
            raise
        print(f"fer-kit {args.command}: error: {_user_message(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if args.debug:
            raise
        log = _report_bug(args.command, args.argv)
        print(f"fer-kit {args.command}: internal error ({type(e).__name__}: "
              f"{str(e).splitlines()[0] if str(e) else 'no message'}). This is a bug in "
              f"fer-kit; the full traceback is in {log} (run with --debug to see it here).",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
