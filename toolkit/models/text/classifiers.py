"""Text classifier builders: a bag-of-words MLP and sequence models over token ids (SimpleRNN, LSTM, GRU,
bidirectional variants, ELMo-style scalar mix over stacked recurrent layers, 1D CNN, causal dilated TCN).

Every builder returns a Keras model from dense inputs (token ids `int64 [B, L]` or a bag-of-words
`float32 [B, V]`) to class probabilities; `text_classifier` joins a vectoriser (`preprocessor`) and such a
model (`classifier`) into one end-to-end model taking `tf.string [B]`.
"""

from __future__ import annotations

import keras

from toolkit.layers.scalar_mix import ScalarMix

SEQUENCE_KINDS = ("rnn", "lstm", "gru", "cnn", "tcn")
_RNN = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def build_bow_classifier(vocabulary_size: int, num_classes: int, units: int = 64, dropout: float = 0.3,
                         name: str = "classifier") -> keras.Model:
    """Bag-of-words (counts / TF-IDF `[B, V]`) -> Dense(relu) -> Dropout -> softmax.

    Examples:
    >>> build_bow_classifier(100, 3).output_shape
    (None, 3)
    """
    inputs = keras.Input((vocabulary_size,), dtype="float32", name="features")
    x = keras.layers.Dropout(dropout / 2)(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def build_sequence_classifier(
    kind: str,
    vocabulary_size: int,
    num_classes: int,
    sequence_length: int | None = None,
    embedding_dim: int = 64,
    units: int = 64,
    num_layers: int = 1,
    bidirectional: bool = False,
    scalar_mix: bool = False,
    dropout: float = 0.3,
    kernel_size: int = 3,
    embedding_weights=None,
    trainable_embeddings: bool = True,
    name: str = "classifier",
) -> keras.Model:
    """Token ids (0 = padding) -> Embedding -> sequence encoder -> pooled vector -> softmax.

    Args:
        kind: `rnn` (SimpleRNN), `lstm`, `gru`, `cnn` (Conv1D + global max pool) or `tcn` (causal Conv1D
            with dilations 1, 2, 4, ... and residual connections, then global max pool).
        num_layers: stacked recurrent / convolutional layers.
        bidirectional: wrap recurrent layers in `Bidirectional` (h_t = [fwd; bwd]).
        scalar_mix: ELMo-style learned softmax-weighted sum of every recurrent layer's output sequence
            (masked mean-pooled), instead of the last layer's final state.
        embedding_weights: optional `[vocabulary_size, embedding_dim]` initial table (e.g. GloVe).

    Examples:
    >>> m = build_sequence_classifier("gru", 50, 2, sequence_length=8, num_layers=2, scalar_mix=True)
    >>> m.output_shape
    (None, 2)
    """
    if kind not in SEQUENCE_KINDS:
        raise ValueError(f"kind must be one of {SEQUENCE_KINDS}. Received: {kind!r}")
    recurrent = kind in _RNN
    inputs = keras.Input((sequence_length,), dtype="int64", name="token_ids")
    embedding = keras.layers.Embedding(
        vocabulary_size, embedding_dim, mask_zero=recurrent, trainable=trainable_embeddings, name="embedding",
        embeddings_initializer=(keras.initializers.Constant(embedding_weights) if embedding_weights is not None
                                else "uniform"),
    )
    x = embedding(inputs)
    x = keras.layers.SpatialDropout1D(dropout / 2)(x) if dropout else x
    if recurrent:
        outputs = []
        for index in range(num_layers):
            last = index == num_layers - 1 and not scalar_mix
            layer = _RNN[kind](units, return_sequences=not last, name=f"{kind}_{index + 1}")
            x = keras.layers.Bidirectional(layer, name=f"bi_{kind}_{index + 1}")(x) if bidirectional else layer(x)
            outputs.append(x)
        if scalar_mix:
            x = ScalarMix(num_layers, name="scalar_mix")(outputs) if num_layers > 1 else outputs[0]
            x = keras.layers.GlobalAveragePooling1D(name="masked_mean")(x)
    elif kind == "cnn":
        for index in range(num_layers):
            x = keras.layers.Conv1D(units, kernel_size, padding="same", activation="relu", name=f"conv_{index + 1}")(x)
        x = keras.layers.GlobalMaxPooling1D()(x)
    else:
        x = keras.layers.Conv1D(units, 1, name="tcn_input")(x)
        for index in range(max(num_layers, 1) * 2):
            # Causal (left-padded) dilated convolutions: receptive field 1 + (k - 1) * (2^n - 1).
            h = keras.layers.Conv1D(units, kernel_size, padding="causal", dilation_rate=2 ** index,
                                    activation="relu", name=f"tcn_conv_{index + 1}")(x)
            x = keras.layers.Add(name=f"tcn_residual_{index + 1}")([x, h])
        x = keras.layers.GlobalMaxPooling1D()(x)
    x = keras.layers.Dropout(dropout)(x) if dropout else x
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def text_classifier(preprocessor: keras.Model, classifier: keras.Model, name: str = "text_classifier") -> keras.Model:
    """`tf.string [B]` -> preprocessor -> classifier: the end-to-end model an app trains, saves and exports.

    The two parts keep the names `preprocessor` and `classifier`: the text serving adapter runs the first
    in the raw signature (string ops) and the second as the dense, XLA-compilable compute.

    Examples:
    >>> from toolkit.models.text.vectorize import build_vectorizer
    >>> preprocessor = build_vectorizer(["good film", "bad film"], mode="count", max_tokens=None)
    >>> model = text_classifier(preprocessor, build_bow_classifier(4, 2, units=4))
    >>> model(tf.constant(["good film", "bad"])).shape
    TensorShape([2, 2])
    """
    if preprocessor.name != "preprocessor" or classifier.name != "classifier":
        raise ValueError("name the parts 'preprocessor' and 'classifier'. Received: "
                         f"{preprocessor.name!r}, {classifier.name!r}")
    inputs = keras.Input(shape=(), dtype="string", name="text")
    return keras.Model(inputs, classifier(preprocessor(inputs)), name=name)
