"""In-model image normalisation, so exported models take raw [0, 255] pixels."""

from __future__ import annotations

import keras
from keras import ops

# The normalisations keras.applications backbones expect (see keras.applications.imagenet_utils).
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MODES = ("unit", "tf", "torch", "caffe", "none")


@keras.saving.register_keras_serializable(package="toolkit")
class ImageNormalization(keras.layers.Layer):
    """Maps raw pixels in [0, 255] to what a backbone expects, optionally grey -> RGB.

    Written by hand because keras.applications' `preprocess_input` functions are plain functions,
    not layers, and would be lost from a saved model.

    Args:
        mode: str. `"unit"` -> [0, 1]; `"tf"` -> [-1, 1]; `"torch"` -> ImageNet mean/std on [0, 1];
            `"caffe"` -> BGR minus the ImageNet mean; `"none"` -> unchanged.
        to_rgb: bool. repeat a single grey channel three times (for ImageNet backbones).

    Examples:
    >>> import numpy as np
    >>> ImageNormalization("tf")(np.array([[[[0.0], [255.0]]]])).numpy().ravel().tolist()
    [-1.0, 1.0]
    """

    def __init__(self, mode: str = "unit", to_rgb: bool = False, **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.to_rgb = to_rgb

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.to_rgb and x.shape[-1] == 1:
            x = ops.concatenate([x, x, x], axis=-1)
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_IMAGENET_MEAN, dtype=x.dtype)
            std = ops.convert_to_tensor(_IMAGENET_STD, dtype=x.dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)
        return x

    def compute_output_shape(self, input_shape):
        if self.to_rgb and input_shape[-1] == 1:
            return tuple(input_shape[:-1]) + (3,)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "to_rgb": self.to_rgb}
