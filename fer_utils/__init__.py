"""fer_utils: the engine behind the FER kit's notebooks and its `fer-kit` command."""

import os

# TensorFlow's C++ start-up chatter (CPU features, oneDNN) hides the kit's own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
