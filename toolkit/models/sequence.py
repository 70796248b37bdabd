"""1D and 3D data (F1:157-176): Conv1D classifiers for sequences `(N, T, C)` (audio-like signals, multichannel
sensors) and Conv3D classifiers for volumes `(N, D, H, W, C)` (CT-like stacks, short videos), plus float-sequence
encoders (1D CNN, causal dilated TCN, LSTM, GRU) for regression / forecasting heads.

    model = build_conv1d_classifier((None, 3), num_classes=4)        # any length T, 3 channels
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y)                                                   # x: float array (N, T, 3)
    build_conv3d_classifier((16, 32, 32, 1), num_classes=2)          # volumes

The TCN / LSTM / GRU here are the same blocks as the text classifiers' (`toolkit.models.text.classifiers`,
which start from token ids through an Embedding); these take real-valued channels directly.
"""

from __future__ import annotations

import keras
import numpy as np

ENCODER_KINDS = ("cnn", "tcn", "lstm", "gru")


def _conv_classifier(conv, pool, global_pool, input_shape, num_classes, filters, kernel_size, dropout, name,
                     momentum=0.9, normalization=None):
    # BatchNormalization momentum 0.9, not Keras's 0.99: at 0.99 the moving statistics need hundreds of steps
    # to settle, and a small dataset (a few dozen batches) is then evaluated with stale statistics.
    inputs = keras.Input(tuple(input_shape), name="inputs")
    x = inputs
    if normalization is not None:
        # per-channel (x - mean) / sqrt(variance) as a frozen BatchNormalization (always in inference mode): the
        # statistics are weights, which the TFLite / ONNX converters keep (Normalization(mean=...) holds them as
        # captured constants, which tf2onnx turns into missing graph inputs)
        layer = keras.layers.BatchNormalization(epsilon=1e-6, center=False, scale=False, trainable=False,
                                                name="standardize")
        x = layer(x)
        layer.set_weights([np.asarray(v, "float32").reshape(-1) for v in normalization])
    for index, width in enumerate(filters):
        x = conv(width, kernel_size, padding="same", use_bias=False, name=f"conv_{index + 1}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"bn_{index + 1}")(x)
        x = keras.layers.Activation("relu", name=f"relu_{index + 1}")(x)
        if index < len(filters) - 1:
            x = pool(2, padding="same", name=f"pool_{index + 1}")(x)
    x = global_pool(name="global_pool")(x)
    x = keras.layers.Dropout(dropout)(x) if dropout else x
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def _check(input_shape, rank, what, num_classes):
    if len(tuple(input_shape)) != rank:
        raise ValueError(f"{what} input_shape must have {rank} entries (without the batch axis). "
                         f"Received: input_shape={tuple(input_shape)}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2. Received: num_classes={num_classes}")


def build_conv1d_classifier(input_shape, num_classes: int, filters=(32, 64, 64), kernel_size: int = 5,
                            dropout: float = 0.2, name: str = "conv1d_classifier", normalization=None) -> keras.Model:
    """Sequences `(T, C)` (T may be None: any length) -> Conv1D/BN/ReLU blocks with max pooling -> global
    average pool -> softmax. `normalization`: optional `(mean, variance)` per channel, a first frozen layer
    `standardize` that subtracts the mean and divides by the standard deviation (raw units in).

    >>> build_conv1d_classifier((None, 2), num_classes=3).output_shape
    (None, 3)
    """
    _check(input_shape, 2, "a sequence (T, C)", num_classes)
    return _conv_classifier(keras.layers.Conv1D, keras.layers.MaxPooling1D, keras.layers.GlobalAveragePooling1D,
                            input_shape, num_classes, filters, kernel_size, dropout, name,
                            normalization=normalization)


def build_conv3d_classifier(input_shape, num_classes: int, filters=(16, 32), kernel_size: int = 3,
                            dropout: float = 0.2, name: str = "conv3d_classifier", normalization=None) -> keras.Model:
    """Volumes `(D, H, W, C)` (depth slices or video frames first) -> Conv3D/BN/ReLU blocks with 2x2x2 max
    pooling -> global average pool -> softmax. `normalization`: as `build_conv1d_classifier`'s.

    >>> build_conv3d_classifier((4, 8, 8, 1), num_classes=2).output_shape
    (None, 2)
    """
    _check(input_shape, 4, "a volume (D, H, W, C)", num_classes)
    return _conv_classifier(keras.layers.Conv3D, keras.layers.MaxPooling3D, keras.layers.GlobalAveragePooling3D,
                            input_shape, num_classes, filters, kernel_size, dropout, name,
                            normalization=normalization)


def sequence_encoder(x, kind: str = "tcn", units: int = 32, num_layers: int = 2, kernel_size: int = 3,
                     prefix: str = "encoder"):
    """Float sequence `[B, T, C]` -> vector `[B, units]`.

    kind: `cnn` (Conv1D stack + global max pool), `tcn` (1x1 input projection, then causal Conv1D with
    dilations 1, 2, 4, ... (2 * num_layers of them) and residual connections; the last time step's features,
    whose receptive field is 1 + (k - 1) * (2^(2 * num_layers) - 1) steps; with T unknown, max over time),
    `lstm` / `gru` (stacked, last state).

    >>> inputs = keras.Input((16, 2))
    >>> keras.Model(inputs, sequence_encoder(inputs, "tcn", units=8)).output_shape
    (None, 8)
    """
    if kind not in ENCODER_KINDS:
        raise ValueError(f"kind must be one of {ENCODER_KINDS}. Received: {kind!r}")
    if kind == "cnn":
        for index in range(num_layers):
            x = keras.layers.Conv1D(units, kernel_size, padding="same", activation="relu",
                                    name=f"{prefix}_conv_{index + 1}")(x)
        return keras.layers.GlobalMaxPooling1D(name=f"{prefix}_pool")(x)
    if kind == "tcn":
        x = keras.layers.Conv1D(units, 1, name=f"{prefix}_tcn_input")(x)
        for index in range(max(num_layers, 1) * 2):
            h = keras.layers.Conv1D(units, kernel_size, padding="causal", dilation_rate=2 ** index, activation="relu",
                                    name=f"{prefix}_tcn_conv_{index + 1}")(x)
            x = keras.layers.Add(name=f"{prefix}_tcn_residual_{index + 1}")([x, h])
        steps = x.shape[1]
        if steps is None:  # unknown length: no fixed crop; max over time as the text TCN does
            return keras.layers.GlobalMaxPooling1D(name=f"{prefix}_pool")(x)
        x = keras.layers.Cropping1D((steps - 1, 0), name=f"{prefix}_last_step")(x)
        return keras.layers.Flatten(name=f"{prefix}_flatten")(x)
    layer = keras.layers.LSTM if kind == "lstm" else keras.layers.GRU
    for index in range(num_layers):
        x = layer(units, return_sequences=index < num_layers - 1, name=f"{prefix}_{kind}_{index + 1}")(x)
    return x
