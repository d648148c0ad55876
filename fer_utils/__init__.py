"""fer_utils: the engine behind the FER kit's notebooks and its `fer-kit` command."""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) hides the kit's own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# FFmpeg's line per damaged packet of a video; an analysis reports the gaps in summary.json.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__version__ = "0.1.0"
