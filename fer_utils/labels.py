"""Emotion labels and split (usage) names shared by the whole kit."""

from __future__ import annotations

__all__ = [
    "EMOTIONS", "NUM_CLASSES", "COLOURS", "USAGES", "VALENCE", "usage_name", "emotion_index",
]

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)
COLOURS = {  # BGR (OpenCV order), one per emotion, in every figure and video
    "angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160),
    "happy": (0, 200, 255), "sad": (200, 120, 40), "surprise": (0, 160, 255),
    "neutral": (170, 170, 170),
}

USAGES: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
_USAGE_ALIASES = {
    "training": "Training", "train": "Training",
    "publictest": "PublicTest", "val": "PublicTest", "validation": "PublicTest",
    "privatetest": "PrivateTest", "test": "PrivateTest",
}

# How the kit groups emotions for a presentation coach; surprise counts as positive
# because in a talk it mostly reads as engagement.
VALENCE: dict[str, tuple[str, ...]] = {
    "positive": ("happy", "surprise"),
    "negative": ("angry", "disgust", "fear", "sad"),
    "neutral": ("neutral",),
}


def usage_name(name: str) -> str:
    """Return the official usage name for a split name or alias (`val` -> `PublicTest`)."""
    try:
        return _USAGE_ALIASES[name.strip().lower()]
    except KeyError:
        known = ", ".join(USAGES) + " (or train, val, test)"
        raise ValueError(f"unknown split {name!r}; use one of {known}") from None


def emotion_index(name: str) -> int:
    """Return the class index of an emotion name."""
    try:
        return EMOTIONS.index(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown emotion {name!r}; use one of {', '.join(EMOTIONS)}") from None
