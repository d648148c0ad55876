"""The allowed range of every numeric option, checked by the same code in Python and the CLI.

The config dataclasses call `check_fields` in `__post_init__`; the CLI's argparse types come
from `argument_type`, so `--epochs 0` and `TrainConfig(epochs=0)` fail with one message.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Range", "POSITIVE", "NON_NEGATIVE", "COUNT", "NON_NEGATIVE_COUNT", "FRACTION",
    "PROBABILITY", "WORKER_MEMORY_GB", "MAX_PRIOR_CORRECTION", "usable_cores", "memory_gb",
    "worker_limit", "RANGES", "check", "check_values", "check_fields", "argument_type",
]


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; `low_open`/`high_open` exclude that end."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    why: str = ""  # the reason for the bounds, said with them

    def __contains__(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        why = f" ({self.why})" if self.why else ""
        if self.high is None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}{why}"
        return (f"{kind} in {'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}{why}")


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
COUNT = Range(1, integer=True)
NON_NEGATIVE_COUNT = Range(0, integer=True)
FRACTION = Range(0, 1, high_open=True)  # a share or probability below 1
PROBABILITY = Range(0, 1)
# One Dask worker's peak memory while it analyses an HD talk: TensorFlow, the model and the
# decoding, detection and classification queues.
WORKER_MEMORY_GB = 2.0
# Beyond this the Training prior (rarest class about 1.5%, commonest 25%) outweighs any
# model's probabilities by more than e^28: predictions only rank the classes by rarity.
MAX_PRIOR_CORRECTION = 10.0


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def memory_gb() -> float | None:
    """This machine's physical memory in GB, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return None


def worker_limit() -> Range:
    """The allowed --workers: at least 1, at most one per core and per WORKER_MEMORY_GB."""
    cores, memory = usable_cores(), memory_gb()
    by_memory = cores if memory is None else int(memory // WORKER_MEMORY_GB)
    reason = (f"this machine has {cores} cores" + ("" if memory is None else
              f" and {memory:.0f} GB of memory, and each worker needs about "
              f"{WORKER_MEMORY_GB:g} GB") + "; more workers than that only wait for each other "
              "or run out of memory")
    return Range(1, max(1, min(cores, by_memory)), integer=True, why=reason)


RANGES: dict[str, Range] = {
    # training
    "epochs": COUNT, "batch_size": COUNT, "learning_rate": POSITIVE,
    "warmup_epochs": NON_NEGATIVE_COUNT, "momentum": FRACTION, "weight_decay": NON_NEGATIVE,
    "early_dropout_epochs": NON_NEGATIVE_COUNT, "label_smoothing": FRACTION,
    "patience": COUNT, "ema_momentum": FRACTION,
    # augmentation
    "rotation_deg": Range(0, 180), "shift": FRACTION, "zoom": FRACTION,
    "erase": PROBABILITY,
    "crop_pad": Range(0, 24, integer=True, why="pixels on each side of a 48-pixel face"),
    # video analysis
    "fps": POSITIVE, "every": COUNT, "max_seconds": POSITIVE,
    "batch_frames": COUNT, "alpha": Range(0, 1, low_open=True), "window": COUNT,
    # face crops, as shares of a box's side: added on each side (cut off, below 0), moved down
    "margin": Range(-0.5, 1, low_open=True), "offset": Range(-0.5, 0.5),
    "fragment_size": FRACTION, "min_track_s": NON_NEGATIVE, "join_gap_s": NON_NEGATIVE,
    "join_shift": NON_NEGATIVE,
    # models and data
    "input_size": Range(8, integer=True), "images": COUNT, "per_class": COUNT,
    "prior_correction": Range(0, MAX_PRIOR_CORRECTION, why="larger values only rank the "
                              "classes by rarity"),
    "n_train": NON_NEGATIVE_COUNT, "n_val": NON_NEGATIVE_COUNT, "n_test": NON_NEGATIVE_COUNT,
    # running
    "workers": worker_limit(), "cpu_devices": COUNT,
}


def check(name: str, value: float | None) -> None:
    """Raise ValueError naming the option and its allowed range when `value` is outside it."""
    allowed = RANGES[name]
    if value is None:
        return
    wrong_type = isinstance(value, bool) or (allowed.integer and not float(value).is_integer())
    if wrong_type or value not in allowed:
        raise ValueError(f"{name} must be {allowed}, not {value!r}")


def check_values(**values: float | None) -> None:
    """Check each option given by name (None means unset)."""
    for name, value in values.items():
        check(name, value)


def check_fields(config: object, names: tuple[str, ...]) -> None:
    """Check the named fields of a config object."""
    check_values(**{name: getattr(config, name) for name in names})


def argument_type(name: str) -> Callable[[str], float | int]:
    """An argparse type that parses the option and checks its range."""
    allowed = RANGES[name]

    def parse(text: str) -> float | int:
        try:
            value = int(text) if allowed.integer else float(text)
            check(name, value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, not {text!r}") from None
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse
