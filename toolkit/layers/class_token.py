"""The Vision Transformer's learnable [CLS] token, prepended to the patch tokens.

Written by hand: keras-hub's ViT keeps its class token inside a private patching layer
(`keras_hub.src.models.vit.vit_layers`), not a public layer; position embeddings use keras-hub's public
`PositionEmbedding`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class ClassToken(keras.layers.Layer):
    """Prepends one learned token to a sequence: `[batch, N, D] -> [batch, N + 1, D]` (ViT's x_class, F3:14425).

    Args:
        initializer: initializer of the token (ViT starts it at zero).

    Examples:
    >>> import numpy as np
    >>> ClassToken()(np.ones((2, 196, 8), "float32")).shape      # 224 px, P = 16: 196 patches -> 197 tokens
    TensorShape([2, 197, 8])
    """

    def __init__(self, initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, int(input_shape[-1])), initializer=self.initializer)
        self.built = True

    def call(self, inputs):
        token = ops.cast(self.token, inputs.dtype)
        batch = ops.shape(inputs)[0]
        return ops.concatenate([ops.broadcast_to(token, (batch, 1, inputs.shape[-1])), inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "initializer": keras.initializers.serialize(self.initializer)}
