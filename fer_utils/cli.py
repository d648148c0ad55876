"""`fer-kit`: everything the notebooks do, on files, from a shell."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

Handler = Callable[[argparse.Namespace], int | None]


def _train(args: argparse.Namespace) -> int:
    if args.cpu_devices:
        from .train import split_cpu

        split_cpu(args.cpu_devices)
    from .data import load_dataset
    from .pipeline import Augmentation
    from .train import profile, train

    dataset = load_dataset(args.data, skip_bad_rows=args.skip_bad_rows)
    print(dataset.describe())
    config = profile(args.profile, epochs=args.epochs, batch_size=args.batch_size,
                     learning_rate=args.lr, balance=args.balance,
                     label_smoothing=args.label_smoothing, seed=args.seed)
    if args.no_augment:
        config = config.__class__(**{**config.__dict__, "augmentation": None})
    elif isinstance(config.augmentation, Augmentation) and args.erase is not None:
        config = config.__class__(**{**config.__dict__, "augmentation": Augmentation(
            **{**config.augmentation.to_dict(), "erase": args.erase})})
    result = train(dataset, args.out, config, verbose=args.verbose)
    state = result.state
    print(f"best PublicTest accuracy {state['best_val_accuracy']:.4f} at epoch "
          f"{state['best_epoch']} of {state['epoch']}; {state['train_seconds'] / 60:.1f} min; "
          f"model and card in {result.out}")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (resumes a run left in --out)")
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: lookup, else synthetic)")
    p.add_argument("--profile", default="quick", choices=["quick", "full"])
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, log, model)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--balance", choices=["none", "class_weight", "oversample"])
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--erase", type=float, help="random-erasing probability")
    p.add_argument("--seed", type=int)
    p.add_argument("--skip-bad-rows", action="store_true")
    p.add_argument("--cpu-devices", type=int, default=0,
                   help="split the CPU into N logical devices (MirroredStrategy)")
    p.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    p.set_defaults(handler=_train)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_train]


def parser() -> argparse.ArgumentParser:
    """The fer-kit argument parser with every subcommand."""
    p = argparse.ArgumentParser(prog="fer-kit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a fer-kit command; errors about the user's input print one clear line, exit 2."""
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"fer-kit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
