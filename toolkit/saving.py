"""The one way to load a saved Keras model in this toolkit: `load_model(path)`.

A `.keras` file names its custom classes (`toolkit>BertPacker`, `toolkit>TfIdf`, ...) but not the modules
that define them; Keras can rebuild a class only after the module that registers it has been imported. So
whether a run directory loads must not depend on what the caller happened to import: `load_model` imports
every toolkit module that registers custom objects first. The list is the toolkit's own (a test checks it
covers every `register_keras_serializable` in the package); nothing named inside a model file is imported.

Examples:
>>> import keras
>>> from toolkit.layers import ScalarMix
>>> inputs = [keras.Input((4,)), keras.Input((4,))]
>>> model = keras.Model(inputs, ScalarMix(num_layers=2)(inputs))
>>> model.save("mix.keras")
>>> type(load_model("mix.keras").layers[-1]).__name__
'ScalarMix'
"""

from __future__ import annotations

import importlib
import os

# Modules whose import registers custom Keras objects (layers, models, losses, schedules, metrics). Named as
# strings and imported on demand, so that importing `toolkit.saving` stays cheap and cycle-free.
REGISTERING_MODULES = (
    "toolkit.layers",
    "toolkit.training.losses",
    "toolkit.training.schedules",
    "toolkit.training.segmentation_losses",
    "toolkit.training.discriminative",
    "toolkit.metrics.segmentation",
    "toolkit.models.transfer",
    "toolkit.models.detection",
    "toolkit.models.unet",
    "toolkit.models.text",
    "toolkit.models.vae",
    "toolkit.models.autoencoders",
    "toolkit.models.bert",
    "toolkit.models.forecasting",
    "toolkit.models.vision",  # registers nothing itself; imports keras-hub, whose layers its ViTs hold
    "toolkit.inspect.statistics",
)

_registered = False


def register_all() -> None:
    """Imports every module in `REGISTERING_MODULES` (once per process)."""
    global _registered
    if _registered:
        return
    for name in REGISTERING_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # a missing dependency inside a toolkit module is a real error
                raise
    _registered = True


def load_model(path: str, compile: bool = False, **kwargs):
    """Loads a `.keras` file (or a run directory's `model.keras`) with every toolkit custom object known.

    Args:
        path: a `.keras` file, or a folder holding `model.keras` (a run directory).
        compile: restore the training configuration too (default False: inference and export need none).
        **kwargs: passed to `keras.saving.load_model` (e.g. `safe_mode`).

    Raises:
        FileNotFoundError: naming the path when there is no model there.
    """
    import keras

    path = os.fspath(path)
    candidate = os.path.join(path, "model.keras") if os.path.isdir(path) else path
    if not os.path.isfile(candidate):
        raise FileNotFoundError(f"model {path!r} does not exist (give a .keras file or a run directory "
                                "holding model.keras)")
    register_all()
    return keras.saving.load_model(candidate, compile=compile, **kwargs)
