"""ELMo's learned scalar mix of layer outputs: gamma * sum_j softmax(s)_j * h_j (SEED_CATALOGUE section 6)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="toolkit")
class ScalarMix(keras.layers.Layer):
    """Mixes a list of same-shaped tensors with softmax-normalised learned weights and a learned scale.

    Args:
        num_layers: how many tensors are mixed.
        trainable_gamma: learn the scale gamma (initialised to 1).

    The mask of the first input (e.g. padding from an `Embedding(mask_zero=True)`) is passed on.

    Examples:
    >>> import numpy as np
    >>> mix = ScalarMix(2)
    >>> mix([np.ones((1, 2)), 3 * np.ones((1, 2))]).numpy().tolist()   # equal weights at init
    [[2.0, 2.0]]
    """

    def __init__(self, num_layers: int, trainable_gamma: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_layers, self.trainable_gamma = int(num_layers), bool(trainable_gamma)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != self.num_layers:
            raise ValueError(f"ScalarMix expects {self.num_layers} inputs. Received: {len(input_shape)}")
        self.scalars = self.add_weight(name="scalars", shape=(self.num_layers,), initializer="zeros")
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="ones", trainable=self.trainable_gamma)

    def layer_weights(self):
        """The current softmax-normalised mixing weights s_j."""
        return keras.ops.softmax(self.scalars)

    def call(self, inputs, mask=None):
        weights = keras.ops.softmax(self.scalars)
        mixed = sum(weights[j] * keras.ops.cast(inputs[j], self.compute_dtype) for j in range(self.num_layers))
        return self.gamma * mixed

    def compute_mask(self, inputs, mask=None):
        if mask is None:
            return None
        return mask[0] if isinstance(mask, (list, tuple)) else mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_layers": self.num_layers, "trainable_gamma": self.trainable_gamma}
