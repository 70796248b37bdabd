"""Keras 3 applied toolkit: model builders, data, training, metrics, export and serving.

The TensorFlow backend is forced: SavedModel export and TF Serving compatibility need it.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ["KERAS_BACKEND"] != "tensorflow":
    raise ImportError(
        "toolkit needs the TensorFlow Keras backend (SavedModel export depends on it). "
        f"Received: KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}"
    )

__version__ = "0.1.0"
